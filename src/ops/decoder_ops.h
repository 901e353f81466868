// Kernels of decoder-only (causal) language models: RMSNorm, rotary position embeddings and
// causal attention of new tokens over a preallocated key/value cache. Plain float buffers,
// CPU; a device backend would provide the same functions over its own buffers.
#pragma once

#include <cstdint>
#include <vector>

namespace hfpipe::ops {

// x[r] = weight * (x[r] / sqrt(mean(x[r]^2) + eps)) for each of `rows` rows of `dim` floats,
// in f32 with the products in the order LlamaRMSNorm takes them.
void rms_norm(float* x, int64_t rows, int64_t dim, const float* weight, float eps);

// Rotary embeddings in transformers' rotate_half layout: for each head of `head_dim` floats,
// the first half pairs with the second (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin), with
// angle position * inv_freq[i] computed in f32 as LlamaRotaryEmbedding does.
class Rope {
 public:
  Rope() = default;
  // inv_freq: head_dim / 2 inverse frequencies; attention_scaling multiplies cos and sin.
  Rope(std::vector<float> inv_freq, float attention_scaling);
  int64_t head_dim() const { return static_cast<int64_t>(inv_freq_.size()) * 2; }
  // x: `rows` rows of `heads` heads; positions: one per row.
  void apply(float* x, int64_t rows, int64_t heads, const int32_t* positions) const;

 private:
  std::vector<float> inv_freq_;
  float scaling_ = 1.f;
};

// Inverse frequencies 1 / base^(2i / dim) in f32, as _compute_default_rope_parameters.
std::vector<float> default_rope_inv_freq(double base, int64_t dim);

// One layer's view of a batch's key/value cache: row (b, t) of keys and values at
// keys + (b * capacity + t) * kv_heads * head_dim.
struct CacheView {
  float* keys;
  float* values;
  int64_t capacity;
};

struct CausalAttentionShape {
  int64_t batch, new_tokens, past;  // queries are cache positions past .. past + new_tokens - 1
  int64_t heads, kv_heads, head_dim;
  int64_t sliding_window;  // 0 = none; else key t is seen from query q only when q - t < window
  float scale;             // multiplies q.k (head_dim^-0.5 for Llama and GPT-2)
  // 0 = none; else each scaled score s becomes tanh(s / softcap) * softcap before the mask,
  // as Gemma 2's eager attention does (attn_logit_softcapping).
  float softcap = 0.f;
};

// Writes the new tokens' keys and values ([batch, new_tokens, kv_heads * head_dim]) into the
// cache at positions past .., then attends: each query sees the cache positions up to its own
// whose key_mask is 1 (key_mask: [batch, past + new_tokens], 0 for left padding). q and out:
// [batch, new_tokens, heads * head_dim]. Grouped-query attention maps query head h to key head
// h / (heads / kv_heads). A query with no visible key (a padding row) gets zeros.
void causal_attention(const float* q, const float* new_keys, const float* new_values, const CacheView& cache,
                      const int32_t* key_mask, float* out, const CausalAttentionShape& shape);

// x[i] = tanh(x[i] / cap) * cap: Gemma 2's final logit soft-capping, in f32 as transformers
// divides, takes tanh and multiplies.
void soft_cap(float* x, int64_t n, float cap);

// out[i] = a[i] * b[i] (SwiGLU: the activated gate times the up projection).
void multiply(const float* a, const float* b, float* out, int64_t n);

}  // namespace hfpipe::ops
