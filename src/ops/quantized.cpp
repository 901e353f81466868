#include "ops/quantized.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <oneapi/dnnl/dnnl.h>
#include <vector>

#include "core/bfloat16.h"
#include "core/error.h"
#include "ops/gemv.h"

namespace hfpipe::ops {

namespace {

// Round to nearest even on the upper 16 bits; a NaN stays a (quiet) NaN. Outside the AVX-512
// region: plain code any CPU runs (round_to_bf16 uses it too). Both results computed and one
// selected, without a branch, so that the compiler vectorises the loops over it (the rounding of
// every product's inputs on CPUs without AVX-512).
inline uint32_t bf16_bits_of(float x) {
  uint32_t bits;
  __builtin_memcpy(&bits, &x, 4);
  const uint32_t quiet_nan = (bits | 0x00400000u) & 0xFFFF0000u;
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
  return (bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded;
}

// n bf16 bit patterns as the floats they are (exact): the decoders' tails, one by one.
inline void widen_bf16(const uint16_t* w, int64_t n, float* y) {
  for (int64_t k = 0; k < n; ++k) y[k] = bf16_to_f32(w[k]);
}

// ---- AVX-512 block decoders. Each gives, weight for weight, the f32 value of the scalar
// decoder in formats/gguf_quants.cpp: the f16 scales convert exactly, the integers convert
// exactly, and every product and sum is rounded where the scalar code rounds it. GCC lowers
// _mm512_mul_ps / _mm512_add_ps to plain vector arithmetic, which it may contract into an FMA
// (rounding once instead of twice); `rounded` stops that. (For these formats the products
// d * q are exact in f32 — an 11-bit mantissa times a 4-6 bit integer — so an FMA would round
// the same; the barrier keeps that from being something the code relies on.)
#pragma GCC push_options
#pragma GCC target("avx512f,f16c")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx512f,f16c"))), apply_to = function)
#endif
// GCC 12's AVX-512 intrinsics start from _mm*_undefined_*() values and then warn about them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {

inline __m512 rounded(__m512 v) {
  __asm__("" : "+v"(v));
  return v;
}
// Every f16 value as f32 (256 KB), so that a block's scale is two loads (its bits, then a
// broadcast from this table) instead of an insert, a convert and a broadcast on the vector
// ports the decoding saturates (measured: Q4_1 blocks decoded 15-25% faster).
const float* half_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = _cvtsh_ss(static_cast<unsigned short>(h));
    return t;
  }();
  return table.data();
}
inline __m512 half_at(const float* table, const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _mm512_set1_ps(table[h]);
}
inline float half_scalar(const float* table, const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return table[h];
}
inline __m512 to_float(__m512i v) { return _mm512_cvtepi32_ps(v); }
inline __m512i bytes_u32(const uint8_t* p) {  // 16 unsigned bytes -> 16 int32
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m512i bytes_i32(const uint8_t* p) {  // 16 signed bytes -> 16 int32
  return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m512i low_nibbles(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi32(0x0F)); }
inline __m512i high_nibbles(__m512i v) { return _mm512_srli_epi32(v, 4); }
// y = d * q + m, rounded after the product and after the sum.
inline void store_scaled_plus(float* y, __m512 d, __m512i q, __m512 m) {
  _mm512_storeu_ps(y, _mm512_add_ps(rounded(_mm512_mul_ps(d, to_float(q))), m));
}
inline void store_scaled(float* y, __m512 d, __m512i q) { _mm512_storeu_ps(y, _mm512_mul_ps(d, to_float(q))); }

// Q4_0: f16 d, 16 bytes of nibbles (low: weights 0-15, high: 16-31); y = d (q - 8).
inline void decode_q4_0(const float* halves, const uint8_t* block, float* y) {
  const __m512 d = half_at(halves, block);
  const __m512i q = bytes_u32(block + 2), eight = _mm512_set1_epi32(8);
  store_scaled(y, d, _mm512_sub_epi32(low_nibbles(q), eight));
  store_scaled(y + 16, d, _mm512_sub_epi32(high_nibbles(q), eight));
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0; y = d q + m.
inline void decode_q4_1(const float* halves, const uint8_t* block, float* y) {
  const __m512 d = half_at(halves, block), m = half_at(halves, block + 2);
  const __m512i q = bytes_u32(block + 4);
  store_scaled_plus(y, d, low_nibbles(q), m);
  store_scaled_plus(y + 16, d, high_nibbles(q), m);
}

// Q5_0: f16 d, a 32-bit word of fifth bits (bit j for weight j), nibbles as Q4_0; y = d (q - 16).
inline void decode_q5_0(const float* halves, const uint8_t* block, float* y) {
  const __m512 d = half_at(halves, block);
  uint32_t qh;
  __builtin_memcpy(&qh, block + 2, 4);
  const __m512i q = bytes_u32(block + 6), sixteen = _mm512_set1_epi32(16), one = _mm512_set1_epi32(1);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i fifth_lo = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(qh & 0xFFFF)), lane), one);
  const __m512i fifth_hi = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(qh >> 16)), lane), one);
  store_scaled(y, d, _mm512_sub_epi32(_mm512_or_si512(low_nibbles(q), _mm512_slli_epi32(fifth_lo, 4)), sixteen));
  store_scaled(y + 16, d, _mm512_sub_epi32(_mm512_or_si512(high_nibbles(q), _mm512_slli_epi32(fifth_hi, 4)), sixteen));
}

// Q8_0: f16 d, 32 signed bytes; y = d q.
inline void decode_q8_0(const float* halves, const uint8_t* block, float* y) {
  const __m512 d = half_at(halves, block);
  store_scaled(y, d, bytes_i32(block + 2));
  store_scaled(y + 16, d, bytes_i32(block + 18));
}

// Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; sub-block s
// of 32 weights takes the low (even s) or high (odd s) nibbles of qs[32 (s / 2) ...];
// y = (d scale) q - (dmin min). The scale/min unpacking is gguf_quants.cpp's k_scale_min.
inline void decode_q4_k(const float* halves, const uint8_t* block, float* y) {
  const float d = half_scalar(halves, block), dmin = half_scalar(halves, block + 2);
  const uint8_t* packed = block + 4;
  const uint8_t* qs = block + 16;
  for (int sub = 0; sub < 8; ++sub) {
    uint8_t sc, mn;
    if (sub < 4) {
      sc = packed[sub] & 0x3F;
      mn = packed[sub + 4] & 0x3F;
    } else {
      sc = static_cast<uint8_t>((packed[sub + 4] & 0x0F) | ((packed[sub - 4] >> 2) & 0x30));
      mn = static_cast<uint8_t>((packed[sub + 4] >> 4) | ((packed[sub] >> 2) & 0x30));
    }
    const __m512 d1 = _mm512_set1_ps(d * static_cast<float>(sc)), m1 = _mm512_set1_ps(dmin * static_cast<float>(mn));
    const uint8_t* q = qs + 32 * (sub / 2);
    for (int half = 0; half < 2; ++half) {
      const __m512i bytes = bytes_u32(q + 16 * half);
      const __m512i value = sub % 2 ? high_nibbles(bytes) : low_nibbles(bytes);
      _mm512_storeu_ps(y + sub * 32 + 16 * half, _mm512_sub_ps(rounded(_mm512_mul_ps(d1, to_float(value))), m1));
    }
  }
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed scales, f16 d. In each
// group of 16 weights (one scale) the low nibbles come from 16 consecutive ql bytes at one
// shift and the high bits from 16 consecutive qh bytes at one shift; y = (d scale) (q - 32).
inline void decode_q6_k(const float* halves, const uint8_t* block, float* y) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = half_scalar(halves, block + 208);
  const __m512i three = _mm512_set1_epi32(3), thirty_two = _mm512_set1_epi32(32);
  for (int group = 0; group < 16; ++group) {
    const int half = group / 8, r = (group % 8) * 16;
    const __m512i low = low_nibbles(_mm512_srli_epi32(bytes_u32(ql + 64 * half + r % 64), 4 * (r / 64)));
    const __m512i high = _mm512_and_si512(_mm512_srli_epi32(bytes_u32(qh + 32 * half + r % 32), 2 * (r / 32)), three);
    const __m512i q = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), thirty_two);
    store_scaled(y + 16 * group, _mm512_set1_ps(d * static_cast<float>(scales[group])), q);
  }
}

// BF16 rows: each weight is the top half of its f32 value (exact). Any row length (the tail
// one by one).
void decode_bf16_rows(const uint8_t* src, size_t row_bytes, float* dst, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const auto* w = reinterpret_cast<const uint16_t*>(src + static_cast<size_t>(r) * row_bytes);
    float* y = dst + r * cols;
    int64_t k = 0;
    for (; k + 16 <= cols; k += 16) {
      const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k)));
      _mm512_storeu_ps(y + k, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
    }
    widen_bf16(w + k, cols - k, y + k);
  }
}

// x[0..n) rounded to bf16 as bf16_bits_of rounds, 16 at a time (the scalar loop, with its NaN
// branch, was half of a bf16 prefill of decoded Q4_1 weights), as bit patterns in `out`.
void round_to_bf16_bits(const float* x, int64_t n, uint16_t* out) {
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF), quiet = _mm512_set1_epi32(0x00400000);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512i bits = _mm512_castps_si512(v);
    __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(bits, 16), one)));
    rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_or_si512(bits, quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(bf16_bits_of(x[i]) >> 16);
}

// Rows of whole blocks, the block decoder inlined into the loop (a call per block of 32
// weights cost more than the decoding).
template <void (*Decode)(const float*, const uint8_t*, float*), QuantFormat kFormat>
void decode_rows(const uint8_t* src, size_t row_bytes, float* dst, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = quant_block_size(kFormat);
  constexpr size_t kBytes = quant_block_bytes(kFormat);
  const float* halves = half_table();
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* block = src + static_cast<size_t>(r) * row_bytes;
    float* y = dst + r * cols;
    for (int64_t k = 0; k < cols; k += kBlock, block += kBytes, y += kBlock) Decode(halves, block, y);
  }
}

}  // namespace avx512
#pragma GCC diagnostic pop
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

using RowDecoder = void (*)(const uint8_t* src, size_t row_bytes, float* dst, int64_t rows, int64_t cols);

// BF16 rows on CPUs without AVX-512 (the only format kept as stored there): 8 at a time with
// AVX2 (a prefill decodes every weight once; the scalar loop made SmolLM2's bf16 prefill ~35%
// slower than its f32 one), the rest one by one.
__attribute__((target("avx2"))) void decode_bf16_rows_avx2(const uint8_t* src, size_t row_bytes, float* dst,
                                                           int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const auto* w = reinterpret_cast<const uint16_t*>(src + static_cast<size_t>(r) * row_bytes);
    float* y = dst + r * cols;
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
      const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k)));
      _mm256_storeu_ps(y + k, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
    widen_bf16(w + k, cols - k, y + k);
  }
}

void decode_bf16_rows_plain(const uint8_t* src, size_t row_bytes, float* dst, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    widen_bf16(reinterpret_cast<const uint16_t*>(src + static_cast<size_t>(r) * row_bytes), cols, dst + r * cols);
}

RowDecoder decoder_of(QuantFormat format) {
  using namespace avx512;
  if (cpu_simd_level() != SimdLevel::Avx512) {
    check(format == QuantFormat::BF16, ErrorKind::Internal, "block-quantised weights need an AVX-512 CPU");
    return cpu_simd_level() == SimdLevel::Avx2 ? decode_bf16_rows_avx2 : decode_bf16_rows_plain;
  }
  switch (format) {
    case QuantFormat::Q4_0: return decode_rows<decode_q4_0, QuantFormat::Q4_0>;
    case QuantFormat::Q4_1: return decode_rows<decode_q4_1, QuantFormat::Q4_1>;
    case QuantFormat::Q5_0: return decode_rows<decode_q5_0, QuantFormat::Q5_0>;
    case QuantFormat::Q8_0: return decode_rows<decode_q8_0, QuantFormat::Q8_0>;
    case QuantFormat::Q4_K: return decode_rows<decode_q4_k, QuantFormat::Q4_K>;
    case QuantFormat::Q6_K: return decode_rows<decode_q6_k, QuantFormat::Q6_K>;
    case QuantFormat::BF16: return decode_bf16_rows;
  }
  fail(ErrorKind::Internal, "no decoder for a quantised format");
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

bool can_keep_quantized(uint32_t ggml_type) {
  // The block formats' decoders are AVX-512 code (F16C comes with every AVX-512 CPU); BF16
  // widens on any CPU (the decoding kernel at every SIMD level).
  if (ggml_type == static_cast<uint32_t>(QuantFormat::BF16)) return true;
  return is_quant_format(ggml_type) && cpu_simd_level() == SimdLevel::Avx512;
}

QuantizedMatrix make_quantized_matrix(QuantFormat format, int64_t rows, int64_t cols, Tensor bytes) {
  check(can_keep_quantized(static_cast<uint32_t>(format)), ErrorKind::Internal,
        "block-quantised weights need an AVX-512 CPU");
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
  if (cpu_simd_level() == SimdLevel::Avx512) return avx512::round_to_bf16_bits(x, n, out);
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
// of 576 weights (Xeon, one thread): 2.3 ns a block decoded into L1, 3.8 into L2.
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
// multiplied by sgemm, which threads itself.
void gemm_quantized(const QuantizedMatrix& w, const float* x, int64_t rows, const float* bias, float* y) {
  constexpr int64_t kBytes = 4 << 20;
  const int64_t slice = std::max<int64_t>(64, kBytes / (w.cols * static_cast<int64_t>(sizeof(float))));
  float* decoded = decode_buffer(static_cast<size_t>(std::min(slice, w.rows) * w.cols));
  for (int64_t first = 0; first < w.rows; first += slice) {
    const int64_t count = std::min(slice, w.rows - first);
#pragma omp parallel for schedule(static) if (count * w.cols > 262144)
    for (int64_t r = 0; r < count; r += 16)
      dequantize_rows(w, first + r, std::min<int64_t>(16, count - r), decoded + r * w.cols);
    const dnnl_status_t status = dnnl_sgemm('N', 'T', rows, count, w.cols, 1.f, x, w.cols, decoded, w.cols, 0.f,
                                            y + first, w.rows);
    check(status == dnnl_success, ErrorKind::Internal, "dnnl_sgemm failed on a quantised weight");
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
