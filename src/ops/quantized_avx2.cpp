#include <immintrin.h>

#include "ops/quantized_kernels.h"

// The AVX2 decoders of ops/quantized.h (the promise: ops/quantized_kernels.h), for CPUs without
// AVX-512 (AMD Zen 2 / Zen 3, Intel client cores): quantized_avx512.cpp's decoders on 8 lanes.
// Without them a GGUF file's blocks were dequantised to f32 at load on these CPUs, and each
// decoding step read 5-6x the bytes. Compiled for "avx2" without "fma": no product and sum
// can be contracted into an FMA (`rounded` says so where it matters, as on AVX-512).

namespace hfpipe::ops::quant_kernels {

#pragma GCC push_options
#pragma GCC target("avx2")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#endif
namespace avx2 {
namespace {

inline __m256 rounded(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}
inline __m256 half_at(const float* table, const uint8_t* p) { return _mm256_set1_ps(half_scalar(table, p)); }
inline __m256 to_float(__m256i v) { return _mm256_cvtepi32_ps(v); }
inline __m256i bytes_u32(const uint8_t* p) {  // 8 unsigned bytes -> 8 int32
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i bytes_i32(const uint8_t* p) {  // 8 signed bytes -> 8 int32
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i low_nibbles(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi32(0x0F)); }
inline __m256i high_nibbles(__m256i v) { return _mm256_srli_epi32(v, 4); }
// y = d * q + m, rounded after the product and after the sum.
inline void store_scaled_plus(float* y, __m256 d, __m256i q, __m256 m) {
  _mm256_storeu_ps(y, _mm256_add_ps(rounded(_mm256_mul_ps(d, to_float(q))), m));
}
inline void store_scaled(float* y, __m256 d, __m256i q) { _mm256_storeu_ps(y, _mm256_mul_ps(d, to_float(q))); }

// Q4_0: f16 d, 16 bytes of nibbles (byte i: weight i low, weight 16 + i high); y = d (q - 8).
inline void decode_q4_0(const float* halves, const uint8_t* block, float* y) {
  const __m256 d = half_at(halves, block);
  const __m256i eight = _mm256_set1_epi32(8);
  for (int i = 0; i < 16; i += 8) {
    const __m256i q = bytes_u32(block + 2 + i);
    store_scaled(y + i, d, _mm256_sub_epi32(low_nibbles(q), eight));
    store_scaled(y + 16 + i, d, _mm256_sub_epi32(high_nibbles(q), eight));
  }
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0; y = d q + m.
inline void decode_q4_1(const float* halves, const uint8_t* block, float* y) {
  const __m256 d = half_at(halves, block), m = half_at(halves, block + 2);
  for (int i = 0; i < 16; i += 8) {
    const __m256i q = bytes_u32(block + 4 + i);
    store_scaled_plus(y + i, d, low_nibbles(q), m);
    store_scaled_plus(y + 16 + i, d, high_nibbles(q), m);
  }
}

// Bits first .. first + 7 of the word in every lane of `word`, one a lane, moved to bit 4.
inline __m256i fifth_bits(__m256i word, int first) {
  const __m256i shifts = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(first));
  return _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(word, shifts), _mm256_set1_epi32(1)), 4);
}

// Q5_0: f16 d, a 32-bit word of fifth bits (bit j for weight j), nibbles as Q4_0; y = d (q - 16).
inline void decode_q5_0(const float* halves, const uint8_t* block, float* y) {
  const __m256 d = half_at(halves, block);
  uint32_t qh;
  __builtin_memcpy(&qh, block + 2, 4);
  const __m256i fifths = _mm256_set1_epi32(static_cast<int>(qh)), sixteen = _mm256_set1_epi32(16);
  for (int i = 0; i < 16; i += 8) {
    const __m256i q = bytes_u32(block + 6 + i);
    store_scaled(y + i, d, _mm256_sub_epi32(_mm256_or_si256(low_nibbles(q), fifth_bits(fifths, i)), sixteen));
    store_scaled(y + 16 + i, d, _mm256_sub_epi32(_mm256_or_si256(high_nibbles(q), fifth_bits(fifths, 16 + i)), sixteen));
  }
}

// Q8_0: f16 d, 32 signed bytes; y = d q.
inline void decode_q8_0(const float* halves, const uint8_t* block, float* y) {
  const __m256 d = half_at(halves, block);
  for (int i = 0; i < 32; i += 8) store_scaled(y + i, d, bytes_i32(block + 2 + i));
}

// Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; sub-block s
// of 32 weights takes the low (even s) or high (odd s) nibbles of qs[32 (s / 2) ...];
// y = (d scale) q - (dmin min).
inline void decode_q4_k(const float* halves, const uint8_t* block, float* y) {
  const float d = half_scalar(halves, block), dmin = half_scalar(halves, block + 2);
  const uint8_t* packed = block + 4;
  const uint8_t* qs = block + 16;
  for (int sub = 0; sub < 8; ++sub) {
    uint8_t sc, mn;
    q4_k_scale_min(packed, sub, sc, mn);
    const __m256 d1 = _mm256_set1_ps(d * static_cast<float>(sc)), m1 = _mm256_set1_ps(dmin * static_cast<float>(mn));
    const uint8_t* q = qs + 32 * (sub / 2);
    for (int i = 0; i < 32; i += 8) {
      const __m256i bytes = bytes_u32(q + i);
      const __m256i value = sub % 2 ? high_nibbles(bytes) : low_nibbles(bytes);
      _mm256_storeu_ps(y + sub * 32 + i, _mm256_sub_ps(rounded(_mm256_mul_ps(d1, to_float(value))), m1));
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
  const __m256i three = _mm256_set1_epi32(3), thirty_two = _mm256_set1_epi32(32);
  for (int group = 0; group < 16; ++group) {
    const int half = group / 8, r = (group % 8) * 16;
    const __m256 scale = _mm256_set1_ps(d * static_cast<float>(scales[group]));
    for (int i = 0; i < 16; i += 8) {
      const __m256i low = low_nibbles(_mm256_srli_epi32(bytes_u32(ql + 64 * half + r % 64 + i), 4 * (r / 64)));
      const __m256i high = _mm256_and_si256(_mm256_srli_epi32(bytes_u32(qh + 32 * half + r % 32 + i), 2 * (r / 32)), three);
      store_scaled(y + 16 * group + i, scale, _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), thirty_two));
    }
  }
}

// BF16 rows, 8 at a time (a prefill decodes every weight once; the scalar loop made SmolLM2's
// bf16 prefill ~35% slower than its f32 one), the tail one by one.
void decode_bf16_rows(const uint8_t* src, size_t row_bytes, float* dst, int64_t rows, int64_t cols) {
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

}  // namespace

#include "ops/quantized_rows.inc"

}  // namespace avx2
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

}  // namespace hfpipe::ops::quant_kernels
