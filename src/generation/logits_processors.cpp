#include "generation/logits_processors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

namespace hfpipe::generation {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

void apply_repetition_penalty(float* scores, const std::vector<int32_t>& ids, double penalty) {
  std::vector<int32_t> unique = ids;  // torch gathers then scatters: each id is penalised once
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  const float p = static_cast<float>(penalty);
  for (int32_t id : unique) {
    float& s = scores[id];
    s = s < 0 ? s * p : s / p;
  }
}

void suppress_tokens(float* scores, int64_t vocab, const std::vector<int32_t>& ids) {
  for (int32_t id : ids)
    if (id >= 0 && id < vocab) scores[id] = kNegInf;
}

void apply_temperature(float* scores, int64_t vocab, double temperature) {
  const float t = static_cast<float>(temperature);
  for (int64_t i = 0; i < vocab; ++i) scores[i] /= t;
}

void apply_top_k(float* scores, int64_t vocab, int64_t top_k) {
  const int64_t k = std::min<int64_t>(std::max<int64_t>(top_k, 1), vocab);
  std::vector<float> sorted(scores, scores + vocab);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
  const float threshold = sorted[static_cast<size_t>(k - 1)];
  for (int64_t i = 0; i < vocab; ++i)
    if (scores[i] < threshold) scores[i] = kNegInf;
}

std::vector<float> softmax(const float* scores, int64_t vocab) {
  std::vector<float> p(scores, scores + vocab);
  const float m = *std::max_element(p.begin(), p.end());
  float sum = 0.f;
  for (float& v : p) sum += (v = std::exp(v - m));
  for (float& v : p) v /= sum;
  return p;
}

void apply_top_p(float* scores, int64_t vocab, double top_p) {
  // Tokens already at -inf (top_k) have probability 0 and sit first in torch's ascending
  // order, where they change no cumulative sum: only the finite ones are sorted.
  std::vector<std::pair<float, int32_t>> sorted;
  for (int64_t i = 0; i < vocab; ++i)
    if (scores[i] != kNegInf) sorted.emplace_back(scores[i], static_cast<int32_t>(i));
  std::sort(sorted.begin(), sorted.end());  // ascending; ties by index, for reproducibility
  std::vector<float> values(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) values[i] = sorted[i].first;
  const auto probs = softmax(values.data(), static_cast<int64_t>(values.size()));
  const float limit = static_cast<float>(1.0 - top_p);
  float cumulative = 0.f;
  // The most likely token (the last in ascending order) is always kept (min_tokens_to_keep = 1).
  for (size_t i = 0; i + 1 < sorted.size(); ++i) {
    cumulative += probs[i];
    if (cumulative <= limit) scores[sorted[i].second] = kNegInf;
  }
}

void apply_min_p(float* scores, int64_t vocab, double min_p) {
  const auto probs = softmax(scores, vocab);
  const float top = *std::max_element(probs.begin(), probs.end());
  const float threshold = static_cast<float>(min_p) * top;
  const int32_t best = argmax(scores, vocab);  // min_tokens_to_keep = 1
  for (int64_t i = 0; i < vocab; ++i)
    if (probs[i] < threshold && i != best) scores[i] = kNegInf;
}

int32_t argmax(const float* scores, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(scores, scores + vocab) - scores);
}

void force_tokens(float* scores, int64_t vocab, const std::vector<int32_t>& ids) {
  std::fill(scores, scores + vocab, -std::numeric_limits<float>::infinity());
  for (int32_t id : ids)
    if (id >= 0 && id < vocab) scores[id] = 0.f;
}

}  // namespace hfpipe::generation
