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

// softmax(scale q.k, soft-capped, over the positions a query sees) . v, one query, head and
// key at a time in double: the reference for the tiled prefill and the one-token path.
std::vector<float> direct_attention(const std::vector<float>& q, const std::vector<float>& keys,
                                    const std::vector<float>& values, int64_t capacity,
                                    const std::vector<int32_t>& mask, const ops::CausalAttentionShape& s) {
  const int64_t d = s.head_dim, group = s.heads / s.kv_heads, total = s.past + s.new_tokens;
  std::vector<float> out(q.size(), 0.f);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t i = 0; i < s.new_tokens; ++i)
      for (int64_t h = 0; h < s.heads; ++h) {
        const int64_t position = s.past + i, row = (b * s.new_tokens + i) * s.heads + h;
        std::vector<double> w(static_cast<size_t>(total), 0.0);
        double best = -1e300, sum = 0.0;
        for (int64_t t = 0; t <= position; ++t) {
          if (!mask[b * total + t] || (s.sliding_window > 0 && position - t >= s.sliding_window)) continue;
          const float* k = &keys[static_cast<size_t>(((b * capacity + t) * s.kv_heads + h / group) * d)];
          double score = 0.0;
          for (int64_t j = 0; j < d; ++j) score += static_cast<double>(q[row * d + j]) * k[j];
          score *= s.scale;
          if (s.softcap > 0.f) score = std::tanh(score / s.softcap) * s.softcap;
          w[t] = score;
          best = std::max(best, score);
          sum = 1.0;  // something is visible
        }
        if (sum == 0.0) continue;
        sum = 0.0;
        for (int64_t t = 0; t <= position; ++t) {
          const bool seen = mask[b * total + t] && !(s.sliding_window > 0 && position - t >= s.sliding_window);
          w[t] = seen ? std::exp(w[t] - best) : 0.0;
          sum += w[t];
        }
        for (int64_t t = 0; t <= position; ++t)
          for (int64_t j = 0; j < d; ++j)
            out[row * d + j] += static_cast<float>(
                w[t] / sum * values[static_cast<size_t>(((b * capacity + t) * s.kv_heads + h / group) * d + j)]);
      }
  return out;
}

// A prompt of 37 tokens after 5 cached ones, batch 2 (row 0 left-padded by 9), GQA 6 / 2 heads
// of dim 24 (not a multiple of the tiles' 16), a window of 20 and soft-capping: the tiled
// prefill (all 37 at once) and the one-token path (token by token) both match the direct sum.
TEST(CausalAttention, TiledPrefillAndOneTokenStepsMatchTheDirectSum) {
  ops::CausalAttentionShape s{2, 37, 5, 6, 2, 24, 20, 0.3f};
  s.softcap = 4.f;
  const int64_t capacity = 50, total = s.past + s.new_tokens, kv_dim = s.kv_heads * s.head_dim;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto fill = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
  };
  const auto q = fill(static_cast<size_t>(s.batch * s.new_tokens * s.heads * s.head_dim));
  const auto new_k = fill(static_cast<size_t>(s.batch * s.new_tokens * kv_dim));
  const auto new_v = fill(static_cast<size_t>(s.batch * s.new_tokens * kv_dim));
  const auto past_k = fill(static_cast<size_t>(s.batch * capacity * kv_dim));
  const auto past_v = fill(static_cast<size_t>(s.batch * capacity * kv_dim));
  std::vector<int32_t> mask(static_cast<size_t>(s.batch * total), 1);
  std::fill(mask.begin(), mask.begin() + 9, 0);

  std::vector<float> keys = past_k, values = past_v, tiled(q.size());
  ops::causal_attention(q.data(), new_k.data(), new_v.data(), {keys.data(), values.data(), capacity}, mask.data(),
                        tiled.data(), s);
  const auto expected = direct_attention(q, keys, values, capacity, mask, s);
  // The tiles of every level this CPU runs (they are compiled per level); the level comes back
  // even when an assertion returns early.
  struct RestoreLevel {
    ops::SimdLevel level = ops::row_simd_level();
    ~RestoreLevel() { ops::set_row_simd_level(level); }
  } restore;
  for (ops::SimdLevel level : {ops::SimdLevel::Plain, ops::SimdLevel::Avx2, ops::SimdLevel::Avx512}) {
    ops::set_row_simd_level(level);
    std::vector<float> keys_at = past_k, values_at = past_v, at_level(q.size());
    ops::causal_attention(q.data(), new_k.data(), new_v.data(), {keys_at.data(), values_at.data(), capacity},
                          mask.data(), at_level.data(), s);
    for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(at_level[i], expected[i], 1e-5) << i << " level " << int(level);
  }
  ops::set_row_simd_level(restore.level);

  std::vector<float> stepped(q.size()), keys2 = past_k, values2 = past_v;
  const int64_t q_dim = s.heads * s.head_dim;
  for (int64_t i = 0; i < s.new_tokens; ++i) {
    ops::CausalAttentionShape one = s;
    one.new_tokens = 1;
    one.past = s.past + i;
    std::vector<float> q1, k1, v1, o1(static_cast<size_t>(s.batch * q_dim));
    std::vector<int32_t> m1;
    for (int64_t b = 0; b < s.batch; ++b) {
      q1.insert(q1.end(), q.begin() + (b * s.new_tokens + i) * q_dim, q.begin() + (b * s.new_tokens + i + 1) * q_dim);
      k1.insert(k1.end(), new_k.begin() + (b * s.new_tokens + i) * kv_dim,
                new_k.begin() + (b * s.new_tokens + i + 1) * kv_dim);
      v1.insert(v1.end(), new_v.begin() + (b * s.new_tokens + i) * kv_dim,
                new_v.begin() + (b * s.new_tokens + i + 1) * kv_dim);
      m1.insert(m1.end(), mask.begin() + b * total, mask.begin() + b * total + one.past + 1);
    }
    ops::causal_attention(q1.data(), k1.data(), v1.data(), {keys2.data(), values2.data(), capacity}, m1.data(),
                          o1.data(), one);
    for (int64_t b = 0; b < s.batch; ++b)
      std::copy(o1.begin() + b * q_dim, o1.begin() + (b + 1) * q_dim, stepped.begin() + (b * s.new_tokens + i) * q_dim);
  }
  for (size_t i = 0; i < q.size(); ++i) {
    ASSERT_NEAR(tiled[i], expected[i], 1e-5) << i;
    ASSERT_NEAR(stepped[i], expected[i], 1e-5) << i;
  }
  // Row 0's first 4 queries (positions 5-8) see only padding: zeros.
  for (int64_t i = 0; i < 4 * q_dim; ++i) EXPECT_EQ(tiled[static_cast<size_t>(i)], 0.f);
}

// A one-token prompt (an empty cache: the tiled path too) against the direct sum, batch 2 with
// row 1 a padding query that sees nothing.
TEST(CausalAttention, OneTokenPromptMatchesTheDirectSum) {
  const ops::CausalAttentionShape s{2, 1, 0, 4, 2, 40, 0, 0.2f};
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> q(2 * 4 * 40), k(2 * 2 * 40), v(k.size());
  for (auto* a : {&q, &k, &v})
    for (float& x : *a) x = normal(rng);
  const std::vector<int32_t> mask = {1, 0};
  std::vector<float> keys(k.size()), values(v.size()), out(q.size());
  ops::causal_attention(q.data(), k.data(), v.data(), {keys.data(), values.data(), 1}, mask.data(), out.data(), s);
  const auto expected = direct_attention(q, keys, values, 1, mask, s);
  for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(out[i], expected[i], 1e-6) << i;
  for (size_t i = 160; i < 320; ++i) EXPECT_EQ(out[i], 0.f);  // row 1 sees no position
  for (size_t i = 0; i < 160; ++i) ASSERT_NEAR(out[i], v[(i / 40) / 2 * 40 + i % 40], 1e-6);  // row 0: its own value
}

// A prompt gives the same bits alone as left-padded (the padding's keys and values, 9s, would
// dominate any score they leaked into).
TEST(CausalAttention, LeftPaddedPromptGivesTheBitsOfThePromptAlone) {
  const int64_t tokens = 150, pad = 5, d = 32, heads = 3;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> q(static_cast<size_t>(tokens * heads * d)), k(static_cast<size_t>(tokens * d)), v(k.size());
  for (auto* a : {&q, &k, &v})
    for (float& x : *a) x = normal(rng);
  auto run = [&](int64_t padding) {
    const int64_t n = tokens + padding;
    std::vector<float> qp(static_cast<size_t>(padding * heads * d), 0.5f), kp(static_cast<size_t>(padding * d), 9.f);
    std::vector<float> vp = kp;
    qp.insert(qp.end(), q.begin(), q.end());
    kp.insert(kp.end(), k.begin(), k.end());
    vp.insert(vp.end(), v.begin(), v.end());
    std::vector<int32_t> mask(static_cast<size_t>(n), 1);
    std::fill(mask.begin(), mask.begin() + padding, 0);
    std::vector<float> keys(static_cast<size_t>(n * d)), values(keys.size()), out(qp.size());
    const ops::CausalAttentionShape s{1, n, 0, heads, 1, d, 0, 0.125f};
    ops::causal_attention(qp.data(), kp.data(), vp.data(), {keys.data(), values.data(), n}, mask.data(), out.data(), s);
    return std::vector<float>(out.end() - static_cast<int64_t>(q.size()), out.end());
  };
  EXPECT_EQ(run(0), run(pad));
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
