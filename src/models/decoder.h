// Decoder-only (causal) language models as the generation engine sees them: a forward pass
// over a batch's new tokens at given positions that appends their keys and values to a
// preallocated cache and returns next-token logits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/config.h"
#include "formats/weights.h"
#include "ops/decoder_ops.h"

namespace hfpipe::models {

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
  std::vector<float> keys_, values_;
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

// Builds the model for config.model_type (llama, mistral, qwen2, gpt2). Unknown model_type →
// Error(UnsupportedModel) listing the supported ones.
std::unique_ptr<DecoderModel> load_decoder(const formats::ModelConfig& config, formats::WeightMap weights);
std::vector<std::string> supported_decoder_types();
// A llama-architecture GGUF file as a Llama model (gguf_decoder.cpp); other architectures
// are Error(UnsupportedModel).
std::unique_ptr<DecoderModel> load_gguf_decoder(const std::filesystem::path& path);

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

}  // namespace hfpipe::models
