// transformers' logits processors and warpers (generation/logits_process.py) over one row of
// next-token scores, in the order GenerationMixin._get_logits_processor applies them.
#pragma once

#include <cstdint>
#include <vector>

namespace hfpipe::generation {

// RepetitionPenaltyLogitsProcessor: each id that occurs in `ids` has its score divided by
// `penalty` when positive, multiplied when negative.
void apply_repetition_penalty(float* scores, const std::vector<int32_t>& ids, double penalty);
// Min(New)LengthLogitsProcessor: every eos id gets -inf.
void suppress_tokens(float* scores, int64_t vocab, const std::vector<int32_t>& ids);
// ForcedBOS/ForcedEOSLogitsProcessor: every score -inf except those of `ids`, which become 0.
void force_tokens(float* scores, int64_t vocab, const std::vector<int32_t>& ids);
// TemperatureLogitsWarper.
void apply_temperature(float* scores, int64_t vocab, double temperature);
// TopKLogitsWarper: scores below the k-th largest become -inf.
void apply_top_k(float* scores, int64_t vocab, int64_t top_k);
// TopPLogitsWarper: keeps the smallest set of most likely tokens whose probability reaches top_p.
void apply_top_p(float* scores, int64_t vocab, double top_p);
// MinPLogitsWarper: drops tokens less likely than min_p times the most likely one.
void apply_min_p(float* scores, int64_t vocab, double min_p);

// softmax of the row (max-subtracted, f32).
std::vector<float> softmax(const float* scores, int64_t vocab);
// The index of the first maximum (torch.argmax).
int32_t argmax(const float* scores, int64_t vocab);

}  // namespace hfpipe::generation
