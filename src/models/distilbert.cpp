// DistilBERT (modeling_distilbert.py): word + absolute position embeddings (no token types),
// post-norm layers named q_lin/k_lin/v_lin/out_lin, sa_layer_norm, ffn.lin1/lin2,
// output_layer_norm (all LayerNorms eps 1e-12), and DistilBertForSequenceClassification's
// head: pre_classifier + ReLU on [CLS], then classifier. Names with or without "distilbert.".
#include "core/error.h"
#include "models/encoder.h"
#include "models/layers.h"

namespace hfpipe::models {

namespace {

const EncoderLayerNames kDistilBertLayerNames{
    "transformer.layer.{}.attention.q_lin",   "transformer.layer.{}.attention.k_lin",
    "transformer.layer.{}.attention.v_lin",   "transformer.layer.{}.attention.out_lin",
    "transformer.layer.{}.sa_layer_norm",     "transformer.layer.{}.ffn.lin1",
    "transformer.layer.{}.ffn.lin2",          "transformer.layer.{}.output_layer_norm"};

constexpr float kDistilBertEps = 1e-12f;  // hard-coded in modeling_distilbert.py

class DistilBert : public EncoderModel {
 public:
  DistilBert(const formats::ModelConfig& config, formats::WeightMap weights, Head head)
      : weights_(std::move(weights)) {
    WeightReader reader(weights_, "distilbert.", "embeddings.word_embeddings.weight");
    embeddings_ = Embeddings::load(reader, "embeddings.", kDistilBertEps, /*token_types=*/false);
    encoder_ = PostNormEncoder(reader, kDistilBertLayerNames,
                               {config.get_int("n_layers", 6), embeddings_.hidden(), config.get_int("n_heads", 12),
                                config.get_int("hidden_dim", 3072),
                                ops::activation_from_name(config.get_string("activation", "gelu")), kDistilBertEps});
    head_ = load_head(head, reader, ops::activation_from_name(config.get_string("activation", "gelu")));
  }

  Tensor last_hidden_state(const EncoderInputs& in) const override {
    auto positions = sequential_position_ids(in.batch, in.seq);
    Tensor hidden = embeddings_.forward(in.input_ids.data(), positions.data(), nullptr, in.batch, in.seq);
    encoder_.forward(hidden.f32(), in.batch, in.seq, in.attention_mask.data(), nullptr);
    return hidden;
  }

  const EncoderHead& head() const override { return head_; }

  int64_t max_sequence_length() const override { return embeddings_.position.dim(0); }
  int64_t type_vocab_size() const override { return 0; }

 private:
  formats::WeightMap weights_;
  Embeddings embeddings_;
  PostNormEncoder encoder_;
  EncoderHead head_;

  // DistilBertForMaskedLM: vocab_transform + activation + vocab_layer_norm, vocab_projector
  // tied to the word embeddings.
  EncoderHead load_head(Head kind, const WeightReader& reader, ops::Activation activation) const {
    if (kind == Head::SequenceClassification)
      return EncoderHead::sequence_classification(FirstTokenHead(reader.head("pre_classifier.weight"), reader.head("pre_classifier.bias"),
                                                                 ops::Activation::Relu, reader.head("classifier.weight"),
                                                                 reader.head("classifier.bias")));
    if (kind == Head::MaskedLM)
      return EncoderHead::masked_lm(MaskedLmHead(reader.head("vocab_transform.weight"), reader.head("vocab_transform.bias"),
                                                 activation, LayerNorm::load_head(reader, "vocab_layer_norm", kDistilBertEps),
                                                 tied_decoder_weight(reader, "vocab_projector.weight", embeddings_.word),
                                                 reader.head("vocab_projector.bias")));
    return load_per_token_head(kind, reader);
  }
};

}  // namespace

std::unique_ptr<EncoderModel> make_distilbert(const formats::ModelConfig& config, formats::WeightMap weights,
                                              Head head) {
  return std::make_unique<DistilBert>(config, std::move(weights), head);
}

}  // namespace hfpipe::models
