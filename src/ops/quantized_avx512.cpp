#include <immintrin.h>

#include "ops/quantized_kernels.h"

namespace hfpipe::ops::quant_kernels {

// The AVX-512 decoders of ops/quantized.h (the promise: ops/quantized_kernels.h). GCC lowers
// _mm512_mul_ps / _mm512_add_ps to plain vector arithmetic, which it may contract into an FMA
// (rounding once instead of twice); `rounded` stops that. (For these formats the products
// d * q are exact in f32 — an 11-bit mantissa times a 4-6 bit integer — so an FMA would round
// the same; the barrier keeps that from being something the code relies on.)
#pragma GCC push_options
#pragma GCC target("avx512f")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#endif
// GCC 12's AVX-512 intrinsics start from _mm*_undefined_*() values and then warn about them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {
namespace {

inline __m512 rounded(__m512 v) {
  __asm__("" : "+v"(v));
  return v;
}
inline __m512 half_at(const float* table, const uint8_t* p) { return _mm512_set1_ps(half_scalar(table, p)); }
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
// y = (d scale) q - (dmin min).
inline void decode_q4_k(const float* halves, const uint8_t* block, float* y) {
  const float d = half_scalar(halves, block), dmin = half_scalar(halves, block + 2);
  const uint8_t* qs = block + 16;
  uint64_t scales, mins;
  q4_k_scales_mins(block + 4, scales, mins);
  for (int sub = 0; sub < 8; ++sub) {
    const auto sc = static_cast<uint8_t>(scales >> (8 * sub)), mn = static_cast<uint8_t>(mins >> (8 * sub));
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

}  // namespace

#include "ops/quantized_rows.inc"

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

}  // namespace avx512
#pragma GCC diagnostic pop
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options


}  // namespace hfpipe::ops::quant_kernels
