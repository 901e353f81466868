#include "generation/guidance.h"

#include <algorithm>

#include "core/error.h"
#include "generation/logits_processors.h"

namespace hfpipe::generation {

std::optional<double> guidance_scale(const GenerationConfig& c) {
  if (!c.other.contains("guidance_scale") || !c.other["guidance_scale"].is_number()) return std::nullopt;
  const double scale = c.other["guidance_scale"].get<double>();
  return scale == 1.0 ? std::nullopt : std::optional<double>(scale);
}

models::KvCache GuidedDecoder::new_cache(int64_t batch, int64_t capacity) const {
  return model_.new_cache(2 * batch, capacity);
}

void GuidedDecoder::reorder_rows(models::KvCache&, const std::vector<int64_t>&) const {
  fail(ErrorKind::InvalidArgument, "guidance_scale is not supported with beam search");
}

models::DecoderStep GuidedDecoder::doubled(const models::DecoderStep& step, const models::KvCache& cache) const {
  const int64_t n = step.batch, t = step.new_tokens, past = cache.length(), width = past + t;
  const bool first = past == 0;
  check(t >= 1, ErrorKind::InvalidArgument, "a guided step needs at least one token per row");
  if (first) {
    prompt_width_ = t;
    offsets_.assign(static_cast<size_t>(n), 0);
    for (int64_t b = 0; b < n; ++b) {
      int64_t real = 0;
      for (int64_t i = 0; i < t; ++i) real += step.key_mask[b * t + i] != 0;
      offsets_[b] = static_cast<int32_t>(std::max<int64_t>(real, 1) - 1);
    }
  }
  ids_.assign(step.ids, step.ids + n * t);
  positions_.assign(step.positions, step.positions + n * t);
  mask_.assign(step.key_mask, step.key_mask + n * width);
  ids_.resize(static_cast<size_t>(2 * n * t));
  positions_.resize(ids_.size());
  mask_.resize(static_cast<size_t>(2 * n * width));
  for (int64_t b = 0; b < n; ++b) {
    int32_t* ids = ids_.data() + (n + b) * t;
    int32_t* positions = positions_.data() + (n + b) * t;
    int32_t* mask = mask_.data() + (n + b) * width;
    const int32_t last = step.ids[b * t + t - 1];
    if (first) {
      // input_ids[:, -1:] alone at position 0: the prompt's last token, left-padded.
      std::fill(ids, ids + t, last);
      std::fill(positions, positions + t, 1);
      positions[t - 1] = 0;
    } else {
      std::copy(step.ids + b * t, step.ids + (b + 1) * t, ids);
      for (int64_t i = 0; i < t; ++i) positions[i] = step.positions[b * t + i] - offsets_[b];
    }
    // Only the prompt's last column and what came after it are the unconditional context.
    std::fill(mask, mask + width, 0);
    mask[prompt_width_ - 1] = 1;
    std::copy(step.key_mask + b * width + prompt_width_, step.key_mask + (b + 1) * width, mask + prompt_width_);
  }
  models::DecoderStep out = step;
  out.batch = 2 * n;
  out.ids = ids_.data();
  out.positions = positions_.data();
  out.key_mask = mask_.data();
  return out;
}

Tensor GuidedDecoder::forward(const models::DecoderStep& step, models::KvCache& cache, bool all_positions) const {
  check(!all_positions, ErrorKind::InvalidArgument, "guidance scores only each row's next token");
  const models::DecoderStep both = doubled(step, cache);
  Tensor logits = model_.forward(both, cache);
  const int64_t n = step.batch, vocab = model_.vocab_size();
  Tensor guided = Tensor::empty(DType::F32, {n, vocab});
  const float scale = static_cast<float>(scale_);  // a Python float times a float32 tensor
  for (int64_t b = 0; b < n; ++b) {
    float* scores = logits.f32() + b * vocab;
    float* unconditional = logits.f32() + (n + b) * vocab;
    log_softmax(scores, vocab);
    log_softmax(unconditional, vocab);
    float* out = guided.f32() + b * vocab;
    for (int64_t v = 0; v < vocab; ++v) out[v] = scale * (scores[v] - unconditional[v]) + unconditional[v];
  }
  return guided;
}

}  // namespace hfpipe::generation
