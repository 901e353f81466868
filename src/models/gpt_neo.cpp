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

class GptNeo : public DecoderBase {
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
    wte_ = reader.base("wte.weight");
    wpe_ = reader.base("wpe.weight");
    for (int64_t i = 0; i < layers; ++i)
      layers_.push_back(load_layer(reader, i, eps, act, types[static_cast<size_t>(i)] == "local" ? window : 0));
    ln_f_ = LayerNorm::load(reader, "ln_f", eps);
    lm_head_ = load_lm_head(reader, wte_, config.get_bool("tie_word_embeddings", true), "lm_head.weight");
    sizes_ = {layers, hidden_, config.get_int("vocab_size"), config.get_int("max_position_embeddings", 2048), true};
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    std::vector<float> x(static_cast<size_t>(rows * h)), pos(static_cast<size_t>(rows * h));
    embedding_lookup(wte_, step.ids, rows, x.data(), "token");
    embedding_lookup(wpe_, step.positions, rows, pos.data(), "position");
    ops::add(x.data(), pos.data(), x.data(), rows * h);
    // Unscaled scores (scale 1): GPT-Neo was trained without the 1/sqrt(d) factor.
    AttentionParams params;
    params.heads = params.kv_heads = heads_;
    params.head_dim = h / heads_;
    DecoderScratch scratch(rows, h, h, h, inner_, false);
    for (size_t l = 0; l < layers_.size(); ++l)
      layers_[l].run(x, true, params, step, cache.layer(l), cache.length(), scratch);
    cache.advance(step.new_tokens);
    return lm_head_logits(x, h, step, all_positions,
                          [&](std::vector<float>& last, int64_t n) { ln_f_.apply(last.data(), nullptr, n); }, lm_head_,
                          sizes_.vocab);
  }

 private:
  // `window`: the local layers' window, 0 for global layers.
  LayerNormLayer load_layer(const WeightReader& reader, int64_t i, float eps, ops::Activation act, int64_t window) const {
    const std::string p = "h." + std::to_string(i) + ".";
    LayerNormLayer layer;
    layer.attn_norm = LayerNorm::load(reader, p + "ln_1", eps);
    layer.mlp_norm = LayerNorm::load(reader, p + "ln_2", eps);
    layer.attention = SelfAttention{load_linear(reader, p + "attn.attention.q_proj", false),
                                    load_linear(reader, p + "attn.attention.k_proj", false),
                                    load_linear(reader, p + "attn.attention.v_proj", false),
                                    load_linear(reader, p + "attn.attention.out_proj", true),
                                    Tensor(),
                                    Tensor(),
                                    window};
    layer.fc = load_linear(reader, p + "mlp.c_fc", true, act);
    layer.proj = load_linear(reader, p + "mlp.c_proj", true);
    return layer;
  }

  formats::WeightMap weights_;
  int64_t hidden_ = 0, heads_ = 0, inner_ = 0;
  Tensor wte_, wpe_;
  std::vector<LayerNormLayer> layers_;
  LayerNorm ln_f_;
  ops::Linear lm_head_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_gpt_neo(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<GptNeo>(config, std::move(weights));
}

}  // namespace hfpipe::models
