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

 private:
  std::vector<float> keys_, values_;
  int64_t layers_ = 0, batch_ = 0, capacity_ = 0, kv_dim_ = 0, length_ = 0;
};

// One forward step: `new_tokens` tokens for each of `batch` rows.
struct DecoderStep {
  int64_t batch = 0, new_tokens = 0;
  const int32_t* ids = nullptr;        // [batch, new_tokens]
  const int32_t* positions = nullptr;  // [batch, new_tokens] position ids
  const int32_t* key_mask = nullptr;   // [batch, cache.length() + new_tokens]; 0 = padding
};

class DecoderModel {
 public:
  virtual ~DecoderModel() = default;

  // Runs the step, appending to `cache`. Returns the logits of each row's last token,
  // [batch, vocab], or with all_positions those of every new token, [batch, new_tokens, vocab].
  virtual Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions = false) const = 0;
  // An empty cache for `batch` rows of up to `capacity` positions.
  virtual KvCache new_cache(int64_t batch, int64_t capacity) const = 0;

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
// A GGUF file as a decoder model (gguf_decoder.cpp): llama as Llama; gemma3 mapped to
// transformers' gemma3_text names and built by load_decoder; other architectures are
// Error(UnsupportedModel).
std::unique_ptr<DecoderModel> load_gguf_decoder(const std::filesystem::path& path);
// The config.json transformers derives from a GGUF file's metadata (load_gguf_checkpoint).
Value gguf_model_config(const std::filesystem::path& path);

// Family factories, one per file (llama.cpp, gpt2.cpp).
std::unique_ptr<DecoderModel> make_llama(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<DecoderModel> make_gpt2(const formats::ModelConfig&, formats::WeightMap);

// Rows of each batch row's last token, or all of them, copied out of [batch * n, dim].
std::vector<float> select_rows(const std::vector<float>& hidden, int64_t batch, int64_t n, int64_t dim,
                               bool all_positions);

}  // namespace hfpipe::models
