#include "pipelines/text_inputs.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace hfpipe::pipelines {

namespace {

std::optional<text::TruncationStrategy> truncation_strategy(const Value& v, const std::string& task) {
  if (v.is_null()) return std::nullopt;
  if (v.is_boolean()) return v.get<bool>() ? std::optional(text::TruncationStrategy::LongestFirst) : std::nullopt;
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s == "longest_first") return text::TruncationStrategy::LongestFirst;
    if (s == "only_first") return text::TruncationStrategy::OnlyFirst;
    if (s == "only_second") return text::TruncationStrategy::OnlySecond;
    if (s == "do_not_truncate") return std::nullopt;
  }
  fail(ErrorKind::InvalidArgument, "truncation for " + task +
                                       " must be true, false, \"longest_first\", \"only_first\", \"only_second\" or "
                                       "\"do_not_truncate\", got " + v.dump());
}

}  // namespace

text::EncodeOptions encode_options_from(const Value& kwargs, const text::Tokenizer& tokenizer, const std::string& task) {
  text::EncodeOptions options;
  std::optional<int64_t> max_length;
  std::optional<text::TruncationStrategy> strategy;
  for (const auto& [key, value] : kwargs.items()) {
    if (key == "truncation") {
      strategy = truncation_strategy(value, task);
    } else if (key == "max_length") {
      if (!value.is_null() && (!value.is_number_integer() || value.get<int64_t>() <= 0))
        fail(ErrorKind::InvalidArgument, "max_length must be a positive integer, got " + value.dump());
      if (!value.is_null()) max_length = value.get<int64_t>();
    } else if (key == "add_special_tokens") {
      if (!value.is_boolean()) fail(ErrorKind::InvalidArgument, "add_special_tokens must be true or false");
      options.add_special_tokens = value.get<bool>();
    } else if (key == "padding") {
      // One input is never padded unless padding="max_length" asks for it, which hfpipe
      // does not do yet: the padded positions carry no information for these tasks.
      const bool no_op = value.is_null() || value.is_boolean() ||
                         (value.is_string() && (value == "longest" || value == "do_not_pad"));
      if (!no_op)
        fail(ErrorKind::InvalidArgument, "padding " + value.dump() + " is not supported by hfpipe's " + task +
                                             " (only true, false, \"longest\", \"do_not_pad\")");
    } else {
      fail(ErrorKind::InvalidArgument, "unknown tokenizer argument '" + key + "' for " + task +
                                           "; known: truncation, max_length, add_special_tokens, padding");
    }
  }
  if (strategy) {
    // transformers: truncation without max_length truncates to the tokenizer's model_max_length.
    const int64_t limit = max_length.value_or(tokenizer.model_max_length());
    options.truncation = text::TruncationOptions{static_cast<size_t>(limit), *strategy, 0, text::Side::Right};
  }
  return options;
}

text::Encoding encode_input(const text::Tokenizer& tokenizer, const TextInput& input, const text::EncodeOptions& options,
                            int64_t model_limit) {
  if (!text::is_valid_utf8(input.text) || (input.pair && !text::is_valid_utf8(*input.pair)))
    fail(ErrorKind::InvalidArgument, "the input text is not valid UTF-8");
  text::Encoding encoding =
      input.pair ? tokenizer.encode_pair(input.text, *input.pair, options) : tokenizer.encode(input.text, options);
  if (static_cast<int64_t>(encoding.size()) > model_limit)
    fail(ErrorKind::InvalidArgument,
         "the input is " + std::to_string(encoding.size()) + " tokens long, but the model accepts at most " +
             std::to_string(model_limit) + "; pass truncation=true (CLI: --param truncation=true) to cut it");
  return encoding;
}

void for_each_batch(const std::vector<text::Encoding>& encodings, int64_t batch_size, int32_t pad_id,
                    const std::function<void(const models::EncoderInputs&, const std::vector<size_t>&)>& run) {
  if (batch_size < 1) fail(ErrorKind::InvalidArgument, "batch_size must be at least 1");
  std::vector<size_t> order(encodings.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return encodings[a].size() < encodings[b].size(); });
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<size_t> items(order.begin() + static_cast<std::ptrdiff_t>(start),
                              order.begin() + static_cast<std::ptrdiff_t>(
                                                  std::min(order.size(), start + static_cast<size_t>(batch_size))));
    models::EncoderInputs batch;
    batch.batch = static_cast<int64_t>(items.size());
    for (size_t i : items) batch.seq = std::max<int64_t>(batch.seq, static_cast<int64_t>(encodings[i].size()));
    const size_t cells = static_cast<size_t>(batch.batch * batch.seq);
    batch.input_ids.assign(cells, pad_id);
    batch.token_type_ids.assign(cells, 0);
    batch.attention_mask.assign(cells, 0);
    for (size_t row = 0; row < items.size(); ++row) {
      const text::Encoding& e = encodings[items[row]];
      const size_t base = row * static_cast<size_t>(batch.seq);
      std::copy(e.ids.begin(), e.ids.end(), batch.input_ids.begin() + static_cast<std::ptrdiff_t>(base));
      std::copy(e.type_ids.begin(), e.type_ids.end(), batch.token_type_ids.begin() + static_cast<std::ptrdiff_t>(base));
      std::fill_n(batch.attention_mask.begin() + static_cast<std::ptrdiff_t>(base), e.size(), 1);
    }
    run(batch, items);
  }
}

std::string expect_text(const Value& input, const std::string& task) {
  if (!input.is_string())
    fail(ErrorKind::InvalidArgument, task + " takes texts (strings) as inputs, got " + input.dump());
  return input.get<std::string>();
}

}  // namespace hfpipe::pipelines
