// GPT-2 (modeling_gpt2.py): token + learned position embeddings, pre-norm LayerNorm layers,
// multi-head causal attention, a gelu_new MLP, a final LayerNorm and an LM head tied to the
// token embeddings. GPT-2's Conv1D layers store weights as [in, out]; they are copied once at
// load into column panels (ops/panels.h) in float32 on AVX-512 CPUs, else transposed into the
// [out, in] rows ops::Linear takes (and rounded to bf16 under torch_dtype="bfloat16"), and
// c_attn is split into its query, key and value thirds.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "models/decoder.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {

// Rows [first, first + count) of Conv1D weight `w` ([in, out], first + count <= out) transposed:
// [count, in].
Tensor conv1d_rows(const Tensor& w, int64_t first, int64_t count) {
  const int64_t in = w.dim(0), out = w.dim(1);
  Tensor t = Tensor::empty(DType::F32, {count, in});
  ops::transpose(w.f32() + first, in, count, out, t.f32(), in);
  return t;
}

// Columns [first, first + count) of Conv1D weight `w` ([in, out]) as a Linear: in column
// panels at float32 where the CPU prefers them (x . w's own layout, copied panel by panel),
// else transposed for decoder_linear.
ops::Linear conv1d_linear(const WeightReader& reader, const Tensor& w, int64_t first, int64_t count, const Tensor& bias,
                          ops::Activation act = ops::Activation::None) {
  check(first + count <= w.dim(1), ErrorKind::CorruptFile, "a GPT-2 Conv1D weight is narrower than the config says");
  if (reader.precision() != ops::Precision::Float32 || !ops::panels_preferred())
    return decoder_linear(reader, conv1d_rows(w, first, count), bias, act);
  return ops::Linear(ops::panels_from_columns(w.f32(), w.dim(0), w.dim(1), first, count), bias, act);
}

Tensor slice(const Tensor& bias, int64_t first, int64_t count) {
  check(first + count <= bias.numel(), ErrorKind::CorruptFile, "a GPT-2 Conv1D bias is shorter than the config says");
  Tensor t = Tensor::empty(DType::F32, {count});
  std::memcpy(t.f32(), bias.f32() + first, sizeof(float) * count);
  return t;
}

class Gpt2 : public LearnedPositionsDecoder {
 public:
  Gpt2(const formats::ModelConfig& config, formats::WeightMap weights) : weights_(std::move(weights)) {
    WeightReader reader(weights_, "transformer.", "wte.weight");
    hidden_ = config.get_int("n_embd");
    heads_ = config.get_int("n_head");
    check(heads_ > 0 && hidden_ % heads_ == 0, ErrorKind::CorruptFile, "n_embd must be a multiple of n_head");
    inner_ = config.has("n_inner") ? config.get_int("n_inner") : 4 * hidden_;
    scale_by_layer_ = config.get_bool("scale_attn_by_inverse_layer_idx", false);
    scale_weights_ = config.get_bool("scale_attn_weights", true);
    const float eps = static_cast<float>(config.get_double("layer_norm_epsilon", 1e-5));
    const auto act = ops::activation_from_name(config.get_string("activation_function", "gelu_new"));
    token_embeddings_ = TokenEmbeddings(reader, "wte.weight");
    position_embeddings_ = reader.base("wpe.weight");
    for (int64_t i = 0; i < config.get_int("n_layer"); ++i) layers_.push_back(load_layer(reader, i, eps, act));
    final_norm_ = LayerNorm::load(reader, "ln_f", eps);
    lm_head_ = token_embeddings_.lm_head(reader, true, "");  // GPT2LMHeadModel always ties lm_head to wte
    sizes_ = {static_cast<int64_t>(layers_.size()), hidden_, config.get_int("vocab_size"),
              config.get_int("n_positions", 1024), true};
  }

 private:
  LayerNormLayer load_layer(const WeightReader& reader, int64_t i, float eps, ops::Activation act) const {
    const std::string p = "h." + std::to_string(i) + ".";
    const Tensor c_attn = reader.base(p + "attn.c_attn.weight"), c_attn_bias = reader.base(p + "attn.c_attn.bias");
    auto third = [&](int64_t k) {
      return conv1d_linear(reader, c_attn, k * hidden_, hidden_, slice(c_attn_bias, k * hidden_, hidden_));
    };
    auto conv1d = [&](const std::string& name, ops::Activation a = ops::Activation::None) {
      const Tensor w = reader.base(name + ".weight");
      ops::Linear linear = conv1d_linear(reader, w, 0, w.dim(1), reader.base(name + ".bias"), a);
      MappedFile::release_pages(w.raw(), w.nbytes());  // only the copy is used
      return linear;
    };
    LayerNormLayer layer;
    layer.attn_norm = LayerNorm::load(reader, p + "ln_1", eps);
    layer.mlp_norm = LayerNorm::load(reader, p + "ln_2", eps);
    layer.attention = SelfAttention{third(0), third(1), third(2), conv1d(p + "attn.c_proj"), Tensor(), Tensor(), 0};
    MappedFile::release_pages(c_attn.raw(), c_attn.nbytes());
    layer.fc = conv1d(p + "mlp.c_fc", act);
    layer.proj = conv1d(p + "mlp.c_proj");
    return layer;
  }

  // 1/sqrt(head_dim) unless scale_attn_weights is off, further divided by the layer's number
  // with scale_attn_by_inverse_layer_idx.
  AttentionParams attention_params(size_t index) const override {
    const int64_t head_dim = hidden_ / heads_;
    float scale = scale_weights_ ? 1.f / std::sqrt(static_cast<float>(head_dim)) : 1.f;
    if (scale_by_layer_) scale /= static_cast<float>(index + 1);
    return AttentionParams::grouped(heads_, heads_, head_dim, scale);
  }

  formats::WeightMap weights_;
  bool scale_by_layer_ = false, scale_weights_ = true;
};

}  // namespace

std::unique_ptr<DecoderModel> make_gpt2(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<Gpt2>(config, std::move(weights));
}

}  // namespace hfpipe::models
