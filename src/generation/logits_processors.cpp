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

// NoBadWords / SequenceBias (which NoBadWords derives from): every id of every sequence must
// be in the vocabulary, with transformers' message. `ids_of` gives an entry's ids.
template <typename Entries, typename IdsOf>
void check_in_vocabulary(const Entries& entries, int64_t vocab, IdsOf ids_of) {
  std::string out_of_vocab;
  for (const auto& entry : entries)
    for (int32_t id : ids_of(entry))
      if (id >= vocab) out_of_vocab += (out_of_vocab.empty() ? "" : ", ") + std::to_string(id);
  if (!out_of_vocab.empty())
    fail(ErrorKind::InvalidArgument, "The model vocabulary size is " + std::to_string(vocab) +
                                         ", but the following tokens were being biased: [" + out_of_vocab + "]");
}

// Whether `ids` ends with all of `sequence` but its last token (a sequence longer than the
// context never does), as NoBadWords and SequenceBias match their multi-token sequences.
bool ends_with_prefix_of(const std::vector<int32_t>& ids, const std::vector<int32_t>& sequence) {
  if (sequence.size() > ids.size()) return false;
  const size_t prefix = sequence.size() - 1;
  return std::equal(sequence.begin(), sequence.begin() + prefix, ids.end() - prefix);
}

// The `k`-th largest score (torch.topk(scores, k)[0][-1]), k clamped to [1, vocab].
float kth_largest(const float* scores, int64_t vocab, int64_t k) {
  k = std::clamp<int64_t>(k, 1, vocab);
  std::vector<float> sorted(scores, scores + vocab);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
  return sorted[static_cast<size_t>(k - 1)];
}

// Epsilon / eta warpers: -inf where the probability is below `cutoff` and the score below
// the min_tokens_to_keep-th largest.
void drop_below(float* scores, int64_t vocab, const std::vector<float>& probs, float cutoff, int64_t keep) {
  const float kept = kth_largest(scores, vocab, keep);
  for (int64_t i = 0; i < vocab; ++i)
    if (probs[i] < cutoff && scores[i] < kept) scores[i] = kNegInf;
}

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
  const float threshold = kth_largest(scores, vocab, std::max(top_k, min_tokens_to_keep));
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
  check_in_vocabulary(bad_words, vocab, [](const auto& word) -> const std::vector<int32_t>& { return word; });
  for (const auto& word : bad_words) {
    // transformers keeps eos generable even when it is listed as a bad word on its own.
    if (word.size() == 1 && std::find(eos_ids.begin(), eos_ids.end(), word[0]) != eos_ids.end()) continue;
    if (ends_with_prefix_of(ids, word)) scores[word.back()] = kNegInf;
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

void apply_sequence_bias(float* scores, int64_t vocab, const std::vector<int32_t>& ids, const SequenceBias& biases) {
  check_in_vocabulary(biases, vocab, [](const auto& entry) -> const std::vector<int32_t>& { return entry.first; });
  // transformers builds one bias row (the one-token biases, then each matching longer
  // sequence's added in order) and adds it to the scores: the same float sums per token.
  std::vector<std::pair<int32_t, float>> bias;
  auto add = [&](int32_t token, float value) {
    auto at = std::find_if(bias.begin(), bias.end(), [&](const auto& b) { return b.first == token; });
    if (at == bias.end()) bias.emplace_back(token, 0.f + value);
    else at->second += value;
  };
  for (const auto& [sequence, value] : biases)
    if (sequence.size() == 1) add(sequence[0], value);
  for (const auto& [sequence, value] : biases)
    if (sequence.size() > 1 && ends_with_prefix_of(ids, sequence)) add(sequence.back(), value);
  for (const auto& [token, value] : bias) scores[token] += value;
}

void remove_invalid_values(float* scores, int64_t vocab) {
  for (int64_t i = 0; i < vocab; ++i) {
    float& s = scores[i];
    if (std::isnan(s)) s = 0.f;
    else if (std::isinf(s)) s = s > 0 ? std::numeric_limits<float>::max() : std::numeric_limits<float>::lowest();
  }
}

void apply_exponential_decay(float* scores, int64_t vocab, const std::vector<int32_t>& eos_ids, int64_t length,
                             int64_t prompt_length, const DecayPenalty& penalty) {
  const int64_t start = penalty.start + prompt_length;
  if (length <= start) return;
  // Python's float pow, then a float32 multiply of |score| as torch does it.
  const float growth = static_cast<float>(std::pow(penalty.factor, static_cast<double>(length - start)) - 1.0);
  // Every eos is penalised from its score before any of them changes (a repeated eos once).
  std::vector<std::pair<int32_t, float>> updated;
  for (int32_t id : eos_ids)
    if (id >= 0 && id < vocab) updated.emplace_back(id, scores[id] + std::fabs(scores[id]) * growth);
  for (const auto& [id, value] : updated) scores[id] = value;
}

void apply_epsilon_cutoff(float* scores, int64_t vocab, double epsilon, int64_t min_tokens_to_keep) {
  drop_below(scores, vocab, softmax(scores, vocab), static_cast<float>(epsilon), min_tokens_to_keep);
}

void apply_eta_cutoff(float* scores, int64_t vocab, double epsilon, int64_t min_tokens_to_keep) {
  const auto probs = softmax(scores, vocab);
  // Categorical(logits=scores).entropy(): -sum(p * log p), log p clamped to the lowest float so
  // that banned tokens (p = 0) add nothing.
  std::vector<float> log_probs(scores, scores + vocab);
  log_softmax(log_probs.data(), vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i)
    sum += static_cast<double>(std::max(log_probs[i], std::numeric_limits<float>::lowest()) * probs[i]);
  const float entropy = static_cast<float>(-sum);
  const float eps = static_cast<float>(epsilon);  // torch.tensor(epsilon): float32
  const float eta = std::min(eps, std::sqrt(eps) * std::exp(-entropy));
  drop_below(scores, vocab, probs, eta, min_tokens_to_keep);
}

namespace {

// The processors that act in every decoding mode, in _get_logits_processor's order.
void apply_processors(float* scores, int64_t vocab, const std::vector<int32_t>& sequence, int64_t prompt_length,
                      int64_t min_length, int64_t max_length, const GenerationConfig& c) {
  const int64_t length = static_cast<int64_t>(sequence.size());
  if (c.sequence_bias) apply_sequence_bias(scores, vocab, sequence, *c.sequence_bias);
  if (c.repetition_penalty != 1.0) apply_repetition_penalty(scores, sequence, c.repetition_penalty);
  if (c.no_repeat_ngram_size > 0) apply_no_repeat_ngram(scores, sequence, c.no_repeat_ngram_size);
  if (c.bad_words_ids) apply_bad_words(scores, vocab, sequence, *c.bad_words_ids, c.eos_token_id);
  if (length < min_length) suppress_tokens(scores, vocab, c.eos_token_id);
  if (c.forced_bos_token_id && length == 1) force_tokens(scores, vocab, {*c.forced_bos_token_id});
  if (!c.forced_eos_token_id.empty() && length == max_length - 1) force_tokens(scores, vocab, c.forced_eos_token_id);
  if (c.remove_invalid_values) remove_invalid_values(scores, vocab);
  if (c.exponential_decay_length_penalty)
    apply_exponential_decay(scores, vocab, c.eos_token_id, length, prompt_length, *c.exponential_decay_length_penalty);
  if (c.suppress_tokens) suppress_tokens(scores, vocab, *c.suppress_tokens);
  if (c.begin_suppress_tokens) {
    // The first new token, one later when a one-token prompt is followed by a forced bos.
    const int64_t begin = prompt_length + (prompt_length == 1 && c.forced_bos_token_id ? 1 : 0);
    if (length == begin) suppress_tokens(scores, vocab, *c.begin_suppress_tokens);
  }
}

// The warpers that only act under sampling.
void apply_warpers(float* scores, int64_t vocab, const GenerationConfig& c) {
  // Beam sampling keeps enough candidates for every eos and one more.
  const int64_t keep =
      c.num_beams > 1 ? (c.eos_token_id.empty() ? 2 : static_cast<int64_t>(c.eos_token_id.size()) + 1) : 1;
  if (c.temperature != 1.0) apply_temperature(scores, vocab, c.temperature);
  if (c.top_k && *c.top_k != 0) apply_top_k(scores, vocab, *c.top_k, keep);
  if (c.top_p < 1.0) apply_top_p(scores, vocab, c.top_p, keep);
  if (c.min_p) apply_min_p(scores, vocab, *c.min_p, keep);
  if (c.typical_p < 1.0) apply_typical_p(scores, vocab, c.typical_p, keep);
  if (c.epsilon_cutoff > 0.0 && c.epsilon_cutoff < 1.0) apply_epsilon_cutoff(scores, vocab, c.epsilon_cutoff, keep);
  if (c.eta_cutoff > 0.0 && c.eta_cutoff < 1.0) apply_eta_cutoff(scores, vocab, c.eta_cutoff, keep);
}

}  // namespace

void process_scores(float* scores, int64_t vocab, const std::vector<int32_t>& sequence, int64_t prompt_length,
                    int64_t min_length, int64_t max_length, const GenerationConfig& c) {
  apply_processors(scores, vocab, sequence, prompt_length, min_length, max_length, c);
  if (c.do_sample) apply_warpers(scores, vocab, c);
  if (c.renormalize_logits) log_softmax(scores, vocab);  // LogitNormalization: always last
}

// The largest value first, in vectors (std::max_element compares one float at a time, 1-2% of
// a batch-8 decoding step over GPT-2's 50,257 logits), then the first position holding it: the
// same index as std::max_element's (a NaN is never the maximum, except that max_element keeps a
// NaN at index 0, which this skips; all NaN gives 0).
__attribute__((target_clones("arch=x86-64-v3", "default"))) int32_t argmax(const float* scores, int64_t vocab) {
  float best = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : best)
  for (int64_t i = 0; i < vocab; ++i) best = scores[i] > best ? scores[i] : best;
  for (int64_t i = 0; i < vocab; ++i)
    if (scores[i] == best) return static_cast<int32_t>(i);
  return 0;
}

}  // namespace hfpipe::generation
