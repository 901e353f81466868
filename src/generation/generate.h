// The decoding loop of GenerationMixin.generate for decoder-only models: greedy search and
// multinomial sampling over a batch of prompts, left-padded and decoded together with one
// preallocated key/value cache.
//
// Each row is decoded exactly as if it were alone (its own length limits, its own repetition
// history, its own random stream): batching changes speed, not results. transformers
// batches differ from its one-by-one runs only in ways hfpipe does not copy (a padded row's
// max_length counts the padding); hfpipe's pipeline, like transformers', runs one prompt at a
// time unless asked to batch, so the outputs match transformers' either way.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "generation/generation_config.h"
#include "models/decoder.h"

namespace hfpipe::generation {
class StopStrings;
}

namespace hfpipe::generation {

// hfpipe's random numbers (xoshiro256**, seeded through splitmix64): reproducible on every
// platform for a given seed, not the same stream as torch's.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1)

 private:
  uint64_t s_[4];
};

// A row's total-length limits, as _prepare_generated_length derives them.
struct RowLimits {
  int64_t max_length = 0;  // prompt + new tokens
  int64_t min_length = 0;  // eos is suppressed while the row is shorter
  int64_t prompt_length = 0;  // where the new tokens start (begin_suppress_tokens, length decay)
};

// max_new_tokens wins over max_length; a max_length that was not passed by the caller and is
// still the global default 20 counts from the prompt (capped at max_positions). A prompt at
// or over max_length is Error(InvalidArgument), as transformers refuses it.
RowLimits resolve_limits(const GenerationConfig& config, int64_t prompt_length, bool max_length_given,
                         int64_t max_positions);

// Refuses the parameter values transformers' processors and GenerationConfig.validate refuse.
void validate(const GenerationConfig& config);

struct Row {
  std::vector<int32_t> prompt;  // not empty
  RowLimits limits;
  uint64_t seed = 0;  // the row's random stream (sampling only)
};

// Told of each new token as soon as it is chosen: (row index, token), rows in order within a
// step (streaming; transformers' streamer.put). A search that revises earlier tokens (beam
// search) cannot stream and must refuse a callback, as transformers refuses a streamer.
using TokenCallback = std::function<void(size_t row, int32_t token)>;

// Decodes every row; returns each row's new tokens (the eos that ended it included).
// `pad_id` fills left padding and the input of finished rows; a row also stops at the token
// that completes one of `stop_strings`.
std::vector<std::vector<int32_t>> generate(const models::DecoderModel& model, const std::vector<Row>& rows,
                                           const GenerationConfig& config, int32_t pad_id,
                                           const TokenCallback& on_token = {},
                                           const StopStrings* stop_strings = nullptr);

// The left-padded batch of rows' prompts: ids, attention mask and position ids (mask cumsum
// - 1, padding at 1, as prepare_inputs_for_generation makes them). Shared with beam search.
struct PaddedBatch {
  int64_t batch = 0, length = 0;
  std::vector<int32_t> ids, mask, positions;
};
PaddedBatch left_pad(const std::vector<Row>& rows, int32_t pad_id);

// After a decoding step the [batch, width] attention mask gains one column of ones (finished
// rows keep feeding padding, unread). Shared with beam search.
void append_mask_column(std::vector<int32_t>& mask, int64_t batch, int64_t width);

}  // namespace hfpipe::generation
