// The generation engine's pieces that the Python parity tests cannot pin down exactly:
// transformers' processor rules on hand-made scores, length limits, and the RNG's
// reproducibility; plus the causal attention kernel (padding, GQA, sliding window, Gemma 2's
// score soft-capping) against a direct computation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "generation/generate.h"
#include "generation/logits_processors.h"
#include "hfpipe/errors.h"
#include "ops/decoder_ops.h"
#include "ops/ops.h"

namespace hfpipe::generation {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(LogitsProcessors, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  std::vector<float> s = {2.f, -2.f, 1.f};
  apply_repetition_penalty(s.data(), {0, 1, 0}, 2.0);  // id 0 twice: penalised once
  EXPECT_EQ(s, (std::vector<float>{1.f, -4.f, 1.f}));
}

TEST(LogitsProcessors, TopKKeepsTiesAtTheThreshold) {
  std::vector<float> s = {1.f, 3.f, 2.f, 2.f, 0.f};
  apply_top_k(s.data(), 5, 2);
  EXPECT_EQ(s, (std::vector<float>{-kInf, 3.f, 2.f, 2.f, -kInf}));
}

TEST(LogitsProcessors, TopPKeepsTheSmallestSetReachingP) {
  // probabilities 0.5, 0.25, 0.125, 0.125: top_p 0.7 keeps the two most likely
  std::vector<float> s = {std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.125f)};
  apply_top_p(s.data(), 4, 0.7);
  EXPECT_GT(s[0], -kInf);
  EXPECT_GT(s[1], -kInf);
  EXPECT_EQ(s[2], -kInf);
  EXPECT_EQ(s[3], -kInf);
}

TEST(LogitsProcessors, MinPDropsTokensBelowAFractionOfTheBest) {
  std::vector<float> s = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
  apply_min_p(s.data(), 3, 0.3);  // threshold 0.18
  EXPECT_GT(s[1], -kInf);
  EXPECT_EQ(s[2], -kInf);
}

TEST(Argmax, FirstMaximumAsMaxElementAndNaNsSkipped) {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  // Random rows with ties (few distinct values), of lengths around the vector widths: the
  // index std::max_element gives.
  std::mt19937 rng(3);
  for (int64_t n : {1, 7, 8, 9, 17, 33, 1000, 50257}) {
    std::vector<float> s(static_cast<size_t>(n));
    for (float& v : s) v = static_cast<float>(rng() % 5);
    EXPECT_EQ(argmax(s.data(), n), std::max_element(s.begin(), s.end()) - s.begin()) << n;
  }
  // A tie in the last few (tail) elements keeps the first of it.
  std::vector<float> s(50257, -1.f);
  s[50254] = s[50256] = 4.f;
  s[7] = kNaN;
  EXPECT_EQ(argmax(s.data(), 50257), 50254);
  // NaNs never win, also at index 0 (where std::max_element would keep it); all NaN gives 0.
  const std::vector<float> nan_first = {kNaN, 1.f, 1.f}, all_nan(9, kNaN), none(9, -kInf);
  EXPECT_EQ(argmax(nan_first.data(), 3), 1);
  EXPECT_EQ(argmax(all_nan.data(), 9), 0);
  EXPECT_EQ(argmax(none.data(), 9), 0);
}

TEST(Limits, MaxNewTokensWinsAndDefaultMaxLengthCountsFromThePrompt) {
  GenerationConfig c;
  EXPECT_EQ(resolve_limits(c, 5, false, 1000).max_length, 25);  // default 20 + prompt
  EXPECT_EQ(resolve_limits(c, 5, false, 12).max_length, 12);    // capped at the positions
  c.max_new_tokens = 7;
  EXPECT_EQ(resolve_limits(c, 5, true, 1000).max_length, 12);
  c.max_new_tokens.reset();
  c.max_length = 5;
  EXPECT_THROW(resolve_limits(c, 5, true, 1000), Error);
}

TEST(Limits, TokenIdsOutsideInt32AreRefusedNotWrapped) {
  // eos / pad / bos and the forced ids were cast from int64 to int32: 4294967297 became 1.
  for (const char* key : {"eos_token_id", "pad_token_id", "bos_token_id", "forced_bos_token_id", "forced_eos_token_id"}) {
    for (const char* value : {"4294967297", "[2, 4294967297]", "-2147483649"}) {
      GenerationConfig c;
      try {
        c.update(Value::parse(std::string("{\"") + key + "\": " + value + "}"), "generation_config.json");
        ADD_FAILURE() << key << " = " << value << " was accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
      }
    }
  }
  GenerationConfig c;
  c.update(Value::parse(R"({"eos_token_id": [2147483647, -1], "pad_token_id": 2147483647})"));
  EXPECT_EQ(c.eos_token_id, (std::vector<int32_t>{2147483647, -1}));
  EXPECT_EQ(c.pad_token_id, 2147483647);
}

TEST(Rng, SameSeedSameStream) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(a.next(), c.next());
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

TEST(CausalAttention, MatchesDirectSoftmaxWithPaddingAndGqa) {
  // batch 1, 3 tokens, 2 query heads over 1 kv head of dim 2; position 0 is padding.
  const ops::CausalAttentionShape s{1, 3, 0, 2, 1, 2, 0, 1.f};
  std::vector<float> q = {1, 0, 0, 1, 1, 1, 1, -1, 0.5f, 2, -1, 1};
  std::vector<float> k = {9, 9, 1, 2, -1, 0.5f}, v = {100, 100, 1, 0, 0, 1};
  std::vector<float> keys(6), values(6), out(12);
  const std::vector<int32_t> mask = {0, 1, 1};
  ops::causal_attention(q.data(), k.data(), v.data(), {keys.data(), values.data(), 3}, mask.data(), out.data(), s);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], 0.f);  // a padding query sees nothing
  EXPECT_FLOAT_EQ(out[4], 1.f);  // token 1 sees only itself: v[1] = (1, 0)
  EXPECT_FLOAT_EQ(out[5], 0.f);
  // token 2, head 1: q = (-1, 1); scores k1: 1, k2: 1.5
  const float w1 = 1.f / (1.f + std::exp(0.5f)), w2 = 1.f - w1;
  EXPECT_NEAR(out[10], w1 * 1 + w2 * 0, 1e-6);
  EXPECT_NEAR(out[11], w1 * 0 + w2 * 1, 1e-6);
}

// Batch 1, 3 tokens, 1 head of dim 1, all queries 1, with the given window, scale and softcap.
std::vector<float> soft_capped_three_tokens(int64_t window, float scale, float softcap, const std::vector<float>& k,
                                            const std::vector<float>& v, const std::vector<int32_t>& mask) {
  ops::CausalAttentionShape s{1, 3, 0, 1, 1, 1, window, scale};
  s.softcap = softcap;
  const std::vector<float> q = {1, 1, 1};
  std::vector<float> keys(3), values(3), out(3);
  ops::causal_attention(q.data(), k.data(), v.data(), {keys.data(), values.data(), 3}, mask.data(), out.data(), s);
  return out;
}

TEST(CausalAttention, SoftCapsScaledScoresAndSlidesTheWindow) {
  // scale 2, window 2, softcap 1.5: token 2 sees tokens 1, 2.
  const auto out = soft_capped_three_tokens(2, 2.f, 1.5f, {50, 1, 3}, {100, 10, 20}, {1, 1, 1});
  const float s1 = std::tanh(2.f / 1.5f) * 1.5f, s2 = std::tanh(6.f / 1.5f) * 1.5f;
  const float w1 = std::exp(s1) / (std::exp(s1) + std::exp(s2));
  EXPECT_NEAR(out[2], w1 * 10 + (1 - w1) * 20, 1e-5);  // token 0 (v = 100) is outside the window
  // token 1: the score 100 of token 0 is capped to ~1.5, so token 1's value keeps a share.
  const float s0 = std::tanh(100.f / 1.5f) * 1.5f, w0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
  EXPECT_NEAR(out[1], w0 * 100 + (1 - w0) * 10, 1e-4);
  std::vector<float> logits = {-60, 0, 2};
  ops::soft_cap(logits.data(), 3, 30.f);
  EXPECT_NEAR(logits[0], std::tanh(-2.f) * 30, 1e-5);
  EXPECT_EQ(logits[1], 0.f);
}

// The soft-capped scores of a row are capped as a whole (vector tanh); a masked key (left
// padding) must still get no weight: capping turns its -inf into -cap, so it is masked again.
TEST(CausalAttention, SoftCapKeepsPaddedKeysMasked) {
  // scale 1, no window, softcap 2; key 0 is padding.
  const auto out = soft_capped_three_tokens(0, 1.f, 2.f, {5, 1, 3}, {100, 10, 20}, {0, 1, 1});
  EXPECT_EQ(out[0], 0.f);                // the padding query sees nothing
  EXPECT_NEAR(out[1], 10.f, 1e-5);       // token 1 sees itself only, not the padded key 0
  const float s1 = std::tanh(1.f / 2.f) * 2.f, s2 = std::tanh(3.f / 2.f) * 2.f;
  const float w1 = std::exp(s1) / (std::exp(s1) + std::exp(s2));
  EXPECT_NEAR(out[2], w1 * 10 + (1 - w1) * 20, 1e-5);
}

}  // namespace
}  // namespace hfpipe::generation
