// GPT-NeoX and Pythia (modeling_gpt_neox.py): LayerNorm pre-norm layers, rotary embeddings
// on the first rotary_pct of each head, one fused query_key_value projection laid out per
// head as [q k v], a GELU MLP, and either the parallel residual
//   x = mlp(ln2(x)) + attn(ln1(x)) + x          (use_parallel_residual, the default)
// or the sequential one  a = attn(ln1(x)) + x;  x = mlp(ln2(a)) + a.
// The LM head (embed_out) is separate unless tie_word_embeddings.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

class GptNeoX : public DecoderModel {
 public:
  GptNeoX(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "gpt_neox.", "embed_in.weight");
    hidden_ = config.get_int("hidden_size");
    heads_ = config.get_int("num_attention_heads");
    check(heads_ > 0 && hidden_ % heads_ == 0, ErrorKind::CorruptFile,
          "hidden_size must be a multiple of num_attention_heads");
    head_dim_ = hidden_ / heads_;
    inner_ = config.get_int("intermediate_size");
    vocab_ = config.get_int("vocab_size");
    positions_ = config.get_int("max_position_embeddings", 2048);
    parallel_residual_ = config.get_bool("use_parallel_residual", true);
    const float eps = static_cast<float>(config.get_double("layer_norm_eps", 1e-5));
    const auto act = ops::activation_from_name(config.get_string("hidden_act", "gelu"));
    const bool bias = config.get_bool("attention_bias", true);
    embed_ = reader.base("embed_in.weight");
    for (int64_t i = 0; i < config.get_int("num_hidden_layers"); ++i)
      layers_.push_back(load_layer(reader, i, eps, act, bias));
    final_norm_ = LayerNorm::load(reader, "final_layer_norm", eps);
    const bool tied = config.get_bool("tie_word_embeddings", false);
    check(tied || reader.has_head("embed_out.weight"), ErrorKind::CorruptFile,
          "the checkpoint lacks embed_out.weight and tie_word_embeddings is false");
    lm_head_ = ops::Linear(tied ? embed_ : reader.head("embed_out.weight"), Tensor());
    rope_ = rope_from_config(config, rope_params(config));
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    std::vector<float> x(static_cast<size_t>(rows * h));
    embedding_lookup(embed_, step.ids, rows, x.data(), "token");
    Buffers buf(rows, h, inner_);
    for (size_t l = 0; l < layers_.size(); ++l) run_layer(layers_[l], x, buf, step, cache.layer(l), cache.length());
    cache.advance(step.new_tokens);
    std::vector<float> last = select_rows(x, step.batch, step.new_tokens, h, all_positions);
    const int64_t out_rows = static_cast<int64_t>(last.size()) / h;
    final_norm_.apply(last.data(), nullptr, out_rows);
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
  bool positions_are_bounded() const override { return false; }

 private:
  struct Layer {
    LayerNorm input_norm, post_norm;
    ops::Linear q, k, v, dense, fc_in, fc_out;
  };
  struct Buffers {
    std::vector<float> normed, q, k, v, context, attn, mlp, inner;
    Buffers(int64_t rows, int64_t h, int64_t inner)
        : normed(rows * h), q(rows * h), k(rows * h), v(rows * h), context(rows * h), attn(rows * h), mlp(rows * h),
          inner(rows * inner) {}
  };

  // rotary_pct / rotary_emb_base are the config.json names; transformers also saves them as
  // partial_rotary_factor / rope_theta, which win when present.
  RopeParams rope_params(const formats::ModelConfig& c) const {
    RopeParams p;
    p.theta = c.get_double("rope_theta", c.get_double("rotary_emb_base", 10000.0));
    const double pct = c.get_double("partial_rotary_factor", c.get_double("rotary_pct", 0.25));
    p.head_dim = head_dim_;
    p.rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim_) * pct);
    p.max_positions = positions_;
    p.original_max_positions = c.get_int("original_max_position_embeddings", 0);
    return p;
  }

  // query_key_value's rows are [heads, 3, head_dim]: head h's query, key and value rows follow
  // one another, so each of q, k, v gathers one head_dim run out of every 3 * head_dim.
  Layer load_layer(const WeightReader& reader, int64_t i, float eps, ops::Activation act, bool bias) const {
    const std::string p = "layers." + std::to_string(i) + ".";
    const Tensor qkv = reader.base(p + "attention.query_key_value.weight");
    const Tensor qkv_bias = bias ? reader.base(p + "attention.query_key_value.bias") : Tensor();
    auto part = [&](int64_t j) {
      const int64_t stride = 3 * head_dim_;
      return ops::Linear(fused_rows(qkv, j * head_dim_, head_dim_, stride, heads_),
                         bias ? fused_rows(qkv_bias, j * head_dim_, head_dim_, stride, heads_) : Tensor());
    };
    auto linear = [&](const std::string& name, bool with_bias, ops::Activation a = ops::Activation::None) {
      return ops::Linear(reader.base(name + ".weight"), with_bias ? reader.base(name + ".bias") : Tensor(), a);
    };
    return Layer{LayerNorm::load(reader, p + "input_layernorm", eps),
                 LayerNorm::load(reader, p + "post_attention_layernorm", eps),
                 part(0),
                 part(1),
                 part(2),
                 linear(p + "attention.dense", bias),
                 linear(p + "mlp.dense_h_to_4h", true, act),
                 linear(p + "mlp.dense_4h_to_h", true)};
  }

  void run_layer(const Layer& layer, std::vector<float>& x, Buffers& b, const DecoderStep& step,
                 const ops::CacheView& cache, int64_t past) const {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    b.normed = x;
    layer.input_norm.apply(b.normed.data(), nullptr, rows);
    layer.q.forward(b.normed.data(), rows, b.q.data());
    layer.k.forward(b.normed.data(), rows, b.k.data());
    layer.v.forward(b.normed.data(), rows, b.v.data());
    rope_.apply(b.q.data(), step.batch, step.new_tokens, heads_, step.positions);
    rope_.apply(b.k.data(), step.batch, step.new_tokens, heads_, step.positions);
    const ops::CausalAttentionShape attention{step.batch, step.new_tokens, past, heads_, heads_, head_dim_, 0,
                                              1.f / std::sqrt(static_cast<float>(head_dim_))};
    ops::causal_attention(b.q.data(), b.k.data(), b.v.data(), cache, step.key_mask, b.context.data(), attention);
    layer.dense.forward(b.context.data(), rows, b.attn.data());

    if (parallel_residual_) {
      b.normed = x;  // the MLP reads the layer's input, not the attention's output
    } else {
      ops::add(b.attn.data(), x.data(), b.attn.data(), rows * h);  // attn_output + hidden_states
      b.normed = b.attn;
    }
    layer.post_norm.apply(b.normed.data(), nullptr, rows);
    layer.fc_in.forward(b.normed.data(), rows, b.inner.data());
    layer.fc_out.forward(b.inner.data(), rows, b.mlp.data());
    if (parallel_residual_) {
      // mlp_output + attn_output + hidden_states, summed in transformers' order.
      ops::add(b.mlp.data(), b.attn.data(), b.mlp.data(), rows * h);
      ops::add(b.mlp.data(), x.data(), x.data(), rows * h);
    } else {
      ops::add(b.mlp.data(), b.attn.data(), x.data(), rows * h);
    }
  }

  formats::WeightMap weights_;
  int64_t hidden_ = 0, heads_ = 0, head_dim_ = 0, inner_ = 0, vocab_ = 0, positions_ = 0;
  bool parallel_residual_ = true;
  Tensor embed_;
  std::vector<Layer> layers_;
  LayerNorm final_norm_;
  ops::Linear lm_head_;
  ops::Rope rope_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_gpt_neox(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<GptNeoX>(config, std::move(weights));
}

}  // namespace hfpipe::models
