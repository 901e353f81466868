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

class GptNeo : public DecoderModel {
 public:
  GptNeo(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "transformer.", "wte.weight");
    hidden_ = config.get_int("hidden_size");
    heads_ = config.get_int("num_heads");
    check(heads_ > 0 && hidden_ % heads_ == 0, ErrorKind::CorruptFile, "hidden_size must be a multiple of num_heads");
    inner_ = config.has("intermediate_size") ? config.get_int("intermediate_size") : 4 * hidden_;
    vocab_ = config.get_int("vocab_size");
    positions_ = config.get_int("max_position_embeddings", 2048);
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
    const bool tied = config.get_bool("tie_word_embeddings", true);
    check(tied || reader.has_head("lm_head.weight"), ErrorKind::CorruptFile,
          "the checkpoint lacks lm_head.weight and tie_word_embeddings is false");
    lm_head_ = ops::Linear(tied ? wte_ : reader.head("lm_head.weight"), Tensor());
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    std::vector<float> x(static_cast<size_t>(rows * h)), pos(static_cast<size_t>(rows * h));
    embedding_lookup(wte_, step.ids, rows, x.data(), "token");
    embedding_lookup(wpe_, step.positions, rows, pos.data(), "position");
    ops::add(x.data(), pos.data(), x.data(), rows * h);
    Buffers buf(rows, h, inner_);
    for (size_t l = 0; l < layers_.size(); ++l) run_layer(layers_[l], x, buf, step, cache.layer(l), cache.length());
    cache.advance(step.new_tokens);
    std::vector<float> last = select_rows(x, step.batch, step.new_tokens, h, all_positions);
    const int64_t out_rows = static_cast<int64_t>(last.size()) / h;
    ln_f_.apply(last.data(), nullptr, out_rows);
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
    LayerNorm ln_1, ln_2;
    ops::Linear q, k, v, out, fc, proj;
    int64_t window;  // 0 for global layers
  };
  struct Buffers {
    std::vector<float> normed, q, k, v, context, projected, inner;
    Buffers(int64_t rows, int64_t h, int64_t inner)
        : normed(rows * h), q(rows * h), k(rows * h), v(rows * h), context(rows * h), projected(rows * h),
          inner(rows * inner) {}
  };

  Layer load_layer(const WeightReader& reader, int64_t i, float eps, ops::Activation act, int64_t window) const {
    const std::string p = "h." + std::to_string(i) + ".";
    auto linear = [&](const std::string& name, bool bias, ops::Activation a = ops::Activation::None) {
      return ops::Linear(reader.base(name + ".weight"), bias ? reader.base(name + ".bias") : Tensor(), a);
    };
    return Layer{LayerNorm::load(reader, p + "ln_1", eps),
                 LayerNorm::load(reader, p + "ln_2", eps),
                 linear(p + "attn.attention.q_proj", false),
                 linear(p + "attn.attention.k_proj", false),
                 linear(p + "attn.attention.v_proj", false),
                 linear(p + "attn.attention.out_proj", true),
                 linear(p + "mlp.c_fc", true, act),
                 linear(p + "mlp.c_proj", true),
                 window};
  }

  void run_layer(const Layer& layer, std::vector<float>& x, Buffers& b, const DecoderStep& step,
                 const ops::CacheView& cache, int64_t past) const {
    const int64_t rows = step.batch * step.new_tokens, h = hidden_;
    b.normed = x;
    layer.ln_1.apply(b.normed.data(), nullptr, rows);
    layer.q.forward(b.normed.data(), rows, b.q.data());
    layer.k.forward(b.normed.data(), rows, b.k.data());
    layer.v.forward(b.normed.data(), rows, b.v.data());
    // Unscaled scores (scale 1): GPT-Neo was trained without the 1/sqrt(d) factor.
    const ops::CausalAttentionShape attention{step.batch, step.new_tokens, past, heads_, heads_, h / heads_,
                                              layer.window, 1.f};
    ops::causal_attention(b.q.data(), b.k.data(), b.v.data(), cache, step.key_mask, b.context.data(), attention);
    layer.out.forward(b.context.data(), rows, b.projected.data());
    ops::add(x.data(), b.projected.data(), x.data(), rows * h);

    b.normed = x;
    layer.ln_2.apply(b.normed.data(), nullptr, rows);
    layer.fc.forward(b.normed.data(), rows, b.inner.data());
    layer.proj.forward(b.inner.data(), rows, b.projected.data());
    ops::add(x.data(), b.projected.data(), x.data(), rows * h);
  }

  formats::WeightMap weights_;
  int64_t hidden_ = 0, heads_ = 0, inner_ = 0, vocab_ = 0, positions_ = 0;
  Tensor wte_, wpe_;
  std::vector<Layer> layers_;
  LayerNorm ln_f_;
  ops::Linear lm_head_;
};

}  // namespace

std::unique_ptr<DecoderModel> make_gpt_neo(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<GptNeo>(config, std::move(weights));
}

}  // namespace hfpipe::models
