// GPT-NeoX and Pythia (modeling_gpt_neox.py): LayerNorm pre-norm layers, rotary embeddings
// on the first rotary_pct of each head, one fused query_key_value projection laid out per
// head as [q k v], a GELU MLP, and either the parallel residual
//   x = mlp(ln2(x)) + attn(ln1(x)) + x          (use_parallel_residual, the default)
// or the sequential one  a = attn(ln1(x)) + x;  x = mlp(ln2(a)) + a.
// The LM head (embed_out) is separate unless tie_word_embeddings.
#include <cmath>

#include "core/error.h"
#include "core/mapped_file.h"
#include "models/decoder.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

class GptNeoX : public DecoderBase {
 public:
  GptNeoX(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "gpt_neox.", "embed_in.weight");
    hidden_ = config.get_int("hidden_size");
    heads_ = config.get_int("num_attention_heads");
    check(heads_ > 0 && hidden_ % heads_ == 0, ErrorKind::CorruptFile,
          "hidden_size must be a multiple of num_attention_heads");
    head_dim_ = hidden_ / heads_;
    inner_ = config.get_int("intermediate_size");
    sizes_.max_positions = config.get_int("max_position_embeddings", 2048);
    parallel_residual_ = config.get_bool("use_parallel_residual", true);
    const float eps = static_cast<float>(config.get_double("layer_norm_eps", 1e-5));
    const auto act = ops::activation_from_name(config.get_string("hidden_act", "gelu"));
    const bool bias = config.get_bool("attention_bias", true);
    embed_ = TokenEmbeddings(reader, "embed_in.weight");
    for (int64_t i = 0; i < config.get_int("num_hidden_layers"); ++i)
      layers_.push_back(load_layer(reader, i, eps, act, bias));
    final_norm_ = LayerNorm::load(reader, "final_layer_norm", eps);
    lm_head_ = embed_.lm_head(reader, config.get_bool("tie_word_embeddings", false), "embed_out.weight");
    rope_ = rope_from_config(config, rope_params(config));
    sizes_.layers = static_cast<int64_t>(layers_.size());
    sizes_.kv_width = hidden_;
    sizes_.vocab = config.get_int("vocab_size");
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    std::vector<float> x(static_cast<size_t>(rows * h));
    embed_.lookup(step.ids, rows, x.data());
    AttentionParams params =
        AttentionParams::grouped(heads_, heads_, head_dim_, 1.f / std::sqrt(static_cast<float>(head_dim_)));
    params.rope = &rope_;
    DecoderScratch scratch(rows, h, h, h, inner_, false);
    for (size_t l = 0; l < layers_.size(); ++l) {
      // The sequential residual, attn_output + x then mlp_output + that, is GPT-2's layer.
      if (parallel_residual_)
        run_parallel_layer(layers_[l], x, params, step, cache.layer(l), cache.length(), scratch);
      else
        layers_[l].run(x, true, params, step, cache.layer(l), cache.length(), scratch);
    }
    cache.advance(step.new_tokens);
    return lm_head_logits(x, h, step, all_positions,
                          [&](std::vector<float>& last, int64_t n) { final_norm_.apply(last.data(), nullptr, n); },
                          lm_head_, sizes_.vocab);
  }

 private:
  // rotary_pct / rotary_emb_base are the config.json names; transformers also saves them as
  // partial_rotary_factor / rope_theta, which win when present.
  RopeParams rope_params(const formats::ModelConfig& c) const {
    RopeParams p;
    p.theta = c.get_double("rope_theta", c.get_double("rotary_emb_base", 10000.0));
    const double pct = c.get_double("partial_rotary_factor", c.get_double("rotary_pct", 0.25));
    p.head_dim = head_dim_;
    p.rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim_) * pct);
    p.max_positions = sizes_.max_positions;
    p.original_max_positions = c.get_int("original_max_position_embeddings", 0);
    return p;
  }

  // query_key_value's rows are [heads, 3, head_dim]: head h's query, key and value rows follow
  // one another, so each of q, k, v gathers one head_dim run out of every 3 * head_dim.
  LayerNormLayer load_layer(const WeightReader& reader, int64_t i, float eps, ops::Activation act, bool bias) const {
    const std::string p = "layers." + std::to_string(i) + ".";
    const Tensor qkv = reader.base(p + "attention.query_key_value.weight");
    const Tensor qkv_bias = bias ? reader.base(p + "attention.query_key_value.bias") : Tensor();
    auto part = [&](int64_t j) {
      const int64_t stride = 3 * head_dim_;
      return decoder_linear(reader, fused_rows(qkv, j * head_dim_, head_dim_, stride, heads_),
                            bias ? fused_rows(qkv_bias, j * head_dim_, head_dim_, stride, heads_) : Tensor());
    };
    LayerNormLayer layer;
    layer.attn_norm = LayerNorm::load(reader, p + "input_layernorm", eps);
    layer.mlp_norm = LayerNorm::load(reader, p + "post_attention_layernorm", eps);
    layer.attention =
        SelfAttention{part(0), part(1), part(2), load_linear(reader, p + "attention.dense", bias), Tensor(), Tensor(), 0};
    MappedFile::release_pages(qkv.raw(), qkv.nbytes());  // only the three copies are read from here on
    layer.fc = load_linear(reader, p + "mlp.dense_h_to_4h", true, act);
    layer.proj = load_linear(reader, p + "mlp.dense_4h_to_h", true);
    return layer;
  }

  // x = mlp(ln2(x)) + attn(ln1(x)) + x: the MLP reads the layer's input, not the attention's
  // output.
  void run_parallel_layer(const LayerNormLayer& layer, std::vector<float>& x, const AttentionParams& params,
                          const DecoderStep& step, const ops::CacheView& cache, int64_t past,
                          DecoderScratch& b) const {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    b.normed = x;
    layer.attn_norm.apply(b.normed.data(), nullptr, rows);
    self_attention(layer.attention, params, step, cache, past, b);
    b.context.swap(b.projected);  // keeps the attention output; both are [rows, hidden] here
    b.normed = x;
    layer.mlp_norm.apply(b.normed.data(), nullptr, rows);
    layer.mlp(rows, b);
    // mlp_output + attn_output + hidden_states, summed in transformers' order.
    ops::add(b.projected.data(), b.context.data(), b.projected.data(), rows * h);
    ops::add(b.projected.data(), x.data(), x.data(), rows * h);
  }

  formats::WeightMap weights_;
  int64_t hidden_ = 0, heads_ = 0, head_dim_ = 0, inner_ = 0;
  bool parallel_residual_ = true;
  TokenEmbeddings embed_;
  std::vector<LayerNormLayer> layers_;
  LayerNorm final_norm_;
  ops::Linear lm_head_;
  ops::Rope rope_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_gpt_neox(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<GptNeoX>(config, std::move(weights));
}

}  // namespace hfpipe::models
