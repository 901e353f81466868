// The Llama family (modeling_llama.py, and Mistral / Qwen2, which are the same network with
// config differences): RMSNorm pre-norm layers, rotary positions, grouped-query attention,
// a SwiGLU MLP, and an LM head tied to the embeddings or not (tie_word_embeddings). Qwen2
// always has q/k/v biases; Mistral (and Qwen2 layers of layer_types "sliding_attention")
// attend within a sliding window. Qwen3 is Qwen2 without the forced q/k/v biases and with an
// RMSNorm over each query and key head before the rotary embedding (q_norm / k_norm). Phi-3
// runs on this code too (phi3.cpp splits its fused projections); rope_scaling.cpp builds the
// rotary embedding. State-dict names are transformers' own.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

struct LlamaShape {
  int64_t layers, hidden, heads, kv_heads, head_dim, intermediate, vocab, max_positions;
  float eps;
  ops::Activation activation;
};

LlamaShape llama_shape(const formats::ModelConfig& c) {
  LlamaShape s{};
  s.layers = c.get_int("num_hidden_layers");
  s.hidden = c.get_int("hidden_size");
  s.heads = c.get_int("num_attention_heads");
  s.kv_heads = c.get_int("num_key_value_heads", s.heads);
  check(s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0, ErrorKind::CorruptFile,
        "num_attention_heads must be a positive multiple of num_key_value_heads");
  s.head_dim = c.get_int("head_dim", s.hidden / s.heads);
  s.intermediate = c.get_int("intermediate_size");
  s.vocab = c.get_int("vocab_size");
  s.max_positions = c.get_int("max_position_embeddings", 2048);
  s.eps = static_cast<float>(c.get_double("rms_norm_eps", 1e-6));
  s.activation = ops::activation_from_name(c.get_string("hidden_act", "silu"));
  // Only Phi-3 (phi3.cpp, over this code) rotates part of each head; LlamaAttention rotates
  // whole heads and fails on a partial factor.
  check(c.model_type() == "phi3" || c.get_double("partial_rotary_factor", 1.0) == 1.0, ErrorKind::UnsupportedModel,
        "partial rotary embeddings (partial_rotary_factor) are not supported for " + c.model_type());
  return s;
}

// The rotary embedding: rope_theta, partial_rotary_factor (Phi-3) and rope_scaling.
RopeParams llama_rope_params(const formats::ModelConfig& c, const LlamaShape& s) {
  RopeParams p;
  p.theta = c.get_double("rope_theta", 10000.0);
  p.head_dim = s.head_dim;
  p.rotary_dim = static_cast<int64_t>(static_cast<double>(s.head_dim) * c.get_double("partial_rotary_factor", 1.0));
  p.max_positions = s.max_positions;
  p.original_max_positions = c.get_int("original_max_position_embeddings", 0);
  return p;
}

// Per-layer sliding windows: config.sliding_window for the layers layer_types marks
// "sliding_attention", or for every layer when there is no layer_types (Mistral).
std::vector<int64_t> sliding_windows(const formats::ModelConfig& c, int64_t layers) {
  std::vector<int64_t> windows(static_cast<size_t>(layers), 0);
  if (!c.has("sliding_window")) return windows;
  const int64_t window = c.get_int("sliding_window");
  const bool per_layer = c.has("layer_types");
  for (int64_t i = 0; i < layers; ++i) {
    const bool sliding = !per_layer || c.json()["layer_types"].at(i).get<std::string>() == "sliding_attention";
    windows[static_cast<size_t>(i)] = sliding ? window : 0;
  }
  return windows;
}

class Llama : public DecoderModel {
 public:
  Llama(const formats::ModelConfig& config, formats::WeightMap weights)
      : weights_(std::move(weights)), shape_(llama_shape(config)) {
    WeightReader reader(weights_, "model.", "embed_tokens.weight");
    const bool qkv_bias = config.get_bool("attention_bias", false) || config.model_type() == "qwen2";
    const bool qk_norm = config.model_type() == "qwen3";
    const bool o_bias = config.get_bool("attention_bias", false), mlp_bias = config.get_bool("mlp_bias", false);
    const auto windows = sliding_windows(config, shape_.layers);
    auto linear = [&](const std::string& name, bool bias, ops::Activation act = ops::Activation::None) {
      return ops::Linear(reader.base(name + ".weight"), bias ? reader.base(name + ".bias") : Tensor(), act);
    };
    embed_ = reader.base("embed_tokens.weight");
    for (int64_t i = 0; i < shape_.layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      layers_.push_back(Layer{reader.base(p + "input_layernorm.weight"), linear(p + "self_attn.q_proj", qkv_bias),
                              linear(p + "self_attn.k_proj", qkv_bias), linear(p + "self_attn.v_proj", qkv_bias),
                              linear(p + "self_attn.o_proj", o_bias), reader.base(p + "post_attention_layernorm.weight"),
                              linear(p + "mlp.gate_proj", mlp_bias, shape_.activation),
                              linear(p + "mlp.up_proj", mlp_bias), linear(p + "mlp.down_proj", mlp_bias),
                              windows[static_cast<size_t>(i)], Tensor(), Tensor()});
      if (qk_norm) {
        layers_.back().q_norm = reader.base(p + "self_attn.q_norm.weight");
        layers_.back().k_norm = reader.base(p + "self_attn.k_norm.weight");
      }
    }
    norm_ = reader.base("norm.weight");
    const bool tied = config.get_bool("tie_word_embeddings", false);
    check(tied || reader.has_head("lm_head.weight"), ErrorKind::CorruptFile,
          "the checkpoint lacks lm_head.weight and tie_word_embeddings is false");
    lm_head_ = ops::Linear(tied ? embed_ : reader.head("lm_head.weight"), Tensor());
    rope_ = rope_from_config(config, llama_rope_params(config, shape_));
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const int64_t rows = step.batch * step.new_tokens, h = shape_.hidden;
    std::vector<float> x(static_cast<size_t>(rows * h));
    embedding_lookup(embed_, step.ids, rows, x.data(), "token");
    Buffers buf(rows, shape_);
    for (size_t l = 0; l < layers_.size(); ++l) run_layer(layers_[l], x, buf, step, cache.layer(l), cache.length());
    cache.advance(step.new_tokens);
    std::vector<float> last = select_rows(x, step.batch, step.new_tokens, h, all_positions);
    const int64_t out_rows = static_cast<int64_t>(last.size()) / h;
    ops::rms_norm(last.data(), out_rows, h, norm_.f32(), shape_.eps);
    Tensor logits = all_positions ? Tensor::empty(DType::F32, {step.batch, step.new_tokens, shape_.vocab})
                                  : Tensor::empty(DType::F32, {step.batch, shape_.vocab});
    lm_head_.forward(last.data(), out_rows, logits.f32());
    return logits;
  }

  KvCache new_cache(int64_t batch, int64_t capacity) const override {
    return KvCache(shape_.layers, batch, capacity, shape_.kv_heads * shape_.head_dim);
  }
  int64_t vocab_size() const override { return shape_.vocab; }
  int64_t max_position_embeddings() const override { return shape_.max_positions; }
  bool positions_are_bounded() const override { return false; }

 private:
  struct Layer {
    Tensor input_norm;
    ops::Linear q, k, v, o;
    Tensor post_norm;
    ops::Linear gate, up, down;
    int64_t sliding_window;
    Tensor q_norm, k_norm;  // Qwen3's per-head norms; undefined elsewhere
  };
  // Scratch of one forward call, sized for its rows.
  struct Buffers {
    std::vector<float> normed, q, k, v, context, projected, gate, up;
    Buffers(int64_t rows, const LlamaShape& s)
        : normed(rows * s.hidden), q(rows * s.heads * s.head_dim), k(rows * s.kv_heads * s.head_dim),
          v(rows * s.kv_heads * s.head_dim), context(rows * s.heads * s.head_dim), projected(rows * s.hidden),
          gate(rows * s.intermediate), up(rows * s.intermediate) {}
  };

  void run_layer(const Layer& layer, std::vector<float>& x, Buffers& b, const DecoderStep& step,
                 const ops::CacheView& cache, int64_t past) const {
    const int64_t rows = step.batch * step.new_tokens, h = shape_.hidden;
    b.normed = x;
    ops::rms_norm(b.normed.data(), rows, h, layer.input_norm.f32(), shape_.eps);
    layer.q.forward(b.normed.data(), rows, b.q.data());
    layer.k.forward(b.normed.data(), rows, b.k.data());
    layer.v.forward(b.normed.data(), rows, b.v.data());
    if (layer.q_norm.raw()) {  // each head_dim slice is one RMSNorm row
      ops::rms_norm(b.q.data(), rows * shape_.heads, shape_.head_dim, layer.q_norm.f32(), shape_.eps);
      ops::rms_norm(b.k.data(), rows * shape_.kv_heads, shape_.head_dim, layer.k_norm.f32(), shape_.eps);
    }
    rope_.apply(b.q.data(), step.batch, step.new_tokens, shape_.heads, step.positions);
    rope_.apply(b.k.data(), step.batch, step.new_tokens, shape_.kv_heads, step.positions);
    const ops::CausalAttentionShape attention{step.batch,      step.new_tokens, past,
                                              shape_.heads,    shape_.kv_heads, shape_.head_dim,
                                              step.ignore_sliding_window ? 0 : layer.sliding_window,
                                              1.f / std::sqrt(static_cast<float>(shape_.head_dim))};
    ops::causal_attention(b.q.data(), b.k.data(), b.v.data(), cache, step.key_mask, b.context.data(), attention);
    layer.o.forward(b.context.data(), rows, b.projected.data());
    ops::add(x.data(), b.projected.data(), x.data(), rows * h);

    b.normed = x;
    ops::rms_norm(b.normed.data(), rows, h, layer.post_norm.f32(), shape_.eps);
    layer.gate.forward(b.normed.data(), rows, b.gate.data());
    layer.up.forward(b.normed.data(), rows, b.up.data());
    ops::multiply(b.gate.data(), b.up.data(), b.gate.data(), rows * shape_.intermediate);
    layer.down.forward(b.gate.data(), rows, b.projected.data());
    ops::add(x.data(), b.projected.data(), x.data(), rows * h);
  }

  formats::WeightMap weights_;
  LlamaShape shape_;
  Tensor embed_, norm_;
  std::vector<Layer> layers_;
  ops::Linear lm_head_;
  ops::Rope rope_;
};

}  // namespace

ops::Rope rope_from_llama_config(const formats::ModelConfig& config, int64_t head_dim) {
  RopeParams p;
  p.theta = config.get_double("rope_theta", 10000.0);
  p.head_dim = head_dim;
  p.rotary_dim = head_dim;
  p.max_positions = config.get_int("max_position_embeddings", 0);
  p.original_max_positions = config.get_int("original_max_position_embeddings", 0);
  return rope_from_config(config, p);
}

std::unique_ptr<DecoderModel> make_llama(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<Llama>(config, std::move(weights));
}

}  // namespace hfpipe::models
