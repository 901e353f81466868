// The streamer's hold-back rules (src/pipelines/text_streamer.h) on real tokenizers: a
// character whose bytes arrive over several tokens (llama2's byte-fallback tokens, GPT-2's
// byte-level BPE) is never split, clean-up spaces are never released early, and the pieces
// add up to the text postprocess would return. The pipeline-level parity is
// tests/python/test_streaming.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

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
  EXPECT_EQ(stable_prefix_length("x  '", true), 1u);          // " ' " then " 's": "x  ' s" -> "x's"
  EXPECT_EQ(stable_prefix_length("do n '", true), 2u);        // " ' " then " n't": "do n ' t" -> "don't"
  EXPECT_EQ(stable_prefix_length("do n .", true), 6u);        // cleaned already: final
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

// Streams `new_ids` after `prompt_ids`; returns the joined pieces and the final new text
// (decode of everything, the prompt's characters cut off, as postprocess cuts them).
struct Streamed {
  std::string joined, final_text;
  size_t pieces = 0, decoded_tokens = 0;
};
Streamed stream_ids(const text::Tokenizer& tok, const std::vector<int32_t>& prompt_ids,
                    const std::vector<int32_t>& new_ids, bool skip_special, bool clean_up) {
  Streamed out;
  const size_t prompt_chars = chars(tok.decode(prompt_ids, skip_special, clean_up));
  TextStreamer streamer(tok, prompt_ids, prompt_chars, skip_special, clean_up, [&](std::string_view piece) {
    EXPECT_FALSE(piece.empty());
    out.joined += piece;
    ++out.pieces;
  });
  for (int32_t id : new_ids) streamer.put(id);
  streamer.end();
  out.decoded_tokens = streamer.decoded_tokens();
  std::vector<int32_t> all = prompt_ids;
  all.insert(all.end(), new_ids.begin(), new_ids.end());
  const std::string full = tok.decode(all, skip_special, clean_up);
  size_t at = 0;
  for (size_t c = 0; at < full.size() && c < prompt_chars; ++c)
    for (++at; at < full.size() && (static_cast<unsigned char>(full[at]) & 0xC0) == 0x80;) ++at;
  out.final_text = full.substr(at);
  return out;
}

// A long generation decodes each token a bounded number of times (a window, not the whole
// sequence per token: that would be ~n^2 / 2 token decodes), and the pieces still add up.
TEST(TextStreamer, LongGenerationDecodesAWindowPerToken) {
  if (!std::filesystem::exists(shared("gpt2"))) GTEST_SKIP() << "no shared tokenizers";
  std::string paragraph =
      " The caf\xC3\xA9 on the corner , isn't it ? I 'm sure they 've said \xE6\x97\xA5\xE6\x9C\xAC is far . "
      "\xF0\x9F\xA6\x80 crabs don't walk straight ! \"Quoted\" text , and ' single ' quotes .\n";
  std::string text;
  for (int i = 0; i < 60; ++i) text += paragraph;
  text::EncodeOptions no_special;
  no_special.add_special_tokens = false;
  for (const char* name : {"gpt2", "llama2-spm", "t5-small"}) {
    const auto tok = text::Tokenizer::from_folder(shared(name));
    const auto prompt_ids = tok.encode("Once upon a time").ids;
    const auto new_ids = tok.encode(text, no_special).ids;
    ASSERT_GT(new_ids.size(), 1500u) << name;
    for (bool clean_up : {true, false}) {
      const Streamed s = stream_ids(tok, prompt_ids, new_ids, true, clean_up);
      EXPECT_EQ(s.joined, s.final_text) << name << " clean_up=" << clean_up;
      EXPECT_GT(s.pieces, new_ids.size() / 4) << name;
      // ~n^2 / 2 = 1e6+ when every token re-decodes the sequence; a window keeps it linear.
      EXPECT_LT(s.decoded_tokens, 80 * (new_ids.size() + prompt_ids.size())) << name;
    }
  }
}

// Random token sequences, rich in what makes decoding non-local (byte-fallback and byte-level
// pieces of multi-byte characters, clean-up patterns, special tokens, "##" pieces, Metaspace
// spaces): the pieces add up to the final text for every decoder family, whatever the window
// does.
TEST(TextStreamer, RandomSequencesAddUpToTheFinalText) {
  if (!std::filesystem::exists(shared("gpt2"))) GTEST_SKIP() << "no shared tokenizers";
  text::EncodeOptions no_special;
  no_special.add_special_tokens = false;
  const std::string seed_text = " Hello , world . isn't it ? I 'm here , they 've gone ' x ' caf\xC3\xA9 "
                                "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA6\x80 \xEA\xB0\x80 do n't ##ing";
  for (const char* name : {"gpt2", "llama2-spm", "t5-small", "bert-base-uncased", "phi-3-mini", "clip", "falcon", "whisper-tiny"}) {
    if (!std::filesystem::exists(shared(name))) continue;
    const auto tok = text::Tokenizer::from_folder(shared(name));
    std::vector<int32_t> pool = tok.encode(seed_text, no_special).ids;
    for (int b = 0; b < 256; b += 7)  // byte-fallback tokens where the vocabulary has them
      if (auto id = tok.token_to_id("<0x" + std::string(1, "0123456789ABCDEF"[b / 16]) +
                                    std::string(1, "0123456789ABCDEF"[b % 16]) + ">"))
        pool.push_back(*id);
    for (const char* lead : {"<0xE2>", "<0xF0>", "<0xC3>", "<0x82>", "<0xAC>", "<0x9F>"})
      if (auto id = tok.token_to_id(lead)) pool.push_back(*id);
    std::mt19937 rng(7);
    const int32_t vocab = static_cast<int32_t>(tok.vocab_size());
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<int32_t> ids;
      for (int i = 0; i < 200; ++i)
        ids.push_back(rng() % 3 ? pool[rng() % pool.size()] : static_cast<int32_t>(rng() % vocab));
      const bool skip_special = trial % 2 == 0, clean_up = trial % 4 < 2;
      const Streamed s = stream_ids(tok, tok.encode("Hi there").ids, ids, skip_special, clean_up);
      EXPECT_EQ(s.joined, s.final_text) << name << " trial " << trial;
      EXPECT_LT(s.decoded_tokens, 80 * ids.size()) << name << " trial " << trial << ": the window stopped moving";
    }
  }
}

}  // namespace
}  // namespace hfpipe::pipelines
