#include "ops/quantized.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "ops/gemv.h"
#include "ops/linear.h"
#include "ops/quantized_kernels.h"

namespace hfpipe::ops {

namespace {

using quant_kernels::bf16_bits_of;
using quant_kernels::RowDecoder;

void decode_bf16_rows_plain(const uint8_t* src, size_t row_bytes, float* dst, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    quant_kernels::widen_bf16(reinterpret_cast<const uint16_t*>(src + static_cast<size_t>(r) * row_bytes), cols,
                              dst + r * cols);
}

// The decoders of the level the skinny kernels run at (the CPU's, unless a test lowers it).
// Block formats have no plain decoders: at the plain level they take the AVX2 ones where the
// CPU has them (can_keep_quantized keeps them as stored only there).
RowDecoder decoder_of(QuantFormat format) {
  SimdLevel level = skinny_simd_level();
  if (level == SimdLevel::Plain && format != QuantFormat::BF16) level = std::min(cpu_simd_level(), SimdLevel::Avx2);
  RowDecoder decoder = nullptr;
  switch (level) {
    case SimdLevel::Avx512: decoder = quant_kernels::avx512::decoder_of(format); break;
    case SimdLevel::Avx2: decoder = quant_kernels::avx2::decoder_of(format); break;
    case SimdLevel::Plain:
      if (format == QuantFormat::BF16) decoder = decode_bf16_rows_plain;
      break;
  }
  check(decoder != nullptr, ErrorKind::Internal, "block-quantised weights need an AVX2 CPU");
  return decoder;
}

// The fused products of that level (none at the plain level, nor for BF16).
quant_kernels::FusedProduct fused_product_of(QuantFormat format) {
  switch (skinny_simd_level()) {
    case SimdLevel::Avx512: return quant_kernels::avx512::fused_product_of(format);
    case SimdLevel::Avx2: return quant_kernels::avx2::fused_product_of(format);
    case SimdLevel::Plain: break;
  }
  return nullptr;
}

bool is_quant_format(uint32_t id) {
  switch (static_cast<QuantFormat>(id)) {
    case QuantFormat::Q4_0:
    case QuantFormat::Q4_1:
    case QuantFormat::Q5_0:
    case QuantFormat::Q8_0:
    case QuantFormat::Q4_K:
    case QuantFormat::Q6_K:
    case QuantFormat::BF16: return true;
  }
  return false;
}

}  // namespace

// The table of ops/quantized_kernels.h, filled once (plain code: any CPU).
const float* quant_kernels::half_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = f16_to_f32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

bool can_keep_quantized(uint32_t ggml_type) {
  // The block formats' decoders are AVX-512 and AVX2 code; BF16 widens on any CPU (the
  // decoding kernel at every SIMD level).
  if (ggml_type == static_cast<uint32_t>(QuantFormat::BF16)) return true;
  return is_quant_format(ggml_type) && cpu_simd_level() >= SimdLevel::Avx2;
}

QuantizedMatrix make_quantized_matrix(QuantFormat format, int64_t rows, int64_t cols, Tensor bytes) {
  check(can_keep_quantized(static_cast<uint32_t>(format)), ErrorKind::Internal,
        "block-quantised weights need an AVX2 CPU");
  QuantizedMatrix m{format, rows, cols, std::move(bytes)};
  check(rows > 0 && cols > 0 && cols % quant_block_size(format) == 0, ErrorKind::CorruptFile,
        "a quantised weight's row length is not a multiple of its block size");
  check(m.bytes.dtype() == DType::U8 && m.bytes.nbytes() == static_cast<size_t>(rows) * m.row_bytes(),
        ErrorKind::CorruptFile, "a quantised weight's byte count does not match its shape");
  return m;
}

QuantizedMatrix to_bf16_matrix(const Tensor& weight) {
  check(weight.dtype() == DType::F32 && weight.ndim() == 2, ErrorKind::Internal, "to_bf16_matrix takes an F32 [out, in] weight");
  const int64_t rows = weight.dim(0), cols = weight.dim(1);
  Tensor bytes = Tensor::empty(DType::U8, {rows * cols * 2});
  round_to_bf16_bits(weight.f32(), rows * cols, bytes.data_as<uint16_t>());
  return make_quantized_matrix(QuantFormat::BF16, rows, cols, std::move(bytes));
}

void dequantize_rows_bf16(const QuantizedMatrix& m, int64_t first, int64_t count, uint16_t* out) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(m.cols));
  for (int64_t r = 0; r < count; ++r) {
    dequantize_rows(m, first + r, 1, row.data());
    round_to_bf16_bits(row.data(), m.cols, out + r * m.cols);
  }
}

void round_to_bf16_bits(const float* x, int64_t n, uint16_t* out) {
  if (cpu_simd_level() == SimdLevel::Avx512) return quant_kernels::avx512::round_to_bf16_bits(x, n, out);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint16_t>(bf16_bits_of(x[i]) >> 16);
}

void round_to_bf16(const float* x, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t bits = bf16_bits_of(x[i]);
    __builtin_memcpy(out + i, &bits, 4);
  }
}

void dequantize_rows(const QuantizedMatrix& m, int64_t first, int64_t count, float* out) {
  decoder_of(m.format)(m.row(first), m.row_bytes(), out, count, m.cols);
}

namespace {

// A buffer per thread for decoded weights, kept between calls: allocating a fresh one of
// several hundred KB per layer call would map and fault in new pages every time.
// 64-byte aligned: a decoded row is written and read in 64-byte vectors, and vectors that
// straddle two cache lines halved the decoding speed (measured, Q4_1 in L2).
float* decode_buffer(size_t floats) {
  thread_local std::vector<float> buffer;
  constexpr size_t kAlign = 64 / sizeof(float);
  if (buffer.size() < floats + kAlign) buffer.resize(floats + kAlign);
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + (kAlign - address / sizeof(float) % kAlign) % kAlign;
}

// Weight rows per decoded slice for skinny products: a multiple of the kernel's tile width and
// about 24 KB, so that a slice is still in L1 when the kernel reads it. Measured on Q4_1 rows
// of 576 weights (Xeon, one thread): 2.3 ns a block decoded into L1, 3.8 into L2. Since both
// vector levels have fused products, block formats come this way only at the plain level,
// which the tests set on AVX2+ CPUs (a CPU without AVX2 dequantises them at load): kept so that
// level's products stay the plain tiles' bits.
int64_t skinny_slice_rows(int64_t rows, int64_t cols) {
  constexpr int64_t kBytes = 24 * 1024;
  const int64_t tile = skinny_tile_columns(rows);
  return tile * std::max<int64_t>(1, kBytes / (tile * cols * static_cast<int64_t>(sizeof(float))));
}

void skinny_quantized(const QuantizedMatrix& w, const float* x, int64_t rows, const float* bias, float* y) {
  // bf16 weights widen in registers: no slice through L1 (at batch 1 that copy, not memory,
  // was the bound: a GPT-2-small step 42 ms this way vs 45 in f32).
  if (w.format == QuantFormat::BF16)
    return skinny_linear_bf16(x, rows, w.bytes.data_as<uint16_t>(), bias, w.cols, w.rows, y);
  // Blocks decoded and multiplied in registers, without the slice stored and read back (AVX2:
  // SmolLM2's Q4_1 products 1.4x faster at 1 row, 1.1x at 8; decoding had been half of a
  // batch-1 step; Gemma-3-270M's Q4_K / Q6_K ones 1.4x / 1.8x at 1 row).
  if (const auto fused = fused_product_of(w.format)) {
    constexpr int64_t kRowsPerTask = 64;
    const int64_t tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static) if (tasks > 1 && w.rows * w.cols > 262144)
    for (int64_t t = 0; t < tasks; ++t)
      fused(w, x, rows, t * kRowsPerTask, std::min(kRowsPerTask, w.rows - t * kRowsPerTask), bias, y);
    return;
  }
  const int64_t slice = skinny_slice_rows(rows, w.cols), slices = (w.rows + slice - 1) / slice;
#pragma omp parallel for schedule(static) if (slices > 1 && w.rows * w.cols > 262144)
  for (int64_t s = 0; s < slices; ++s) {
    const int64_t first = s * slice, count = std::min(slice, w.rows - first);
    float* decoded = decode_buffer(static_cast<size_t>(count * w.cols));
    dequantize_rows(w, first, count, decoded);
    skinny_linear_columns(x, rows, decoded, bias ? bias + first : nullptr, w.cols, count, y + first, w.rows);
  }
}

// Many rows (prefill): slices of ~4 MB decoded (rows split between the threads), each
// multiplied by oneDNN (brgemm on AVX-512, else sgemm), which threads itself.
void gemm_quantized(const QuantizedMatrix& w, const float* x, int64_t rows, const float* bias, float* y) {
  constexpr int64_t kBytes = 4 << 20;
  const int64_t slice = std::max<int64_t>(64, kBytes / (w.cols * static_cast<int64_t>(sizeof(float))));
  float* decoded = decode_buffer(static_cast<size_t>(std::min(slice, w.rows) * w.cols));
  for (int64_t first = 0; first < w.rows; first += slice) {
    const int64_t count = std::min(slice, w.rows - first);
#pragma omp parallel for schedule(static) if (count * w.cols > 262144)
    for (int64_t r = 0; r < count; r += 16)
      dequantize_rows(w, first + r, std::min<int64_t>(16, count - r), decoded + r * w.cols);
    plain_weight_product(x, rows, decoded, count, w.cols, y + first, w.rows);
  }
  if (bias)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < w.rows; ++n) y[r * w.rows + n] += bias[n];
}

}  // namespace

void quantized_linear(const QuantizedMatrix& w, const float* x, int64_t rows, const float* bias, float* y) {
  if (rows <= 0) return;
  if (rows <= kSkinnyMaxRows) return skinny_quantized(w, x, rows, bias, y);
  gemm_quantized(w, x, rows, bias, y);
}

}  // namespace hfpipe::ops
