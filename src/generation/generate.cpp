#include "generation/generate.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "generation/logits_processors.h"
#include "generation/stop_strings.h"

namespace hfpipe::generation {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

std::string number(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s += '0';
  return s;
}

// Draws an index from the distribution softmax(scores).
int32_t sample(const float* scores, int64_t vocab, Rng& rng) {
  const auto probs = softmax(scores, vocab);
  const double u = rng.uniform();
  double cumulative = 0.0;
  int32_t last_possible = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (probs[i] <= 0.f) continue;
    cumulative += probs[i];
    last_possible = static_cast<int32_t>(i);
    if (u < cumulative) return last_possible;
  }
  return last_possible;  // u beyond the rounded total
}

// The next token of one row from its logits, after transformers' processors in their order.
int32_t next_token(float* scores, int64_t vocab, const std::vector<int32_t>& history, const RowLimits& limits,
                   const GenerationConfig& c, Rng& rng) {
  process_scores(scores, vocab, history, limits.prompt_length, limits.min_length, limits.max_length, c);
  return c.do_sample ? sample(scores, vocab, rng) : argmax(scores, vocab);
}

}  // namespace

void append_mask_column(std::vector<int32_t>& mask, int64_t batch, int64_t width) {
  std::vector<int32_t> wider(static_cast<size_t>(batch * (width + 1)), 1);
  for (int64_t b = 0; b < batch; ++b)
    std::copy(mask.begin() + b * width, mask.begin() + (b + 1) * width, wider.begin() + b * (width + 1));
  mask.swap(wider);
}

PaddedBatch left_pad(const std::vector<Row>& rows, int32_t pad_id) {
  PaddedBatch p;
  p.batch = static_cast<int64_t>(rows.size());
  for (const Row& r : rows) p.length = std::max<int64_t>(p.length, static_cast<int64_t>(r.prompt.size()));
  p.ids.assign(static_cast<size_t>(p.batch * p.length), pad_id);
  p.mask.assign(p.ids.size(), 0);
  p.positions.assign(p.ids.size(), 1);
  for (int64_t b = 0; b < p.batch; ++b) {
    const auto& prompt = rows[b].prompt;
    const int64_t offset = b * p.length + p.length - static_cast<int64_t>(prompt.size());
    for (size_t i = 0; i < prompt.size(); ++i) {
      p.ids[offset + i] = prompt[i];
      p.mask[offset + i] = 1;
      p.positions[offset + i] = static_cast<int32_t>(i);
    }
  }
  return p;
}

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

RowLimits resolve_limits(const GenerationConfig& c, int64_t prompt_length, bool max_length_given,
                         int64_t max_positions) {
  RowLimits limits;
  limits.prompt_length = prompt_length;
  if (c.max_new_tokens) {
    limits.max_length = *c.max_new_tokens + prompt_length;
  } else {
    limits.max_length = c.max_length;
    if (!max_length_given && c.max_length == GenerationConfig().max_length)
      limits.max_length = std::min(c.max_length + prompt_length, max_positions);
  }
  limits.min_length = c.min_new_tokens ? *c.min_new_tokens + prompt_length : c.min_length;
  if (prompt_length >= limits.max_length)
    fail(ErrorKind::InvalidArgument,
         "Input length of input_ids is " + std::to_string(prompt_length) + ", but `max_length` is set to " +
             std::to_string(limits.max_length) +
             ". This can lead to unexpected behavior. You should consider increasing `max_length` or, better yet, "
             "setting `max_new_tokens`.");
  return limits;
}

void validate(const GenerationConfig& c) {
  check_supported(c);
  auto refuse = [](const std::string& message) { fail(ErrorKind::InvalidArgument, message); };
  if (c.max_new_tokens && *c.max_new_tokens <= 0)
    refuse("`max_new_tokens` must be greater than 0, but is " + std::to_string(*c.max_new_tokens) + ".");
  if (c.min_length < 0) refuse("`min_length` has to be a non-negative integer, but is " + std::to_string(c.min_length));
  if (c.repetition_penalty <= 0)
    refuse("`penalty` has to be a strictly positive float, but is " + number(c.repetition_penalty));
  if (c.num_return_sequences < 1)
    refuse("`num_return_sequences` must be a positive integer, got " + std::to_string(c.num_return_sequences));
  if (c.num_beams < 1) refuse("`num_beams` has to be a positive integer, but is " + std::to_string(c.num_beams));
  if (c.num_return_sequences > c.num_beams && c.num_beams > 1)
    refuse("`num_return_sequences` (" + std::to_string(c.num_return_sequences) +
           ") has to be smaller or equal to `num_beams` (" + std::to_string(c.num_beams) + ").");
  if (c.no_repeat_ngram_size < 0)
    refuse("`no_repeat_ngram_size` has to be a non-negative integer, but is " + std::to_string(c.no_repeat_ngram_size));
  for (int32_t id : c.forced_eos_token_id)
    if (id < 0) refuse("`forced_eos_token_id` has to be a list of positive integers, but is " + std::to_string(id));
  // transformers only checks typical_p under sampling and ignores values above 1; hfpipe
  // refuses any value outside (0, 1] so that a typo does not pass silently.
  if (!(c.typical_p > 0 && c.typical_p <= 1.0))
    refuse("`typical_p` has to be a float > 0 and < 1, but is " + number(c.typical_p));
  if (!c.do_sample) {
    if (c.num_return_sequences != 1 && c.num_beams == 1)
      refuse("Greedy methods without beam search do not support `num_return_sequences` different than 1 (got " +
             std::to_string(c.num_return_sequences) + ").");
    return;
  }
  if (c.temperature != 1.0 && !(c.temperature > 0))
    refuse("`temperature` (=" + number(c.temperature) +
           ") has to be a strictly positive float, otherwise your next token scores will be invalid." +
           (c.temperature == 0.0 ? " If you're looking for greedy decoding strategies, set `do_sample=False`." : ""));
  if (c.top_k && *c.top_k < 0)
    refuse("`top_k` has to be a strictly positive integer, but is " + std::to_string(*c.top_k));
  if (c.top_p < 0 || c.top_p > 1.0) refuse("`top_p` has to be a float > 0 and < 1, but is " + number(c.top_p));
  if (c.min_p && (*c.min_p < 0 || *c.min_p > 1.0))
    refuse("`min_p` has to be a float in the [0, 1] interval, but is " + number(*c.min_p));
}

std::vector<std::vector<int32_t>> generate(const models::DecoderModel& model, const std::vector<Row>& rows,
                                           const GenerationConfig& config, int32_t pad_id,
                                           const TokenCallback& on_token, const StopStrings* stop_strings) {
  std::vector<std::vector<int32_t>> generated(rows.size());
  if (rows.empty()) return generated;
  const PaddedBatch p = left_pad(rows, pad_id);
  int64_t longest_new = 0;
  for (const Row& r : rows) longest_new = std::max(longest_new, r.limits.max_length - (int64_t)r.prompt.size());
  models::KvCache cache = model.new_cache(p.batch, p.length + longest_new);
  std::vector<Rng> rngs;
  std::vector<std::vector<int32_t>> history;
  for (const Row& r : rows) {
    rngs.emplace_back(r.seed);
    history.push_back(r.prompt);
  }
  std::vector<int32_t> mask = p.mask;  // grows by one column per step: [batch, cache length]
  std::vector<bool> done(rows.size(), false);
  std::vector<int32_t> step_ids = p.ids, step_positions = p.positions;
  std::vector<int32_t> last_position(rows.size());
  for (size_t b = 0; b < rows.size(); ++b) last_position[b] = static_cast<int32_t>(rows[b].prompt.size()) - 1;
  int64_t new_tokens = p.length;
  const int64_t vocab = model.vocab_size();
  for (size_t active = rows.size(); active > 0;) {
    const models::DecoderStep step{p.batch, new_tokens, step_ids.data(), step_positions.data(), mask.data()};
    Tensor logits = model.forward(step, cache);
    step_ids.assign(rows.size(), pad_id);
    step_positions.resize(rows.size());
    for (size_t b = 0; b < rows.size(); ++b) {
      step_positions[b] = ++last_position[b];
      if (done[b]) continue;
      const int64_t length = static_cast<int64_t>(history[b].size());
      const int32_t token = next_token(logits.f32() + b * vocab, vocab, history[b], rows[b].limits, config, rngs[b]);
      history[b].push_back(token);
      generated[b].push_back(token);
      step_ids[b] = token;
      if (on_token) on_token(b, token);
      const bool eos = std::find(config.eos_token_id.begin(), config.eos_token_id.end(), token) !=
                       config.eos_token_id.end();
      const bool stop = stop_strings && stop_strings->matches(history[b]);
      if (eos || stop || length + 1 >= rows[b].limits.max_length) {
        done[b] = true;
        --active;
      }
    }
    append_mask_column(mask, p.batch, cache.length());
    new_tokens = 1;
  }
  return generated;
}

}  // namespace hfpipe::generation
