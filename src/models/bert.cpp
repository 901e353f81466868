// BERT (modeling_bert.py): word + absolute position + token type embeddings, post-norm
// layers, and BertForSequenceClassification's head (tanh pooler on [CLS], then a linear
// classifier), token classification / question answering / masked LM heads. State-dict names are transformers' own, with or without the "bert." prefix.
#include "core/error.h"
#include "models/encoder.h"
#include "models/layers.h"

namespace hfpipe::models {

namespace {

class Bert : public EncoderModel {
 public:
  Bert(const formats::ModelConfig& config, formats::WeightMap weights, Head head) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "bert.", "embeddings.word_embeddings.weight");
    const float eps = static_cast<float>(config.get_double("layer_norm_eps", 1e-12));
    embeddings_ = Embeddings::load(reader, "embeddings.", eps, /*token_types=*/true);
    encoder_ = PostNormEncoder(reader, kBertLayerNames, bert_style_shape(config, embeddings_.hidden(), eps));
    head_ = load_head(head, reader, config, eps);
  }

  Tensor last_hidden_state(const EncoderInputs& in) const override {
    Tensor hidden = embeddings_.forward_absolute(in);
    encoder_.forward(hidden.f32(), in.batch, in.seq, in.attention_mask.data(), nullptr);
    return hidden;
  }

  const EncoderHead& head() const override { return head_; }

  int64_t max_sequence_length() const override { return embeddings_.position.dim(0); }
  int64_t type_vocab_size() const override { return embeddings_.token_type.dim(0); }

 private:
  formats::WeightMap weights_;
  Embeddings embeddings_;
  PostNormEncoder encoder_;
  EncoderHead head_;

  // BertForSequenceClassification: tanh pooler + classifier; BertForMaskedLM: cls.predictions
  // (transform.dense + hidden_act + transform.LayerNorm, decoder tied to the word embeddings).
  EncoderHead load_head(Head kind, const WeightReader& reader, const formats::ModelConfig& config, float eps) const {
    if (kind == Head::SequenceClassification)
      return EncoderHead::sequence_classification(
          FirstTokenHead(reader.base("pooler.dense.weight"), reader.base("pooler.dense.bias"), ops::Activation::Tanh,
                         reader.head("classifier.weight"), reader.head("classifier.bias")));
    if (kind == Head::MaskedLM)
      return EncoderHead::masked_lm(MaskedLmHead(
          reader.head("cls.predictions.transform.dense.weight"), reader.head("cls.predictions.transform.dense.bias"),
          ops::activation_from_name(config.get_string("hidden_act", "gelu")),
          LayerNorm::load_head(reader, "cls.predictions.transform.LayerNorm", eps),
          tied_decoder_weight(reader, "cls.predictions.decoder.weight", embeddings_.word),
          reader.head("cls.predictions.bias")));
    return load_per_token_head(kind, reader);
  }
};

}  // namespace

std::unique_ptr<EncoderModel> make_bert(const formats::ModelConfig& config, formats::WeightMap weights, Head head) {
  return std::make_unique<Bert>(config, std::move(weights), head);
}

}  // namespace hfpipe::models
