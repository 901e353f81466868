#include "ops/gemv.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "core/half_floats.h"
#include "core/error.h"
#include "ops/avx2_math.h"
#include "ops/ops.h"
#include "ops/panels.h"

// The tile loops must be unrolled whole: only then do the accumulator arrays live in registers
// (at -O2 GCC keeps a loop over them, and the arrays on the stack).
#define UNROLL _Pragma("GCC unroll 16")

namespace hfpipe::ops {

namespace {

// ---- AVX-512: 16 floats a vector, 32 registers: up to 24 accumulators + the weight vectors
// + one input vector. Measured on a Xeon (Sapphire Rapids, one thread, CPU time, GPT-2-small
// shaped weights streamed from memory): 1 row 1.2-1.3x and 8 rows ~1.6x the AVX2 kernel.
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
#endif
// GCC 12's own _mm512_reduce_add_ps starts from _mm256_undefined_pd() and then warns that it
// may be used uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512_tiles {
using Vec = __m512;
constexpr int64_t kLanes = 16;
inline Vec zero() { return _mm512_setzero_ps(); }
inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
inline Vec load_first(const float* p, int64_t n) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
}
inline Vec fma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
inline float sum(Vec v) { return _mm512_reduce_add_ps(v); }
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
inline void keep_in_register(Vec& v) { __asm__("" : "+v"(v)); }
inline Vec load_weights(const float* p) { return load(p); }
inline Vec load_weights_first(const float* p, int64_t n) { return load_first(p, n); }
// bf16 weights: 16 bit patterns widened to 32 bits and shifted into the top half (exact).
inline Vec widen_bf16(__m256i bits) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16)); }
inline Vec load_weights(const uint16_t* p) { return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline Vec load_weights_first(const uint16_t* p, int64_t n) {
  alignas(32) uint16_t tail[16] = {};
  for (int64_t i = 0; i < n; ++i) tail[i] = p[i];
  return widen_bf16(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail)));
}
// 1-2 rows: 8 weight rows (8 streams from memory, 8-16 independent FMA chains); 8 rows: 3
// (24 accumulators, 11 loads per 24 FMAs).
constexpr int columns_for(int rows) { return rows <= 2 ? 8 : rows == 3 ? 6 : rows == 4 ? 5 : rows <= 6 ? 4 : 3; }
constexpr int kMaxTileRows = 8;
// many_rows: 4 x 6 (24 accumulators, 6 weight vectors, 1 input vector; 10 loads per 24 FMAs).
// Measured on a Zen 5 (one thread, hfpipe_bench_ops, GFLOP/s on BERT-base's 768 x 3072 / MiniLM's
// 384 x 1536 at 16 / 32 / 48 rows): 4 x 6 109 / 134, 139 / 151, 153 / 156; 4 x 5 95 / 144, 118 /
// 124, 135 / 137; 6 x 4 102 / 154, 114 / 120, 142 / 148; 8 x 3 91 / 162, 112 / 130, 107 / 121.
constexpr int kGroupRows = 4, kGroupColumns = 6;
#include "ops/gemv_tiles.inc"
inline Vec broadcast(float f) { return _mm512_set1_ps(f); }
inline void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec fused(Vec a, Vec b, Vec acc) { return fma(a, b, acc); }
// Panels: 4 rows x a whole panel (16 accumulators, 4 weight vectors, 1 broadcast; 8 loads per
// 16 FMAs). Measured on a Zen 5 (one thread, 64 rows of GPT-2-small shapes, weights in L3),
// GFLOP/s: 4 x 64 257-270, 6 x 64 239-253, 8 x 64 (spilling) 257-265.
constexpr int kPanelTileRows = 4, kPanelTileVectors = 4, kPanelRowVectors = 4;
#include "ops/panel_tiles.inc"
}  // namespace avx512_tiles
#pragma GCC diagnostic pop
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

// ---- AVX2 + FMA: 8 floats a vector, 16 registers.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif
namespace avx2_tiles {
using Vec = __m256;
constexpr int64_t kLanes = 8;
inline Vec zero() { return _mm256_setzero_ps(); }
inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
inline Vec load_first(const float* p, int64_t n) {
  // Lane i is loaded when its mask word is negative: (i < n) ? -1 : 0.
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes));
}
inline Vec fma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
// The lane sum of the row kernels and of quant_kernels' fused tiles, whose results must be
// these tiles' bits.
using ops::avx2::sum;
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
inline void keep_in_register(Vec& v) { __asm__("" : "+x"(v)); }
inline Vec load_weights(const float* p) { return load(p); }
inline Vec load_weights_first(const float* p, int64_t n) { return load_first(p, n); }
// bf16 weights, widened as at the AVX-512 level.
inline Vec widen_bf16(__m128i bits) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16)); }
inline Vec load_weights(const uint16_t* p) { return widen_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline Vec load_weights_first(const uint16_t* p, int64_t n) {
  alignas(16) uint16_t tail[8] = {};
  for (int64_t i = 0; i < n; ++i) tail[i] = p[i];
  return widen_bf16(_mm_load_si128(reinterpret_cast<const __m128i*>(tail)));
}
// At most 13 of the 16 registers: accumulators + weight vectors + the input vector. 7 or 8
// rows run as two tiles of 2 weight rows (4 + 3 or 4 + 4 input rows): one tile of 8 x 1 loaded
// 9 vectors per 8 FMAs and ran a SmolLM2 batch-8 step at ~40% of the FMA peak.
constexpr int columns_for(int rows) { return rows <= 2 ? 4 : rows == 3 ? 3 : 2; }
constexpr int kMaxTileRows = 6;
// many_rows: 4 x 3 (12 accumulators, 3 weight vectors, 1 input vector: all 16 registers;
// 7 loads per 12 FMAs). Measured at 16 rows on BERT-base's 768 x 3072 streamed from memory
// (GFLOP/s, one thread): 4 x 3 55, 6 x 2 55, 3 x 3 49, 4 x 2 54, 2 x 4 36 (oneDNN 42-46); on
// MiniLM's 384 x 1536: 65, 62, -, -, - (oneDNN 46).
constexpr int kGroupRows = 4, kGroupColumns = 3;
#include "ops/gemv_tiles.inc"
inline Vec broadcast(float f) { return _mm256_set1_ps(f); }
inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec fused(Vec a, Vec b, Vec acc) { return fma(a, b, acc); }
// Panels: 2 rows x half a panel (8 accumulators, 4 weight vectors, 1 broadcast: 13 of the 16
// registers); 1 row x a whole panel (8 accumulators; the weights as the FMAs' memory operands).
// Zen 5 at this level, GFLOP/s at 8 / 64 / 512 rows of GPT-2 shapes: 53-60 / 95-101 / 107-109;
// BLIS's 6 x 16 shape 28 / 80-89 / 105-114 (before the weight loads were kept in registers);
// skinny_linear's AVX2 tiles 80-106 / 107-117 / -, oneDNN's sgemm limited to AVX2 - / 98-106 /
// 120-127: which is why only AVX-512 CPUs pack panels (panels_preferred).
constexpr int kPanelTileRows = 2, kPanelTileVectors = 4, kPanelRowVectors = 8;
#include "ops/panel_tiles.inc"
}  // namespace avx2_tiles
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

// ---- Plain C++ for CPUs without AVX2: one float a "vector", so sums run in k order.
namespace plain_tiles {
using Vec = float;
constexpr int64_t kLanes = 1;
inline Vec zero() { return 0.f; }
inline Vec load(const float* p) { return *p; }
inline Vec load_first(const float* p, int64_t) { return *p; }  // never called: K % 1 == 0
inline Vec fma(Vec a, Vec b, Vec acc) { return a * b + acc; }
inline float sum(Vec v) { return v; }
inline void prefetch(const void*) {}
inline void keep_in_register(Vec&) {}
inline Vec load_weights(const float* p) { return *p; }
inline Vec load_weights_first(const float* p, int64_t) { return *p; }
inline Vec load_weights(const uint16_t* p) { return bf16_to_f32(*p); }
inline Vec load_weights_first(const uint16_t* p, int64_t) { return bf16_to_f32(*p); }
constexpr int columns_for(int) { return 1; }
constexpr int kMaxTileRows = 8;
constexpr int kGroupRows = 4, kGroupColumns = 1;
#include "ops/gemv_tiles.inc"
inline Vec broadcast(float f) { return f; }
inline void store(float* p, Vec v) { *p = v; }
inline Vec fused(Vec a, Vec b, Vec acc) { return std::fma(a, b, acc); }  // the vector levels' bits
constexpr int kPanelTileRows = 1, kPanelTileVectors = 8, kPanelRowVectors = 8;
#include "ops/panel_tiles.inc"
}  // namespace plain_tiles

SimdLevel detect_simd_level() {
  // __builtin_cpu_supports also checks that the OS saves the wider registers.
  if (__builtin_cpu_supports("avx512f")) return SimdLevel::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::Avx2;
  return SimdLevel::Plain;
}

std::atomic<SimdLevel>& chosen_level() {
  static std::atomic<SimdLevel> level{cpu_simd_level()};
  return level;
}

}  // namespace

SimdLevel cpu_simd_level() {
  static const SimdLevel level = detect_simd_level();
  return level;
}

SimdLevel skinny_simd_level() { return chosen_level().load(std::memory_order_relaxed); }

void set_skinny_simd_level(SimdLevel level) {
  chosen_level().store(std::min(level, cpu_simd_level()), std::memory_order_relaxed);
}

namespace {

void run_rows(const float* x, int64_t rows, const float* w, const float* bias, int64_t in, int64_t out, float* y,
              int64_t ldy, bool parallel) {
  check(rows >= 1, ErrorKind::Internal, "skinny_linear takes at least one row");
  switch (skinny_simd_level()) {
    case SimdLevel::Avx512: return avx512_tiles::linear_rows(x, rows, w, bias, in, out, y, ldy, parallel);
    case SimdLevel::Avx2: return avx2_tiles::linear_rows(x, rows, w, bias, in, out, y, ldy, parallel);
    case SimdLevel::Plain: return plain_tiles::linear_rows(x, rows, w, bias, in, out, y, ldy, parallel);
  }
}

}  // namespace

bool skinny_linear_preferred(int64_t rows) {
  constexpr int64_t kAvx2MaxRows = 40, kAvx512MaxRows = 64;
  switch (skinny_simd_level()) {
    case SimdLevel::Avx512: return rows <= kAvx512MaxRows;
    case SimdLevel::Avx2: return rows <= kAvx2MaxRows;
    case SimdLevel::Plain: break;
  }
  return rows <= kSkinnyMaxRows;
}

void skinny_linear(const float* x, int64_t rows, const float* w, const float* bias, int64_t in, int64_t out,
                   Activation activation, float* y) {
  run_rows(x, rows, w, bias, in, out, y, out, true);
  if (activation != Activation::None) apply_activation(y, rows * out, activation);
}

int64_t skinny_tile_columns(int64_t rows) {
  const int r = static_cast<int>(std::clamp<int64_t>(rows, 1, kSkinnyMaxRows));
  switch (skinny_simd_level()) {
    case SimdLevel::Avx512: return avx512_tiles::columns_for(r);
    case SimdLevel::Avx2: return avx2_tiles::columns_for(r);
    case SimdLevel::Plain: break;
  }
  return plain_tiles::columns_for(r);
}

void skinny_linear_bf16(const float* x, int64_t rows, const uint16_t* w, const float* bias, int64_t in, int64_t out,
                        float* y) {
  check(rows >= 1 && rows <= kSkinnyMaxRows, ErrorKind::Internal, "skinny_linear_bf16 takes 1 to 8 rows");
  switch (skinny_simd_level()) {
    case SimdLevel::Avx512: return avx512_tiles::linear_rows(x, rows, w, bias, in, out, y, out, true);
    case SimdLevel::Avx2: return avx2_tiles::linear_rows(x, rows, w, bias, in, out, y, out, true);
    case SimdLevel::Plain: return plain_tiles::linear_rows(x, rows, w, bias, in, out, y, out, true);
  }
}

void panel_rows(const float* x, int64_t rows, int64_t ldx, const float* w, int64_t k_count, bool accumulate,
                const float* bias, float* y, int64_t ldy) {
  switch (skinny_simd_level()) {
    case SimdLevel::Avx512: return avx512_tiles::panel_rows(x, rows, ldx, w, k_count, accumulate, bias, y, ldy);
    case SimdLevel::Avx2: return avx2_tiles::panel_rows(x, rows, ldx, w, k_count, accumulate, bias, y, ldy);
    case SimdLevel::Plain: return plain_tiles::panel_rows(x, rows, ldx, w, k_count, accumulate, bias, y, ldy);
  }
}

void skinny_linear_columns(const float* x, int64_t rows, const float* w, const float* bias, int64_t in, int64_t out,
                           float* y, int64_t ldy) {
  run_rows(x, rows, w, bias, in, out, y, ldy, false);
}

}  // namespace hfpipe::ops
