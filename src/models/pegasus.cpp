// Pegasus (modeling_pegasus.py): the BART layout made pre-norm (a LayerNorm before each
// sub-layer and one after each stack), with fixed sinusoidal positions (no offset) and no
// layernorm_embedding.
#include "models/bart_style.h"

namespace hfpipe::models {

std::unique_ptr<Seq2SeqModel> make_pegasus(const formats::ModelConfig& config, formats::WeightMap weights) {
  BartStyleOptions o;
  o.family = "Pegasus";
  o.pre_norm = true;
  o.final_layer_norms = true;
  o.sinusoidal_positions = true;
  return make_bart_style(config, std::move(weights), o);
}

}  // namespace hfpipe::models
