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

// The whole chain of _get_logits_processor for one row whose tokens so far are `sequence`
// (prompt included): repetition_penalty, no_repeat_ngram_size, bad_words_ids, min_length /
// min_new_tokens (folded into `min_length` by resolve_limits), forced_bos, forced_eos (at
// max_length - 1), then, under do_sample, temperature, top_k, top_p, min_p, typical_p with
// min_tokens_to_keep = 1, or number of eos ids + 1 (at least 2) under beam sampling.
void process_scores(float* scores, int64_t vocab, const std::vector<int32_t>& sequence, int64_t min_length,
                    int64_t max_length, const GenerationConfig& config);

// softmax of the row (max-subtracted, f32).
std::vector<float> softmax(const float* scores, int64_t vocab);
// log_softmax of the row in place (torch's: x - max - log(sum(exp(x - max)))).
void log_softmax(float* scores, int64_t vocab);
// The index of the first maximum (torch.argmax).
int32_t argmax(const float* scores, int64_t vocab);

}  // namespace hfpipe::generation
