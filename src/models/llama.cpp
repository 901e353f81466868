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

class Llama : public DecoderBase {
 public:
  Llama(const formats::ModelConfig& config, formats::WeightMap weights)
      : weights_(std::move(weights)), shape_(llama_shape(config)) {
    WeightReader reader(weights_, "model.", "embed_tokens.weight");
    const bool qkv_bias = config.get_bool("attention_bias", false) || config.model_type() == "qwen2";
    const bool qk_norm = config.model_type() == "qwen3";
    const bool o_bias = config.get_bool("attention_bias", false), mlp_bias = config.get_bool("mlp_bias", false);
    const auto windows = sliding_windows(config, shape_.layers);
    embed_ = TokenEmbeddings(reader, "embed_tokens.weight");
    for (int64_t i = 0; i < shape_.layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      RmsNormLayer layer;
      layer.attn_in_norm = reader.base(p + "input_layernorm.weight");
      layer.mlp_in_norm = reader.base(p + "post_attention_layernorm.weight");
      layer.attention = load_projection_attention(reader, p + "self_attn.", "o_proj", qkv_bias, o_bias);
      if (qk_norm) {
        layer.attention.q_norm = reader.base(p + "self_attn.q_norm.weight");
        layer.attention.k_norm = reader.base(p + "self_attn.k_norm.weight");
      }
      layer.attention.sliding_window = windows[static_cast<size_t>(i)];
      layer.load_gated_mlp(reader, p + "mlp.", mlp_bias, shape_.activation);
      layers_.push_back(std::move(layer));
    }
    norm_ = reader.base("norm.weight");
    lm_head_ = embed_.lm_head(reader, config.get_bool("tie_word_embeddings", false), "lm_head.weight");
    rope_ = rope_from_config(config, llama_rope_params(config, shape_));
    sizes_ = {shape_.layers, shape_.kv_heads * shape_.head_dim, shape_.vocab, shape_.max_positions, false};
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const LlamaShape& s = shape_;
    const int64_t rows = step.batch * step.new_tokens;
    std::vector<float> x(static_cast<size_t>(rows * s.hidden));
    embed_.lookup(step.ids, rows, x.data());
    AttentionParams params =
        AttentionParams::grouped(s.heads, s.kv_heads, s.head_dim, 1.f / std::sqrt(static_cast<float>(s.head_dim)));
    params.norm_eps = s.eps;
    params.rope = &rope_;
    DecoderScratch scratch(rows, s.hidden, s.heads * s.head_dim, s.kv_heads * s.head_dim, s.intermediate, true);
    for (size_t l = 0; l < layers_.size(); ++l)
      layers_[l].run(x, s.eps, params, step, cache.layer(l), cache.length(), scratch);
    cache.advance(step.new_tokens);
    return lm_head_logits(
        x, s.hidden, step, all_positions,
        [&](std::vector<float>& last, int64_t n) { ops::rms_norm(last.data(), n, s.hidden, norm_.f32(), s.eps); },
        lm_head_, s.vocab);
  }

 private:
  formats::WeightMap weights_;
  LlamaShape shape_;
  TokenEmbeddings embed_;
  Tensor norm_;
  std::vector<RmsNormLayer> layers_;
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
