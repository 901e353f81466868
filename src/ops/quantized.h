// Weight matrices kept in ggml's block-quantised formats (as GGUF files store them) and
// dequantised inside the matrix product instead of once at load.
//
// Why: decoding one token reads every weight once, and at batch 1 that read is the whole cost
// (SmolLM2-135M: ~0.5 GB of f32 weights a step, ~50 ms at this machine's ~10 GB/s). Kept as
// Q4_1 / Q8_0 the same weights are ~97 MB. The arithmetic does not change: a block is decoded
// to exactly the f32 values load-time dequantisation gives (formats/gguf_quants.cpp, which
// follows gguf-py, transformers' reference), and those values go through the same f32 kernels
// in the same order — so results are bit-identical to dequantising at load.
//
// The vector decoders are AVX-512 and AVX2 code (ops/quantized_avx512.cpp, quantized_avx2.cpp);
// on older CPUs (and for formats without one) the loader dequantises at load as before.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace hfpipe::ops {

// The block formats with vector decoders; the values are ggml's type ids. BF16 is not
// block-quantised (a "block" is one weight, decoded by a shift) but takes the same road: GGUF
// BF16 tensors stay as stored, and pipeline(torch_dtype="bfloat16") keeps a decoder model's
// weights in it (to_bf16_matrix), halving the bytes each decoding step reads.
enum class QuantFormat : uint32_t { Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q8_0 = 8, Q4_K = 12, Q6_K = 14, BF16 = 30 };

// Weights per block and bytes per block of `format` (ggml's layouts).
constexpr int64_t quant_block_size(QuantFormat format) {
  if (format == QuantFormat::BF16) return 1;
  return format == QuantFormat::Q4_K || format == QuantFormat::Q6_K ? 256 : 32;
}
constexpr size_t quant_block_bytes(QuantFormat format) {
  switch (format) {
    case QuantFormat::BF16: return 2;
    case QuantFormat::Q4_0: return 18;
    case QuantFormat::Q4_1: return 20;
    case QuantFormat::Q5_0: return 22;
    case QuantFormat::Q8_0: return 34;
    case QuantFormat::Q4_K: return 144;
    case QuantFormat::Q6_K: return 210;
  }
  return 0;
}

// Whether this CPU decodes `ggml_type` (a ggml type id) inside the product; false for ids that
// are not a QuantFormat.
bool can_keep_quantized(uint32_t ggml_type);

// A [rows, cols] matrix stored row by row in blocks of `format` (cols a multiple of the block
// size). `bytes` holds rows * row_bytes() bytes: a view of a mapped file or an owned copy.
struct QuantizedMatrix {
  QuantFormat format = QuantFormat::Q8_0;
  int64_t rows = 0, cols = 0;
  Tensor bytes;  // U8

  size_t row_bytes() const { return static_cast<size_t>(cols / quant_block_size(format)) * quant_block_bytes(format); }
  const uint8_t* row(int64_t r) const { return bytes.data_as<uint8_t>() + static_cast<size_t>(r) * row_bytes(); }
};

// Checks shape and size (Error(CorruptFile) when `bytes` does not hold rows x cols weights of
// `format`) and returns the matrix.
QuantizedMatrix make_quantized_matrix(QuantFormat format, int64_t rows, int64_t cols, Tensor bytes);

// An F32 [out, in] weight rounded to bfloat16 (round to nearest even, as torch's
// .to(torch.bfloat16)) into an owned BF16 matrix.
QuantizedMatrix to_bf16_matrix(const Tensor& weight);

// x[0..n) rounded to bfloat16, written as the f32 values they are (exact in f32): the inputs
// of a bf16 product for kernels that take f32.
void round_to_bf16(const float* x, size_t n, float* out);
// The same rounding as bfloat16 bit patterns (vectorised on AVX-512).
void round_to_bf16_bits(const float* x, int64_t n, uint16_t* out);

// Rows [first, first + count) as f32, row by row into `out` (count x cols floats).
void dequantize_rows(const QuantizedMatrix& m, int64_t first, int64_t count, float* out);
// The same rows rounded to bfloat16 (bit patterns, count x cols): a bf16 product's weights.
void dequantize_rows_bf16(const QuantizedMatrix& m, int64_t first, int64_t count, uint16_t* out);

// y = x W^T + b for `rows` rows of x (rows x w.cols) into y (rows x w.rows); bias null or
// w.rows floats. Up to kSkinnyMaxRows rows, results equal skinny_linear's on the f32 W: at the
// AVX2 and AVX-512 levels the block formats are decoded and multiplied in registers
// (quant_kernels' FusedProduct) and a BF16 W is widened in registers (skinny_linear_bf16); only
// at the plain level (tests lower the level to it) are slices of W decoded into a cache-sized
// buffer and multiplied by skinny_linear's kernel. More rows: oneDNN over decoded slices
// (plain_weight_product: brgemm on AVX-512, sgemm elsewhere).
void quantized_linear(const QuantizedMatrix& w, const float* x, int64_t rows, const float* bias, float* y);

}  // namespace hfpipe::ops
