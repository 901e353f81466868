// Generation parameters as transformers' GenerationConfig holds them, with its defaults, read
// from a model folder (generation_config.json, else the generation keys of config.json as
// GenerationConfig.from_model_config takes them) and updated from call parameters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "formats/config.h"
#include "hfpipe/value.h"

namespace hfpipe::generation {

// GenerationConfig.early_stopping: True, False or "never".
enum class EarlyStopping { False, True, Never };

// SequenceBiasLogitsProcessor's biases: each token sequence with the bias added to its last
// token's score when the row ends with the rest of it (a one-token sequence: always).
using SequenceBias = std::vector<std::pair<std::vector<int32_t>, float>>;

// ExponentialDecayLengthPenalty's (start_index, decay_factor): past `start` new tokens the eos
// scores grow by |score| * (factor^(tokens past start) - 1).
struct DecayPenalty {
  int64_t start = 0;
  double factor = 1.0;
  bool operator==(const DecayPenalty&) const = default;
};

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
  // More processors, in _get_logits_processor's order (see process_scores).
  std::optional<SequenceBias> sequence_bias;  // later duplicates win, as in a dict
  bool remove_invalid_values = false;
  std::optional<DecayPenalty> exponential_decay_length_penalty;
  std::optional<std::vector<int32_t>> suppress_tokens;
  std::optional<std::vector<int32_t>> begin_suppress_tokens;
  // Sampling warpers; transformers applies each only for a value in (0, 1).
  double epsilon_cutoff = 0.0;
  double eta_cutoff = 0.0;
  bool renormalize_logits = false;
  // The GenerationConfig attributes hfpipe reads only to refuse what it does not do (the
  // decoding modes transformers 4.57.6 moved to the Hub, ...), guidance_scale (read by
  // generation/guidance.h), and those that
  // change nothing in a pipeline's output (output flags, cache and compile settings), as given.
  Value other = Value::object();

  // The keys update() understands: every attribute of transformers 4.57.6's GenerationConfig
  // that a generate call or generation_config.json can set.
  static const std::vector<const char*>& keys();
  // Sets each known key present in `values` (a JSON object); a value of the wrong type is
  // Error(InvalidArgument) naming the key, and so are out-of-range values. Unknown keys are
  // ignored (the caller decides which keys it accepts; transformers keeps unknown keys of
  // generation_config.json as unused attributes).
  void update(const Value& values, const char* source = "parameter");
  // The known keys whose value differs from GenerationConfig()'s, as JSON.
  Value non_default_values() const;
};

// Refuses what transformers 4.57.6 refuses or hfpipe does not do: the decoding modes moved to
// the Hub (group / constrained beam search, contrastive search, DoLa: transformers' own message,
// as hfpipe runs no remote code), classifier-free guidance with beams, watermarking, token healing,
// max_time and generate's extra outputs; and out-of-range epsilon_cutoff / eta_cutoff.
// Everything else in `other` changes nothing in a pipeline's output and is accepted.
void check_supported(const GenerationConfig& config);

// The model's own generation config: generation_config.json when the folder has one, else the
// generation keys of config.json (bos/eos/pad token ids, max_length, ...).
GenerationConfig load_model_generation_config(const std::filesystem::path& model_dir,
                                              const formats::ModelConfig& config);

}  // namespace hfpipe::generation
