#include "generation/beam_search.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "generation/logits_processors.h"

namespace hfpipe::generation {

namespace {

constexpr float kDrop = -1.0e9f;  // transformers' "never choose this" score offset

// One row's beam search state: running beams and the finished hypotheses kept so far, each
// as the tokens generated after the prompt (transformers' running_sequences / sequences).
struct Group {
  std::vector<int32_t> prompt;
  RowLimits limits;
  std::vector<std::vector<int32_t>> running, finished;
  std::vector<float> running_scores, finished_scores;
  std::vector<bool> is_finished;
  bool improvable = true;  // is_early_stop_heuristic_unsatisfied
  bool done = false;
  Rng rng{0};
};

// A candidate continuation: the beam it extends, its token and accumulated score.
struct Candidate {
  int64_t beam;
  int32_t token;
  float score;
};

float power(int64_t length, double exponent) { return static_cast<float>(std::pow(static_cast<double>(length), exponent)); }

// The `count` best of the flattened [beams, vocab] scores, best first (torch.topk; ties go
// to the lower index). One pass keeping the best so far in order: `count` is 2-3 x num_beams
// against beams x vocab scores, so nearly every score is compared once with the worst kept
// and dropped (a partial_sort over an index array of the whole vocabulary cost more).
std::vector<int64_t> top_indices(const std::vector<float>& scores, int64_t count) {
  check(count <= static_cast<int64_t>(scores.size()), ErrorKind::InvalidArgument,
        "beam search needs " + std::to_string(count) + " candidates per step but the model's vocabulary offers " +
            std::to_string(scores.size()) + " (lower num_beams)");
  std::vector<int64_t> best;
  best.reserve(static_cast<size_t>(count) + 1);
  if (count <= 0) return best;
  const int64_t n = static_cast<int64_t>(scores.size());
  for (int64_t i = 0; i < n; ++i) {
    const float s = scores[i];
    // Indices come in increasing order, so an equal score loses to the ones already kept.
    if (static_cast<int64_t>(best.size()) == count && !(s > scores[best.back()])) continue;
    auto at = std::upper_bound(best.begin(), best.end(), s, [&](float v, int64_t k) { return v > scores[k]; });
    best.insert(at, i);
    if (static_cast<int64_t>(best.size()) > count) best.pop_back();
  }
  return best;
}

// torch.multinomial(softmax(scores), count) without replacement, in the order drawn.
std::vector<int64_t> sample_indices(const std::vector<float>& scores, int64_t count, Rng& rng) {
  std::vector<float> probs = softmax(scores.data(), static_cast<int64_t>(scores.size()));
  std::vector<int64_t> chosen;
  for (int64_t k = 0; k < count; ++k) {
    double total = 0.0;
    for (float p : probs) total += p;
    if (!(total > 0.0))
      fail(ErrorKind::InvalidArgument,
           "beam sampling needs " + std::to_string(count) +
               " candidates with non-zero probability per step; the processed scores leave fewer (raise top_k / "
               "top_p or lower num_beams)");
    const double target = rng.uniform() * total;
    double cumulative = 0.0;
    int64_t pick = -1;
    for (size_t i = 0; i < probs.size(); ++i) {
      if (probs[i] <= 0.f) continue;
      cumulative += probs[i];
      pick = static_cast<int64_t>(i);
      if (target < cumulative) break;
    }
    chosen.push_back(pick);
    probs[static_cast<size_t>(pick)] = 0.f;
  }
  return chosen;
}

// Whether a candidate sequence hits a stopping criterion: max_length, an eos id, a stop string.
bool hits_stop(const Group& g, const std::vector<int32_t>& tokens, const GenerationConfig& c,
               const StopStrings* stop) {
  const int64_t length = static_cast<int64_t>(g.prompt.size() + tokens.size());
  if (length >= g.limits.max_length) return true;
  if (std::find(c.eos_token_id.begin(), c.eos_token_id.end(), tokens.back()) != c.eos_token_id.end()) return true;
  if (stop && !stop->empty()) {
    std::vector<int32_t> whole = g.prompt;
    whole.insert(whole.end(), tokens.begin(), tokens.end());
    return stop->matches(whole);
  }
  return false;
}

// One step of one group from its beams' logits (rows [beams, vocab], overwritten). Returns
// the beam each new running beam continues (for the cache reorder).
std::vector<int64_t> step_group(Group& g, float* logits, int64_t vocab, const GenerationConfig& c,
                                const StopStrings* stop) {
  const int64_t beams = c.num_beams;
  const int64_t eos_count = static_cast<int64_t>(c.eos_token_id.size());
  const int64_t keep = std::max<int64_t>(2, 1 + eos_count) * beams;  // beams_to_keep
  const int64_t prompt_length = static_cast<int64_t>(g.prompt.size());
  const int64_t cur_len = prompt_length + static_cast<int64_t>(g.running[0].size());

  // b. log-probabilities, processed, plus each beam's running score.
  std::vector<float> accumulated(static_cast<size_t>(beams * vocab));
  for (int64_t b = 0; b < beams; ++b) {
    float* row = logits + b * vocab;
    log_softmax(row, vocab);
    std::vector<int32_t> sequence = g.prompt;
    sequence.insert(sequence.end(), g.running[b].begin(), g.running[b].end());
    process_scores(row, vocab, sequence, g.limits.prompt_length, g.limits.min_length, g.limits.max_length, c);
    for (int64_t v = 0; v < vocab; ++v) accumulated[b * vocab + v] = row[v] + g.running_scores[b];
  }

  // c. the `keep` candidates over all beams.
  const auto picked = c.do_sample ? sample_indices(accumulated, keep, g.rng) : top_indices(accumulated, keep);
  std::vector<Candidate> candidates;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<bool> hits;
  for (int64_t index : picked) {
    const Candidate cand{index / vocab, static_cast<int32_t>(index % vocab), accumulated[index]};
    candidates.push_back(cand);
    tokens.push_back(g.running[cand.beam]);
    tokens.back().push_back(cand.token);
    hits.push_back(hits_stop(g, tokens.back(), c, stop));  // d.
  }

  // e. the best `beams` candidates that did not stop keep running.
  std::vector<float> running_scores(candidates.size());
  for (size_t k = 0; k < candidates.size(); ++k) running_scores[k] = candidates[k].score + (hits[k] ? kDrop : 0.f);
  const auto next = top_indices(running_scores, beams);
  std::vector<int64_t> sources;
  std::vector<std::vector<int32_t>> running;
  std::vector<float> running_kept;
  for (int64_t k : next) {
    running.push_back(tokens[k]);
    running_kept.push_back(running_scores[k]);
    sources.push_back(candidates[k].beam);
  }

  // f. stopped candidates among the first `beams` compete with the finished hypotheses on their
  // length-normalised score.
  const bool full = c.early_stopping == EarlyStopping::True &&
                    std::all_of(g.is_finished.begin(), g.is_finished.end(), [](bool f) { return f; });
  const float norm = power(cur_len + 1 - prompt_length, c.length_penalty);
  std::vector<float> merged_scores = g.finished_scores;
  std::vector<std::vector<int32_t>> merged = g.finished;
  std::vector<bool> merged_finished = g.is_finished;
  for (size_t k = 0; k < candidates.size(); ++k) {
    const bool just_finished = hits[k] && static_cast<int64_t>(k) < beams;
    float s = candidates[k].score / norm;
    if (full) s += kDrop;
    if (!g.improvable) s += kDrop;
    if (!just_finished) s += kDrop;
    merged_scores.push_back(s);
    merged.push_back(tokens[k]);
    merged_finished.push_back(just_finished);
  }
  const auto best = top_indices(merged_scores, beams);
  std::vector<std::vector<int32_t>> finished;
  std::vector<float> finished_scores;
  std::vector<bool> is_finished;
  for (int64_t k : best) {
    finished.push_back(merged[k]);
    finished_scores.push_back(merged_scores[k]);
    is_finished.push_back(merged_finished[k]);
  }
  g.running = std::move(running);
  g.running_scores = std::move(running_kept);
  g.finished = std::move(finished);
  g.finished_scores = std::move(finished_scores);
  g.is_finished = std::move(is_finished);

  // g. can the running beams still beat the worst finished one?
  const int64_t new_len = cur_len + 1;
  const int64_t hypothetical = c.early_stopping == EarlyStopping::Never && c.length_penalty > 0.0
                                   ? g.limits.max_length - prompt_length
                                   : new_len - prompt_length;
  const float best_possible = g.running_scores[0] / power(hypothetical, c.length_penalty);
  const float worst = *std::min_element(g.finished_scores.begin(), g.finished_scores.end());
  bool any_better = false;
  for (bool f : g.is_finished) any_better = any_better || best_possible > (f ? worst : kDrop);
  g.improvable = g.improvable && any_better;
  const bool all_finished = std::all_of(g.is_finished.begin(), g.is_finished.end(), [](bool f) { return f; });
  const bool all_hit = std::all_of(hits.begin(), hits.end(), [](bool h) { return h; });
  g.done = !g.improvable || (all_finished && c.early_stopping == EarlyStopping::True) || all_hit;
  return sources;
}

}  // namespace

int32_t beam_fill_value(const GenerationConfig& config, int32_t pad_id) {
  if (config.eos_token_id.empty()) return -1;
  return pad_id != 0 ? pad_id : config.eos_token_id.front();
}

std::vector<std::vector<std::vector<int32_t>>> beam_search(const models::DecoderModel& model,
                                                           const std::vector<Row>& rows,
                                                           const GenerationConfig& config, int32_t pad_id,
                                                           const StopStrings* stop_strings) {
  std::vector<std::vector<std::vector<int32_t>>> results(rows.size());
  if (rows.empty()) return results;
  const int64_t beams = config.num_beams, vocab = model.vocab_size();
  check(beams >= 1 && config.num_return_sequences <= beams, ErrorKind::Internal, "beam_search: unchecked num_beams");

  // Every row repeated num_beams times (transformers' _expand_inputs_for_generation).
  std::vector<Row> expanded;
  std::vector<Group> groups(rows.size());
  int64_t longest_new = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int64_t b = 0; b < beams; ++b) expanded.push_back(rows[r]);
    Group& g = groups[r];
    g.prompt = rows[r].prompt;
    g.limits = rows[r].limits;
    g.running.assign(static_cast<size_t>(beams), {});
    g.finished.assign(static_cast<size_t>(beams), {});
    // Only the first beam starts live, so that the first step does not pick one token per beam.
    g.running_scores.assign(static_cast<size_t>(beams), kDrop);
    g.running_scores[0] = 0.f;
    g.finished_scores.assign(static_cast<size_t>(beams), kDrop);
    g.is_finished.assign(static_cast<size_t>(beams), false);
    g.rng = Rng(rows[r].seed);
    longest_new = std::max(longest_new, rows[r].limits.max_length - static_cast<int64_t>(rows[r].prompt.size()));
  }
  const PaddedBatch p = left_pad(expanded, pad_id);
  models::KvCache cache = model.new_cache(p.batch, p.length + longest_new);
  std::vector<int32_t> mask = p.mask, step_ids = p.ids, step_positions = p.positions;
  std::vector<int32_t> last_position(expanded.size());
  for (size_t i = 0; i < expanded.size(); ++i) last_position[i] = static_cast<int32_t>(expanded[i].prompt.size()) - 1;
  int64_t new_tokens = p.length;
  for (size_t active = rows.size(); active > 0;) {
    const models::DecoderStep step{p.batch, new_tokens, step_ids.data(), step_positions.data(), mask.data()};
    Tensor logits = model.forward(step, cache);
    std::vector<int64_t> sources(expanded.size());
    std::iota(sources.begin(), sources.end(), 0);
    step_ids.assign(expanded.size(), pad_id);
    step_positions.resize(expanded.size());
    for (size_t i = 0; i < expanded.size(); ++i) step_positions[i] = ++last_position[i];
    for (size_t r = 0; r < rows.size(); ++r) {
      Group& g = groups[r];
      if (g.done) continue;
      const int64_t first = static_cast<int64_t>(r) * beams;
      const auto from = step_group(g, logits.f32() + first * vocab, vocab, config, stop_strings);
      for (int64_t b = 0; b < beams; ++b) {
        sources[first + b] = first + from[b];
        step_ids[first + b] = g.running[b].back();
      }
      if (g.done) --active;
    }
    if (active == 0) break;
    model.reorder_rows(cache, sources);
    append_mask_column(mask, p.batch, cache.length());  // finished groups feed padding, unread
    new_tokens = 1;
  }

  // The best num_return_sequences hypotheses, cut to the longest of them and filled.
  const int32_t fill = beam_fill_value(config, pad_id);
  for (size_t r = 0; r < rows.size(); ++r) {
    auto best = std::vector<std::vector<int32_t>>(groups[r].finished.begin(),
                                                  groups[r].finished.begin() + config.num_return_sequences);
    size_t longest = 0;
    for (const auto& s : best) longest = std::max(longest, s.size());
    for (auto& s : best) s.resize(longest, fill);
    results[r] = std::move(best);
  }
  return results;
}

}  // namespace hfpipe::generation
