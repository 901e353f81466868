// Rules of the decoding-strategy pieces on hand-made inputs: the n-gram and bad-word bans,
// typical_p, forced tokens, stop strings (transformers' docstring examples), the KvCache row
// reorder beam search relies on, and the config checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "generation/beam_search.h"
#include "generation/generate.h"
#include "generation/logits_processors.h"
#include "generation/stop_strings.h"
#include "hfpipe/errors.h"
#include "hfpipe/value.h"
#include "models/decoder.h"

namespace hfpipe::generation {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(NoRepeatNGram, BansTheTokenThatWouldRepeatAnNGram) {
  std::vector<float> s(10, 0.f);
  apply_no_repeat_ngram(s.data(), {1, 2, 3, 1, 2}, 3);  // (1, 2) was followed by 3
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s[i], i == 3 ? -kInf : 0.f) << i;
  std::vector<float> t(10, 0.f);
  apply_no_repeat_ngram(t.data(), {4, 5}, 1);  // unigrams: every seen token
  EXPECT_EQ(t[4], -kInf);
  EXPECT_EQ(t[5], -kInf);
  std::vector<float> u(10, 0.f);
  apply_no_repeat_ngram(u.data(), {4}, 3);  // too short for a 3-gram
  EXPECT_EQ(u, std::vector<float>(10, 0.f));
}

TEST(BadWords, SingleAlwaysMultiOnPrefixEosKept) {
  std::vector<float> s(10, 1.f);
  apply_bad_words(s.data(), 10, {7, 3, 4}, {{5}, {3, 4, 6}, {4, 8}, {2}, {9, 9, 9, 9, 9}}, {2});
  EXPECT_EQ(s[5], -kInf);  // single token
  EXPECT_EQ(s[6], -kInf);  // prefix (3, 4) ends the ids
  EXPECT_EQ(s[8], -kInf);  // prefix (4) ends the ids
  EXPECT_EQ(s[2], 1.f);    // eos stays generable
  EXPECT_EQ(s[9], 1.f);    // longer than the ids: ignored
  std::vector<float> t(10, 1.f);
  apply_bad_words(t.data(), 10, {1, 4, 3}, {{3, 4, 6}}, {});
  EXPECT_EQ(t, std::vector<float>(10, 1.f));  // the prefix must be the end of the ids, in order
  EXPECT_THROW(apply_bad_words(t.data(), 10, {1}, {{12}}, {}), Error);
}

TEST(ForcedTokens, ForcedEosAtMaxLengthMinusOne) {
  GenerationConfig c;
  c.forced_eos_token_id = {2};
  std::vector<float> s(5, 1.f);
  process_scores(s.data(), 5, {0, 1, 3}, 1, 0, 5, c);  // length 3: not yet
  EXPECT_EQ(s, std::vector<float>(5, 1.f));
  process_scores(s.data(), 5, {0, 1, 3, 4}, 1, 0, 5, c);
  EXPECT_EQ(s, (std::vector<float>{-kInf, -kInf, 0.f, -kInf, -kInf}));
}

TEST(TypicalP, KeepsTokensNearTheEntropy) {
  // One dominant token: its surprisal is closest to the (low) entropy and it alone covers 0.5.
  std::vector<float> s = {5.f, 0.f, 0.f, 0.f};
  apply_typical_p(s.data(), 4, 0.5);
  EXPECT_EQ(s, (std::vector<float>{5.f, -kInf, -kInf, -kInf}));
  std::vector<float> t = {5.f, 0.f, 0.f, 0.f};
  apply_typical_p(t.data(), 4, 0.5, 2);  // min_tokens_to_keep
  EXPECT_EQ(std::count_if(t.begin(), t.end(), [](float v) { return v > -kInf; }), 2);
}

// Token strings as transformers' docstring example: "stop" split across tokens, with overhangs.
StopStrings stops_over(std::vector<std::string> stops) {
  return StopStrings({"st", "op", "stop", "opera", "sto", "pper", "las", "topper", "s", "to", "pped", "at", "tion"},
                     std::move(stops));
}

TEST(StopStrings, MatchesOnlyWhenTheStringEndsInTheLastToken) {
  const auto s = stops_over({"stop"});
  EXPECT_TRUE(s.matches({0, 1}));       // st op
  EXPECT_TRUE(s.matches({2}));          // stop
  EXPECT_TRUE(s.matches({0, 3}));       // st opera
  EXPECT_TRUE(s.matches({4, 5}));       // sto pper
  EXPECT_TRUE(s.matches({6, 7}));       // las topper
  EXPECT_TRUE(s.matches({8, 9, 10}));   // s to pped
  EXPECT_FALSE(s.matches({2, 11}));     // stop at
  EXPECT_FALSE(s.matches({0, 1, 11}));  // st op at
  EXPECT_FALSE(s.matches({0, 3, 12}));  // st opera tion
  EXPECT_FALSE(s.matches({9, 9}));      // toto
}

TEST(StopStrings, UnreachableOrEmptyIsRefused) {
  EXPECT_THROW(stops_over({"xyz"}), Error);
  EXPECT_FALSE(stops_over({}).matches({2}));
  GenerationConfig c;
  EXPECT_THROW(c.update(Value::parse(R"({"stop_strings": [""]})")), Error);
  EXPECT_THROW(c.update(Value::parse(R"({"bad_words_ids": [1, 2]})")), Error);
  EXPECT_THROW(c.update(Value::parse(R"({"early_stopping": "sometimes"})")), Error);
  c.update(Value::parse(R"({"early_stopping": "never", "stop_strings": "end", "num_beams": 3})"));
  EXPECT_EQ(c.early_stopping, EarlyStopping::Never);
  EXPECT_EQ(c.stop_strings, std::vector<std::string>{"end"});
}

TEST(Validate, BeamSettings) {
  GenerationConfig c;
  c.num_beams = 0;
  EXPECT_THROW(validate(c), Error);
  c.num_beams = 2;
  c.num_return_sequences = 3;
  EXPECT_THROW(validate(c), Error);
  c.num_return_sequences = 2;
  EXPECT_NO_THROW(validate(c));
  c.typical_p = 0.0;
  EXPECT_THROW(validate(c), Error);
}

TEST(BeamFill, PadOrEosAsTransformersFillsIt) {
  GenerationConfig c;
  EXPECT_EQ(beam_fill_value(c, 5), -1);  // no eos: -1
  c.eos_token_id = {2, 3};
  EXPECT_EQ(beam_fill_value(c, 5), 5);
  EXPECT_EQ(beam_fill_value(c, 0), 2);  // `pad_token_id or eos[0]`: a pad id of 0 is falsy
}

TEST(KvCache, ReorderCopiesFilledRowsFromTheirSources) {
  models::KvCache cache(2, 3, 4, 2);  // 2 layers, 3 rows, capacity 4, kv_dim 2
  for (int64_t l = 0; l < 2; ++l) {
    auto view = cache.layer(l);
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t t = 0; t < 2; ++t)
        for (int64_t d = 0; d < 2; ++d) {
          view.keys[(b * 4 + t) * 2 + d] = static_cast<float>(100 * l + 10 * b + t);
          view.values[(b * 4 + t) * 2 + d] = -static_cast<float>(100 * l + 10 * b + t);
        }
  }
  const int32_t ids[6] = {10, 11, 20, 21, 30, 31}, positions[6] = {0, 1, 0, 1, 5, 6};
  cache.record(ids, positions, 2);
  cache.advance(2);
  cache.reorder({2, 0, 0});
  EXPECT_EQ(cache.recorded_ids(0)[1], 31);
  EXPECT_EQ(cache.recorded_positions(0)[0], 5);
  EXPECT_EQ(cache.recorded_ids(2)[0], 10);
  for (int64_t l = 0; l < 2; ++l) {
    auto view = cache.layer(l);
    const int64_t source[3] = {2, 0, 0};
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t t = 0; t < 2; ++t) {
        EXPECT_EQ(view.keys[(b * 4 + t) * 2], 100 * l + 10 * source[b] + t);
        EXPECT_EQ(view.values[(b * 4 + t) * 2 + 1], -(100 * l + 10 * source[b] + t));
      }
  }
  EXPECT_THROW(cache.reorder({0, 1}), Error);
}

}  // namespace
}  // namespace hfpipe::generation
