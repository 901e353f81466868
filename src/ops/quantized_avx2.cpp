#include <immintrin.h>

#include <type_traits>

#include "ops/avx2_math.h"
#include "core/error.h"
#include "ops/quantized_kernels.h"

// The AVX2 decoders of ops/quantized.h (the promise: ops/quantized_kernels.h), for CPUs without
// AVX-512 (AMD Zen 2 / Zen 3, Intel client cores): quantized_avx512.cpp's decoders on 8 lanes.
// Without them a GGUF file's blocks were dequantised to f32 at load on these CPUs, and each
// decoding step read 5-6x the bytes. The decoders are compiled for "avx2" without "fma", and
// where a product is followed by a sum `rounded` keeps the two roundings apart (as on AVX-512)
// also inside the fused kernels, which need "fma" for their accumulators.

// Small loops over registers must be unrolled whole for the arrays to live in registers.
#define UNROLL _Pragma("GCC unroll 16")

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
inline __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
inline __m256 minus(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
inline __m256 set1(float f) { return _mm256_set1_ps(f); }
using Vec = __m256;
using IVec = __m256i;
constexpr int64_t kLanes = 8;
// Weights 8j .. 8j + 7 of a 32-weight block of nibbles whose bytes 0-7 are `first` and 8-15
// `second` (byte i holds weight i low, weight 16 + i high).
inline __m256i nibble_chunk(__m256i first, __m256i second, int j) {
  const __m256i bytes = j % 2 ? second : first;
  return j < 2 ? low_nibbles(bytes) : high_nibbles(bytes);
}
// The block formats as vectors of 8 weights ("chunks", chunk j = weights 8j .. 8j + 7 of the
// block: 4 in a 32-weight block, 32 in a 256-weight one), each made from a state loaded once
// per block: the block decoders store the chunks, the fused kernels (quantized_fused.inc)
// multiply them where they are made.
//
// Q4_0: f16 d, 16 bytes of nibbles (byte i: weight i low, weight 16 + i high); y = d (q - 8).
struct Q4_0Chunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q4_0;
  static constexpr int kChunks = 4;
  __m256 d;
  __m256i first, second;  // nibble bytes 0-7 and 8-15
  void start(const float* halves, const uint8_t* block) {
    d = half_at(halves, block);
    first = bytes_u32(block + 2);
    second = bytes_u32(block + 10);
  }
  __m256 chunk(int j) const {
    const __m256i q = nibble_chunk(first, second, j);
    return _mm256_mul_ps(d, to_float(_mm256_sub_epi32(q, _mm256_set1_epi32(8))));
  }
};

// Q4_1: f16 d, f16 m, nibbles as Q4_0; y = d q + m, rounded after the product and after the sum.
struct Q4_1Chunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q4_1;
  static constexpr int kChunks = 4;
  __m256 d, m;
  __m256i first, second;
  void start(const float* halves, const uint8_t* block) {
    d = half_at(halves, block);
    m = half_at(halves, block + 2);
    first = bytes_u32(block + 4);
    second = bytes_u32(block + 12);
  }
  __m256 chunk(int j) const {
    const __m256i q = nibble_chunk(first, second, j);
    return _mm256_add_ps(rounded(_mm256_mul_ps(d, to_float(q))), m);
  }
};

// Q5_0's fifth bits as offsets: entry b, lane i = 0 when bit i of byte b is set, else -16, so
// that nibble + entry = (nibble | fifth << 4) - 16, the weight's integer, in one add (three
// shifts and masks a chunk took the 1-row products to ~5 GB/s, bound by decoding).
struct FifthBitOffsets {
  alignas(32) int32_t lanes[256][8];
  constexpr FifthBitOffsets() : lanes{} {
    for (int b = 0; b < 256; ++b)
      for (int i = 0; i < 8; ++i) lanes[b][i] = (b >> i) & 1 ? 0 : -16;
  }
};
inline constexpr FifthBitOffsets kFifthBitOffsets;

// Q5_0: f16 d, a 32-bit word of fifth bits (bit j for weight j), nibbles as Q4_0; y = d (q - 16).
struct Q5_0Chunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q5_0;
  static constexpr int kChunks = 4;
  __m256 d;
  uint32_t fifths;
  __m256i first, second;
  void start(const float* halves, const uint8_t* block) {
    d = half_at(halves, block);
    __builtin_memcpy(&fifths, block + 2, 4);
    first = bytes_u32(block + 6);
    second = bytes_u32(block + 14);
  }
  __m256 chunk(int j) const {
    const __m256i q = nibble_chunk(first, second, j);
    const auto* offsets = kFifthBitOffsets.lanes[(fifths >> (8 * j)) & 0xFF];
    const __m256i value = _mm256_add_epi32(q, _mm256_load_si256(reinterpret_cast<const __m256i*>(offsets)));
    return _mm256_mul_ps(d, to_float(value));
  }
};

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed scales, f16 d. In each
// group of 16 weights (one scale; chunks 2g, 2g + 1) the low nibbles come from 16 consecutive
// ql bytes at one shift and the high bits from 16 consecutive qh bytes at one shift;
// y = (d scale) (q - 32).
struct Q6_KChunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q6_K;
  static constexpr int kChunks = 32;
  __m256 scales[2];  // d scale of groups 0-7 and 8-15
  const uint8_t* block;
  void start(const float* halves, const uint8_t* at) {
    const __m256 d = half_at(halves, at + 208);
    scales[0] = _mm256_mul_ps(d, to_float(bytes_i32(at + 192)));
    scales[1] = _mm256_mul_ps(d, to_float(bytes_i32(at + 200)));
    block = at;
  }
  // Chunk j: 8 of the 32 weights of run j / 4 (q6_k_run), widened to floats.
  __m256 chunk(int j) const {
    const int group = j / 2;
    const __m256i q = q6_k_run(block, j / 4);
    const __m128i half_q = j % 4 < 2 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
    const __m128i eight = j % 2 ? _mm_srli_si128(half_q, 8) : half_q;
    const __m256 scale = _mm256_permutevar8x32_ps(scales[group / 8], _mm256_set1_epi32(group % 8));
    return _mm256_mul_ps(scale, to_float(_mm256_cvtepi8_epi32(eight)));
  }
};

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

// What quantized_fused.inc needs besides the chunks: the decoders' store, and for the fused
// tiles (compiled with "fma" too) the vector accumulator operations of gemv.cpp's AVX2 tiles.
inline void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
#define FUSED_TARGET __attribute__((target("avx2,fma")))
FUSED_TARGET inline __m256 zero() { return _mm256_setzero_ps(); }
FUSED_TARGET inline __m256 load(const float* p) { return _mm256_loadu_ps(p); }
FUSED_TARGET inline __m256 fma(__m256 a, __m256 b, __m256 acc) { return _mm256_fmadd_ps(a, b, acc); }
FUSED_TARGET inline float lane_sum(__m256 v) { return ops::avx2::sum(v); }

// Weight rows per fused tile: two at 1-2 input rows, one from 3 rows (as the registers
// allow). Measured on 30 layers of SmolLM2-shaped random blocks, one thread (Q4_1, 1 row: 16
// ms through slices, 12.6 fused with 2 weight rows, 17.5 with 1, 15-19 with 4; at 4 rows 26
// through slices, 19 fused; at 8 rows 38.5 / 35) and on a Gemma-3-270M step's products
// (hfpipe_bench_ops quantized): its 178 MB Q8_0 lm_head at 1 row 21.5 ms with one weight row
// a tile, 16-17.5 with two and quantized_fused.inc's prefetch (27-29 with two and no prefetch).
template <int R>
constexpr int fused_columns() { return R <= 2 ? 2 : 1; }
// With two rows in a tile the hardware prefetcher alone kept Gemma-3-270M's 178 MB Q8_0
// lm_head at 6.4 GB/s (Zen 3; 10-12 with 1 KB ahead, 8 with 2 KB).
constexpr int kTileRows = 8;
constexpr size_t kPrefetchAhead = 1024;

}  // namespace

#include "ops/quantized_fused.inc"
#include "ops/quantized_rows.inc"

#undef FUSED_TARGET
}  // namespace avx2
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

}  // namespace hfpipe::ops::quant_kernels
