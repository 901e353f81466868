// MPNet (modeling_mpnet.py): RoBERTa-style embeddings without token types, post-norm layers
// named attention.attn.{q,k,v,o}, and a T5-style relative position bias shared by all layers
// (32 buckets, max distance 128, bidirectional), added to every layer's attention scores.
// MPNetForSequenceClassification's head is RoBERTa's (dense + tanh on <s>, then out_proj).
// Names with or without the "mpnet." prefix.
#include <cmath>

#include "core/error.h"
#include "models/encoder.h"
#include "models/layers.h"

namespace hfpipe::models {

namespace {

const EncoderLayerNames kMpnetLayerNames{
    "encoder.layer.{}.attention.attn.q",         "encoder.layer.{}.attention.attn.k",
    "encoder.layer.{}.attention.attn.v",         "encoder.layer.{}.attention.attn.o",
    "encoder.layer.{}.attention.LayerNorm",      "encoder.layer.{}.intermediate.dense",
    "encoder.layer.{}.output.dense",             "encoder.layer.{}.output.LayerNorm"};

// MPNetEncoder.relative_position_bucket, with transformers' fixed num_buckets = 32 and
// max_distance = 128 (compute_position_bias is called without the config's value).
int32_t relative_position_bucket(int64_t relative_position) {
  constexpr int64_t kHalfBuckets = 16, kMaxExact = 8, kMaxDistance = 128;
  int64_t n = -relative_position;
  int64_t bucket = n < 0 ? kHalfBuckets : 0;
  n = std::abs(n);
  if (n < kMaxExact) return static_cast<int32_t>(bucket + n);
  // Same float32 arithmetic as torch: log(n / max_exact) / log(max_distance / max_exact).
  const float scaled = std::log(static_cast<float>(n) / kMaxExact) /
                       static_cast<float>(std::log(static_cast<double>(kMaxDistance) / kMaxExact)) *
                       static_cast<float>(kHalfBuckets - kMaxExact);
  int64_t large = kMaxExact + static_cast<int64_t>(scaled);
  return static_cast<int32_t>(bucket + std::min<int64_t>(large, kHalfBuckets - 1));
}

class Mpnet : public EncoderModel {
 public:
  Mpnet(const formats::ModelConfig& config, formats::WeightMap weights, Head head) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "mpnet.", "embeddings.word_embeddings.weight");
    const float eps = static_cast<float>(config.get_double("layer_norm_eps", 1e-12));
    padding_idx_ = static_cast<int32_t>(config.get_int("pad_token_id", 1));
    heads_ = config.get_int("num_attention_heads");
    embeddings_ = Embeddings::load(reader, "embeddings.", eps, /*token_types=*/false);
    relative_bias_ = reader.base("encoder.relative_attention_bias.weight");  // [buckets, heads]
    check(relative_bias_.ndim() == 2 && relative_bias_.dim(1) == heads_ && relative_bias_.dim(0) >= 32,
          ErrorKind::CorruptFile, "MPNet relative_attention_bias must be [32, num_attention_heads]");
    encoder_ = PostNormEncoder(reader, kMpnetLayerNames, bert_style_shape(config, embeddings_.hidden(), eps));
    head_ = load_roberta_style_head(head, reader, eps, embeddings_.word);
  }

  Tensor last_hidden_state(const EncoderInputs& in) const override {
    auto positions = padded_position_ids(in.input_ids, in.batch, in.seq, padding_idx_);
    Tensor hidden = embeddings_.forward(in.input_ids.data(), positions.data(), nullptr, in.batch, in.seq);
    auto bias = position_bias(in.seq);
    encoder_.forward(hidden.f32(), in.batch, in.seq, in.attention_mask.data(), bias.data());
    return hidden;
  }

  const EncoderHead& head() const override { return head_; }

  int64_t max_sequence_length() const override { return embeddings_.position.dim(0) - padding_idx_ - 1; }
  int64_t type_vocab_size() const override { return 0; }

 private:
  // [heads, seq, seq]: bias[h][i][j] = table[bucket(j - i)][h]
  std::vector<float> position_bias(int64_t seq) const {
    std::vector<float> bias(static_cast<size_t>(heads_ * seq * seq));
    const float* table = relative_bias_.f32();
    for (int64_t i = 0; i < seq; ++i)
      for (int64_t j = 0; j < seq; ++j) {
        const int32_t bucket = relative_position_bucket(j - i);
        for (int64_t h = 0; h < heads_; ++h) bias[(h * seq + i) * seq + j] = table[bucket * heads_ + h];
      }
    return bias;
  }

  formats::WeightMap weights_;
  Embeddings embeddings_;
  Tensor relative_bias_;
  int32_t padding_idx_ = 1;
  int64_t heads_ = 0;
  PostNormEncoder encoder_;
  EncoderHead head_;
};

}  // namespace

std::unique_ptr<EncoderModel> make_mpnet(const formats::ModelConfig& config, formats::WeightMap weights, Head head) {
  return std::make_unique<Mpnet>(config, std::move(weights), head);
}

}  // namespace hfpipe::models
