// sentence-transformers' post-processing of token embeddings, read from the model folder:
// modules.json lists the modules; 1_Pooling/config.json (or the listed path) says how token
// embeddings are pooled (cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken, in
// either the current "pooling_mode" form or the legacy pooling_mode_*_tokens flags, several
// modes concatenated in order); a Normalize module L2-normalises;
// sentence_bert_config.json gives the max_seq_length inputs are truncated to.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace hfpipe::pipelines {

class SentencePooling {
 public:
  enum class Mode { Cls, Max, Mean, MeanSqrtLen, WeightedMean, LastToken };

  // nullopt when the folder has no modules.json. Modules other than Transformer, Pooling and
  // Normalize (e.g. Dense) are Error(UnsupportedModel).
  static std::optional<SentencePooling> load(const std::filesystem::path& model_dir);

  // token_embeddings: [seq, hidden] of one input (no padding rows). Returns the sentence vector.
  std::vector<float> pool(const float* token_embeddings, int64_t seq, int64_t hidden) const;

  std::optional<int64_t> max_seq_length() const { return max_seq_length_; }

 private:
  std::vector<Mode> modes_;
  bool normalize_ = false;
  std::optional<int64_t> max_seq_length_;
};

}  // namespace hfpipe::pipelines
