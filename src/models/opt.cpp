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

class Opt : public DecoderBase {
 public:
  Opt(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "model.", "decoder.embed_tokens.weight");
    hidden_ = config.get_int("hidden_size");
    heads_ = config.get_int("num_attention_heads");
    check(heads_ > 0 && hidden_ % heads_ == 0, ErrorKind::CorruptFile,
          "hidden_size must be a multiple of num_attention_heads");
    ffn_ = config.get_int("ffn_dim");
    const int64_t positions = config.get_int("max_position_embeddings", 2048);
    embed_dim_ = config.get_int("word_embed_proj_dim", hidden_);
    pre_norm_ = config.get_bool("do_layer_norm_before", true);
    const bool bias = config.get_bool("enable_bias", true);
    // transformers itself cannot build OPT without LayerNorm parameters (its _init_weights
    // fills them), so no checkpoint has that layout.
    check(config.get_bool("layer_norm_elementwise_affine", true), ErrorKind::UnsupportedModel,
          "OPT with layer_norm_elementwise_affine=false is not supported");
    const auto act = ops::activation_from_name(config.get_string("activation_function", "relu"));
    embed_ = TokenEmbeddings(reader, "decoder.embed_tokens.weight");
    positions_table_ = reader.base("decoder.embed_positions.weight");
    check(positions_table_.dim(0) >= positions + kPositionOffset, ErrorKind::CorruptFile,
          "decoder.embed_positions.weight has fewer than max_position_embeddings + 2 rows");
    if (embed_dim_ != hidden_) {
      project_in_ = decoder_linear(reader, reader.base("decoder.project_in.weight"), Tensor());
      project_out_ = decoder_linear(reader, reader.base("decoder.project_out.weight"), Tensor());
    }
    for (int64_t i = 0; i < config.get_int("num_hidden_layers"); ++i) layers_.push_back(load_layer(reader, i, bias, act));
    if (pre_norm_ && !config.get_bool("_remove_final_layer_norm", false)) {
      final_norm_ = norm(reader, "decoder.final_layer_norm");
      has_final_norm_ = true;
    }
    lm_head_ = embed_.lm_head(reader, config.get_bool("tie_word_embeddings", true), "lm_head.weight");
    sizes_ = {static_cast<int64_t>(layers_.size()), hidden_, config.get_int("vocab_size"), positions, true};
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    std::vector<float> x(static_cast<size_t>(rows * h)), pos(static_cast<size_t>(rows * h));
    embed(step, x);
    std::vector<int32_t> shifted(step.positions, step.positions + rows);
    for (int32_t& p : shifted) p += kPositionOffset;
    embedding_lookup(positions_table_, shifted.data(), rows, pos.data(), "position");
    ops::add(x.data(), pos.data(), x.data(), rows * h);
    // OPT scales the queries after the projection and attends with scale 1.
    AttentionParams params =
        AttentionParams::grouped(heads_, heads_, h / heads_, 1.f / std::sqrt(static_cast<float>(h / heads_)));
    params.scale_queries = true;
    DecoderScratch scratch(rows, h, h, h, ffn_, false);
    for (size_t l = 0; l < layers_.size(); ++l)
      layers_[l].run(x, pre_norm_, params, step, cache.layer(l), cache.length(), scratch);
    cache.advance(step.new_tokens);
    return lm_head_logits(x, h, step, all_positions, [&](std::vector<float>& last, int64_t n) { finish(last, n); },
                          lm_head_, sizes_.vocab);
  }

 private:
  // nn.LayerNorm's default eps: OPT's config has no layer norm epsilon.
  static LayerNorm norm(const WeightReader& reader, const std::string& name) {
    return LayerNorm::load(reader, name, 1e-5f);
  }

  LayerNormLayer load_layer(const WeightReader& reader, int64_t i, bool bias, ops::Activation act) const {
    const std::string p = "decoder.layers." + std::to_string(i) + ".";
    LayerNormLayer layer;
    layer.attn_norm = norm(reader, p + "self_attn_layer_norm");
    layer.mlp_norm = norm(reader, p + "final_layer_norm");
    layer.attention = load_projection_attention(reader, p + "self_attn.", "out_proj", bias, bias);
    layer.fc = load_linear(reader, p + "fc1", bias, act);
    layer.proj = load_linear(reader, p + "fc2", bias);
    return layer;
  }

  // Token embeddings, through project_in when they are narrower than the hidden size.
  void embed(const DecoderStep& step, std::vector<float>& x) const {
    const int64_t rows = step.batch * step.new_tokens;
    if (embed_dim_ == hidden_) return embed_.lookup(step.ids, rows, x.data());
    std::vector<float> narrow(static_cast<size_t>(rows * embed_dim_));
    embed_.lookup(step.ids, rows, narrow.data());
    project_in_.forward(narrow.data(), rows, x.data());
  }

  // Before the LM head: the final norm (pre-norm layout only), and project_out back to the
  // embeddings' width when they are narrower.
  void finish(std::vector<float>& last, int64_t n) const {
    if (has_final_norm_) final_norm_.apply(last.data(), nullptr, n);
    if (embed_dim_ == hidden_) return;
    std::vector<float> projected(static_cast<size_t>(n * embed_dim_));
    project_out_.forward(last.data(), n, projected.data());
    last.swap(projected);
  }

  formats::WeightMap weights_;
  int64_t hidden_ = 0, heads_ = 0, ffn_ = 0, embed_dim_ = 0;
  bool pre_norm_ = true, has_final_norm_ = false;
  TokenEmbeddings embed_;
  Tensor positions_table_;
  ops::Linear project_in_, project_out_;
  std::vector<LayerNormLayer> layers_;
  LayerNorm final_norm_;
  ops::Linear lm_head_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_opt(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<Opt>(config, std::move(weights));
}

}  // namespace hfpipe::models
