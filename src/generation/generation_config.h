// Generation parameters as transformers' GenerationConfig holds them, with its defaults, read
// from a model folder (generation_config.json, else the generation keys of config.json as
// GenerationConfig.from_model_config takes them) and updated from call parameters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "formats/config.h"
#include "hfpipe/value.h"

namespace hfpipe::generation {

// GenerationConfig.early_stopping: True, False or "never".
enum class EarlyStopping { False, True, Never };

struct GenerationConfig {
  int64_t max_length = 20;
  std::optional<int64_t> max_new_tokens;
  int64_t min_length = 0;
  std::optional<int64_t> min_new_tokens;
  bool do_sample = false;
  double temperature = 1.0;
  std::optional<int64_t> top_k = 50;
  double top_p = 1.0;
  std::optional<double> min_p;
  double repetition_penalty = 1.0;
  int64_t num_return_sequences = 1;
  std::vector<int32_t> eos_token_id;  // empty = none
  std::optional<int32_t> pad_token_id;
  std::optional<int32_t> bos_token_id;
  // Beam search.
  int64_t num_beams = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::False;
  // Processors that act in every decoding mode.
  int64_t no_repeat_ngram_size = 0;
  std::optional<std::vector<std::vector<int32_t>>> bad_words_ids;
  std::optional<int32_t> forced_bos_token_id;
  std::vector<int32_t> forced_eos_token_id;  // empty = none
  // A sampling warper.
  double typical_p = 1.0;
  // StopStringCriteria (generation/stop_strings.h), empty = none.
  std::vector<std::string> stop_strings;

  // The keys update() understands (GenerationConfig attribute names).
  static const std::vector<const char*>& keys();
  // Sets each known key present in `values` (a JSON object); a value of the wrong type is
  // Error(InvalidArgument) naming the key, and so are out-of-range values. Unknown keys are
  // ignored (the caller decides which keys it accepts).
  void update(const Value& values, const char* source = "parameter");
  // The known keys whose value differs from GenerationConfig()'s, as JSON.
  Value non_default_values() const;
};

// The model's own generation config: generation_config.json when the folder has one, else the
// generation keys of config.json (bos/eos/pad token ids, max_length, ...).
GenerationConfig load_model_generation_config(const std::filesystem::path& model_dir,
                                              const formats::ModelConfig& config);

}  // namespace hfpipe::generation
