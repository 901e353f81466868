#include "generation/logits_processors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "core/error.h"

namespace hfpipe::generation {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The finite scores in ascending order with their indices (ties by index, for
// reproducibility); -inf ones would sit first in torch's order and change no sum.
std::vector<std::pair<float, int32_t>> ascending_finite(const float* scores, int64_t vocab) {
  std::vector<std::pair<float, int32_t>> sorted;
  for (int64_t i = 0; i < vocab; ++i)
    if (scores[i] != kNegInf) sorted.emplace_back(scores[i], static_cast<int32_t>(i));
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}
}  // namespace

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

void apply_top_k(float* scores, int64_t vocab, int64_t top_k, int64_t min_tokens_to_keep) {
  const int64_t k = std::min<int64_t>(std::max<int64_t>({top_k, min_tokens_to_keep, 1}), vocab);
  std::vector<float> sorted(scores, scores + vocab);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
  const float threshold = sorted[static_cast<size_t>(k - 1)];
  for (int64_t i = 0; i < vocab; ++i)
    if (scores[i] < threshold) scores[i] = kNegInf;
}

std::vector<float> softmax(const float* scores, int64_t vocab) {
  std::vector<float> p(scores, scores + vocab);
  const float m = *std::max_element(p.begin(), p.end());
  // A double sum: torch's vectorised float sums are far closer to exact than a running float
  // total over a vocabulary of 10^5 (whose error reaches 1e-5, enough to move a top_p or
  // typical_p threshold).
  double sum = 0.0;
  for (float& v : p) sum += (v = std::exp(v - m));
  const float total = static_cast<float>(sum);
  for (float& v : p) v /= total;
  return p;
}

void apply_top_p(float* scores, int64_t vocab, double top_p, int64_t min_tokens_to_keep) {
  // Tokens already at -inf (top_k) have probability 0 and sit first in torch's ascending
  // order, where they change no cumulative sum: only the finite ones are sorted.
  const auto sorted = ascending_finite(scores, vocab);
  std::vector<float> values(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) values[i] = sorted[i].first;
  const auto probs = softmax(values.data(), static_cast<int64_t>(values.size()));
  const float limit = static_cast<float>(1.0 - top_p);
  // torch's CPU cumsum of float32 accumulates in double.
  double cumulative = 0.0;
  // The min_tokens_to_keep most likely tokens (the last in ascending order) are always kept.
  const int64_t removable = static_cast<int64_t>(sorted.size()) - min_tokens_to_keep;
  for (int64_t i = 0; i < removable; ++i) {
    cumulative += probs[i];
    if (static_cast<float>(cumulative) <= limit) scores[sorted[i].second] = kNegInf;
  }
}

void apply_min_p(float* scores, int64_t vocab, double min_p, int64_t min_tokens_to_keep) {
  const auto probs = softmax(scores, vocab);
  const float top = *std::max_element(probs.begin(), probs.end());
  const float threshold = static_cast<float>(min_p) * top;
  // The min_tokens_to_keep highest scores stay whatever their probability.
  const auto order = ascending_finite(scores, vocab);
  std::vector<bool> keep(static_cast<size_t>(vocab), false);
  for (int64_t i = 0; i < min_tokens_to_keep && i < static_cast<int64_t>(order.size()); ++i)
    keep[order[order.size() - 1 - i].second] = true;
  for (int64_t i = 0; i < vocab; ++i)
    if (probs[i] < threshold && !keep[i]) scores[i] = kNegInf;
}

void apply_typical_p(float* scores, int64_t vocab, double mass, int64_t min_tokens_to_keep) {
  std::vector<float> normalized(scores, scores + vocab);
  log_softmax(normalized.data(), vocab);
  double sum = 0.0;  // -(log p * p).nansum(): the -inf * 0 of banned tokens is skipped
  for (float lp : normalized) {
    const float term = lp * std::exp(lp);
    if (!std::isnan(term)) sum += term;
  }
  const float entropy = static_cast<float>(-sum);
  // Tokens sorted by |surprisal - entropy|, ascending; ties by index for reproducibility.
  std::vector<std::pair<float, int32_t>> shifted(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) shifted[i] = {std::fabs(-normalized[i] - entropy), static_cast<int32_t>(i)};
  std::sort(shifted.begin(), shifted.end());
  std::vector<float> sorted_logits(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) sorted_logits[i] = scores[shifted[i].second];
  const auto probs = softmax(sorted_logits.data(), vocab);
  // last_ind = how many cumulative probabilities stay below the mass (clamped to the last).
  const float limit = static_cast<float>(mass);
  double cumulative = 0.0;
  int64_t last = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    cumulative += probs[i];
    if (static_cast<float>(cumulative) < limit) ++last;
  }
  last = std::min(last, vocab - 1);
  const float threshold = shifted[last].first;
  for (int64_t i = min_tokens_to_keep; i < vocab; ++i)
    if (shifted[i].first > threshold) scores[shifted[i].second] = kNegInf;
}

void apply_no_repeat_ngram(float* scores, const std::vector<int32_t>& ids, int64_t n) {
  const int64_t length = static_cast<int64_t>(ids.size());
  if (n <= 0 || length + 1 < n) return;  // no full n-gram can end at the next token yet
  // The n-1 last tokens: every earlier n-gram that starts with them bans its last token.
  const int64_t prefix = n - 1, tail = length - prefix;
  for (int64_t start = 0; start + n <= length; ++start)
    if (std::equal(ids.begin() + start, ids.begin() + start + prefix, ids.begin() + tail))
      scores[ids[start + prefix]] = kNegInf;
}

void apply_bad_words(float* scores, int64_t vocab, const std::vector<int32_t>& ids,
                     const std::vector<std::vector<int32_t>>& bad_words, const std::vector<int32_t>& eos_ids) {
  std::vector<int32_t> out_of_vocab;
  for (const auto& word : bad_words)
    for (int32_t id : word)
      if (id >= vocab) out_of_vocab.push_back(id);
  if (!out_of_vocab.empty()) {
    std::string list;
    for (int32_t id : out_of_vocab) list += (list.empty() ? "" : ", ") + std::to_string(id);
    fail(ErrorKind::InvalidArgument, "The model vocabulary size is " + std::to_string(vocab) +
                                         ", but the following tokens were being biased: [" + list + "]");
  }
  for (const auto& word : bad_words) {
    // transformers keeps eos generable even when it is listed as a bad word on its own.
    if (word.size() == 1 && std::find(eos_ids.begin(), eos_ids.end(), word[0]) != eos_ids.end()) continue;
    const size_t prefix = word.size() - 1;
    if (word.size() > ids.size()) continue;  // longer than the context: ignored
    if (std::equal(word.begin(), word.begin() + prefix, ids.end() - prefix)) scores[word.back()] = kNegInf;
  }
}

void force_tokens(float* scores, int64_t vocab, const std::vector<int32_t>& ids) {
  std::fill(scores, scores + vocab, kNegInf);
  for (int32_t id : ids)
    if (id >= 0 && id < vocab) scores[id] = 0.f;
}

void log_softmax(float* scores, int64_t vocab) {
  const float m = *std::max_element(scores, scores + vocab);
  double sum = 0.0;  // see softmax
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(scores[i] - m);
  const float log_sum = static_cast<float>(std::log(sum));
  for (int64_t i = 0; i < vocab; ++i) scores[i] = scores[i] - m - log_sum;
}

void process_scores(float* scores, int64_t vocab, const std::vector<int32_t>& sequence, int64_t min_length,
                    int64_t max_length, const GenerationConfig& c) {
  const int64_t length = static_cast<int64_t>(sequence.size());
  if (c.repetition_penalty != 1.0) apply_repetition_penalty(scores, sequence, c.repetition_penalty);
  if (c.no_repeat_ngram_size > 0) apply_no_repeat_ngram(scores, sequence, c.no_repeat_ngram_size);
  if (c.bad_words_ids) apply_bad_words(scores, vocab, sequence, *c.bad_words_ids, c.eos_token_id);
  if (length < min_length) suppress_tokens(scores, vocab, c.eos_token_id);
  if (c.forced_bos_token_id && length == 1) force_tokens(scores, vocab, {*c.forced_bos_token_id});
  if (!c.forced_eos_token_id.empty() && length == max_length - 1) force_tokens(scores, vocab, c.forced_eos_token_id);
  if (!c.do_sample) return;
  // Beam sampling keeps enough candidates for every eos and one more.
  const int64_t keep =
      c.num_beams > 1 ? (c.eos_token_id.empty() ? 2 : static_cast<int64_t>(c.eos_token_id.size()) + 1) : 1;
  if (c.temperature != 1.0) apply_temperature(scores, vocab, c.temperature);
  if (c.top_k && *c.top_k != 0) apply_top_k(scores, vocab, *c.top_k, keep);
  if (c.top_p < 1.0) apply_top_p(scores, vocab, c.top_p, keep);
  if (c.min_p) apply_min_p(scores, vocab, *c.min_p, keep);
  if (c.typical_p < 1.0) apply_typical_p(scores, vocab, c.typical_p, keep);
}

int32_t argmax(const float* scores, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(scores, scores + vocab) - scores);
}

}  // namespace hfpipe::generation
