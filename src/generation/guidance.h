// Classifier-free guidance for decoder-only greedy search and sampling, as transformers 4.57.6's
// UnbatchedClassifierFreeGuidanceLogitsProcessor (generation_config.guidance_scale != 1).
//
// transformers runs the model a second time on an "unconditional" context: the prompt's last
// token alone (positions from 0, its own cache), fed each chosen token after it; the first
// processor of the chain then replaces the scores with
//   scale * (log_softmax(scores) - log_softmax(unconditional)) + log_softmax(unconditional).
// GuidedDecoder gives generate() exactly that without touching its loop: it wraps the model,
// decodes both contexts of every row as one batch of 2 x rows (the unconditional rows after the
// conditional ones, each left-padded to the prompt's width) and returns the guided scores as the
// step's logits, which the rest of the processor chain then sees as transformers' does.
//
// Beam search reorders beams, which transformers' unconditional cache does not follow: hfpipe
// refuses guidance with num_beams > 1 (check_supported), and encoder-decoder models, for which
// transformers feeds the decoder's token to the encoder.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "generation/generation_config.h"
#include "models/decoder.h"

namespace hfpipe::generation {

// The guidance scale a config asks for: nullopt when off (unset or 1).
std::optional<double> guidance_scale(const GenerationConfig& config);

// One generate() call's model with guidance (its state is that call's: make one per call).
class GuidedDecoder : public models::DecoderModel {
 public:
  GuidedDecoder(const models::DecoderModel& model, double scale) : model_(model), scale_(scale) {}

  Tensor forward(const models::DecoderStep& step, models::KvCache& cache, bool all_positions = false) const override;
  // A cache for the conditional and the unconditional rows.
  models::KvCache new_cache(int64_t batch, int64_t capacity) const override;
  void reorder_rows(models::KvCache& cache, const std::vector<int64_t>& source_rows) const override;
  int64_t vocab_size() const override { return model_.vocab_size(); }
  int64_t max_position_embeddings() const override { return model_.max_position_embeddings(); }
  bool positions_are_bounded() const override { return model_.positions_are_bounded(); }

 private:
  // The 2 x batch rows' step: the given rows, then each row's unconditional context.
  models::DecoderStep doubled(const models::DecoderStep& step, const models::KvCache& cache) const;

  const models::DecoderModel& model_;
  double scale_;
  // Set by the first (prompt) step: its width, and each row's position offset (prompt length - 1),
  // which the unconditional row, counting from 0, does not have.
  mutable int64_t prompt_width_ = 0;
  mutable std::vector<int32_t> offsets_;
  mutable std::vector<int32_t> ids_, positions_, mask_;  // the doubled step's buffers
};

}  // namespace hfpipe::generation
