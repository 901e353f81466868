// RoBERTa and XLM-RoBERTa (modeling_roberta.py, modeling_xlm_roberta.py — the same network):
// BERT's layers with position ids counted from padding_idx + 1 over non-padding tokens, a
// single token type, and RobertaClassificationHead (dense + tanh on <s>, then out_proj).
// State-dict names are transformers' own, with or without the "roberta." prefix (XLM-R too).
#include "core/error.h"
#include "models/encoder.h"
#include "models/layers.h"

namespace hfpipe::models {

namespace {

class Roberta : public EncoderModel {
 public:
  Roberta(const formats::ModelConfig& config, formats::WeightMap weights, Head head) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "roberta.", "embeddings.word_embeddings.weight");
    const float eps = static_cast<float>(config.get_double("layer_norm_eps", 1e-5));
    padding_idx_ = static_cast<int32_t>(config.get_int("pad_token_id", 1));
    embeddings_ = Embeddings::load(reader, "embeddings.", eps, /*token_types=*/true);
    encoder_ = PostNormEncoder(reader, kBertLayerNames, bert_style_shape(config, embeddings_.hidden(), eps));
    head_ = load_roberta_style_head(head, reader, eps, embeddings_.word);
  }

  Tensor last_hidden_state(const EncoderInputs& in) const override {
    auto positions = padded_position_ids(in.input_ids, in.batch, in.seq, padding_idx_);
    // RoBERTa's tokenizers pass no token_type_ids, so the model uses type 0 throughout.
    Tensor hidden = embeddings_.forward(in.input_ids.data(), positions.data(), nullptr, in.batch, in.seq);
    encoder_.forward(hidden.f32(), in.batch, in.seq, in.attention_mask.data(), nullptr);
    return hidden;
  }

  const EncoderHead& head() const override { return head_; }

  int64_t max_sequence_length() const override { return embeddings_.position.dim(0) - padding_idx_ - 1; }
  int64_t type_vocab_size() const override { return embeddings_.token_type.dim(0); }

 private:
  formats::WeightMap weights_;
  Embeddings embeddings_;
  int32_t padding_idx_ = 1;
  PostNormEncoder encoder_;
  EncoderHead head_;
};

}  // namespace

std::unique_ptr<EncoderModel> make_roberta(const formats::ModelConfig& config, formats::WeightMap weights, Head head) {
  return std::make_unique<Roberta>(config, std::move(weights), head);
}

}  // namespace hfpipe::models
