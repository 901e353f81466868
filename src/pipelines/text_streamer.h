// Streaming the new text of one generated sequence as its tokens arrive.
//
// The chunks add up to exactly the pipeline's new text (return_full_text=False): the text is
// the decode of prompt + new tokens with the prompt's characters cut off, as postprocess makes
// it (decoded a window at a time, see below), so the streamed text and the final text are the
// same function of the same tokens. Unlike
// transformers' TextStreamer, which prints up to the last space of the new tokens decoded on
// their own, a chunk is released as soon as later tokens can no longer change it:
//   - trailing U+FFFD (or an unfinished UTF-8 sequence) is held back: a byte-fallback or
//     byte-level token that starts a multi-byte character decodes to U+FFFD until the
//     character's last byte arrives, so no chunk ever splits a character;
//   - with clean_up_tokenization_spaces, a trailing " ", " '", " n", " n'", " 'v", ... is held
//     back: clean-up would delete its space once the "." / "t" / "e" that completes the
//     pattern arrives (and with it a space or " n" before it, which " ' " -> "'" can join
//     into " 's" / " n't");
//   - the text of a trailing run of byte-fallback tokens (<0xE2> <0x82> ...) is held back until
//     a token that is not a byte ends the run: ByteFallback decodes a run as a whole and turns
//     all of it into U+FFFD when any of its bytes is invalid, so a later byte can still change
//     a character that looked complete.
//
// Decoding the whole sequence per token would cost O(n^2) over a long generation, so each step
// decodes only a window: the tokens from `start_` on, after a few context tokens whose own text
// is then cut off (the context makes the window's first token decode as it does in the whole
// sequence: Metaspace and Strip treat the first token specially, WordPiece joins "##" pieces).
// The window moves forward only to a token boundary s where
//   - everything before s is stable and already released (or the prompt's),
//   - s does not split a run of byte-fallback tokens, and
//   - decoding from s (with its context) gives exactly the text the current window gives
//     after s, i.e. the text breaks there the same way now, with tokens after s known;
// when a later window's context no longer decodes as its start, the streamer falls back to
// decoding from the first token. end() decodes the whole sequence once, so the last chunk
// completes exactly the text postprocess returns.
#pragma once

#include <functional>
#include <optional>
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

  // Tokens decoded so far, all decodes together: linear in the sequence's length (what the
  // window is for; tests/cpp/test_streaming.cpp holds it to that).
  size_t decoded_tokens() const { return decoded_tokens_; }

 private:
  std::string decode(size_t from, size_t to);
  // The text tokens [first, to) add after the tokens [context, first): decode(context .. to)
  // minus `context_text` (decode(context .. first)); nullopt when that is not its start.
  std::optional<std::string> text_after(size_t context, const std::string& context_text, size_t to);
  // The window's text, decoding from the first token instead when the context fails.
  std::string window_text();
  // Where the text of a trailing run of byte-fallback tokens starts in `window` (npos: none).
  size_t open_byte_run(const std::string& window);
  bool is_byte_token(int32_t id) const;
  // Emits window[cut_ + already emitted, stable) when what was emitted is still the start of
  // the window's new text (it always is by construction; the check keeps a surprise from
  // garbling the stream).
  void emit(const std::string& window, size_t stable);
  void send(std::string_view chunk);
  // Moves the window's start to token `s` when the conditions above hold.
  void advance(const std::string& window, size_t stable, size_t s);

  const text::Tokenizer& tokenizer_;
  std::vector<int32_t> sequence_;
  size_t prompt_chars_;
  bool skip_special_, clean_up_;
  Sink sink_;
  std::string emitted_;
  size_t start_ = 0, context_ = 0;  // the window's first token and its first context token
  std::string context_text_;        // decode(sequence_[context_, start_))
  size_t cut_ = 0;                  // bytes of the window's text that are the prompt's
  size_t settled_ = 0;              // bytes of emitted_ made by tokens before start_
  size_t decoded_tokens_ = 0;
};

// The length of the prefix of `text` that no later token can change (see above).
size_t stable_prefix_length(const std::string& text, bool clean_up);

}  // namespace hfpipe::pipelines
