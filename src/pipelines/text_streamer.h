// Streaming the new text of one generated sequence as its tokens arrive.
//
// The chunks add up to exactly the pipeline's new text (return_full_text=False): each step
// decodes prompt + new tokens as postprocess does and cuts the prompt's characters off, so
// the streamed text and the final text are the same function of the same tokens. Unlike
// transformers' TextStreamer, which prints up to the last space of the new tokens decoded on
// their own, a chunk is released as soon as later tokens can no longer change it:
//   - trailing U+FFFD (or an unfinished UTF-8 sequence) is held back: a byte-fallback or
//     byte-level token that starts a multi-byte character decodes to U+FFFD until the
//     character's last byte arrives, so no chunk ever splits a character;
//   - with clean_up_tokenization_spaces, a trailing " ", " '", " n", " n'", " 'v", ... is held
//     back: clean-up would delete its space once the "." / "t" / "e" that completes the
//     pattern arrives.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace hfpipe::pipelines {

class TextStreamer {
 public:
  using Sink = std::function<void(std::string_view)>;

  // `prompt_ids`: what generate was given; `prompt_chars`: how many characters of the decoded
  // sequence belong to the prompt (postprocess's cut).
  TextStreamer(const text::Tokenizer& tokenizer, std::vector<int32_t> prompt_ids, size_t prompt_chars,
               bool skip_special_tokens, bool clean_up, Sink sink);

  void put(int32_t token);  // one new token: emits what has become final
  void end();               // generation is over: emits the rest

 private:
  // The new text so far and how many of its bytes are final.
  std::string new_text(size_t& stable_bytes) const;
  void emit_up_to(const std::string& text, size_t bytes);

  const text::Tokenizer& tokenizer_;
  std::vector<int32_t> sequence_;
  size_t prompt_chars_;
  bool skip_special_, clean_up_;
  Sink sink_;
  std::string emitted_;
};

// The length of the prefix of `text` that no later token can change (see above).
size_t stable_prefix_length(const std::string& text, bool clean_up);

}  // namespace hfpipe::pipelines
