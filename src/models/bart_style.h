// The encoder-decoder layout BART introduced and mBART, Pegasus, Marian and M2M100/NLLB reuse with
// small differences, as options of one implementation (bart.cpp): each family's file says
// which options it takes. Shared: token embeddings (times sqrt(d_model) with scale_embedding)
// plus position embeddings, layers of self-attention (scaled by head_dim^-0.5, q/k/v/out with
// biases), cross-attention in the decoder, and an fc1 → activation → fc2 MLP, each sub-layer
// with a LayerNorm and a residual; an LM head tied to the token embeddings (or lm_head) plus
// final_logits_bias when the checkpoint has one.
#pragma once

#include <memory>
#include <string>

#include "models/seq2seq.h"

namespace hfpipe::models {

struct BartStyleOptions {
  std::string family;              // for messages: "BART", "Marian", ...
  bool pre_norm = false;           // LayerNorm before each sub-layer (mBART, Pegasus) or after (BART, Marian)
  bool layernorm_embedding = false;  // a LayerNorm over the summed embeddings (BART, mBART)
  bool final_layer_norms = false;  // encoder.layer_norm / decoder.layer_norm after the stacks (pre-norm models)
  bool sinusoidal_positions = false;  // fixed sin|cos tables (Marian, Pegasus) instead of learned ones
  int64_t position_offset = 0;     // learned tables are indexed position + 2 in BART and mBART
  // M2M100 / NLLB: fairseq's sinusoidal positions (sin half | cos half, frequencies
  // 10000^(-j/(half-1))), numbered from pad_token_id + 1 over the non-pad tokens only (a pad
  // token gets the all-zero row), and unbounded (transformers grows the table on demand).
  bool fairseq_positions = false;
};

std::unique_ptr<Seq2SeqModel> make_bart_style(const formats::ModelConfig& config, formats::WeightMap weights,
                                              const BartStyleOptions& options);

}  // namespace hfpipe::models
