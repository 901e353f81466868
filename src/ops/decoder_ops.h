// Kernels of decoder-only (causal) language models: RMSNorm, rotary position embeddings and
// causal attention of new tokens over a preallocated key/value cache. Plain float buffers,
// CPU; a device backend would provide the same functions over its own buffers.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace hfpipe::ops {

// x[r] = weight * (x[r] / sqrt(mean(x[r]^2) + eps)) for each of `rows` rows of `dim` floats,
// in f32 with the products in the order LlamaRMSNorm takes them.
void rms_norm(float* x, int64_t rows, int64_t dim, const float* weight, float eps);

// Rotary embeddings in transformers' rotate_half layout: for each head of `head_dim` floats,
// the first `rotary_dim` are rotated, their first half pairing with the second half
// (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin), with angle position * inv_freq[i] computed
// in f32 as LlamaRotaryEmbedding does; the rest of the head passes through (partial rotary,
// GPT-NeoX's rotary_pct and Phi-3's partial_rotary_factor).
class Rope {
 public:
  // The inverse frequencies and the factor on cos and sin (yarn's and longrope's attention
  // factor) for one row of a step.
  struct Frequencies {
    std::vector<float> inv_freq;
    float scaling = 1.f;
  };
  // Frequencies for a row whose largest position in the step is seq_len - 1: dynamic NTK and
  // longrope choose them by the length the sequence has reached.
  using Schedule = std::function<Frequencies(int64_t seq_len)>;

  Rope() = default;
  // Fixed frequencies: rotary_dim = 2 * inv_freq.size(); head_dim 0 means rotary_dim.
  Rope(std::vector<float> inv_freq, float attention_scaling, int64_t head_dim = 0);
  // Length-dependent frequencies; schedule(n) must return rotary_dim / 2 of them.
  Rope(Schedule schedule, int64_t rotary_dim, int64_t head_dim);
  int64_t rotary_dim() const { return rotary_dim_; }
  // x: [batch, tokens, heads, head_dim]; positions: [batch, tokens]. Each batch row takes the
  // frequencies for its own largest position in the step, as transformers does for a batch
  // of one (a batch thus gives the results of its rows run one by one).
  void apply(float* x, int64_t batch, int64_t tokens, int64_t heads, const int32_t* positions) const;

 private:
  Frequencies fixed_;
  Schedule schedule_;  // empty: fixed_ everywhere
  int64_t rotary_dim_ = 0, head_dim_ = 0;
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

// out[i] = a[i] * b[i] (SwiGLU: the activated gate times the up projection).
void multiply(const float* a, const float* b, float* out, int64_t n);

}  // namespace hfpipe::ops
