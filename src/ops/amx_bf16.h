// bf16 matrix products on Intel AMX (Sapphire Rapids and later), for the row counts that
// encoders and prefills multiply: y = x W^T + b with x and W in bfloat16, f32 accumulation.
//
// Why not oneDNN's: oneDNN 2.6's AMX kernel (brg:avx512_core_amx_bf16) ran BERT-base's layers
// at 38-800 rows at 90-225 GFLOP/s on this project's Xeon (one thread); this kernel, a plain
// 2 x 2 block of 16 x 16 tiles over weights packed tile by tile, with the next column block
// prefetched while the current one multiplies, runs them at 140-590 (1.1-1.7x; at 38 rows
// it reads the weight at ~6.3 GB/s of the core's ~7.7: bandwidth-bound).
//
// Packing: for each block of 16 weight rows and each step of 32 input columns, a 1 KB tile of
// 16 column pairs x 16 rows x 2 (the pair-interleaved order AMX's bf16 product reads), rows
// padded to a multiple of 32 with zeros. Encoder weights are packed once at load
// (Linear's BlockedBf16); the decoders' BF16 matrices are used as stored, with the operands'
// roles swapped (amx_bf16_matmul_plain_weights). The input width must be a multiple of 32 (amx_bf16_fits); every model this
// project runs has such widths, other shapes stay on oneDNN.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace hfpipe::ops {

// Whether this CPU has AMX-BF16 and the kernel lets this process use the tile registers
// (asked for once, as oneDNN does).
bool amx_bf16_available();

// Whether Linear packs bf16 weights for amx_bf16_matmul: amx_bf16_available(), unless the
// environment variable HFPIPE_AMX=0 or set_amx_bf16_enabled(false) turned it off (for A/B
// measurements and for tests of the oneDNN route). Read when a Linear is built.
bool amx_bf16_enabled();
void set_amx_bf16_enabled(bool enabled);

// Whether a weight of [out, in] can be packed for amx_bf16_matmul.
bool amx_bf16_fits(int64_t out, int64_t in);

// bf16 values (out rounded up to 32) x in: the room a packed [out, in] weight takes.
int64_t amx_bf16_packed_values(int64_t out, int64_t in);

// `rows` rows of a bf16 [rows, in] matrix (bit patterns) packed into `packed`, with zero rows
// up to the next multiple of 16. Block b of 16 rows lands at packed + b * 16 * in, so blocks
// can be packed separately; a whole weight takes amx_bf16_packed_values(out, in) values, its
// rows padded to a multiple of 32 (the caller zeroes a last lone 16-row block). Requires
// amx_bf16_fits and amx_bf16_available() (it is AVX-512 code).
void pack_amx_bf16_bits(const uint16_t* weight, int64_t rows, int64_t in, uint16_t* packed);

struct AmxWeight {
  Tensor packed;  // U8: amx_bf16_packed_values(out, in) bf16 values
  int64_t out = 0, in = 0;
};

// weight: out x in floats, rounded to bfloat16 (round to nearest even, as torch's
// .to(torch.bfloat16)) and packed. Requires amx_bf16_fits(out, in).
AmxWeight pack_amx_bf16(const float* weight, int64_t out, int64_t in);

// y (rows x out f32, row stride ldy) = x (rows x in bf16 bit patterns) W^T + bias, W packed as
// above (out x in). bias: null, or out floats readable up to the next multiple of 32
// (amx_bf16_padded_bias); it starts each sum, where oneDNN adds it after. Any number of rows;
// threads over 32-column blocks with OpenMP. Requires amx_bf16_available().
void amx_bf16_matmul(const uint16_t* x, int64_t rows, const uint16_t* packed, int64_t out, int64_t in,
                     const float* bias, float* y, int64_t ldy);

// The same product with the roles of the operands swapped, for weights used once per call
// (the decoders' prefill slices): W in its plain [out, in] bf16 layout, its rows readable up to
// the next multiple of 32 (padding rows of any value: their results are not stored),
// and x packed by pack_amx_bf16_bits into amx_bf16_packed_values(rows, in) values (the rows
// past `rows` zero). No pass over the weight besides the product's own.
void amx_bf16_matmul_plain_weights(const uint16_t* x_packed, int64_t rows, const uint16_t* weight, int64_t out,
                                   int64_t in, const float* bias, float* y, int64_t ldy);

// A bias of out floats, copied with zeros up to the next multiple of 32 for amx_bf16_matmul.
Tensor amx_bf16_padded_bias(const float* bias, int64_t out);

}  // namespace hfpipe::ops
