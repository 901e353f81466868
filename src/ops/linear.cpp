#include "ops/linear.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>

#include "core/error.h"
#include "core/mapped_file.h"
#include "ops/amx_bf16.h"
#include "ops/gemv.h"
#include "ops/ops.h"

namespace hfpipe::ops {

using dnnl::memory;
using tag = memory::format_tag;

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::algorithm eltwise_algorithm(Activation a) {
  switch (a) {
    case Activation::GeluErf: return dnnl::algorithm::eltwise_gelu_erf;
    case Activation::GeluTanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case Activation::Relu: return dnnl::algorithm::eltwise_relu;
    case Activation::Tanh: return dnnl::algorithm::eltwise_tanh;
    case Activation::Silu: return dnnl::algorithm::eltwise_swish;
    case Activation::None: break;
  }
  fail(ErrorKind::Internal, "no oneDNN algorithm for activation");
}

// `bias` when it has floats (F32 [out], else Error(Internal)); an empty Tensor when it has none.
Tensor checked_bias(const Tensor& bias, int64_t out) {
  if (!bias.defined() || bias.numel() == 0) return Tensor();
  check(bias.dtype() == DType::F32 && bias.numel() == out, ErrorKind::Internal, "Linear bias must be F32 [out]");
  return bias;
}

// set_bf16_products_enabled's switch (tests).
std::atomic<bool> bf16_products_allowed{true};

}  // namespace

void set_bf16_products_enabled(bool enabled) { bf16_products_allowed.store(enabled); }

bool bf16_products_supported() {
  if (!bf16_products_allowed.load()) return false;
  static const bool supported = [] {
    const memory::dim n = 64;
    try {
      dnnl::matmul::primitive_desc probe(
          dnnl::matmul::desc(memory::desc({n, n}, memory::data_type::bf16, tag::ab),
                             memory::desc({n, n}, memory::data_type::bf16, tag::any),
                             memory::desc({n, n}, memory::data_type::f32, tag::ab)),
          cpu_engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return supported;
}

namespace {

// Whether oneDNN multiplies plain f32 [out, in] weights by a fixed number of rows on brgemm
// (2.6: AVX-512 CPUs), which it does faster than its runtime-rows gemm:jit (Zen 5, one thread,
// GFLOP/s at 16 / 64 / 512 rows on SmolLM2's 576 x 1536 and 1536 x 576: 143-151 / 216-217 /
// 224-225 vs 51-89 / 130-193 / 210-214; on its 576 x 576: 143 / 213 / 232 vs 127 / 204 / 221).
bool fixed_rows_on_brgemm() {
  static const bool brgemm = [] {
    const memory::dim n = 64;
    const dnnl::matmul::primitive_desc probe(
        dnnl::matmul::desc(memory::desc({n, n}, memory::data_type::f32, tag::ab),
                           memory::desc({n, n}, memory::data_type::f32, tag::ba),
                           memory::desc({n, n}, memory::data_type::f32, tag::ab)),
        cpu_engine());
    return std::string(probe.impl_info_str()).rfind("brg", 0) == 0;
  }();
  return brgemm;
}

// x (rows x k, row-major) times w ([n, k] row-major) into the dense y (rows x n) on a oneDNN
// primitive for this shape, made on first use (~0.3 ms; ~10 us when oneDNN's own cache has the
// kernel) and kept in a process-wide map.
void fixed_rows_product(const float* x, int64_t rows, const float* w, int64_t n, int64_t k, float* y) {
  static std::mutex mutex;
  static std::map<std::array<int64_t, 3>, dnnl::matmul> primitives;
  constexpr size_t kMaxPrimitives = 256;  // past it the map starts again (prompts of many lengths)
  const std::array<int64_t, 3> key{rows, n, k};
  const memory::desc src_md({rows, k}, memory::data_type::f32, tag::ab);
  const memory::desc weights_md({k, n}, memory::data_type::f32, tag::ba);
  const memory::desc dst_md({rows, n}, memory::data_type::f32, tag::ab);
  dnnl::matmul primitive;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = primitives.find(key);
    if (it == primitives.end()) {
      if (primitives.size() >= kMaxPrimitives) primitives.clear();
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, weights_md, dst_md), cpu_engine());
      it = primitives.emplace(key, dnnl::matmul(pd)).first;
    }
    primitive = it->second;
  }
  auto& eng = cpu_engine();
  memory src(src_md, eng, const_cast<float*>(x));
  memory weights(weights_md, eng, const_cast<float*>(w));
  memory dst(dst_md, eng, y);
  dnnl::stream s(eng);
  primitive.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
  s.wait();
}

}  // namespace

void plain_weight_product(const float* x, int64_t rows, const float* w, int64_t n, int64_t k, float* y,
                          int64_t ldy) {
  if (fixed_rows_on_brgemm()) {
    // 512 rows at a time (as Linear's chunks): bounds the row counts primitives are made for
    // and the buffer below. oneDNN 2.6 runs brgemm only into a dense destination (rows ldy > n
    // apart fall back to gemm:jit), so a slice of y's columns goes through a buffer.
    constexpr int64_t kRowsPerChunk = 512;
    thread_local std::vector<float> dense;
    for (int64_t first = 0; first < rows; first += kRowsPerChunk) {
      const int64_t count = std::min(kRowsPerChunk, rows - first);
      const float* chunk_x = x + first * k;
      float* chunk_y = y + first * ldy;
      if (ldy == n) {
        fixed_rows_product(chunk_x, count, w, n, k, chunk_y);
        continue;
      }
      if (dense.size() < static_cast<size_t>(count * n)) dense.resize(static_cast<size_t>(count * n));
      fixed_rows_product(chunk_x, count, w, n, k, dense.data());
      for (int64_t r = 0; r < count; ++r)
        std::memcpy(chunk_y + r * ldy, dense.data() + r * n, sizeof(float) * static_cast<size_t>(n));
    }
    return;
  }
  const dnnl_status_t status = dnnl_sgemm('N', 'T', rows, n, k, 1.f, x, k, w, k, 0.f, y, ldy);
  check(status == dnnl_success, ErrorKind::Internal, "dnnl_sgemm failed");
}

Activation activation_from_name(const std::string& name) {
  if (name == "gelu") return Activation::GeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
  if (name == "relu") return Activation::Relu;
  if (name == "tanh") return Activation::Tanh;
  if (name == "silu" || name == "swish") return Activation::Silu;
  fail(ErrorKind::UnsupportedModel,
       "activation '" + name + "' is not supported; supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, tanh, silu");
}

// Two ways to run the product:
// - plain: over the checkpoint's own [out, in] memory (zero-copy from the mmapped file): few rows
//   (skinny_linear_preferred: up to 8; 40 on AVX2, 64 on AVX-512) go to skinny_linear, up to 256
//   to a primitive for that row count where oneDNN runs it on brgemm (AVX-512; at 96-128 rows of
//   BERT-base and MiniLM shapes 166-198 GFLOP/s vs skinny's 129-197), the rest to one primitive
//   for a runtime number of rows (gemm:jit). The default, and all oneDNN offers on AVX2.
// - blocked (WeightPacking::BlockedWhenFaster on AVX-512): brgemm, which oneDNN 2.6 only has
//   for a fixed number of rows, over weights reordered into its blocked layout (the same
//   layout for every row count, so one packed copy serves all). Measured on a Xeon (AVX-512)
//   at one thread, GFLOP/s brgemm vs gemm:jit: 16 rows of MiniLM's 384x1536 80 vs 59, 20 rows
//   of BERT-base's 768x3072 56 vs 29, 128 rows 102 vs 81; at 4096 rows gemm:jit leads (112
//   vs 104) while brgemm over 512-row chunks comes close (106-130 in isolation, ~5% behind in
//   a whole model), so big inputs run in chunks of kRowsPerChunk rows. One primitive per row
//   count, made on first use and kept (creation ~0.3 ms; oneDNN's own primitive cache shares
//   the kernels between layers of the same shape). Few rows run on brgemm too (1-8 rows:
//   18-64 GFLOP/s vs gemm:jit's 13-48) so the plain weight's pages, given back after packing,
//   are not read again.
//   On a Zen 5 (one thread, hfpipe_bench_ops) brgemm also beats skinny_linear's tiles from 16
//   rows on (GFLOP/s at 16 / 64 rows, BERT-base and MiniLM shapes: 113-170 / 190-208 vs 95-129 /
//   134-172 in the same run), so packed layers run every row count on it.
//   Packing costs a copy of the weights (BERT-base: ~0.25 s CPU, most of it faulting in the
//   fresh pages), which a one-input run would pay in start-up for nothing; so a layer runs
//   plain for its first kPlainCallsBeforePacking calls and packs itself on the next one.
// - bf16 (WeightPacking::BlockedBf16, torch_dtype="bfloat16"): the blocked path with bf16
//   weights, packed at construction (the user asked for it: no plain phase), and bf16 inputs
//   converted per call. On AMX CPUs the weight is packed for hfpipe's own AMX kernel instead
//   (ops/amx_bf16.h: 1.1-1.7x oneDNN 2.6's brg:avx512_core_amx_bf16 on BERT-base shapes);
//   elsewhere oneDNN's bf16 brgemm (AVX-512-BF16). Where oneDNN has no bf16 product (AVX2
//   CPUs), the same numbers from f32 kernels: the weight rounded to bf16 values once (an f32
//   copy), the inputs rounded per call; products of bf16 values are exact in f32, so only the
//   order of the f32 sums differs from a bf16 kernel's.
struct Linear::Impl {
  // BlockedWhenFaster asked for and oneDNN wants a blocked layout, or BlockedBf16 (packed at
  // construction).
  bool can_pack = false;
  // Inputs are rounded to bf16: BlockedBf16 (blocked_weights are bf16), or a QuantizedMatrix
  // under Precision::BFloat16.
  bool bf16 = false;
  // bf16 products on f32 kernels (no oneDNN bf16 product on this CPU): each call's inputs
  // rounded to bf16 values, as f32 (bf16_valued_rows).
  bool bf16_valued_inputs = false;
  dnnl::matmul runtime_rows;  // plain: serves every row count
  memory::desc plain_md, blocked_md, bias_md;
  dnnl::primitive_attr attr;
  memory plain_weights;  // a view of the checkpoint
  memory bias;           // empty when there is no bias
  Tensor keep_weight, keep_bias;
  std::optional<QuantizedMatrix> quantized;  // set: the weight stays block-quantised
  std::optional<PanelMatrix> panels;         // set: the weight is in column panels
  // BlockedBf16 on hfpipe's own AMX kernel (ops/amx_bf16.h): the packed weight.
  std::optional<AmxWeight> amx;
  Tensor amx_bias;  // the bias padded for amx_bf16_matmul; empty when there is none
  // A QuantizedMatrix under Precision::BFloat16 whose prefill (more than kSkinnyMaxRows rows)
  // runs bf16 products over slices (sliced_bf16_gemm), not quantized_linear on bf16-valued rows.
  bool bf16_slices = false;
  // A BF16 QuantizedMatrix whose prefill runs on the AMX kernel, not oneDNN.
  bool amx_slices = false;
  int64_t in = 0, out = 0;

  // keep_bias's floats, or null when the layer has no bias.
  const float* bias_data() const { return keep_bias.defined() && keep_bias.numel() > 0 ? keep_bias.f32() : nullptr; }
  Activation activation = Activation::None;

  mutable std::atomic<int64_t> plain_calls{0};
  mutable std::once_flag pack_once;
  mutable std::atomic<bool> packed_ready{false};
  mutable Tensor packed;
  mutable memory blocked_weights;
  mutable std::mutex fixed_rows_mutex;
  mutable std::unordered_map<int64_t, dnnl::matmul> fixed_rows;  // blocked: by row count
  mutable std::map<std::pair<int64_t, int64_t>, dnnl::matmul> slice_primitives;  // by (rows, weight rows)
  mutable std::unordered_map<int64_t, dnnl::matmul> plain_fixed_rows;  // plain on brgemm: by row count

  static constexpr int64_t kRowsPerChunk = 512;
  // oneDNN 2.6's AMX bf16 kernel slows down 3-6x past ~100 rows on some shapes (one thread,
  // GFLOP/s at 64 / 128 / 256 rows: 768x768 833 / 791 / 289, 3072x768 515 / 135 / -); 64-row
  // chunks keep every BERT-base and MiniLM layer at 515-834.
  static constexpr int64_t kBf16RowsPerChunk = 64;
  int64_t rows_per_chunk() const { return bf16 ? kBf16RowsPerChunk : kRowsPerChunk; }
  static constexpr int64_t kPlainCallsBeforePacking = 4;
  // Kept primitives per layer; past it the map starts again (inputs of many lengths).
  static constexpr size_t kMaxFixedRowPrimitives = 128;

  memory::data_type input_type() const { return bf16 ? memory::data_type::bf16 : memory::data_type::f32; }

  dnnl::matmul::primitive_desc describe(memory::dim rows, const memory::desc& weights_desc) const {
    auto src_md = memory::desc({rows, in}, input_type(), tag::ab);
    auto dst_md = memory::desc({rows, out}, memory::data_type::f32, tag::ab);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, weights_desc, bias_md, dst_md), attr, cpu_engine());
  }

  // Whether this call runs on the packed weights, packing them first when it is time.
  bool use_blocked() const {
    if (!can_pack) return false;
    if (packed_ready.load(std::memory_order_acquire)) return true;
    if (plain_calls.fetch_add(1, std::memory_order_relaxed) < kPlainCallsBeforePacking) return false;
    std::call_once(pack_once, [this] { pack(); });
    return true;
  }

  // The weight reordered (and converted, for bf16) into blocked_md.
  void pack() const {
    auto& eng = cpu_engine();
    packed = Tensor::empty(DType::U8, {static_cast<int64_t>(blocked_md.get_size())});
    blocked_weights = memory(blocked_md, eng, packed.data_as<void>());
    dnnl::stream s(eng);
    memory source = plain_weights;  // a handle: execute() takes non-const ones
    dnnl::reorder(source, blocked_weights).execute(s, source, blocked_weights);
    s.wait();
    packed_ready.store(true, std::memory_order_release);
    // Only the packed copy is read from here on (a thread still on the plain path faults
    // the pages back in from the file).
    MappedFile::release_pages(keep_weight.raw(), keep_weight.nbytes());
  }

  // The weight rounded to bf16 in the blocked layout oneDNN's bf16 matmul wants (one reorder
  // converts and re-lays it out).
  void pack_bf16() {
    if (amx_bf16_enabled() && amx_bf16_fits(out, in)) {
      bf16 = true;
      amx = pack_amx_bf16(keep_weight.f32(), out, in);
      if (bias_data()) amx_bias = amx_bf16_padded_bias(bias_data(), out);
      MappedFile::release_pages(keep_weight.raw(), keep_weight.nbytes());
      return;
    }
    bf16 = can_pack = true;
    blocked_md = describe(kBf16RowsPerChunk, memory::desc({in, out}, memory::data_type::bf16, tag::any)).weights_desc();
    pack();
  }

  // BlockedBf16 where oneDNN has no bf16 product: keep_weight replaced by its values rounded
  // to bf16 (an f32 copy; the file's pages given back), multiplied by f32 kernels.
  void use_bf16_valued_weight() {
    Tensor rounded = Tensor::empty(DType::F32, {out, in});
    round_to_bf16(keep_weight.f32(), static_cast<size_t>(out * in), rounded.f32());
    MappedFile::release_pages(keep_weight.raw(), keep_weight.nbytes());
    keep_weight = std::move(rounded);
    bf16_valued_inputs = true;
  }

  // `rows` rows of x rounded to bf16 (round to nearest even, as torch's .to(bfloat16)) in a
  // buffer of the calling thread, valid until its next call.
  const void* bf16_rows(const float* x, int64_t rows) const {
    thread_local std::vector<uint16_t> buffer;
    buffer.resize(static_cast<size_t>(rows * in));
    auto& eng = cpu_engine();
    memory from({{rows, in}, memory::data_type::f32, tag::ab}, eng, const_cast<float*>(x));
    memory to({{rows, in}, memory::data_type::bf16, tag::ab}, eng, buffer.data());
    dnnl::stream s(eng);
    dnnl::reorder(from, to).execute(s, from, to);
    s.wait();
    return buffer.data();
  }

  // `rows` rows of x rounded to bf16 as f32 values, in a buffer of the calling thread valid
  // until its next call: the inputs of a bf16 product for the f32 kernels.
  const float* bf16_valued_rows(const float* x, int64_t rows) const {
    thread_local std::vector<float> buffer;
    buffer.resize(static_cast<size_t>(rows * in));
    round_to_bf16(x, buffer.size(), buffer.data());
    return buffer.data();
  }

  // The bias, and the activation as a post-op, for the oneDNN primitives.
  void set_bias_and_activation(const Tensor& bias_tensor, Activation act) {
    keep_bias = checked_bias(bias_tensor, out);
    activation = act;
    if (bias_data()) {
      bias_md = memory::desc({1, out}, memory::data_type::f32, tag::ab);
      bias = memory(bias_md, cpu_engine(), const_cast<void*>(keep_bias.raw()));
    }
    if (act != Activation::None) {
      dnnl::post_ops post;
      post.append_eltwise(1.f, eltwise_algorithm(act), act == Activation::Silu ? 1.f : 0.f, 0.f);
      attr.set_post_ops(post);
    }
  }

  // More than kSkinnyMaxRows rows (prefill) under Precision::BFloat16: slices of ~1 MB of weight
  // rows — a BF16 matrix's own bytes, other formats decoded and rounded to bf16 — each
  // multiplied by oneDNN's bf16 matmul into its columns of y, kBf16RowsPerChunk rows at a time,
  // so that a slice stays in L2 across the row chunks instead of every chunk reading the whole
  // weight from memory. oneDNN reads a slice's plain [rows, in] bytes as the transposed weight
  // (brgemm copies its blocks per call: measured as fast as a packed copy at 16-128 rows on
  // GPT-2 / SmolLM2 shapes, so no packed copy is kept). The f32 alternative for quantised
  // weights, sgemm over decoded slices, ran a SmolLM2 prefill at ~90 GFLOP/s (Xeon).
  void sliced_bf16_gemm(const float* x, int64_t rows, float* y) const {
    const QuantizedMatrix& w = *quantized;
    const auto* x_bf16 = static_cast<const uint16_t*>(bf16_rows(x, rows));
    const int64_t slice = std::min(out, std::max<int64_t>(64, (int64_t{1} << 20) / (in * 2) / 64 * 64));
    const bool stored_bf16 = w.format == QuantFormat::BF16;
    // BF16 matrices (GPT-2 and bf16 checkpoints under bf16) on the AMX kernel: 1.4-1.5x oneDNN
    // on GPT-2's prefill, which copies each block before multiplying it. Decoded formats stay
    // on oneDNN: there the AMX kernel measured 0.9-1.0x (SmolLM2 Q4_1; decoding dominates).
    if (amx_slices) return bf16_matrix_amx_gemm(x_bf16, rows, y, slice);
    thread_local std::vector<uint16_t> buffer;
    buffer.resize(stored_bf16 ? 0 : static_cast<size_t>(slice * in));
    uint16_t* decoded = buffer.data();  // the calling thread's: the decoding threads write into it
    auto& eng = cpu_engine();
    for (int64_t first = 0; first < out; first += slice) {
      const int64_t count = std::min(slice, out - first);
      uint16_t* slice_weights = const_cast<uint16_t*>(w.bytes.data_as<uint16_t>()) + first * in;
      if (!stored_bf16) {
        slice_weights = decoded;
#pragma omp parallel for schedule(static) if (count * in > 262144)
        for (int64_t r = 0; r < count; r += 16)
          dequantize_rows_bf16(w, first + r, std::min<int64_t>(16, count - r), decoded + r * in);
      }
      memory weights({{in, count}, memory::data_type::bf16, {1, in}}, eng, slice_weights);
      memory slice_bias;
      if (bias_data()) slice_bias = memory({{1, count}, memory::data_type::f32, tag::ab}, eng, const_cast<float*>(keep_bias.f32()) + first);
      for (int64_t m = 0; m < rows; m += kBf16RowsPerChunk) {
        const int64_t chunk = std::min(kBf16RowsPerChunk, rows - m);
        memory src({{chunk, in}, memory::data_type::bf16, tag::ab}, eng, const_cast<uint16_t*>(x_bf16 + m * in));
        memory dst({{chunk, count}, memory::data_type::f32, {out, 1}}, eng, y + m * out + first);
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
        if (slice_bias) args.emplace(DNNL_ARG_BIAS, slice_bias);
        dnnl::stream s(eng);
        slice_primitive(chunk, count).execute(s, args);
        s.wait();
      }
    }
  }

  // sliced_bf16_gemm of a BF16 matrix on the AMX kernel: the input rows packed once into the
  // kernel's tile layout, each slice's weight rows multiplied in their stored layout
  // (amx_bf16_matmul_plain_weights: no copy of the weight) with every chunk of input rows.
  void bf16_matrix_amx_gemm(const uint16_t* x_bf16, int64_t rows, float* y, int64_t slice) const {
    const QuantizedMatrix& w = *quantized;
    const float* padded_bias = amx_bias.numel() > 0 ? amx_bias.f32() : nullptr;
    thread_local std::vector<uint16_t> x_packed, last_rows;  // the calling thread's
    x_packed.assign(static_cast<size_t>(amx_bf16_packed_values(rows, in)), 0);
    pack_amx_bf16_bits(x_bf16, rows, in, x_packed.data());
    for (int64_t first = 0; first < out; first += slice) {
      const int64_t count = std::min(slice, out - first), padded = amx_bf16_packed_values(count, in) / in;
      const uint16_t* weights = w.bytes.data_as<uint16_t>() + first * in;
      if (first + padded > out) {  // the kernel reads 32 weight rows at a time: pad the matrix's last ones
        last_rows.assign(static_cast<size_t>(padded * in), 0);
        std::copy_n(weights, count * in, last_rows.begin());
        weights = last_rows.data();
      }
      for (int64_t m = 0; m < rows; m += kBf16RowsPerChunk) {
        const int64_t chunk = std::min(kBf16RowsPerChunk, rows - m);
        amx_bf16_matmul_plain_weights(x_packed.data() + m * in, chunk, weights, count, in,
                                      padded_bias ? padded_bias + first : nullptr, y + m * out + first, out);
      }
    }
    if (activation != Activation::None) apply_activation(y, rows * out, activation);
  }

  // The primitive `cache` keeps under `key`, made from make()'s primitive_desc on first use.
  // A copy (a shared handle): another thread may clear the map while this one runs it.
  template <typename Map, typename Make>
  dnnl::matmul cached_primitive(Map& cache, const typename Map::key_type& key, Make make) const {
    std::lock_guard<std::mutex> lock(fixed_rows_mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    if (cache.size() >= kMaxFixedRowPrimitives) cache.clear();
    return cache.emplace(key, dnnl::matmul(make())).first->second;
  }

  // sliced_bf16_gemm's product of `rows` input rows and `count` weight rows into a slice of y's
  // columns.
  dnnl::matmul slice_primitive(int64_t rows, int64_t count) const {
    return cached_primitive(slice_primitives, std::make_pair(rows, count), [&] {
      const memory::desc src_md({rows, in}, memory::data_type::bf16, tag::ab);
      const memory::desc weights_md({in, count}, memory::data_type::bf16, {1, in});
      const memory::desc bias_slice_md =
          bias_data() ? memory::desc({1, count}, memory::data_type::f32, tag::ab) : memory::desc();
      const memory::desc dst_md({rows, count}, memory::data_type::f32, {out, 1});
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, weights_md, bias_slice_md, dst_md), attr,
                                          cpu_engine());
    });
  }

  dnnl::matmul primitive_for_rows(int64_t rows) const {
    return cached_primitive(fixed_rows, rows, [&] { return describe(rows, blocked_md); });
  }

  // BlockedBf16 on the AMX kernel, kBf16RowsPerChunk rows at a time (a chunk's inputs and
  // results stay in L2 while every column block of the weight passes), the activation applied
  // to each chunk's results.
  void amx_forward(const float* x, int64_t rows, float* y) const {
    const float* padded_bias = amx_bias.numel() > 0 ? amx_bias.f32() : nullptr;
    for (int64_t first = 0; first < rows; first += kBf16RowsPerChunk) {
      const int64_t count = std::min(kBf16RowsPerChunk, rows - first);
      float* chunk_y = y + first * out;
      amx_bf16_matmul(static_cast<const uint16_t*>(bf16_rows(x + first * in, count)), count,
                      amx->packed.data_as<uint16_t>(), out, in, padded_bias, chunk_y, out);
      if (activation != Activation::None) apply_activation(chunk_y, count * out, activation);
    }
  }

  // The product over keep_weight (plain or packed; bias and activation fused).
  void dense_forward(const float* x, int64_t rows, float* y) const {
    if (use_blocked()) {
      const int64_t chunk = rows_per_chunk();
      for (int64_t first = 0; first < rows; first += chunk) {
        const int64_t count = std::min(chunk, rows - first);
        const float* rows_x = x + first * in;
        execute(primitive_for_rows(count), blocked_weights, bf16 ? bf16_rows(rows_x, count) : rows_x, count,
                y + first * out);
      }
      return;
    }
    if (skinny_linear_preferred(rows))  // decoding's few rows, short inputs: ops/gemv.h says why not oneDNN
      return skinny_linear(x, rows, keep_weight.f32(), bias_data(), in, out, activation, y);
    // Up to 256 rows brgemm beats gemm:jit (fixed_rows_on_brgemm), past it not always: on a Zen 5
    // at 512 rows GPT-2's 768 x 2304 and 768 x 3072 ran 196 / 210 vs 209 / 216 GFLOP/s (a GPT-2
    // batch-8 prefill 2% slower), the smaller shapes 212-237 vs 207-224.
    constexpr int64_t kFixedRowsUpTo = 256;
    if (rows > kFixedRowsUpTo || !fixed_rows_on_brgemm()) return execute(runtime_rows, plain_weights, x, rows, y);
    const auto primitive = cached_primitive(plain_fixed_rows, rows, [&] { return describe(rows, plain_md); });
    execute(primitive, plain_weights, x, rows, y);
  }

  // x: rows x in values of input_type().
  void execute(const dnnl::matmul& primitive, const memory& weights, const void* x, int64_t rows, float* y) const {
    auto& eng = cpu_engine();
    memory src({{rows, in}, input_type(), tag::ab}, eng, const_cast<void*>(x));
    memory dst({{rows, out}, memory::data_type::f32, tag::ab}, eng, y);
    // Streams are cheap and not thread-safe: one per call keeps the pipeline callable from
    // several threads at once.
    dnnl::stream s(eng);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    if (bias) args.emplace(DNNL_ARG_BIAS, bias);
    primitive.execute(s, args);
    s.wait();
  }
};

Linear::Linear(const Tensor& weight, const Tensor& bias, Activation activation, WeightPacking packing) {
  check(weight.dtype() == DType::F32 && weight.ndim() == 2, ErrorKind::Internal, "Linear weight must be F32 [out, in]");
  auto impl = std::make_shared<Impl>();
  out_ = impl->out = weight.dim(0);
  in_ = impl->in = weight.dim(1);
  impl->keep_weight = weight;
  impl->set_bias_and_activation(bias, activation);
  if (packing == WeightPacking::BlockedBf16 && !bf16_products_supported()) {
    impl->use_bf16_valued_weight();
    packing = WeightPacking::BlockedWhenFaster;
  }
  const memory::dim K = in_, N = out_;
  impl->plain_md = memory::desc({K, N}, memory::data_type::f32, tag::ba);  // PyTorch's [out, in]
  auto& eng = cpu_engine();
  if (packing == WeightPacking::BlockedWhenFaster) {
    // What oneDNN picks for a fixed row count (any one: the layout does not depend on it).
    impl->blocked_md = impl->describe(64, memory::desc({K, N}, memory::data_type::f32, tag::any)).weights_desc();
    impl->can_pack = !(impl->blocked_md == memory::desc({K, N}, memory::data_type::f32, tag::ab) ||
                       impl->blocked_md == impl->plain_md);
  }
  impl->plain_weights = memory(impl->plain_md, eng, const_cast<void*>(impl->keep_weight.raw()));
  if (packing == WeightPacking::BlockedBf16) {
    impl->pack_bf16();
    impl_ = std::move(impl);
    return;
  }
  impl->runtime_rows = dnnl::matmul(impl->describe(DNNL_RUNTIME_DIM_VAL, impl->plain_md));
  impl_ = std::move(impl);
}

Linear::Linear(QuantizedMatrix weight, const Tensor& bias, Activation activation, Precision precision) {
  auto impl = std::make_shared<Impl>();
  out_ = impl->out = weight.rows;
  in_ = impl->in = weight.cols;
  impl->set_bias_and_activation(bias, activation);
  if (precision == Precision::BFloat16) {
    impl->bf16 = true;
    impl->bf16_slices = bf16_products_supported();
    impl->amx_slices = impl->bf16_slices && weight.format == QuantFormat::BF16 && amx_bf16_enabled() && amx_bf16_fits(impl->out, impl->in);
    if (impl->amx_slices && impl->bias_data()) impl->amx_bias = amx_bf16_padded_bias(impl->bias_data(), impl->out);
  }
  impl->quantized = std::move(weight);
  impl_ = std::move(impl);
}

Linear::Linear(PanelMatrix weight, const Tensor& bias, Activation activation) {
  auto impl = std::make_shared<Impl>();
  out_ = impl->out = weight.out;
  in_ = impl->in = weight.in;
  impl->set_bias_and_activation(bias, activation);
  impl->panels = std::move(weight);
  impl_ = std::move(impl);
}

void Linear::forward(const float* x, int64_t rows, float* y) const {
  check(impl_ != nullptr, ErrorKind::Internal, "Linear used before it was built");
  if (rows == 0) return;
  if (impl_->panels) {
    panel_linear(*impl_->panels, x, rows, impl_->bias_data(), y);
    if (impl_->activation != Activation::None) apply_activation(y, rows * out_, impl_->activation);
    return;
  }
  if (impl_->quantized && impl_->bf16_slices && rows > kSkinnyMaxRows)
    return impl_->sliced_bf16_gemm(x, rows, y);  // bias and activation fused
  if (impl_->quantized) {
    if (impl_->bf16) x = impl_->bf16_valued_rows(x, rows);
    quantized_linear(*impl_->quantized, x, rows, impl_->bias_data(), y);
    if (impl_->activation != Activation::None) apply_activation(y, rows * out_, impl_->activation);
    return;
  }
  if (impl_->amx) return impl_->amx_forward(x, rows, y);
  if (!impl_->bf16_valued_inputs) return impl_->dense_forward(x, rows, y);
  // Rounded 1024 rows at a time: one buffer for every row's rounded inputs took 25 MB of
  // all-MiniLM-L6-v2's peak RSS at 32 x 128 tokens (its 1536-wide FFN input), over its budget.
  constexpr int64_t kRoundedRowsPerChunk = 1024;
  for (int64_t first = 0; first < rows; first += kRoundedRowsPerChunk) {
    const int64_t count = std::min(kRoundedRowsPerChunk, rows - first);
    impl_->dense_forward(impl_->bf16_valued_rows(x + first * in_, count), count, y + first * out_);
  }
}

Tensor Linear::forward(const Tensor& x) const {
  check(x.dtype() == DType::F32 && x.ndim() >= 1 && x.dim(-1) == in_, ErrorKind::Internal,
        "Linear input has shape " + shape_to_string(x.shape()) + ", expected [..., " + std::to_string(in_) + "]");
  Shape shape = x.shape();
  shape.back() = out_;
  Tensor y = Tensor::empty(DType::F32, shape);
  forward(x.f32(), x.numel() / in_, y.f32());
  return y;
}

void set_num_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace hfpipe::ops
