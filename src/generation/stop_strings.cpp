#include "generation/stop_strings.h"

#include <algorithm>

#include "core/error.h"

namespace hfpipe::generation {

namespace {

size_t char_count(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

// transformers' clean_tokenizer_vocab: convert_tokens_to_string(tokens of "abcdef" + [token])
// with everything up to the end of "abcdef" cut off, so that a token's leading-space marker or
// byte-level form comes out as the text it adds after other text.
std::vector<std::string> clean_vocab(const text::Tokenizer& tokenizer) {
  static constexpr const char* kPrefix = "abcdef";
  text::EncodeOptions options;
  options.add_special_tokens = false;
  std::vector<std::string> base;
  for (int32_t id : tokenizer.encode(kPrefix, options).ids)
    base.push_back(tokenizer.id_to_token(id).value_or(""));
  std::vector<std::string> clean(tokenizer.vocab_size());
  for (size_t id = 0; id < clean.size(); ++id) {
    const auto token = tokenizer.id_to_token(static_cast<int32_t>(id));
    if (!token) continue;
    std::vector<std::string> tokens = base;
    tokens.push_back(*token);
    const std::string text = tokenizer.convert_tokens_to_string(tokens);
    const size_t at = text.find(kPrefix);
    clean[id] = at == std::string::npos ? text : text.substr(at + 6);
  }
  return clean;
}

}  // namespace

StopStrings::StopStrings(const text::Tokenizer& tokenizer, std::vector<std::string> stop_strings)
    : stops_(std::move(stop_strings)) {
  if (stops_.empty()) return;  // no vocabulary pass without stop strings
  tokens_ = clean_vocab(tokenizer);
  for (const auto& s : stops_) window_ = std::max(window_, char_count(s));
  check_reachable();
}

StopStrings::StopStrings(std::vector<std::string> token_strings, std::vector<std::string> stop_strings)
    : tokens_(std::move(token_strings)), stops_(std::move(stop_strings)) {
  for (const auto& s : stops_) window_ = std::max(window_, char_count(s));
  if (!stops_.empty()) check_reachable();
}

// transformers refuses stop strings when no token of the vocabulary overlaps the end of any
// of them (its token_end_overlaps are all empty).
void StopStrings::check_reachable() const {
  for (const auto& stop : stops_)
    for (const auto& token : tokens_)
      for (size_t m = 1; m <= token.size(); ++m) {
        const std::string_view head(token.data(), m);  // the token's first m bytes
        const bool overlap = m >= stop.size() ? head.substr(m - stop.size()) == stop
                                              : std::string_view(stop).substr(stop.size() - m) == head;
        if (overlap) return;
      }
  fail(ErrorKind::InvalidArgument,
       "Stop string preprocessing was unable to identify tokens matching one or more of the supplied stop "
       "string(s). This is most often caused by the stop strings containing unusual characters that are not in "
       "the tokenizer vocabulary.");
}

bool StopStrings::matches(const std::vector<int32_t>& ids) const {
  if (stops_.empty() || ids.empty()) return false;
  // The text of the last `window_` tokens; the stop string must end inside the last token.
  const size_t first = ids.size() > window_ ? ids.size() - window_ : 0;
  std::string text;
  size_t last_start = 0;
  for (size_t i = first; i < ids.size(); ++i) {
    last_start = text.size();
    const int32_t id = ids[i];
    if (id >= 0 && static_cast<size_t>(id) < tokens_.size()) text += tokens_[id];
  }
  for (const auto& stop : stops_) {
    // Occurrences ending after last_start: start at or after last_start + 1 - stop.size().
    size_t from = last_start + 1 > stop.size() ? last_start + 1 - stop.size() : 0;
    if (text.find(stop, from) != std::string::npos) return true;
  }
  return false;
}

}  // namespace hfpipe::generation
