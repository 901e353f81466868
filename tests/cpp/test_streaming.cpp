// The streamer's hold-back rules (src/pipelines/text_streamer.h) on real tokenizers: a
// character whose bytes arrive over several tokens (llama2's byte-fallback tokens, GPT-2's
// byte-level BPE) is never split, clean-up spaces are never released early, and the pieces
// add up to the text postprocess would return. The pipeline-level parity is
// tests/python/test_streaming.py.
#include <gtest/gtest.h>

#include <filesystem>

#include "pipelines/text_streamer.h"
#include "text/tokenizer.h"

namespace hfpipe::pipelines {
namespace {

size_t chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

TEST(StablePrefix, HoldsBackWhatLaterTokensCanChange) {
  EXPECT_EQ(stable_prefix_length("Hello wor", true), 9u);
  EXPECT_EQ(stable_prefix_length("Hello ", true), 5u);       // " ." would lose the space
  EXPECT_EQ(stable_prefix_length("Hello ", false), 6u);      // no clean-up: nothing to lose
  EXPECT_EQ(stable_prefix_length("I don", true), 5u);        // " don" is no pattern
  EXPECT_EQ(stable_prefix_length("I do n", true), 4u);       // " n" may become " n't"
  EXPECT_EQ(stable_prefix_length("it 's", true), 5u);        // already complete: cleaned by then
  EXPECT_EQ(stable_prefix_length("it '", true), 2u);
  EXPECT_EQ(stable_prefix_length("a\xEF\xBF\xBD\xEF\xBF\xBD", true), 1u);  // trailing U+FFFD
  EXPECT_EQ(stable_prefix_length("a\xEF\xBF\xBD" "b", true), 5u);          // inside: final
  EXPECT_EQ(stable_prefix_length("ab\xE6\x97", false), 2u);                // raw partial bytes
  EXPECT_EQ(stable_prefix_length("ab\xE6\x97\xA5", false), 5u);
}

// Streams `text`'s tokens after `prompt`'s and checks every piece.
void check_stream(const text::Tokenizer& tok, const std::string& prompt, const std::string& text) {
  text::EncodeOptions no_special;
  no_special.add_special_tokens = false;
  const auto prompt_ids = tok.encode(prompt).ids;
  const auto new_ids = tok.encode(text, no_special).ids;
  std::vector<std::string> pieces;
  TextStreamer streamer(tok, prompt_ids, chars(tok.decode(prompt_ids, true, true)), true, true,
                        [&](std::string_view piece) { pieces.emplace_back(piece); });
  for (int32_t id : new_ids) streamer.put(id);
  streamer.end();

  std::vector<int32_t> all = prompt_ids;
  all.insert(all.end(), new_ids.begin(), new_ids.end());
  const std::string full = tok.decode(all, true, true);
  const std::string prompt_text = tok.decode(prompt_ids, true, true);
  std::string joined;
  for (const auto& p : pieces) {
    EXPECT_TRUE(text::is_valid_utf8(p)) << "a piece splits a character";
    EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "a piece carries a half-decoded character";
    joined += p;
  }
  EXPECT_EQ(joined, full.substr(prompt_text.size()));
  EXPECT_GT(pieces.size(), 3u);
}

std::filesystem::path shared(const char* name) {
  return std::filesystem::path(HFPIPE_SHARED_DIR) / "tokenizers" / name;
}

TEST(TextStreamer, ByteFallbackCharactersAreNotSplit) {
  if (!std::filesystem::exists(shared("llama2-spm"))) GTEST_SKIP() << "no shared tokenizers";
  const auto tok = text::Tokenizer::from_folder(shared("llama2-spm"));
  const std::string text = " Emoji \xF0\x9F\xA6\x80\xF0\x9F\x99\x82 and \xEA\xB0\x80 end, isn't it?";  // 🦀🙂 가
  // The emoji are byte-fallback tokens (<0xF0> <0x9F> ...): the case this test is about.
  text::EncodeOptions no_special;
  no_special.add_special_tokens = false;
  const auto ids = tok.encode(text, no_special).ids;
  ASSERT_NE(std::find(ids.begin(), ids.end(), 3 + 0xF0), ids.end()) << "expected a <0xF0> byte token";
  check_stream(tok, "Hello", text);
}

TEST(TextStreamer, ByteLevelCharactersAreNotSplit) {
  if (!std::filesystem::exists(shared("gpt2"))) GTEST_SKIP() << "no shared tokenizers";
  const auto tok = text::Tokenizer::from_folder(shared("gpt2"));
  check_stream(tok, "Hello", " caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA6\x80 , done .");  // café 日本 🦀
}

}  // namespace
}  // namespace hfpipe::pipelines
