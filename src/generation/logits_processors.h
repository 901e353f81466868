// transformers' logits processors and warpers (generation/logits_process.py) over one row of
// next-token scores, in the order GenerationMixin._get_logits_processor applies them.
#pragma once

#include <cstdint>
#include <vector>

#include "generation/generation_config.h"

namespace hfpipe::generation {

// RepetitionPenaltyLogitsProcessor: each id that occurs in `ids` has its score divided by
// `penalty` when positive, multiplied when negative.
void apply_repetition_penalty(float* scores, const std::vector<int32_t>& ids, double penalty);
// NoRepeatNGramLogitsProcessor: bans every token that would repeat an n-gram of `ids`
// (the prompt included, as for decoder-only models).
void apply_no_repeat_ngram(float* scores, const std::vector<int32_t>& ids, int64_t n);
// NoBadWordsLogitsProcessor: a one-token bad word is always banned, a longer one when `ids`
// ends with all of it but its last token. Single-token words that are an eos id are dropped
// first, as transformers drops them; an id outside the vocabulary is Error(InvalidArgument).
void apply_bad_words(float* scores, int64_t vocab, const std::vector<int32_t>& ids,
                     const std::vector<std::vector<int32_t>>& bad_words, const std::vector<int32_t>& eos_ids);
// Min(New)LengthLogitsProcessor: every eos id gets -inf.
void suppress_tokens(float* scores, int64_t vocab, const std::vector<int32_t>& ids);
// ForcedBOS/ForcedEOSTokenLogitsProcessor: every score -inf but those of `ids`, which become 0.
void force_tokens(float* scores, int64_t vocab, const std::vector<int32_t>& ids);
// TemperatureLogitsWarper.
void apply_temperature(float* scores, int64_t vocab, double temperature);
// TopKLogitsWarper: scores below the k-th largest (k at least min_tokens_to_keep) become -inf.
void apply_top_k(float* scores, int64_t vocab, int64_t top_k, int64_t min_tokens_to_keep = 1);
// TopPLogitsWarper: keeps the smallest set of most likely tokens whose probability reaches top_p.
void apply_top_p(float* scores, int64_t vocab, double top_p, int64_t min_tokens_to_keep = 1);
// MinPLogitsWarper: drops tokens less likely than min_p times the most likely one.
void apply_min_p(float* scores, int64_t vocab, double min_p, int64_t min_tokens_to_keep = 1);
// TypicalLogitsWarper: keeps the tokens whose surprisal is closest to the entropy until their
// probability reaches `mass`.
void apply_typical_p(float* scores, int64_t vocab, double mass, int64_t min_tokens_to_keep = 1);

// SequenceBiasLogitsProcessor: each sequence's bias is added to the score of its last token
// when `ids` ends with the rest of it (one-token sequences: always), summed per token in
// float32 as transformers sums them; an id outside the vocabulary is Error(InvalidArgument).
void apply_sequence_bias(float* scores, int64_t vocab, const std::vector<int32_t>& ids, const SequenceBias& biases);
// InfNanRemoveLogitsProcessor: NaN becomes 0, +-inf the largest / lowest finite float.
void remove_invalid_values(float* scores, int64_t vocab);
// ExponentialDecayLengthPenalty for a row of `length` tokens whose prompt has `prompt_length`:
// past penalty.start new tokens, each eos score grows by |score| * (factor^(tokens past) - 1).
void apply_exponential_decay(float* scores, int64_t vocab, const std::vector<int32_t>& eos_ids, int64_t length,
                             int64_t prompt_length, const DecayPenalty& penalty);
// EpsilonLogitsWarper: drops tokens whose probability is below `epsilon`, keeping the
// min_tokens_to_keep highest scores.
void apply_epsilon_cutoff(float* scores, int64_t vocab, double epsilon, int64_t min_tokens_to_keep = 1);
// EtaLogitsWarper: the same with the entropy-dependent cutoff min(epsilon, sqrt(epsilon) *
// exp(-entropy)).
void apply_eta_cutoff(float* scores, int64_t vocab, double epsilon, int64_t min_tokens_to_keep = 1);

// The whole chain of _get_logits_processor for one row whose tokens so far are `sequence`
// (prompt_length of them the prompt, or the decoder start for an encoder-decoder model):
// sequence_bias, repetition_penalty, no_repeat_ngram_size, bad_words_ids, min_length /
// min_new_tokens (folded into `min_length` by resolve_limits), forced_bos, forced_eos (at
// max_length - 1), remove_invalid_values, exponential_decay_length_penalty, suppress_tokens,
// begin_suppress_tokens; then, under do_sample, temperature, top_k, top_p, min_p, typical_p,
// epsilon_cutoff, eta_cutoff with min_tokens_to_keep = 1, or number of eos ids + 1 (at least
// 2) under beam sampling; last, renormalize_logits.
void process_scores(float* scores, int64_t vocab, const std::vector<int32_t>& sequence, int64_t prompt_length,
                    int64_t min_length, int64_t max_length, const GenerationConfig& config);

// softmax of the row (max-subtracted, f32).
std::vector<float> softmax(const float* scores, int64_t vocab);
// log_softmax of the row in place (torch's: x - max - log(sum(exp(x - max)))).
void log_softmax(float* scores, int64_t vocab);
// The index of the first maximum, NaNs skipped (torch.argmax would pick a NaN; logits
// processors never make one).
int32_t argmax(const float* scores, int64_t vocab);

}  // namespace hfpipe::generation
