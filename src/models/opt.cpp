// OPT (modeling_opt.py): token embeddings of width word_embed_proj_dim (project_in maps them
// to hidden_size when the two differ, project_out maps back before the tied LM head), learned
// position embeddings read at position + 2 (OPTLearnedPositionalEmbedding's offset), layers
// that are pre-norm (do_layer_norm_before, OPT-125m and most others) or post-norm (OPT-350m),
// a ReLU MLP, and a final LayerNorm only in the pre-norm layout.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

constexpr int32_t kPositionOffset = 2;  // OPT's position table starts with two unused rows

class Opt : public DecoderModel {
 public:
  Opt(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "model.", "decoder.embed_tokens.weight");
    hidden_ = config.get_int("hidden_size");
    heads_ = config.get_int("num_attention_heads");
    check(heads_ > 0 && hidden_ % heads_ == 0, ErrorKind::CorruptFile,
          "hidden_size must be a multiple of num_attention_heads");
    ffn_ = config.get_int("ffn_dim");
    vocab_ = config.get_int("vocab_size");
    positions_ = config.get_int("max_position_embeddings", 2048);
    embed_dim_ = config.get_int("word_embed_proj_dim", hidden_);
    pre_norm_ = config.get_bool("do_layer_norm_before", true);
    const bool bias = config.get_bool("enable_bias", true);
    // transformers itself cannot build OPT without LayerNorm parameters (its _init_weights
    // fills them), so no checkpoint has that layout.
    check(config.get_bool("layer_norm_elementwise_affine", true), ErrorKind::UnsupportedModel,
          "OPT with layer_norm_elementwise_affine=false is not supported");
    const auto act = ops::activation_from_name(config.get_string("activation_function", "relu"));
    embed_ = reader.base("decoder.embed_tokens.weight");
    positions_table_ = reader.base("decoder.embed_positions.weight");
    check(positions_table_.dim(0) >= positions_ + kPositionOffset, ErrorKind::CorruptFile,
          "decoder.embed_positions.weight has fewer than max_position_embeddings + 2 rows");
    if (embed_dim_ != hidden_) {
      project_in_ = ops::Linear(reader.base("decoder.project_in.weight"), Tensor());
      project_out_ = ops::Linear(reader.base("decoder.project_out.weight"), Tensor());
    }
    for (int64_t i = 0; i < config.get_int("num_hidden_layers"); ++i) layers_.push_back(load_layer(reader, i, bias, act));
    if (pre_norm_ && !config.get_bool("_remove_final_layer_norm", false)) {
      final_norm_ = norm(reader, "decoder.final_layer_norm");
      has_final_norm_ = true;
    }
    const bool tied = config.get_bool("tie_word_embeddings", true);
    check(tied || reader.has_head("lm_head.weight"), ErrorKind::CorruptFile,
          "the checkpoint lacks lm_head.weight and tie_word_embeddings is false");
    lm_head_ = ops::Linear(tied ? embed_ : reader.head("lm_head.weight"), Tensor());
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    std::vector<float> x(static_cast<size_t>(rows * h)), pos(static_cast<size_t>(rows * h));
    embed(step, x);
    std::vector<int32_t> shifted(step.positions, step.positions + rows);
    for (int32_t& p : shifted) p += kPositionOffset;
    embedding_lookup(positions_table_, shifted.data(), rows, pos.data(), "position");
    ops::add(x.data(), pos.data(), x.data(), rows * h);
    Buffers buf(rows, h, ffn_);
    for (size_t l = 0; l < layers_.size(); ++l) run_layer(layers_[l], x, buf, step, cache.layer(l), cache.length());
    cache.advance(step.new_tokens);
    std::vector<float> last = select_rows(x, step.batch, step.new_tokens, h, all_positions);
    const int64_t out_rows = static_cast<int64_t>(last.size()) / h;
    if (has_final_norm_) final_norm_.apply(last.data(), nullptr, out_rows);
    if (embed_dim_ != hidden_) {
      std::vector<float> projected(static_cast<size_t>(out_rows * embed_dim_));
      project_out_.forward(last.data(), out_rows, projected.data());
      last.swap(projected);
    }
    Tensor logits = all_positions ? Tensor::empty(DType::F32, {step.batch, step.new_tokens, vocab_})
                                  : Tensor::empty(DType::F32, {step.batch, vocab_});
    lm_head_.forward(last.data(), out_rows, logits.f32());
    return logits;
  }

  KvCache new_cache(int64_t batch, int64_t capacity) const override {
    return KvCache(static_cast<int64_t>(layers_.size()), batch, capacity, hidden_);
  }
  int64_t vocab_size() const override { return vocab_; }
  int64_t max_position_embeddings() const override { return positions_; }
  bool positions_are_bounded() const override { return true; }

 private:
  struct Layer {
    LayerNorm attn_norm, final_norm;
    ops::Linear q, k, v, out, fc1, fc2;
  };
  struct Buffers {
    std::vector<float> normed, q, k, v, context, projected, inner;
    Buffers(int64_t rows, int64_t h, int64_t ffn)
        : normed(rows * h), q(rows * h), k(rows * h), v(rows * h), context(rows * h), projected(rows * h),
          inner(rows * ffn) {}
  };

  // nn.LayerNorm's default eps: OPT's config has no layer norm epsilon.
  static LayerNorm norm(const WeightReader& reader, const std::string& name) {
    return LayerNorm::load(reader, name, 1e-5f);
  }

  Layer load_layer(const WeightReader& reader, int64_t i, bool bias, ops::Activation act) const {
    const std::string p = "decoder.layers." + std::to_string(i) + ".";
    auto linear = [&](const std::string& name, ops::Activation a = ops::Activation::None) {
      return ops::Linear(reader.base(name + ".weight"), bias ? reader.base(name + ".bias") : Tensor(), a);
    };
    return Layer{norm(reader, p + "self_attn_layer_norm"), norm(reader, p + "final_layer_norm"),
                 linear(p + "self_attn.q_proj"),           linear(p + "self_attn.k_proj"),
                 linear(p + "self_attn.v_proj"),           linear(p + "self_attn.out_proj"),
                 linear(p + "fc1", act),                   linear(p + "fc2")};
  }

  // Token embeddings, through project_in when they are narrower than the hidden size.
  void embed(const DecoderStep& step, std::vector<float>& x) const {
    const int64_t rows = step.batch * step.new_tokens;
    if (embed_dim_ == hidden_) return embedding_lookup(embed_, step.ids, rows, x.data(), "token");
    std::vector<float> narrow(static_cast<size_t>(rows * embed_dim_));
    embedding_lookup(embed_, step.ids, rows, narrow.data(), "token");
    project_in_.forward(narrow.data(), rows, x.data());
  }

  void run_layer(const Layer& layer, std::vector<float>& x, Buffers& b, const DecoderStep& step,
                 const ops::CacheView& cache, int64_t past) const {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_, head_dim = h / heads_;
    b.normed = x;
    if (pre_norm_) layer.attn_norm.apply(b.normed.data(), nullptr, rows);
    layer.q.forward(b.normed.data(), rows, b.q.data());
    layer.k.forward(b.normed.data(), rows, b.k.data());
    layer.v.forward(b.normed.data(), rows, b.v.data());
    // OPT scales the queries after the projection and attends with scale 1.
    const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    for (float& q : b.q) q *= scale;
    const ops::CausalAttentionShape attention{step.batch, step.new_tokens, past, heads_, heads_, head_dim, 0, 1.f};
    ops::causal_attention(b.q.data(), b.k.data(), b.v.data(), cache, step.key_mask, b.context.data(), attention);
    layer.out.forward(b.context.data(), rows, b.projected.data());
    ops::add(x.data(), b.projected.data(), x.data(), rows * h);
    if (!pre_norm_) layer.attn_norm.apply(x.data(), nullptr, rows);

    b.normed = x;
    if (pre_norm_) layer.final_norm.apply(b.normed.data(), nullptr, rows);
    layer.fc1.forward(b.normed.data(), rows, b.inner.data());
    layer.fc2.forward(b.inner.data(), rows, b.projected.data());
    ops::add(x.data(), b.projected.data(), x.data(), rows * h);
    if (!pre_norm_) layer.final_norm.apply(x.data(), nullptr, rows);
  }

  formats::WeightMap weights_;
  int64_t hidden_ = 0, heads_ = 0, ffn_ = 0, vocab_ = 0, positions_ = 0, embed_dim_ = 0;
  bool pre_norm_ = true, has_final_norm_ = false;
  Tensor embed_, positions_table_;
  ops::Linear project_in_, project_out_;
  std::vector<Layer> layers_;
  LayerNorm final_norm_;
  ops::Linear lm_head_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_opt(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<Opt>(config, std::move(weights));
}

}  // namespace hfpipe::models
