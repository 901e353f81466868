// The Gemma family (modeling_gemma.py, modeling_gemma2.py, modeling_gemma3.py, which copy one
// another): Llama-like decoders with
//   - embeddings scaled by sqrt(hidden_size) (an f32 constant, as transformers rounds it);
//   - RMSNorm weights stored as offsets: the norm multiplies by (1 + weight);
//   - a GeGLU MLP (gelu_pytorch_tanh gate times the up projection);
//   - an LM head tied to the embeddings unless the config says otherwise.
// Gemma 2 adds a norm after the attention and around the MLP (post_attention /
// pre_feedforward / post_feedforward_layernorm), query_pre_attn_scalar^-0.5 as the attention
// scale, a sliding window on every other layer, soft-capped attention scores (eager attention
// only: transformers' default sdpa path ignores attn_logit_softcapping) and soft-capped final
// logits. Gemma 3 drops the attention soft-capping (None by default, and sdpa ignores it
// anyway), adds an RMSNorm on each query and key head (q_norm / k_norm), picks sliding layers
// by layer_types or sliding_window_pattern, and gives them their own rotary base
// (rope_local_base_freq, no scaling) while full layers use rope_theta with rope_scaling.
// State-dict names are transformers' own, so a converter (GGUF) can feed make_gemma.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

enum class Family { Gemma, Gemma2, Gemma3 };

// Defaults of transformers' GemmaConfig / Gemma2Config / Gemma3TextConfig for the keys the
// network reads: config.json written by save_pretrained may omit keys equal to
// PretrainedConfig's defaults, and hand-written configs omit more.
Value family_defaults(Family family) {
  const Value common = {{"rms_norm_eps", 1e-6}, {"tie_word_embeddings", true}, {"attention_bias", false}};
  Value d = common;
  switch (family) {
    case Family::Gemma:
      d.update(Value{{"vocab_size", 256000}, {"hidden_size", 3072}, {"intermediate_size", 24576},
                     {"num_hidden_layers", 28}, {"num_attention_heads", 16}, {"num_key_value_heads", 16},
                     {"head_dim", 256}, {"hidden_act", "gelu_pytorch_tanh"}, {"max_position_embeddings", 8192},
                     {"rope_theta", 10000.0}});
      break;
    case Family::Gemma2:
      d.update(Value{{"vocab_size", 256000}, {"hidden_size", 2304}, {"intermediate_size", 9216},
                     {"num_hidden_layers", 26}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                     {"head_dim", 256}, {"hidden_activation", "gelu_pytorch_tanh"},
                     {"max_position_embeddings", 8192}, {"rope_theta", 10000.0}, {"query_pre_attn_scalar", 256},
                     {"sliding_window", 4096}, {"final_logit_softcapping", 30.0}, {"attn_logit_softcapping", 50.0}});
      break;
    case Family::Gemma3:
      d.update(Value{{"vocab_size", 262208}, {"hidden_size", 2304}, {"intermediate_size", 9216},
                     {"num_hidden_layers", 26}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                     {"head_dim", 256}, {"hidden_activation", "gelu_pytorch_tanh"},
                     {"max_position_embeddings", 131072}, {"rope_theta", 1000000.0}, {"query_pre_attn_scalar", 256},
                     {"sliding_window", 4096}, {"final_logit_softcapping", nullptr},
                     {"attn_logit_softcapping", nullptr}, {"rope_local_base_freq", 10000.0},
                     {"sliding_window_pattern", 6}, {"use_bidirectional_attention", false}});
      break;
  }
  return d;
}

Family family_of(const std::string& model_type) {
  if (model_type == "gemma") return Family::Gemma;
  if (model_type == "gemma2") return Family::Gemma2;
  return Family::Gemma3;  // gemma3_text, and gemma3 (its text_config)
}

// The text model's config with the family's defaults filled in. A gemma3 (multimodal) config
// nests it in text_config; hfpipe's own keys (the attention implementation) are carried over.
formats::ModelConfig text_config(const formats::ModelConfig& config) {
  Value json = config.json();
  if (config.model_type() == "gemma3") {
    check(json.contains("text_config") && json["text_config"].is_object(), ErrorKind::CorruptFile,
          "a gemma3 config.json needs a text_config object for the language model");
    Value text = json["text_config"];
    text["model_type"] = "gemma3_text";
    if (json.contains(kAttnImplementationKey)) text[kAttnImplementationKey] = json[kAttnImplementationKey];
    json = std::move(text);
  }
  const Family family = family_of(json["model_type"].get<std::string>());
  const Value defaults = family_defaults(family);  // items() must not outlive it
  for (auto it = defaults.begin(); it != defaults.end(); ++it)
    if (!json.contains(it.key())) json[it.key()] = it.value();
  return formats::ModelConfig::from_json(json);
}

// Per-layer sliding windows (0 = full attention): layer_types when present, else Gemma 2's
// alternation (even layers slide) or Gemma 3's sliding_window_pattern (every pattern-th layer
// is full), as the config classes derive layer_types.
std::vector<int64_t> layer_windows(const formats::ModelConfig& c, Family family, int64_t layers) {
  std::vector<int64_t> windows(static_cast<size_t>(layers), 0);
  if (family == Family::Gemma || !c.has("sliding_window")) return windows;
  const int64_t window = c.get_int("sliding_window");
  check(window > 0, ErrorKind::CorruptFile, "sliding_window must be positive");
  const int64_t pattern = family == Family::Gemma2 ? 2 : c.get_int("sliding_window_pattern", 6);
  check(pattern > 0, ErrorKind::CorruptFile, "sliding_window_pattern must be positive");
  const bool listed = c.has("layer_types");
  if (listed)
    check(c.json()["layer_types"].is_array() && static_cast<int64_t>(c.json()["layer_types"].size()) == layers,
          ErrorKind::CorruptFile, "layer_types must list one type per layer");
  for (int64_t i = 0; i < layers; ++i) {
    const bool sliding = listed ? c.json()["layer_types"][i] == "sliding_attention" : (i + 1) % pattern != 0;
    windows[static_cast<size_t>(i)] = sliding ? window : 0;
  }
  return windows;
}

struct GemmaShape {
  Family family;
  int64_t layers, hidden, heads, kv_heads, head_dim, intermediate, vocab, max_positions;
  float eps, attention_scale, attention_softcap, final_softcap, embed_scale;
  ops::Activation activation;
};

// A config value that may be null (no soft-capping): 0 for null.
float optional_float(const formats::ModelConfig& c, const std::string& key) {
  return c.has(key) ? static_cast<float>(c.get_double(key, 0.0)) : 0.f;
}

GemmaShape gemma_shape(const formats::ModelConfig& c) {
  GemmaShape s{};
  s.family = family_of(c.model_type());
  s.layers = c.get_int("num_hidden_layers");
  s.hidden = c.get_int("hidden_size");
  s.heads = c.get_int("num_attention_heads");
  s.kv_heads = c.get_int("num_key_value_heads");
  check(s.layers > 0 && s.hidden > 0 && s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0,
        ErrorKind::CorruptFile, "num_attention_heads must be a positive multiple of num_key_value_heads");
  s.head_dim = c.get_int("head_dim");
  check(s.head_dim > 0 && s.head_dim % 2 == 0, ErrorKind::CorruptFile, "head_dim must be positive and even");
  s.intermediate = c.get_int("intermediate_size");
  s.vocab = c.get_int("vocab_size");
  s.max_positions = c.get_int("max_position_embeddings");
  s.eps = static_cast<float>(c.get_double("rms_norm_eps", 1e-6));
  // Gemma 1's MLP reads hidden_act (hidden_activation is kept in its config but unused in 4.57).
  s.activation = ops::activation_from_name(
      c.get_string(s.family == Family::Gemma ? "hidden_act" : "hidden_activation", "gelu_pytorch_tanh"));
  // Python computes x**-0.5 in double; torch multiplies the f32 scores by it as f32.
  const double scalar = s.family == Family::Gemma ? static_cast<double>(s.head_dim)
                                                  : c.get_double("query_pre_attn_scalar", 256.0);
  check(scalar > 0, ErrorKind::CorruptFile, "query_pre_attn_scalar must be positive");
  s.attention_scale = static_cast<float>(std::pow(scalar, -0.5));
  // Only transformers' eager attention soft-caps; its default (sdpa) drops the setting.
  const bool eager = c.get_string(kAttnImplementationKey, "sdpa") == "eager";
  s.attention_softcap = s.family != Family::Gemma && eager ? optional_float(c, "attn_logit_softcapping") : 0.f;
  s.final_softcap = s.family != Family::Gemma ? optional_float(c, "final_logit_softcapping") : 0.f;
  check(s.attention_softcap >= 0 && s.final_softcap >= 0, ErrorKind::CorruptFile, "soft-capping values must be positive");
  s.embed_scale = static_cast<float>(std::sqrt(static_cast<double>(s.hidden)));
  if (s.family == Family::Gemma3)
    check(!c.get_bool("use_bidirectional_attention", false), ErrorKind::UnsupportedModel,
          "Gemma 3 with use_bidirectional_attention (an embedding model) is not a text-generation model");
  return s;
}

// Gemma's RMSNorm multiplies by (1 + weight), computed in f32 once here.
Tensor offset_norm(const Tensor& weight) {
  Tensor t = Tensor::empty(DType::F32, {weight.numel()});
  for (int64_t i = 0; i < weight.numel(); ++i) t.f32()[i] = 1.f + weight.f32()[i];
  return t;
}

// Where the text model's tensors live: "model." for the CausalLM classes; a gemma3
// (multimodal) checkpoint has them under "model.language_model." (transformers >= 4.52 saves)
// or "language_model.model." (the Hub's original layout).
struct TextPrefixes {
  std::string base, head;
};

TextPrefixes text_prefixes(const formats::ModelConfig& original, const formats::WeightMap& weights) {
  if (original.model_type() != "gemma3") return {"model.", ""};
  for (const TextPrefixes& p : {TextPrefixes{"model.language_model.", ""}, TextPrefixes{"language_model.model.", "language_model."}})
    if (weights.contains(p.base + "embed_tokens.weight")) return p;
  fail(ErrorKind::CorruptFile,
       "this gemma3 checkpoint holds no language model weights (model.language_model.* or language_model.model.*)");
}

class Gemma : public DecoderBase {
 public:
  Gemma(const formats::ModelConfig& original, formats::WeightMap weights) : weights_(std::move(weights)) {
    const formats::ModelConfig config = text_config(original);
    shape_ = gemma_shape(config);
    const TextPrefixes prefixes = text_prefixes(original, weights_);
    WeightReader reader(weights_, prefixes.base, "embed_tokens.weight");
    const bool bias = config.get_bool("attention_bias", false);
    const auto windows = layer_windows(config, shape_.family, shape_.layers);
    embed_ = TokenEmbeddings(reader, "embed_tokens.weight");
    for (int64_t i = 0; i < shape_.layers; ++i) layers_.push_back(load_layer(reader, i, bias, windows[i]));
    norm_ = offset_norm(reader.base("norm.weight"));
    lm_head_ = embed_.lm_head(reader, config.get_bool("tie_word_embeddings", true), prefixes.head + "lm_head.weight");
    global_rope_ = rope_from_llama_config(config, shape_.head_dim);
    if (shape_.family == Family::Gemma3)  // the copied config of Gemma3TextModel.rotary_emb_local
      local_rope_ = ops::Rope(ops::default_rope_inv_freq(config.get_double("rope_local_base_freq", 10000.0),
                                                         shape_.head_dim), 1.f);
    sizes_ = {shape_.layers, shape_.kv_heads * shape_.head_dim, shape_.vocab, shape_.max_positions, false};
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const GemmaShape& s = shape_;
    const int64_t rows = step.batch * step.new_tokens;
    std::vector<float> x(static_cast<size_t>(rows * s.hidden));
    embed_.lookup(step.ids, rows, x.data());
    for (float& v : x) v *= s.embed_scale;
    AttentionParams params = AttentionParams::grouped(s.heads, s.kv_heads, s.head_dim, s.attention_scale);
    params.softcap = s.attention_softcap;
    params.norm_eps = s.eps;
    DecoderScratch scratch(rows, s.hidden, s.heads * s.head_dim, s.kv_heads * s.head_dim, s.intermediate, true);
    for (size_t l = 0; l < layers_.size(); ++l) {
      // Gemma 3's sliding layers take the local rotary base; everything else the global one.
      const bool local = s.family == Family::Gemma3 && layers_[l].attention.sliding_window > 0;
      params.rope = local ? &local_rope_ : &global_rope_;
      layers_[l].run(x, s.eps, params, step, cache.layer(l), cache.length(), scratch);
    }
    cache.advance(step.new_tokens);
    Tensor logits = lm_head_logits(
        x, s.hidden, step, all_positions,
        [&](std::vector<float>& last, int64_t n) { ops::rms_norm(last.data(), n, s.hidden, norm_.f32(), s.eps); },
        lm_head_, s.vocab);
    if (s.final_softcap > 0.f) ops::soft_cap(logits.f32(), logits.numel(), s.final_softcap);
    return logits;
  }

 private:
  // The norms: input_layernorm before the attention; Gemma 1's post_attention_layernorm before
  // the MLP, where Gemma 2/3 have post_attention_layernorm after the attention and
  // pre_feedforward / post_feedforward_layernorm around the MLP.
  RmsNormLayer load_layer(const WeightReader& reader, int64_t i, bool bias, int64_t window) const {
    const std::string p = "layers." + std::to_string(i) + ".";
    auto norm = [&](const std::string& name) { return offset_norm(reader.base(p + name + ".weight")); };
    RmsNormLayer layer;
    layer.attn_in_norm = norm("input_layernorm");
    if (shape_.family == Family::Gemma) {
      layer.mlp_in_norm = norm("post_attention_layernorm");
    } else {
      layer.attn_out_norm = norm("post_attention_layernorm");
      layer.mlp_in_norm = norm("pre_feedforward_layernorm");
      layer.mlp_out_norm = norm("post_feedforward_layernorm");
    }
    SelfAttention& a = layer.attention;
    a = load_projection_attention(reader, p + "self_attn.", "o_proj", bias, bias);
    if (shape_.family == Family::Gemma3) {
      a.q_norm = norm("self_attn.q_norm");
      a.k_norm = norm("self_attn.k_norm");
    }
    a.sliding_window = window;
    layer.load_gated_mlp(reader, p + "mlp.", false, shape_.activation);
    return layer;
  }

  formats::WeightMap weights_;
  GemmaShape shape_{};
  TokenEmbeddings embed_;
  Tensor norm_;
  std::vector<RmsNormLayer> layers_;
  ops::Linear lm_head_;
  ops::Rope global_rope_, local_rope_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_gemma(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<Gemma>(config, std::move(weights));
}

}  // namespace hfpipe::models
