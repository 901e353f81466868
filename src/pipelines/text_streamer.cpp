#include "pipelines/text_streamer.h"

#include <array>

namespace hfpipe::pipelines {

namespace {

// Byte offset of code point `chars` (the end if the text is shorter): Python slices count
// characters.
size_t byte_offset_of_char(const std::string& text, size_t chars) {
  size_t i = 0;
  for (; i < text.size() && chars > 0; --chars) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

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
  for (std::string_view pattern : kCleanUpPatterns)
    if (tail.size() < pattern.size() && pattern.substr(0, tail.size()) == tail) return space;
  return end;
}

TextStreamer::TextStreamer(const text::Tokenizer& tokenizer, std::vector<int32_t> prompt_ids, size_t prompt_chars,
                           bool skip_special_tokens, bool clean_up, Sink sink)
    : tokenizer_(tokenizer),
      sequence_(std::move(prompt_ids)),
      prompt_chars_(prompt_chars),
      skip_special_(skip_special_tokens),
      clean_up_(clean_up),
      sink_(std::move(sink)) {}

std::string TextStreamer::new_text(size_t& stable_bytes) const {
  const std::string full = tokenizer_.decode(sequence_, skip_special_, clean_up_);
  const size_t start = byte_offset_of_char(full, prompt_chars_);
  const size_t stable = stable_prefix_length(full, clean_up_);
  stable_bytes = stable > start ? stable - start : 0;
  return full.substr(start);
}

// Emits text[emitted.size(), bytes) when what was emitted is still the start of the text (it
// always is by construction; the check keeps a surprise from garbling the stream).
void TextStreamer::emit_up_to(const std::string& text, size_t bytes) {
  if (bytes <= emitted_.size() || text.compare(0, emitted_.size(), emitted_) != 0) return;
  const std::string chunk = text.substr(emitted_.size(), bytes - emitted_.size());
  emitted_ += chunk;
  sink_(chunk);
}

void TextStreamer::put(int32_t token) {
  sequence_.push_back(token);
  size_t stable = 0;
  const std::string text = new_text(stable);
  emit_up_to(text, stable);
}

void TextStreamer::end() {
  size_t stable = 0;
  const std::string text = new_text(stable);
  emit_up_to(text, text.size());
}

}  // namespace hfpipe::pipelines
