// Element-wise and row-wise CPU kernels over plain float buffers. One binary runs on every
// x86-64: softmax and LayerNorm have AVX2+FMA intrinsic kernels (ops/avx2_math.h: a vector
// exp, which GCC cannot produce from std::exp) chosen at run time, with plain loops as the
// fallback; simple loops are compiled twice with target_clones.
#pragma once

#include <cstdint>

#include "ops/linear.h"

namespace hfpipe::ops {

// x[r] = LayerNorm(x[r] + residual[r]) * gamma + beta for each of `rows` rows of `dim`
// floats; residual may be null. Matches torch.nn.LayerNorm (biased variance).
void add_layer_norm(float* x, const float* residual, int64_t rows, int64_t dim, const float* gamma,
                    const float* beta, float eps);

// In-place softmax over each of `rows` rows of `dim` floats (max-subtracted, as PyTorch).
void softmax_rows(float* x, int64_t rows, int64_t dim);

// In-place activation over n floats.
void apply_activation(float* x, int64_t n, Activation activation);

// out[i] = a[i] + b[i]
void add(const float* a, const float* b, float* out, int64_t n);

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
