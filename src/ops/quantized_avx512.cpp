#include <immintrin.h>

#include <type_traits>

#include "core/error.h"
#include "ops/quantized_kernels.h"

// Small loops over registers must be unrolled whole for the arrays to live in registers.
#define UNROLL _Pragma("GCC unroll 16")

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
inline __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
inline __m512 minus(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
inline __m512 set1(float f) { return _mm512_set1_ps(f); }
using Vec = __m512;
using IVec = __m512i;
constexpr int64_t kLanes = 16;
// Chunk j of a 32-weight block of nibbles whose 16 bytes are `bytes` (byte i holds weight i
// low, weight 16 + i high).
inline __m512i nibble_chunk(__m512i bytes, int j) { return j == 0 ? low_nibbles(bytes) : high_nibbles(bytes); }

// The block formats as vectors of 16 weights ("chunks", chunk j = weights 16j .. 16j + 15 of the
// block: 2 in a 32-weight block, 16 in a 256-weight one), each made from a state loaded once per
// block: the block decoders store the chunks, the fused kernels (quantized_fused.inc) multiply
// them where they are made.
//
// Q4_0: f16 d, 16 bytes of nibbles; y = d (q - 8).
struct Q4_0Chunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q4_0;
  static constexpr int kChunks = 2;
  __m512 d;
  __m512i bytes;
  void start(const float* halves, const uint8_t* block) {
    d = half_at(halves, block);
    bytes = bytes_u32(block + 2);
  }
  __m512 chunk(int j) const {
    return _mm512_mul_ps(d, to_float(_mm512_sub_epi32(nibble_chunk(bytes, j), _mm512_set1_epi32(8))));
  }
};

// Q4_1: f16 d, f16 m, nibbles as Q4_0; y = d q + m, rounded after the product and after the sum.
struct Q4_1Chunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q4_1;
  static constexpr int kChunks = 2;
  __m512 d, m;
  __m512i bytes;
  void start(const float* halves, const uint8_t* block) {
    d = half_at(halves, block);
    m = half_at(halves, block + 2);
    bytes = bytes_u32(block + 4);
  }
  __m512 chunk(int j) const { return _mm512_add_ps(rounded(_mm512_mul_ps(d, to_float(nibble_chunk(bytes, j)))), m); }
};

// Q5_0: f16 d, a 32-bit word of fifth bits (bit j for weight j), nibbles as Q4_0; y = d (q - 16)
// with q = nibble | fifth << 4, so q - 16 is the nibble where the fifth bit is set and the nibble
// - 16 where it is not (one masked subtraction, the bits as the mask).
struct Q5_0Chunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q5_0;
  static constexpr int kChunks = 2;
  __m512 d;
  uint32_t fifths;
  __m512i bytes;
  void start(const float* halves, const uint8_t* block) {
    d = half_at(halves, block);
    __builtin_memcpy(&fifths, block + 2, 4);
    bytes = bytes_u32(block + 6);
  }
  __m512 chunk(int j) const {
    const __m512i nibbles = nibble_chunk(bytes, j);
    const auto unset = static_cast<__mmask16>(~(fifths >> (16 * j)));
    return _mm512_mul_ps(d, to_float(_mm512_mask_sub_epi32(nibbles, unset, nibbles, _mm512_set1_epi32(16))));
  }
};

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed scales, f16 d. In each
// group of 16 weights (one scale; chunk j = group j) the low nibbles come from 16 consecutive ql
// bytes at one shift and the high bits from 16 consecutive qh bytes at one shift;
// y = (d scale) (q - 32).
struct Q6_KChunks {
  static constexpr QuantFormat kFormat = QuantFormat::Q6_K;
  static constexpr int kChunks = 16;
  float scale[16];  // d scale of each group
  const uint8_t* block;
  void start(const float* halves, const uint8_t* at) {
    _mm512_storeu_ps(scale, _mm512_mul_ps(half_at(halves, at + 208), to_float(bytes_i32(at + 192))));
    block = at;
  }
  // Chunk j: 16 of the 32 weights of run j / 2 (q6_k_run), widened to floats.
  __m512 chunk(int j) const {
    const __m256i q = q6_k_run(block, j / 2);
    const __m128i sixteen = j % 2 ? _mm256_extracti128_si256(q, 1) : _mm256_castsi256_si128(q);
    return _mm512_mul_ps(_mm512_set1_ps(scale[j]), to_float(_mm512_cvtepi8_epi32(sixteen)));
  }
};

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

// What quantized_fused.inc needs besides the chunks: the decoders' store, and the vector
// accumulator operations of gemv.cpp's AVX-512 tiles (their FMAs are AVX-512F instructions).
inline void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
#define FUSED_TARGET
inline __m512 zero() { return _mm512_setzero_ps(); }
inline __m512 load(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 fma(__m512 a, __m512 b, __m512 acc) { return _mm512_fmadd_ps(a, b, acc); }
inline float lane_sum(__m512 v) { return _mm512_reduce_add_ps(v); }

// One weight row per tile at every row count, 4 KB prefetched ahead. Measured on a Zen 5 (one
// thread, hfpipe_bench_ops quantized: a Gemma-3-270M step's products, ms at 1 / 2 / 8 rows):
// decoded slices through the f32 tiles 39.9 / 45.4 / 67.2; fused, two weight rows a tile at 1-4
// rows and 1 KB ahead 24.8 / 24.5 / 58.1; four weight rows at 1-2 rows 33.7 / 37.5; one weight
// row 17.9 / 19.4 / 56.7; and then 512 B ahead 21.7 / 24.1 / 60.0, 2 KB 16.0 / 17.6 / 53.2, 4 KB
// 15.3 / 16.6 / 53.3, 8 KB 16.2 / 16.3 / 52.7 (its 178 MB Q8_0 lm_head at 1 row: 11.0 ms at 1 KB,
// 8.9 at 4 KB, 20 GB/s).
// From 3 rows, four weight rows a tile, at most 4 input rows a tile (8 rows: two tiles over the
// same weight rows): 16 accumulators, half a load per FMA. The 8-row Q8_0 lm_head: one weight
// row a tile 30.4 ms (84 GFLOP/s), two 29, three 30-34; 4 x 4 tiles twice 18.2-19.6 (a
// stand-alone copy of the loop in L2: 8 x 1 85-100 GFLOP/s, 4 x 4 143-157). The step at 8 rows
// 50.7 -> 32.6-36.6 ms.
template <int R>
constexpr int fused_columns() { return R >= 3 ? 4 : 1; }
constexpr int kTileRows = 4;
constexpr size_t kPrefetchAhead = 4096;

}  // namespace

#include "ops/quantized_fused.inc"
#include "ops/quantized_rows.inc"

#undef FUSED_TARGET

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
