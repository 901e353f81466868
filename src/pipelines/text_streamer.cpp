#include "pipelines/text_streamer.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "text/unicode.h"

namespace hfpipe::pipelines {

namespace {

using text::unicode::byte_offset_of_char;

// The length without a trailing unfinished UTF-8 sequence (a decoder that keeps raw bytes).
size_t without_partial_character(const std::string& text) {
  size_t start = text.size();
  for (int back = 0; back < 4 && start > 0; ++back) {
    const auto c = static_cast<unsigned char>(text[--start]);
    if ((c & 0xC0) != 0x80) {
      const size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      return text.size() - start >= need ? text.size() : start;
    }
  }
  return text.size();
}

// After a move the window keeps its last kWindow tokens, and it moves once it holds twice as
// many: each token is decoded a bounded number of times whatever the sequence's length.
constexpr size_t kWindow = 16;
// Tokens decoded before the window's first one and cut off again: enough that the first-token
// rules of the decoders (and a clean-up pattern, at most 4 characters) see what they see in the
// whole sequence.
constexpr size_t kContext = 4;

// transformers' clean_up_tokenization patterns: each starts with the space it deletes.
constexpr std::array<std::string_view, 10> kCleanUpPatterns = {" .", " ?", " !", " ,", " ' ",
                                                               " n't", " 'm", " 's", " 've", " 're"};

}  // namespace

size_t stable_prefix_length(const std::string& text, bool clean_up) {
  size_t end = without_partial_character(text);
  static const std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  while (end >= 3 && std::string_view(text).substr(end - 3, 3) == kReplacement) end -= 3;
  if (!clean_up) return end;
  const size_t space = std::string_view(text).substr(0, end).rfind(' ');
  if (space == std::string_view::npos) return end;
  const std::string_view tail = std::string_view(text).substr(space, end - space);
  bool open = false;
  for (std::string_view pattern : kCleanUpPatterns)
    open = open || (tail.size() < pattern.size() && pattern.substr(0, tail.size()) == tail);
  if (!open) return end;
  // The passes run one after another, and " ' " -> "'" deletes the held-back space: what it
  // then joins can complete a later pattern that starts further back, "x  ' s" -> "x 's" ->
  // "x's" (a space before it) and "do n ' t" -> "do n't" -> "don't" (" n" before it).
  if (tail == " " || tail == " '") {
    if (space >= 1 && text[space - 1] == ' ') return space - 1;
    if (space >= 2 && text.compare(space - 2, 2, " n") == 0) return space - 2;
  }
  return space;
}

TextStreamer::TextStreamer(const text::Tokenizer& tokenizer, std::vector<int32_t> prompt_ids, size_t prompt_chars,
                           bool skip_special_tokens, bool clean_up, Sink sink)
    : tokenizer_(tokenizer),
      sequence_(std::move(prompt_ids)),
      prompt_chars_(prompt_chars),
      skip_special_(skip_special_tokens),
      clean_up_(clean_up),
      sink_(std::move(sink)) {}

std::string TextStreamer::decode(size_t from, size_t to) {
  decoded_tokens_ += to - from;
  return tokenizer_.decode(std::vector<int32_t>(sequence_.begin() + from, sequence_.begin() + to), skip_special_,
                           clean_up_);
}

std::optional<std::string> TextStreamer::text_after(size_t context, const std::string& context_text, size_t to) {
  std::string all = decode(context, to);
  if (all.compare(0, context_text.size(), context_text) != 0) return std::nullopt;
  return all.substr(context_text.size());
}

std::string TextStreamer::window_text() {
  if (auto text = text_after(context_, context_text_, sequence_.size())) return *std::move(text);
  // The context decodes differently now: start over from the first token, where nothing is cut.
  start_ = context_ = settled_ = 0;
  context_text_.clear();
  return decode(0, sequence_.size());
}

bool TextStreamer::is_byte_token(int32_t id) const {
  const auto t = tokenizer_.id_to_token(id);
  return t && t->size() == 6 && t->compare(0, 3, "<0x") == 0 && (*t)[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>((*t)[3])) && std::isxdigit(static_cast<unsigned char>((*t)[4]));
}

size_t TextStreamer::open_byte_run(const std::string& window) {
  size_t first = sequence_.size();
  while (first > start_ && is_byte_token(sequence_[first - 1])) --first;
  if (first == sequence_.size()) return std::string::npos;
  const auto before = text_after(context_, context_text_, first);
  return before && window.compare(0, before->size(), *before) == 0 ? before->size() : 0;
}

void TextStreamer::send(std::string_view chunk) {
  emitted_ += chunk;
  sink_(chunk);
}

void TextStreamer::emit(const std::string& window, size_t stable) {
  if (stable <= cut_) return;
  const std::string_view text = std::string_view(window).substr(cut_);
  const std::string_view done = std::string_view(emitted_).substr(settled_);
  if (stable - cut_ <= done.size() || text.compare(0, done.size(), done) != 0) return;
  send(text.substr(done.size(), stable - cut_ - done.size()));
}

void TextStreamer::advance(const std::string& window, size_t stable, size_t s) {
  if (is_byte_token(sequence_[s - 1]) && is_byte_token(sequence_[s])) return;
  const auto before = text_after(context_, context_text_, s);  // tokens [start_, s)
  if (!before || window.compare(0, before->size(), *before) != 0) return;
  const size_t length = before->size(), released = cut_ + (emitted_.size() - settled_);
  if (length > stable || cut_ > stable || length > released) return;
  const size_t context = s > kContext ? s - kContext : 0;
  std::string context_text = decode(context, s);
  const auto after = text_after(context, context_text, sequence_.size());
  if (!after || *after != std::string_view(window).substr(length)) return;
  start_ = s;
  context_ = context;
  context_text_ = std::move(context_text);
  if (length <= cut_) {
    cut_ -= length;
  } else {
    settled_ += length - cut_;
    cut_ = 0;
  }
}

void TextStreamer::put(int32_t token) {
  sequence_.push_back(token);
  const std::string window = window_text();
  // From the first token the prompt's characters are cut as postprocess cuts them; once the
  // window has moved past them, cut_ is fixed (the text before it was stable then).
  if (start_ == 0) cut_ = byte_offset_of_char(window, prompt_chars_);
  const size_t stable = std::min(stable_prefix_length(window, clean_up_), open_byte_run(window));
  emit(window, stable);
  if (sequence_.size() - start_ >= 2 * kWindow) advance(window, stable, sequence_.size() - kWindow);
}

void TextStreamer::end() {
  const std::string full = decode(0, sequence_.size());
  const std::string_view text = std::string_view(full).substr(byte_offset_of_char(full, prompt_chars_));
  if (text.size() > emitted_.size() && text.compare(0, emitted_.size(), emitted_) == 0)
    send(text.substr(emitted_.size()));
}

}  // namespace hfpipe::pipelines
