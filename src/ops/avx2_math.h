// AVX2+FMA vector primitives for hfpipe's own row and element-wise kernels (ops.cpp). The
// kernels themselves are written once over these names (ops/vector_math.inc,
// ops/row_kernels.inc) and compiled again for AVX-512 (ops/avx512_math.h). Everything here is
// compiled for AVX2+FMA: reach it only after cpu_simd_level() said the CPU has it.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "ops/linear.h"

namespace hfpipe::ops::avx2 {

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

using Vec = __m256;
using Mask = __m256;  // all ones in the lanes it selects
inline constexpr int64_t kLanes = 8;
// Query rows per tile of attention_kernels.inc: 6 x 2 vectors = 12 accumulators, + 2 key or value
// vectors + 1 broadcast = 15 of the 16 registers (8 rows spilled 4 accumulators to the stack,
// a store and a reload in every step of the loop).
inline constexpr int kAttentionTileRows = 6;

inline Vec set1(float v) { return _mm256_set1_ps(v); }
inline Vec zero() { return _mm256_setzero_ps(); }
inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
// The first n (0 < n < kLanes) lanes: for the last dim % kLanes elements of a row, so they
// take the same vector arithmetic as the rest (no scalar tail with a different exp).
inline Mask first_lanes(int64_t n) {
  const __m256i ramp = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n)), ramp));
}
inline Vec load_first(const float* p, Mask m) { return _mm256_maskload_ps(p, _mm256_castps_si256(m)); }  // 0 elsewhere
inline void store_first(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, _mm256_castps_si256(m), v); }

inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }   // a * b + c
inline Vec fnmadd(Vec a, Vec b, Vec c) { return _mm256_fnmadd_ps(a, b, c); } // c - a * b
// x86 min/max: the second operand when either is NaN.
inline Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
inline Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
inline Vec abs(Vec v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), v); }
inline Vec with_sign_of(Vec magnitude, Vec sign) {
  return _mm256_or_ps(magnitude, _mm256_and_ps(_mm256_set1_ps(-0.f), sign));
}
inline Mask less(Vec a, Vec b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline Mask is_nan(Vec v) { return _mm256_cmp_ps(v, v, _CMP_UNORD_Q); }
inline Vec select(Mask m, Vec yes, Vec no) { return _mm256_blendv_ps(no, yes, m); }
inline Vec round_to_int(Vec v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// 2^n for whole n in the normal exponent range, put together in the exponent bits.
inline Vec pow2(Vec n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
inline float sum(Vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float max_of(Vec v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

#include "ops/vector_math.inc"
#include "ops/row_kernels.inc"
#include "ops/attention_kernels.inc"

#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

}  // namespace hfpipe::ops::avx2
