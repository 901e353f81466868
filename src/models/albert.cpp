// ALBERT (modeling_albert.py): BERT-style embeddings of width embedding_size, projected to the
// hidden size by encoder.embedding_hidden_mapping_in, then num_hidden_layers applications of
// shared layer groups: application i runs group int(i / (num_hidden_layers / num_hidden_groups)),
// and a group is inner_group_num post-norm layers (attention.{query,key,value,dense,LayerNorm},
// ffn, ffn_output, full_layer_layer_norm). Heads: the tanh pooler (`pooler`, a base-model
// tensor) + classifier; AlbertMLMHead `predictions` (dense + hidden_act + LayerNorm back to
// embedding_size, decoder tied to the word embeddings); classifier / qa_outputs per token.
// Names with or without the "albert." prefix.
#include "core/error.h"
#include "models/encoder.h"
#include "models/layers.h"

namespace hfpipe::models {

namespace {

EncoderLayerNames albert_group_names(int64_t group) {
  const std::string p = "encoder.albert_layer_groups." + std::to_string(group) + ".albert_layers.{}.";
  return {p + "attention.query", p + "attention.key",       p + "attention.value",  p + "attention.dense",
          p + "attention.LayerNorm", p + "ffn", p + "ffn_output", p + "full_layer_layer_norm"};
}

class Albert : public EncoderModel {
 public:
  Albert(const formats::ModelConfig& config, formats::WeightMap weights, Head head) : weights_(std::move(weights)) {
    require_absolute_positions(config);
    WeightReader reader(weights_, "albert.", "embeddings.word_embeddings.weight");
    const float eps = static_cast<float>(config.get_double("layer_norm_eps", 1e-12));
    embeddings_ = Embeddings::load(reader, "embeddings.", eps, /*token_types=*/true);
    embeddings_.load_projection(reader, "encoder.embedding_hidden_mapping_in");
    load_groups(reader, config, eps);
    head_ = load_head(head, reader, config, eps);
  }

  Tensor last_hidden_state(const EncoderInputs& in) const override {
    Tensor hidden = embeddings_.forward_absolute(in);
    for (int64_t group : schedule_)
      groups_[group].forward(hidden.f32(), in.batch, in.seq, in.attention_mask.data(), nullptr);
    return hidden;
  }

  const EncoderHead& head() const override { return head_; }

  int64_t max_sequence_length() const override { return embeddings_.position.dim(0); }
  int64_t type_vocab_size() const override { return embeddings_.token_type.dim(0); }

 private:
  formats::WeightMap weights_;
  Embeddings embeddings_;
  std::vector<PostNormEncoder> groups_;  // one per layer group, inner_group_num layers each
  std::vector<int64_t> schedule_;        // the group each of the num_hidden_layers steps runs
  EncoderHead head_;

  void load_groups(const WeightReader& reader, const formats::ModelConfig& config, float eps) {
    const int64_t layers = config.get_int("num_hidden_layers", 12);
    const int64_t num_groups = config.get_int("num_hidden_groups", 1);
    check(num_groups >= 1 && layers >= 1, ErrorKind::CorruptFile,
          "num_hidden_layers and num_hidden_groups must be positive");
    EncoderShape shape = bert_style_shape(config, embeddings_.hidden(), eps);
    shape.activation = ops::activation_from_name(config.get_string("hidden_act", "gelu_new"));
    shape.layers = config.get_int("inner_group_num", 1);
    for (int64_t g = 0; g < num_groups; ++g) groups_.emplace_back(reader, albert_group_names(g), shape);
    // AlbertTransformer: group_idx = int(i / (num_hidden_layers / num_hidden_groups)), in floats.
    const double per_group = static_cast<double>(layers) / static_cast<double>(num_groups);
    for (int64_t i = 0; i < layers; ++i) {
      const auto group = static_cast<int64_t>(static_cast<double>(i) / per_group);
      check(group < num_groups, ErrorKind::CorruptFile, "ALBERT layer group index out of range");
      schedule_.push_back(group);
    }
  }

  EncoderHead load_head(Head kind, const WeightReader& reader, const formats::ModelConfig& config, float eps) const {
    if (kind == Head::SequenceClassification)
      return EncoderHead::sequence_classification(
          FirstTokenHead(reader.base("pooler.weight"), reader.base("pooler.bias"), ops::Activation::Tanh,
                         reader.head("classifier.weight"), reader.head("classifier.bias")));
    if (kind == Head::MaskedLM)
      return EncoderHead::masked_lm(MaskedLmHead(
          reader.head("predictions.dense.weight"), reader.head("predictions.dense.bias"),
          ops::activation_from_name(config.get_string("hidden_act", "gelu_new")),
          LayerNorm::load_head(reader, "predictions.LayerNorm", eps),
          tied_decoder_weight(reader, "predictions.decoder.weight", embeddings_.word),
          reader.has_head("predictions.bias") ? reader.head("predictions.bias")
                                              : reader.head("predictions.decoder.bias")));
    return load_per_token_head(kind, reader);
  }
};

}  // namespace

std::unique_ptr<EncoderModel> make_albert(const formats::ModelConfig& config, formats::WeightMap weights, Head head) {
  return std::make_unique<Albert>(config, std::move(weights), head);
}

}  // namespace hfpipe::models
