// The vector decoders behind ops/quantized.h, one file per instruction set
// (quantized_avx512.cpp, quantized_avx2.cpp), and the scalar pieces they share. Internal to
// ops/: quantized.cpp picks the decoder of the CPU's level.
//
// Every decoder gives, weight for weight, the f32 value of the scalar decoder in
// formats/gguf_quants.cpp (which follows gguf-py): the f16 scales convert exactly, the
// integers convert exactly, and every product and sum is rounded where the scalar code rounds
// it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <immintrin.h>

#include "core/half_floats.h"
#include "ops/quantized.h"

namespace hfpipe::ops::quant_kernels {

// Decodes `rows` rows stored `row_bytes` apart at `src` into `rows` x `cols` floats at `dst`.
using RowDecoder = void (*)(const uint8_t* src, size_t row_bytes, float* dst, int64_t rows, int64_t cols);

// Round to nearest even on the upper 16 bits; a NaN stays a (quiet) NaN. Plain code any CPU
// runs (round_to_bf16 uses it too, and the AVX-512 rounding its tails). Both results computed and one
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

// Every f16 value as f32 (256 KB), so that a block's scale is two loads (its bits, then a
// broadcast from this table) instead of an insert, a convert and a broadcast on the vector
// ports the decoding saturates (measured on AVX-512: Q4_1 blocks decoded 15-25% faster).
const float* half_table();
inline float half_scalar(const float* table, const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return table[h];
}

// The 6-bit scales and mins of a Q4_K block's 8 sub-blocks from its 12 packed bytes
// (gguf_quants.cpp's k_scale_min), byte `sub` of each word for sub-block `sub`. Four bytes at a
// time: sub-blocks 0-3 take the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 take a
// nibble of bytes 8-11 and, as bits 4-5, the top 2 bits of bytes 0-3 / 4-7.
inline void q4_k_scales_mins(const uint8_t* packed, uint64_t& scales, uint64_t& mins) {
  uint32_t w[3];
  __builtin_memcpy(w, packed, 12);
  scales = (w[0] & 0x3F3F3F3Fu) | uint64_t{(w[2] & 0x0F0F0F0Fu) | ((w[0] >> 2) & 0x30303030u)} << 32;
  mins = (w[1] & 0x3F3F3F3Fu) | uint64_t{((w[2] >> 4) & 0x0F0F0F0Fu) | ((w[1] >> 2) & 0x30303030u)} << 32;
}

// y[r * w.rows + n] = x_r . w_n (+ bias[n]) for input rows r < rows (1 to 8) and weight rows n in
// [first, first + count), each block decoded into registers and multiplied there instead of
// through a decoded slice: the same bits as skinny_linear over the decoded floats (the same
// vector accumulators over K in the same order, reduced the same way).
using FusedProduct = void (*)(const QuantizedMatrix& w, const float* x, int64_t rows, int64_t first, int64_t count,
                              const float* bias, float* y);

// out[i] = d * byte i of `bytes` (lowest first, unsigned), i < 8: a Q4_K block's 8 scales or mins
// times its d or dmin, as one vector (unpacked one by one in scalar code they were a quarter of a
// block's decoding, which bounds the 1-row products). For the AVX2 and AVX-512 decoders.
__attribute__((target("avx2"))) inline void scaled_bytes(float d, uint64_t bytes, float* out) {
  const __m256i wide = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes)));
  _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(wide)));
}

// The 6-bit values, minus 32, of weights 32 run .. 32 run + 31 of a Q6_K block (runs 0-7), as
// 32 signed bytes: two loads and six byte-wise operations, the same for all the run's chunks (so
// the compiler makes them once in the fused tiles, where a block's chunks are unrolled; one chunk
// at a time took twice the operations). In each group of 16 weights the low nibbles come from 16 consecutive ql
// bytes (block[0..128)) at one shift and the high 2 bits from 16 consecutive qh bytes
// (block[128..192)) at one shift. For the AVX2 and AVX-512 decoders.
__attribute__((target("avx2"))) inline __m256i q6_k_run(const uint8_t* block, int run) {
  const int half = run / 4, r = (run % 4) * 32;
  const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * half + r % 64));
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * half));
  const __m256i low = _mm256_and_si256(_mm256_srli_epi16(ql, 4 * (r / 64)), _mm256_set1_epi8(0x0F));
  const int high_shift = 2 * (r / 32);  // the two bits go to bits 4-5: shift by 4 - high_shift
  const __m256i high_moved =
      high_shift <= 4 ? _mm256_slli_epi16(qh, 4 - high_shift) : _mm256_srli_epi16(qh, high_shift - 4);
  const __m256i high = _mm256_and_si256(high_moved, _mm256_set1_epi8(0x30));
  return _mm256_sub_epi8(_mm256_or_si256(low, high), _mm256_set1_epi8(32));
}

namespace avx512 {
RowDecoder decoder_of(QuantFormat format);
// nullptr for formats without a fused kernel.
FusedProduct fused_product_of(QuantFormat format);
// x[0..n) rounded to bf16 as bf16_bits_of rounds, as bit patterns in `out`.
void round_to_bf16_bits(const float* x, int64_t n, uint16_t* out);
}  // namespace avx512

namespace avx2 {
RowDecoder decoder_of(QuantFormat format);
FusedProduct fused_product_of(QuantFormat format);
}  // namespace avx2

}  // namespace hfpipe::ops::quant_kernels
