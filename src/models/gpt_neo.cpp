// GPT-Neo (modeling_gpt_neo.py): GPT-2's layout (token + learned position embeddings,
// pre-norm LayerNorm layers, a gelu_new MLP, a final LayerNorm, an LM head tied to the token
// embeddings) with nn.Linear projections instead of Conv1D, q/k/v without bias, and two
// quirks of its attention: the scores are NOT scaled by 1/sqrt(head_dim), and "local" layers
// (config attention_types) see only the last window_size positions.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

// Per-layer "global" / "local" as GPTNeoConfig.expand_attention_types_params expands
// attention_types: [[["global", "local"], 12]] -> global, local, global, local, ... (24).
std::vector<std::string> attention_layers(const formats::ModelConfig& c, int64_t layers) {
  std::vector<std::string> out;
  if (c.has("attention_types")) {
    for (const Value& group : c.json()["attention_types"]) {
      check(group.is_array() && group.size() == 2 && group[0].is_array() && group[1].is_number_integer(),
            ErrorKind::CorruptFile, "config.json's attention_types must be [[types], repeat] pairs");
      for (int64_t r = 0; r < group[1].get<int64_t>(); ++r)
        for (const Value& type : group[0]) out.push_back(type.get<std::string>());
    }
  } else if (c.has("attention_layers")) {
    for (const Value& type : c.json()["attention_layers"]) out.push_back(type.get<std::string>());
  } else {
    out.assign(static_cast<size_t>(layers), "global");
  }
  check(static_cast<int64_t>(out.size()) == layers, ErrorKind::CorruptFile,
        "config.json's attention_types describe " + std::to_string(out.size()) + " layers, num_layers is " +
            std::to_string(layers));
  for (const std::string& type : out)
    check(type == "global" || type == "local", ErrorKind::UnsupportedModel,
          "GPT-Neo attention type '" + type + "' is not supported; supported: global, local");
  return out;
}

class GptNeo : public LearnedPositionsDecoder {
 public:
  GptNeo(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "transformer.", "wte.weight");
    hidden_ = config.get_int("hidden_size");
    heads_ = config.get_int("num_heads");
    check(heads_ > 0 && hidden_ % heads_ == 0, ErrorKind::CorruptFile, "hidden_size must be a multiple of num_heads");
    inner_ = config.has("intermediate_size") ? config.get_int("intermediate_size") : 4 * hidden_;
    const int64_t window = config.get_int("window_size", 256);
    const float eps = static_cast<float>(config.get_double("layer_norm_epsilon", 1e-5));
    const auto act = ops::activation_from_name(config.get_string("activation_function", "gelu_new"));
    const int64_t layers = config.get_int("num_layers");
    const auto types = attention_layers(config, layers);
    token_embeddings_ = TokenEmbeddings(reader, "wte.weight");
    position_embeddings_ = reader.base("wpe.weight");
    for (int64_t i = 0; i < layers; ++i)
      layers_.push_back(load_layer(reader, i, eps, act, types[static_cast<size_t>(i)] == "local" ? window : 0));
    final_norm_ = LayerNorm::load(reader, "ln_f", eps);
    lm_head_ = token_embeddings_.lm_head(reader, config.get_bool("tie_word_embeddings", true), "lm_head.weight");
    sizes_ = {layers, hidden_, config.get_int("vocab_size"), config.get_int("max_position_embeddings", 2048), true};
  }

 private:
  // Unscaled scores (scale 1): GPT-Neo was trained without the 1/sqrt(d) factor.
  AttentionParams attention_params(size_t) const override {
    return AttentionParams::grouped(heads_, heads_, hidden_ / heads_, 1.f);
  }

  // `window`: the local layers' window, 0 for global layers.
  LayerNormLayer load_layer(const WeightReader& reader, int64_t i, float eps, ops::Activation act, int64_t window) const {
    const std::string p = "h." + std::to_string(i) + ".";
    LayerNormLayer layer;
    layer.attn_norm = LayerNorm::load(reader, p + "ln_1", eps);
    layer.mlp_norm = LayerNorm::load(reader, p + "ln_2", eps);
    layer.attention = load_projection_attention(reader, p + "attn.attention.", "out_proj", false, true);
    layer.attention.sliding_window = window;
    layer.fc = load_linear(reader, p + "mlp.c_fc", true, act);
    layer.proj = load_linear(reader, p + "mlp.c_proj", true);
    return layer;
  }

  formats::WeightMap weights_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_gpt_neo(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<GptNeo>(config, std::move(weights));
}

}  // namespace hfpipe::models
