// Decoder-only (causal) language models as the generation engine sees them: a forward pass
// over a batch's new tokens at given positions that appends their keys and values to a
// preallocated cache and returns next-token logits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "formats/config.h"
#include "formats/weights.h"
#include "models/layers.h"
#include "ops/decoder_ops.h"
#include "ops/linear.h"

namespace hfpipe::models {

// std::allocator that leaves default-constructed elements uninitialised (vector::resize then
// does not write them): what KvCache allocates is written before it is read.
template <class T>
struct UninitialisedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitialisedAllocator<U>;
  };
  UninitialisedAllocator() = default;
  template <class U>
  UninitialisedAllocator(const UninitialisedAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// Keys and values of every layer for a batch of sequences, allocated once for `capacity`
// positions so that decoding never reallocates. All rows advance together (left padding
// keeps them aligned), so one length serves the batch.
class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t layers, int64_t batch, int64_t capacity, int64_t kv_dim);

  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }  // positions filled so far
  // Layer `layer`'s view; the model writes positions length() .. and then calls advance().
  ops::CacheView layer(int64_t layer);
  void advance(int64_t tokens);
  // Row b takes what row source_rows[b] held (beam search's reordering of beams), keys, values
  // and recorded ids / positions alike: one entry per row, each a valid row. Rows may be
  // duplicated or dropped.
  void reorder(const std::vector<int64_t>& source_rows);

  // Token and position ids of the positions length() .. length() + new_tokens, [batch,
  // new_tokens] each, kept beside the cache for a model that may have to recompute it from
  // scratch (Phi-3 when longrope switches to its long factors). Call before advance().
  void record(const int32_t* ids, const int32_t* positions, int64_t new_tokens);
  // Row b's recorded ids / positions, capacity() entries of which length() are filled.
  const int32_t* recorded_ids(int64_t b) const { return ids_.data() + b * capacity_; }
  const int32_t* recorded_positions(int64_t b) const { return positions_.data() + b * capacity_; }
  // Overwrites row `row`'s first `tokens` positions of every layer with row `source_row` of
  // `source` (same layers and key/value width).
  void copy_row(int64_t row, const KvCache& source, int64_t source_row, int64_t tokens);

 private:
  // Not zero-filled: a position is read only after the model wrote it (zeroing a batch-8
  // cache, 70-108 MB for these models at 192 positions, sat in the time to first token).
  using Floats = std::vector<float, UninitialisedAllocator<float>>;
  Floats keys_, values_;
  std::vector<int32_t> ids_, positions_;  // [batch, capacity], allocated by the first record()
  int64_t layers_ = 0, batch_ = 0, capacity_ = 0, kv_dim_ = 0, length_ = 0;
};

// One forward step: `new_tokens` tokens for each of `batch` rows.
struct DecoderStep {
  int64_t batch = 0, new_tokens = 0;
  const int32_t* ids = nullptr;        // [batch, new_tokens]
  const int32_t* positions = nullptr;  // [batch, new_tokens] position ids
  const int32_t* key_mask = nullptr;   // [batch, cache.length() + new_tokens]; 0 = padding
  // Plain causal attention on every layer, sliding windows off: what transformers computes
  // when Phi-3 recomputes its cache at the longrope switch (see phi3.cpp).
  bool ignore_sliding_window = false;
};

class DecoderModel {
 public:
  virtual ~DecoderModel() = default;

  // Runs the step, appending to `cache`. Returns the logits of each row's last token,
  // [batch, vocab], or with all_positions those of every new token, [batch, new_tokens, vocab].
  virtual Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions = false) const = 0;
  // An empty cache for `batch` rows of up to `capacity` positions.
  virtual KvCache new_cache(int64_t batch, int64_t capacity) const = 0;
  // Reorders the per-row decoding state as KvCache::reorder does (beam search). A model that
  // keeps more per-row state than the cache (e.g. an encoder-decoder's cross-attention inputs,
  // when rows of different inputs could move) overrides this and reorders that state too.
  virtual void reorder_rows(KvCache& cache, const std::vector<int64_t>& source_rows) const {
    cache.reorder(source_rows);
  }

  virtual int64_t vocab_size() const = 0;
  // config.json's max_position_embeddings (n_positions for GPT-2).
  virtual int64_t max_position_embeddings() const = 0;
  // Whether positions past max_position_embeddings cannot be computed at all (learned
  // position tables); rotary models extrapolate, as transformers lets them.
  virtual bool positions_are_bounded() const = 0;
};

// What every decoder-only family (gpt2.cpp ... gemma.cpp) answers the same way: the cache is
// `layers` x `kv_width` floats per position, and the sizes come from config.json. A family
// fills sizes_ in its constructor.
class DecoderBase : public DecoderModel {
 public:
  KvCache new_cache(int64_t batch, int64_t capacity) const override {
    return KvCache(sizes_.layers, batch, capacity, sizes_.kv_width);
  }
  int64_t vocab_size() const override { return sizes_.vocab; }
  int64_t max_position_embeddings() const override { return sizes_.max_positions; }
  bool positions_are_bounded() const override { return sizes_.bounded_positions; }

 protected:
  struct Sizes {
    int64_t layers = 0, kv_width = 0, vocab = 0, max_positions = 0;
    bool bounded_positions = false;  // learned position tables (see positions_are_bounded)
  };
  Sizes sizes_;
};

// Builds the model for config.model_type (llama, mistral, qwen2, gpt2). Unknown model_type →
// Error(UnsupportedModel) listing the supported ones.
std::unique_ptr<DecoderModel> load_decoder(const formats::ModelConfig& config, formats::WeightMap weights);
std::vector<std::string> supported_decoder_types();
// A GGUF file as a decoder model (gguf_decoder.cpp): llama as Llama; gemma3 mapped to
// transformers' gemma3_text names and built by load_decoder; other architectures are
// Error(UnsupportedModel).
// `precision` is the pipeline's torch_dtype (ops::Precision::BFloat16: see decoder_linear).
std::unique_ptr<DecoderModel> load_gguf_decoder(const std::filesystem::path& path,
                                                ops::Precision precision = ops::Precision::Float32);
// The config.json transformers derives from a GGUF file's metadata (load_gguf_checkpoint).
Value gguf_model_config(const std::filesystem::path& path);
// Undoes llama.cpp's interleaving of each head's rotary halves in a GGUF llama query / key
// projection ([heads * 2 * half, in], writable), in place (LlamaTensorProcessor's
// _reverse_permute_weights): row a * half + b of each head takes its old row b * 2 + a. A row
// count that is not a multiple of 2 x heads is Error(CorruptFile).
void reverse_permute_in_place(Tensor& weight, int64_t heads);

// Family factories, one per file (llama.cpp, gpt2.cpp).
std::unique_ptr<DecoderModel> make_llama(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<DecoderModel> make_gpt2(const formats::ModelConfig&, formats::WeightMap);
// gpt_neo.cpp, gpt_neox.cpp, opt.cpp, phi3.cpp.
std::unique_ptr<DecoderModel> make_gpt_neo(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<DecoderModel> make_gpt_neox(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<DecoderModel> make_opt(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<DecoderModel> make_phi3(const formats::ModelConfig&, formats::WeightMap);

// What a family's rotary embedding is built from (rope_scaling.cpp reads the rest of
// config.json: rope_scaling).
struct RopeParams {
  double theta = 10000.0;             // rope_theta (rotary_emb_base for GPT-NeoX)
  int64_t head_dim = 0;               // floats per head
  int64_t rotary_dim = 0;             // the rotated part: int(head_dim * partial_rotary_factor)
  int64_t max_positions = 0;          // max_position_embeddings
  int64_t original_max_positions = 0; // top-level original_max_position_embeddings (Phi-3), 0 if absent
};
// The rotary embedding for config.json's rope_scaling (default, linear, dynamic, yarn,
// longrope, llama3); an unknown type is Error(UnsupportedModel), a missing field
// Error(CorruptFile).
ops::Rope rope_from_config(const formats::ModelConfig& config, const RopeParams& params);
// The length past which longrope switches from short_factor to long_factor.
int64_t longrope_original_length(const RopeParams& params);

// Rows of a fused weight or bias (dim 0) copied out: `blocks` runs of `count` rows, the k-th
// starting at first + k * stride. Splits GPT-NeoX's per-head [q k v] and Phi-3's [q; k; v]
// and [gate; up] projections into the separate matrices the kernels take; a fused tensor
// too short for the config is Error(CorruptFile).
Tensor fused_rows(const Tensor& fused, int64_t first, int64_t count, int64_t stride = 0, int64_t blocks = 1);

// Gemma 1/2/3 (gemma.cpp): model_type gemma, gemma2, gemma3_text, and the text part of a gemma3
// (multimodal) checkpoint.
std::unique_ptr<DecoderModel> make_gemma(const formats::ModelConfig&, formats::WeightMap);

// The rotary embedding of a Llama-style config.json (rope_theta, rope_scaling default / linear /
// llama3), as llama.cpp builds it; shared with the families that reuse it (gemma.cpp).
ops::Rope rope_from_llama_config(const formats::ModelConfig& config, int64_t head_dim);

// Config key hfpipe sets (never read from config.json, as transformers ignores it there) for the
// attention implementation transformers would run: "sdpa" (its default) or "eager" (asked for
// with attn_implementation="eager"). They differ for Gemma 2, whose attention soft-capping only
// the eager path applies.
inline constexpr const char* kAttnImplementationKey = "hfpipe_attn_implementation";
// Returns `config` with kAttnImplementationKey set; "sdpa" and "eager" only (else InvalidArgument).
formats::ModelConfig with_attn_implementation(const formats::ModelConfig& config, const std::string& name);

// Rows of each batch row's last token, or all of them, copied out of [batch * n, dim].
std::vector<float> select_rows(const std::vector<float>& hidden, int64_t batch, int64_t n, int64_t dim,
                               bool all_positions);

// ---- Building blocks of the decoder families (decoder.cpp). Each family file keeps what is its
// own (position scheme, residual wiring, norms around the blocks); these are the parts whose
// arithmetic is the same everywhere, so one copy serves all.

// A decoder's Linear over an F32 [out, in] weight that nothing else reads. In float32 on
// AVX-512 CPUs (ops::panels_preferred), a weight mapped from the file is copied into column
// panels (ops/panels.h: a 64-row prompt ~1.2x oneDNN's brgemm and ~1.3x skinny_linear, a
// decoding step one sequential stream) and the file's pages are given back; a weight the model
// made itself (an f16 / bf16 checkpoint widened to f32, a dequantised tensor, a slice of a
// fused matrix) stays as it is: whether anything else still holds it is not known here, and a
// copy beside it would double its memory. When the model runs in bfloat16 (torch_dtype), the
// weight rounded into a BF16 matrix (half the bytes a decoding step reads), the file's pages of
// the f32 original given back.
ops::Linear decoder_linear(const WeightReader& reader, const Tensor& weight, const Tensor& bias,
                           ops::Activation activation = ops::Activation::None);
// <name>.weight, and <name>.bias when `bias`, as a Linear (decoder_linear, or the checkpoint's
// block-quantised weight).
ops::Linear load_linear(const WeightReader& reader, const std::string& name, bool bias,
                        ops::Activation activation = ops::Activation::None);

// A decoder's token embedding table (every family's): f32, or kept block-quantised as a GGUF
// file stores it (Llama, Gemma) with rows decoded on lookup, or in column panels shared with a
// tied LM head (lm_head). The table is also the
// tied LM head, and as f32 it is the biggest tensor of small models (Gemma 3 270M: 671 MB for
// 180 MB of Q8_0).
class TokenEmbeddings {
 public:
  TokenEmbeddings() = default;
  TokenEmbeddings(const WeightReader& reader, const std::string& name);
  // Rows of `ids` (n of them) into out (n x dim); an id outside the table is InvalidArgument.
  void lookup(const int32_t* ids, int64_t n, float* out) const;
  // The LM head: this table when tied, else the head weight `head_name` (a Tensor or quantised).
  // Tied, in float32 on AVX-512 CPUs (ops::panels_preferred), a table mapped from the file
  // moves into column panels that the head and the lookups share (the file's pages given back):
  // the head then streams like every other f32 weight (GPT-2's 154 MB a step at ~42 GB/s instead
  // of ~38.5 on skinny_linear's rows) and a lookup gathers its row from the panels. Call it once,
  // before any lookup.
  ops::Linear lm_head(const WeightReader& reader, bool tied, const std::string& head_name);

 private:
  Tensor table_;  // undefined once the table is in panels_
  std::optional<ops::QuantizedMatrix> quantized_;
  std::optional<ops::PanelMatrix> panels_;
};

// Scratch of one forward call, sized for its rows and reused by every layer.
struct DecoderScratch {
  std::vector<float> normed, q, k, v, context, projected, inner, up;
  // q_width = heads * head_dim, kv_width = kv_heads * head_dim; `up` only for gated MLPs.
  DecoderScratch(int64_t rows, int64_t hidden, int64_t q_width, int64_t kv_width, int64_t inner, bool gated);
};

// One self-attention sub-layer's weights.
struct SelfAttention {
  ops::Linear q, k, v, o;
  Tensor q_norm, k_norm;       // per-head RMSNorm weights (Qwen3, Gemma 3); undefined = none
  int64_t sliding_window = 0;  // 0 = full attention
};

// A self-attention of separate nn.Linear projections <prefix>q_proj, k_proj, v_proj (with a bias
// when qkv_bias) and <prefix><out_name> (with a bias when out_bias), as OPT, GPT-Neo, Llama and
// Gemma name them; no q/k norms, full attention (the family sets those that it has).
SelfAttention load_projection_attention(const WeightReader& reader, const std::string& prefix,
                                        const std::string& out_name, bool qkv_bias, bool out_bias);

// What differs between families (and layers) in how they attend.
struct AttentionParams {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1.f;                // multiplies q.k
  float softcap = 0.f;              // Gemma 2's eager soft-capping of the scores; 0 = none
  float norm_eps = 1e-6f;           // of q_norm / k_norm
  const ops::Rope* rope = nullptr;  // rotary positions; null for learned position tables
  // OPT multiplies the projected queries by `scale` and attends with 1 (transformers'
  // order of operations, which rounds differently from scaling the scores).
  bool scale_queries = false;

  // `heads` query heads of head_dim over kv_heads key/value heads, q.k scaled by `scale`.
  static AttentionParams grouped(int64_t heads, int64_t kv_heads, int64_t head_dim, float scale) {
    AttentionParams p;
    p.heads = heads;
    p.kv_heads = kv_heads;
    p.head_dim = head_dim;
    p.scale = scale;
    return p;
  }
};

// scratch.normed (the sub-layer's normed input, [rows, hidden]) → scratch.projected: q/k/v,
// q/k norms, rotary embedding, causal attention over `cache` (which receives the new keys and
// values), o-projection. The sliding window is dropped when the step asks
// (DecoderStep::ignore_sliding_window).
void self_attention(const SelfAttention& attention, const AttentionParams& params, const DecoderStep& step,
                    const ops::CacheView& cache, int64_t past, DecoderScratch& scratch);

// A pre-norm RMSNorm layer (llama.cpp, gemma.cpp):
//   x += attn_out_norm(attention(attn_in_norm(x)));  x += mlp_out_norm(down(act(gate(h)) * up(h)))
// with h = mlp_in_norm(x); the out norms are Gemma 2/3's and undefined (skipped) elsewhere.
struct RmsNormLayer {
  Tensor attn_in_norm, attn_out_norm, mlp_in_norm, mlp_out_norm;
  SelfAttention attention;
  ops::Linear gate, up, down;  // gate carries the activation
  void run(std::vector<float>& x, float eps, const AttentionParams& params, const DecoderStep& step,
           const ops::CacheView& cache, int64_t past, DecoderScratch& scratch) const;
  // gate, up and down from <prefix>gate_proj, up_proj, down_proj (Llama's and Gemma's names),
  // with biases when `bias`; gate carries `activation`.
  void load_gated_mlp(const WeightReader& reader, const std::string& prefix, bool bias, ops::Activation activation);
};

// A LayerNorm layer of GPT-2's shape (gpt2.cpp, gpt_neo.cpp, opt.cpp, gpt_neox.cpp's sequential
// residual), with an MLP proj(act(fc(h))):
//   pre-norm:  x += attention(attn_norm(x));  x += mlp(mlp_norm(x))
//   post-norm: x = attn_norm(x + attention(x));  x = mlp_norm(x + mlp(x))   (OPT-350m)
struct LayerNormLayer {
  LayerNorm attn_norm, mlp_norm;
  SelfAttention attention;
  ops::Linear fc, proj;  // fc carries the activation
  void run(std::vector<float>& x, bool pre_norm, const AttentionParams& params, const DecoderStep& step,
           const ops::CacheView& cache, int64_t past, DecoderScratch& scratch) const;
  // scratch.normed → scratch.projected through fc and proj.
  void mlp(int64_t rows, DecoderScratch& scratch) const;
};

// GPT-2's layout, shared by gpt2.cpp and gpt_neo.cpp: token + learned position embeddings,
// pre-norm LayerNormLayers, a final LayerNorm and the LM head. The family loads the weights
// (and fills sizes_) and says how each layer attends.
class LearnedPositionsDecoder : public DecoderBase {
 public:
  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override;

 protected:
  virtual AttentionParams attention_params(size_t layer) const = 0;

  int64_t hidden_ = 0, heads_ = 0, inner_ = 0;
  TokenEmbeddings token_embeddings_;
  Tensor position_embeddings_;
  std::vector<LayerNormLayer> layers_;
  LayerNorm final_norm_;
  ops::Linear lm_head_;
};

// The end of every family's forward(): the rows of each sequence's last position (or all of
// them, with all_positions) out of `hidden` ([rows, width]), `final_layers` over them (the final
// norm; OPT's project_out, which may change their width), then the LM head: logits [batch,
// vocab], or [batch, new_tokens, vocab]. An LM head of another width than `vocab` is
// Error(CorruptFile).
using FinalLayers = std::function<void(std::vector<float>& rows, int64_t count)>;
Tensor lm_head_logits(const std::vector<float>& hidden, int64_t width, const DecoderStep& step, bool all_positions,
                      const FinalLayers& final_layers, const ops::Linear& lm_head, int64_t vocab);

}  // namespace hfpipe::models
