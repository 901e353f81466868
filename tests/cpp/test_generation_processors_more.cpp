// The processors added after the first set (sequence_bias, suppress_tokens,
// begin_suppress_tokens, exponential_decay_length_penalty, remove_invalid_values,
// epsilon / eta cutoff, renormalize_logits) and the generation keys hfpipe refuses. Live parity
// with transformers is in tests/python/test_generation_processors_more.py; these pin the
// edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "generation/generate.h"
#include "generation/logits_processors.h"

using namespace hfpipe;
using namespace hfpipe::generation;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();

std::string error_of(const GenerationConfig& c) {
  try {
    validate(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

GenerationConfig with(const Value& values) {
  GenerationConfig c;
  c.update(values);
  return c;
}
}  // namespace

TEST(SequenceBias, OneTokenAlwaysLongerWhenThePrefixEndsTheIds) {
  const GenerationConfig c = with(Value::parse(R"({"sequence_bias": [[[3], -1.5], [[4, 5], 2.0], [[9, 5], 7.0]]})"));
  std::vector<float> s(10, 1.f);
  apply_sequence_bias(s.data(), 10, {1, 4}, *c.sequence_bias);
  EXPECT_EQ(s[3], -0.5f);
  EXPECT_EQ(s[5], 3.f);  // (4, 5) matches, (9, 5) does not
  EXPECT_EQ(s[1], 1.f);
  EXPECT_THROW(apply_sequence_bias(s.data(), 4, {1}, *c.sequence_bias), Error);  // id 9 beyond a vocab of 4
}

TEST(SequenceBias, LaterDuplicateWinsAndTransformersChecksApply) {
  const GenerationConfig c = with(Value::parse(R"({"sequence_bias": [[[3], -1.0], [[3], 4.0]]})"));
  ASSERT_EQ(c.sequence_bias->size(), 1u);
  EXPECT_EQ(c.sequence_bias->front().second, 4.f);
  for (const char* bad : {R"([[[3], -1]])", R"([[[0], -1.0]])", R"([[[], 1.0]])", R"([])", R"("x")", R"([[3, 1.0]])"})
    EXPECT_THROW(with(Value{{"sequence_bias", Value::parse(bad)}}), Error) << bad;
}

TEST(SuppressTokens, AlwaysAndAtTheFirstNewToken) {
  GenerationConfig c = with(Value::parse(R"({"suppress_tokens": [1, 99], "begin_suppress_tokens": [2]})"));
  std::vector<float> s(4, 1.f);
  process_scores(s.data(), 4, {0, 3}, 2, 0, 50, c);  // length == prompt length: the first new token
  EXPECT_EQ(s, (std::vector<float>{1.f, -kInf, -kInf, 1.f}));
  std::vector<float> t(4, 1.f);
  process_scores(t.data(), 4, {0, 3, 3}, 2, 0, 50, c);
  EXPECT_EQ(t, (std::vector<float>{1.f, -kInf, 1.f, 1.f}));
  // A one-token prompt followed by a forced bos: the suppression moves one token later.
  c.forced_bos_token_id = 0;
  std::vector<float> u(4, 1.f);
  process_scores(u.data(), 4, {0, 0}, 1, 0, 50, c);
  EXPECT_EQ(u[2], -kInf);
}

TEST(ExponentialDecay, GrowsEosScoresPastTheStart) {
  const DecayPenalty penalty{2, 1.5};
  std::vector<float> s = {2.f, -2.f, 1.f};
  apply_exponential_decay(s.data(), 3, {0, 1}, 5, 3, penalty);  // 2 new tokens: not past the start
  EXPECT_EQ(s, (std::vector<float>{2.f, -2.f, 1.f}));
  apply_exponential_decay(s.data(), 3, {0, 1}, 7, 3, penalty);  // 2 past: factor^2 - 1 = 1.25
  EXPECT_FLOAT_EQ(s[0], 4.5f);
  EXPECT_FLOAT_EQ(s[1], 0.5f);  // |score| is added: a negative eos score rises too
  EXPECT_EQ(s[2], 1.f);
}

TEST(RemoveInvalidValues, NanAndInfinities) {
  std::vector<float> s = {std::nanf(""), kInf, -kInf, 3.f};
  remove_invalid_values(s.data(), 4);
  EXPECT_EQ(s, (std::vector<float>{0.f, std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(), 3.f}));
}

TEST(EpsilonEta, DropUnlikelyTokensButKeepTheMinimum) {
  std::vector<float> s = {4.f, 3.f, 0.f, -3.f};
  apply_epsilon_cutoff(s.data(), 4, 0.1);
  EXPECT_EQ(s[2], -kInf);
  EXPECT_EQ(s[3], -kInf);
  EXPECT_EQ(s[1], 3.f);
  std::vector<float> t = {4.f, -3.f, -3.f, -3.f};
  apply_epsilon_cutoff(t.data(), 4, 0.9, 2);  // the best, and ties of the 2nd best, stay
  EXPECT_EQ(t, (std::vector<float>{4.f, -3.f, -3.f, -3.f}));
  std::vector<float> u = {4.f, 3.f, 0.f, -3.f};
  apply_eta_cutoff(u.data(), 4, 0.5);  // eta = min(0.5, sqrt(0.5) e^-H): drops the tail only
  EXPECT_EQ(u[0], 4.f);
  EXPECT_EQ(u[3], -kInf);
}

TEST(RenormalizeLogits, LastAndAfterTheWarpers) {
  GenerationConfig c = with(Value::parse(R"({"do_sample": true, "top_k": 2, "renormalize_logits": true})"));
  std::vector<float> s = {1.f, 2.f, 3.f};
  process_scores(s.data(), 3, {0}, 1, 0, 50, c);
  EXPECT_EQ(s[0], -kInf);
  EXPECT_NEAR(std::exp(s[1]) + std::exp(s[2]), 1.0, 1e-6);  // normalised over what top_k kept
}

TEST(Refusals, HubModesGuidanceAndCutoffs) {
  EXPECT_NE(error_of(with(Value::parse(R"({"num_beams": 4, "num_beam_groups": 2})"))).find("Group Beam Search"),
            std::string::npos);
  EXPECT_EQ(error_of(with(Value::parse(R"({"num_beam_groups": 2, "diversity_penalty": 1.0})"))), "");  // 1 beam
  EXPECT_NE(error_of(with(Value::parse(R"({"force_words_ids": [[5]]})"))).find("Constrained Beam Search"),
            std::string::npos);
  EXPECT_NE(error_of(with(Value::parse(R"({"penalty_alpha": 0.6, "top_k": 4})"))).find("Contrastive Search"),
            std::string::npos);
  EXPECT_EQ(error_of(with(Value::parse(R"({"penalty_alpha": 0.6, "top_k": 4, "do_sample": true})"))), "");
  EXPECT_NE(error_of(with(Value::parse(R"({"dola_layers": "high"})"))).find("Dola Generation"), std::string::npos);
  EXPECT_EQ(error_of(with(Value::parse(R"({"dola_layers": "high", "num_beams": 2})"))), "");  // ignored with beams
  EXPECT_EQ(error_of(with(Value::parse(R"({"guidance_scale": 1.5})"))), "");  // greedy: generation/guidance.h
  EXPECT_NE(error_of(with(Value::parse(R"({"guidance_scale": 1.5, "num_beams": 2})"))).find("with beam search"),
            std::string::npos);
  EXPECT_EQ(error_of(with(Value::parse(R"({"guidance_scale": 1.0, "output_scores": true, "use_cache": false})"))), "");
  EXPECT_NE(error_of(with(Value::parse(R"({"epsilon_cutoff": 1.5})"))).find("`epsilon_cutoff` has to be"),
            std::string::npos);
  EXPECT_NE(error_of(with(Value::parse(R"({"eta_cutoff": -0.1})"))).find("`eta_cutoff` has to be"), std::string::npos);
  EXPECT_NE(error_of(with(Value::parse(R"({"num_beams": 2, "low_memory": true})"))).find("low_memory"),
            std::string::npos);
  EXPECT_NE(error_of(with(Value::parse(R"({"max_time": 5})"))).find("max_time"), std::string::npos);
  EXPECT_NE(error_of(with(Value::parse(R"({"num_beams": 4, "num_beam_groups": "2"})"))).find("must be a number"),
            std::string::npos);
}

TEST(GenerationConfigKeys, NewKeysSurviveNonDefaultValues) {
  const GenerationConfig c = with(Value::parse(
      R"({"sequence_bias": [[[3, 4], 1.5]], "exponential_decay_length_penalty": [3, 1.2], "suppress_tokens": [5],
          "epsilon_cutoff": 0.01, "renormalize_logits": true, "use_cache": false, "output_scores": false})"));
  GenerationConfig copy;
  copy.update(c.non_default_values());
  EXPECT_EQ(copy.non_default_values(), c.non_default_values());
  EXPECT_FALSE(c.non_default_values().contains("output_scores"));  // the default
  EXPECT_EQ(c.non_default_values()["use_cache"], false);
}
