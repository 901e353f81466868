// AVX-512 (F) vector primitives, the same names as ops/avx2_math.h over 16 floats, so the
// kernels of ops/vector_math.inc and ops/row_kernels.inc compile for either. Reach it only
// after cpu_simd_level() said the CPU (and OS) has AVX-512.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "ops/linear.h"

namespace hfpipe::ops::avx512 {

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#endif
// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_ps() and then warn that
// it may be used uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

using Vec = __m512;
using Mask = __mmask16;
inline constexpr int64_t kLanes = 16;
// Query rows per tile of attention_kernels.inc: 8 x 2 vectors = 16 of the 32 registers.
inline constexpr int kAttentionTileRows = 8;

inline Vec set1(float v) { return _mm512_set1_ps(v); }
inline Vec zero() { return _mm512_setzero_ps(); }
inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Mask first_lanes(int64_t n) { return static_cast<Mask>((1u << n) - 1); }
inline Vec load_first(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }  // 0 elsewhere
inline void store_first(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }

inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec div(Vec a, Vec b) { return _mm512_div_ps(a, b); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec fnmadd(Vec a, Vec b, Vec c) { return _mm512_fnmadd_ps(a, b, c); }
inline Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
inline Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
inline Vec abs(Vec v) { return _mm512_abs_ps(v); }
inline Vec with_sign_of(Vec magnitude, Vec sign) {
  const __m512i sign_bit = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude),
                                             _mm512_and_si512(sign_bit, _mm512_castps_si512(sign))));
}
inline Mask less(Vec a, Vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline Mask is_nan(Vec v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q); }
inline Vec select(Mask m, Vec yes, Vec no) { return _mm512_mask_blend_ps(m, no, yes); }
inline Vec round_to_int(Vec v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline Vec pow2(Vec n) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
// Halves to 8 lanes, then as the AVX2 sum (GCC 12's _mm512_reduce_add_ps warns of an
// uninitialised value inside itself).
inline float sum(Vec v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float max_of(Vec v) {
  const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

#include "ops/vector_math.inc"
#include "ops/row_kernels.inc"
#include "ops/attention_kernels.inc"

#pragma GCC diagnostic pop
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

}  // namespace hfpipe::ops::avx512
