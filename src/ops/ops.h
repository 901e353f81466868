// Element-wise and row-wise CPU kernels over plain float buffers. One binary runs on every
// x86-64: softmax, LayerNorm and the tanh / erf / exp activations have vector kernels
// (ops/row_kernels.inc over vector exp, tanh and erf, which GCC cannot produce from libm)
// compiled for AVX-512 and AVX2+FMA and chosen at run time, with plain loops as the fallback;
// simple loops are compiled twice with target_clones.
#pragma once

#include <cstdint>

#include "ops/gemv.h"
#include "ops/linear.h"

namespace hfpipe::ops {

// The level softmax, LayerNorm and apply_activation run at: cpu_simd_level() unless lowered
// (as the tests do, to run every kernel the machine has); a level above the CPU's is lowered
// to it. Levels differ in the last bits (sums over 1, 8 or 16 lanes; vector tanh / erf / exp
// against libm's), never between calls on one.
SimdLevel row_simd_level();
void set_row_simd_level(SimdLevel level);

// x[r] = LayerNorm(x[r] + residual[r]) * gamma + beta for each of `rows` rows of `dim`
// floats; residual may be null. Matches torch.nn.LayerNorm (biased variance).
void add_layer_norm(float* x, const float* residual, int64_t rows, int64_t dim, const float* gamma,
                    const float* beta, float eps);

// In-place softmax over each of `rows` rows of `dim` floats (max-subtracted, as PyTorch).
void softmax_rows(float* x, int64_t rows, int64_t dim);

// In-place activation over n floats.
void apply_activation(float* x, int64_t n, Activation activation);

// x[i] = tanh(x[i] / cap) * cap over n floats: Gemma 2's soft-capping of attention scores and
// final logits, in f32 as transformers divides, takes tanh and multiplies (vector tanh above the
// plain level, within 1e-6 relative of libm's).
void soft_cap(float* x, int64_t n, float cap);

// out[i] = a[i] + b[i]
void add(const float* a, const float* b, float* out, int64_t n);

// dst[c * ld_dst + r] = src[r * ld_src + c] for r < rows, c < cols: a matrix copied transposed
// (GPT-2's Conv1D weights, stored [in, out], into the [out, in] rows the kernels read). 8 x 8
// blocks in AVX2 registers from the AVX2 level up (row_simd_level()); split between the threads.
// Needs ld_src >= cols, ld_dst >= rows and src, dst apart.
void transpose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float* dst, int64_t ld_dst);

// Scaled dot-product self-attention of a batch of padded sequences, as BERT-family encoders
// do it. q, k, v, out: [batch, seq, heads * head_dim] rows. key_mask: [batch, seq] with 1 for
// real tokens, 0 for padding, which must come after a sequence's tokens (right padding);
// padded positions are skipped entirely and their output rows are zero. position_bias: optional
// [heads, seq, seq] added to the scores (MPNet's relative bias), may be null.
struct AttentionShape {
  int64_t batch, seq, heads, head_dim;
};
void self_attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& shape,
                    const int32_t* key_mask, const float* position_bias);

}  // namespace hfpipe::ops
