#include "models/layers.h"

#include <cstring>

#include "core/error.h"
#include "ops/ops.h"

namespace hfpipe::models {

namespace {
std::string with_index(const std::string& pattern, int64_t i) {
  std::string s = pattern;
  auto pos = s.find("{}");
  if (pos != std::string::npos) s.replace(pos, 2, std::to_string(i));
  return s;
}
}  // namespace

WeightReader::WeightReader(const formats::WeightMap& weights, const std::string& prefix, const std::string& probe)
    : weights_(weights) {
  if (weights.contains(prefix + probe)) prefix_ = prefix;
}

Tensor WeightReader::find(const std::string& name) const {
  if (weights_.contains(name)) return weights_.at(name);
  // TF-era checkpoints: LayerNorm.gamma / LayerNorm.beta for .weight / .bias.
  auto alias = [&](const std::string& from, const std::string& to) -> std::string {
    if (name.size() > from.size() && name.compare(name.size() - from.size(), from.size(), from) == 0)
      return name.substr(0, name.size() - from.size()) + to;
    return "";
  };
  for (const auto& alt : {alias(".weight", ".gamma"), alias(".bias", ".beta")})
    if (!alt.empty() && weights_.contains(alt)) return weights_.at(alt);
  return Tensor();
}

Tensor WeightReader::base(const std::string& name) const {
  Tensor t = find(prefix_ + name);
  if (!t.raw()) fail(ErrorKind::CorruptFile, "the checkpoint lacks the tensor '" + prefix_ + name + "'");
  return t;
}

Tensor WeightReader::head(const std::string& name) const {
  Tensor t = find(name);
  if (!t.raw()) fail(ErrorKind::CorruptFile, "the checkpoint lacks the head tensor '" + name + "'");
  return t;
}

bool WeightReader::has_head(const std::string& name) const {
  return weights_.quantized(name) != nullptr || find(name).raw() != nullptr;
}

const ops::QuantizedMatrix* WeightReader::quantized_base(const std::string& name) const {
  return weights_.quantized(prefix_ + name);
}

const ops::QuantizedMatrix* WeightReader::quantized_head(const std::string& name) const {
  return weights_.quantized(name);
}

ops::Precision WeightReader::precision() const { return weights_.precision(); }

ops::WeightPacking WeightReader::encoder_packing() const {
  return weights_.precision() == ops::Precision::BFloat16 ? ops::WeightPacking::BlockedBf16
                                                         : ops::WeightPacking::BlockedWhenFaster;
}

LayerNorm LayerNorm::load(const WeightReader& reader, const std::string& name, float eps) {
  return LayerNorm{reader.base(name + ".weight"), reader.base(name + ".bias"), eps};
}

LayerNorm LayerNorm::load_head(const WeightReader& reader, const std::string& name, float eps) {
  return LayerNorm{reader.head(name + ".weight"), reader.head(name + ".bias"), eps};
}

void LayerNorm::apply(float* x, const float* residual, int64_t rows) const {
  ops::add_layer_norm(x, residual, rows, weight.numel(), weight.f32(), bias.f32(), eps);
}

void check_embedding_id(int32_t id, int64_t vocab, const char* what) {
  if (id < 0 || id >= vocab)
    fail(ErrorKind::InvalidArgument, std::string(what) + " id " + std::to_string(id) +
                                         " is outside the model's table of " + std::to_string(vocab) +
                                         " (the tokenizer and the model disagree)");
}

void embedding_lookup(const Tensor& table, const int32_t* ids, int64_t n, float* out, const char* what) {
  const int64_t vocab = table.dim(0), dim = table.dim(1);
  const float* data = table.f32();
  for (int64_t i = 0; i < n; ++i) {
    check_embedding_id(ids[i], vocab, what);
    std::memcpy(out + i * dim, data + static_cast<int64_t>(ids[i]) * dim, sizeof(float) * dim);
  }
}

Embeddings Embeddings::load(const WeightReader& reader, const std::string& prefix, float eps, bool token_types) {
  Embeddings e;
  e.word = reader.base(prefix + "word_embeddings.weight");
  e.position = reader.base(prefix + "position_embeddings.weight");
  if (token_types) e.token_type = reader.base(prefix + "token_type_embeddings.weight");
  e.norm = LayerNorm::load(reader, prefix + "LayerNorm", eps);
  return e;
}

void Embeddings::load_projection(const WeightReader& reader, const std::string& name) {
  projection = ops::Linear(reader.base(name + ".weight"), reader.base(name + ".bias"));
  check(projection.in_features() == word.dim(1), ErrorKind::CorruptFile,
        "the embedding projection '" + name + "' does not take the embedding width " + std::to_string(word.dim(1)));
}

Tensor Embeddings::forward(const int32_t* ids, const int32_t* positions, const int32_t* types, int64_t batch,
                           int64_t seq) const {
  const int64_t rows = batch * seq, h = word.dim(1);  // the table width, before any projection
  Tensor out = Tensor::empty(DType::F32, {batch, seq, h});
  std::vector<float> extra(static_cast<size_t>(rows * h));
  embedding_lookup(word, ids, rows, out.f32(), "token");
  embedding_lookup(position, positions, rows, extra.data(), "position");
  if (token_type.raw()) {
    ops::add(out.f32(), extra.data(), out.f32(), rows * h);
    std::vector<int32_t> zeros;
    if (!types) {
      zeros.assign(static_cast<size_t>(rows), 0);
      types = zeros.data();
    }
    embedding_lookup(token_type, types, rows, extra.data(), "token type");
  }
  norm.apply(out.f32(), extra.data(), rows);  // the last addend joins in the fused add + norm
  return projection.out_features() ? projection.forward(out) : out;
}

Tensor Embeddings::forward_absolute(const EncoderInputs& in) const {
  const auto positions = sequential_position_ids(in.batch, in.seq);
  const int32_t* types = in.token_type_ids.empty() ? nullptr : in.token_type_ids.data();
  return forward(in.input_ids.data(), positions.data(), types, in.batch, in.seq);
}

std::vector<int32_t> sequential_position_ids(int64_t batch, int64_t seq) {
  std::vector<int32_t> positions(static_cast<size_t>(batch * seq));
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(static_cast<int64_t>(i) % seq);
  return positions;
}

const EncoderLayerNames kBertLayerNames{
    "encoder.layer.{}.attention.self.query",       "encoder.layer.{}.attention.self.key",
    "encoder.layer.{}.attention.self.value",       "encoder.layer.{}.attention.output.dense",
    "encoder.layer.{}.attention.output.LayerNorm", "encoder.layer.{}.intermediate.dense",
    "encoder.layer.{}.output.dense",               "encoder.layer.{}.output.LayerNorm"};

void require_absolute_positions(const formats::ModelConfig& config) {
  const std::string type = config.get_string("position_embedding_type", "absolute");
  check(type == "absolute", ErrorKind::UnsupportedModel,
        "position_embedding_type '" + type + "' is not supported (only \"absolute\")");
}

EncoderShape bert_style_shape(const formats::ModelConfig& config, int64_t hidden, float layer_norm_eps) {
  return {config.get_int("num_hidden_layers"), hidden, config.get_int("num_attention_heads"),
          config.get_int("intermediate_size"), ops::activation_from_name(config.get_string("hidden_act", "gelu")),
          layer_norm_eps};
}

PostNormEncoder::PostNormEncoder(const WeightReader& reader, const EncoderLayerNames& names, const EncoderShape& shape)
    : shape_(shape) {
  check(shape.heads > 0 && shape.hidden % shape.heads == 0, ErrorKind::CorruptFile,
        "hidden size " + std::to_string(shape.hidden) + " is not a multiple of the number of attention heads " +
            std::to_string(shape.heads));
  auto linear = [&](const std::string& pattern, int64_t i, ops::Activation act = ops::Activation::None) {
    std::string name = with_index(pattern, i);
    return ops::Linear(reader.base(name + ".weight"), reader.base(name + ".bias"), act, reader.encoder_packing());
  };
  for (int64_t i = 0; i < shape.layers; ++i) {
    Layer layer;
    layer.query = linear(names.query, i);
    layer.key = linear(names.key, i);
    layer.value = linear(names.value, i);
    layer.attention_out = linear(names.attention_out, i);
    layer.ffn_in = linear(names.ffn_in, i, shape.activation);
    layer.ffn_out = linear(names.ffn_out, i);
    layer.attention_norm = LayerNorm::load(reader, with_index(names.attention_norm, i), shape.layer_norm_eps);
    layer.output_norm = LayerNorm::load(reader, with_index(names.output_norm, i), shape.layer_norm_eps);
    layers_.push_back(std::move(layer));
  }
}

void PostNormEncoder::forward(float* hidden, int64_t batch, int64_t seq, const int32_t* mask,
                              const float* position_bias) const {
  const int64_t rows = batch * seq, h = shape_.hidden, n = rows * h;
  // The activations live in a per-thread buffer kept from call to call: fresh vectors cost a
  // zero-fill and a page fault per 4 KB every batch (61 MB at 32 x 128 tokens of MiniLM, ~5%
  // of its time). Per thread because a pipeline may run on several threads at once.
  thread_local std::vector<float> workspace;
  const auto needed = static_cast<size_t>(5 * n + rows * shape_.intermediate);
  if (workspace.size() < needed) workspace.resize(needed);
  float* q = workspace.data();
  float* k = q + n;
  float* v = k + n;
  float* context = v + n;
  float* projected = context + n;
  float* inner = projected + n;
  const ops::AttentionShape attention{batch, seq, shape_.heads, h / shape_.heads};
  for (const Layer& layer : layers_) {
    layer.query.forward(hidden, rows, q);
    layer.key.forward(hidden, rows, k);
    layer.value.forward(hidden, rows, v);
    ops::self_attention(q, k, v, context, attention, mask, position_bias);
    layer.attention_out.forward(context, rows, projected);
    layer.attention_norm.apply(projected, hidden, rows);  // projected = LN(attn + hidden)
    layer.ffn_in.forward(projected, rows, inner);
    layer.ffn_out.forward(inner, rows, hidden);
    layer.output_norm.apply(hidden, projected, rows);  // hidden = LN(ffn + projected)
  }
}

std::vector<int32_t> padded_position_ids(const std::vector<int32_t>& input_ids, int64_t batch, int64_t seq,
                                         int32_t padding_idx) {
  std::vector<int32_t> positions(input_ids.size());
  for (int64_t b = 0; b < batch; ++b) {
    int32_t count = 0;
    for (int64_t s = 0; s < seq; ++s) {
      const size_t i = static_cast<size_t>(b * seq + s);
      if (input_ids[i] != padding_idx) {
        ++count;
        positions[i] = padding_idx + count;
      } else {
        positions[i] = padding_idx;
      }
    }
  }
  return positions;
}

Tensor first_token_rows(const Tensor& hidden_states) {
  const int64_t batch = hidden_states.dim(0), seq = hidden_states.dim(1), h = hidden_states.dim(2);
  Tensor out = Tensor::empty(DType::F32, {batch, h});
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(out.f32() + b * h, hidden_states.f32() + b * seq * h, sizeof(float) * h);
  return out;
}

}  // namespace hfpipe::models
