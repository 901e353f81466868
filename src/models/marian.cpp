// Marian / OPUS-MT (modeling_marian.py): BART's post-norm layout with fixed sinusoidal
// positions (no offset), no layernorm_embedding and embeddings scaled by sqrt(d_model)
// (scale_embedding, true in MarianConfig); decoding starts from the pad token
// (decoder_start_token_id), which the generation config carries.
#include "models/bart_style.h"

namespace hfpipe::models {

std::unique_ptr<Seq2SeqModel> make_marian(const formats::ModelConfig& config, formats::WeightMap weights) {
  BartStyleOptions o;
  o.family = "Marian";
  o.sinusoidal_positions = true;
  return make_bart_style(config, std::move(weights), o);
}

}  // namespace hfpipe::models
