// ELECTRA (modeling_electra.py): BERT's embeddings and layers, with embeddings of width
// embedding_size projected to the hidden size by embeddings_project when the two differ.
// Heads: ElectraClassificationHead (classifier.dense + GELU on [CLS], then classifier.out_proj);
// ElectraForMaskedLM, the generator: generator_predictions (dense + GELU + LayerNorm, back to
// embedding_size) and generator_lm_head tied to the word embeddings; classifier / qa_outputs
// per token. Names with or without the "electra." prefix.
#include "core/error.h"
#include "models/encoder.h"
#include "models/layers.h"

namespace hfpipe::models {

namespace {

class Electra : public EncoderModel {
 public:
  Electra(const formats::ModelConfig& config, formats::WeightMap weights, Head head) : weights_(std::move(weights)) {
    require_absolute_positions(config);
    WeightReader reader(weights_, "electra.", "embeddings.word_embeddings.weight");
    const float eps = static_cast<float>(config.get_double("layer_norm_eps", 1e-12));
    embeddings_ = Embeddings::load(reader, "embeddings.", eps, /*token_types=*/true);
    const int64_t hidden = config.get_int("hidden_size");
    if (embeddings_.word.dim(1) != hidden) embeddings_.load_projection(reader, "embeddings_project");
    encoder_ = PostNormEncoder(reader, kBertLayerNames, bert_style_shape(config, hidden, eps));
    head_ = load_head(head, reader, eps);
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

  // Both heads use GELU whatever hidden_act says (get_activation("gelu") in transformers).
  EncoderHead load_head(Head kind, const WeightReader& reader, float eps) const {
    if (kind == Head::SequenceClassification)
      return EncoderHead::sequence_classification(FirstTokenHead(
          reader.head("classifier.dense.weight"), reader.head("classifier.dense.bias"), ops::Activation::GeluErf,
          reader.head("classifier.out_proj.weight"), reader.head("classifier.out_proj.bias")));
    if (kind == Head::MaskedLM)
      return EncoderHead::masked_lm(MaskedLmHead(
          reader.head("generator_predictions.dense.weight"), reader.head("generator_predictions.dense.bias"),
          ops::Activation::GeluErf, LayerNorm::load_head(reader, "generator_predictions.LayerNorm", eps),
          tied_decoder_weight(reader, "generator_lm_head.weight", embeddings_.word),
          reader.head("generator_lm_head.bias")));
    return load_per_token_head(kind, reader);
  }
};

}  // namespace

std::unique_ptr<EncoderModel> make_electra(const formats::ModelConfig& config, formats::WeightMap weights, Head head) {
  return std::make_unique<Electra>(config, std::move(weights), head);
}

}  // namespace hfpipe::models
