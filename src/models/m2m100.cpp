// M2M100 and NLLB (modeling_m2m_100.py; NLLB checkpoints are model_type m2m_100 with another
// tokenizer): the BART layout made pre-norm (a LayerNorm before each sub-layer and one after
// each stack), no layernorm_embedding, embeddings scaled by sqrt(d_model) with scale_embedding,
// and fairseq's sinusoidal positions counted from pad_token_id + 1 over the non-pad tokens
// (bart_style.h's fairseq_positions). The LM head is tied to the shared embeddings and there is
// no final_logits_bias. NLLB-MoE (model_type nllb-moe, expert layers) is a different model and
// is not supported.
#include "models/bart_style.h"

namespace hfpipe::models {

std::unique_ptr<Seq2SeqModel> make_m2m100(const formats::ModelConfig& config, formats::WeightMap weights) {
  BartStyleOptions o;
  o.family = "M2M100";
  o.pre_norm = true;
  o.final_layer_norms = true;
  o.fairseq_positions = true;
  return make_bart_style(config, std::move(weights), o);
}

}  // namespace hfpipe::models
