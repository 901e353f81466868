// mBART / mBART-50 (modeling_mbart.py): the BART layout made pre-norm (a LayerNorm before each
// sub-layer and one after each stack), keeping BART's learned positions offset by 2 and its
// layernorm_embedding. (Its tokenizer's language codes are the tokenizer's business; the
// translation task refuses mBART until they exist.)
#include "models/bart_style.h"

namespace hfpipe::models {

std::unique_ptr<Seq2SeqModel> make_mbart(const formats::ModelConfig& config, formats::WeightMap weights) {
  BartStyleOptions o;
  o.family = "mBART";
  o.pre_norm = true;
  o.final_layer_norms = true;
  o.layernorm_embedding = true;
  o.position_offset = 2;
  return make_bart_style(config, std::move(weights), o);
}

}  // namespace hfpipe::models
