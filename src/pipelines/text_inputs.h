// Text preprocessing and batching shared by the text tasks: tokenizer keyword arguments as
// transformers takes them, length checks against the model, and length-sorted batches.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hfpipe/value.h"
#include "models/encoder.h"
#include "text/tokenizer.h"

namespace hfpipe::pipelines {

// One text or a text pair.
struct TextInput {
  std::string text;
  std::optional<std::string> pair;
};

// The tokenizer keyword arguments the text tasks accept: truncation (bool or a strategy
// name), max_length, add_special_tokens, padding (only the no-op forms for single inputs).
// Unknown keys are an error naming the known ones.
text::EncodeOptions encode_options_from(const Value& tokenizer_kwargs, const text::Tokenizer& tokenizer,
                                        const std::string& task);

// Tokenizes one input; invalid UTF-8 is Error(InvalidArgument), and so is an encoding longer
// than `model_limit` (the model's position embeddings), with advice to truncate.
text::Encoding encode_input(const text::Tokenizer& tokenizer, const TextInput& input,
                            const text::EncodeOptions& options, int64_t model_limit);

// Splits the items into batches of `batch_size` after sorting them by length (so little
// padding is computed), pads each batch to its longest item and calls `run` with the padded
// batch and the item indices of its rows, in row order. The order of calls is unspecified;
// callers store results by item index.
void for_each_batch(const std::vector<text::Encoding>& encodings, int64_t batch_size, int32_t pad_id,
                    const std::function<void(const models::EncoderInputs&, const std::vector<size_t>&)>& run);

// The string input of a task that accepts only texts; anything else is Error(InvalidArgument).
std::string expect_text(const Value& input, const std::string& task);

}  // namespace hfpipe::pipelines
