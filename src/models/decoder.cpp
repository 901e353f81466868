#include "models/decoder.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/mapped_file.h"
#include "ops/ops.h"

namespace hfpipe::models {

KvCache::KvCache(int64_t layers, int64_t batch, int64_t capacity, int64_t kv_dim)
    : layers_(layers), batch_(batch), capacity_(capacity), kv_dim_(kv_dim) {
  const size_t n = static_cast<size_t>(layers * batch * capacity * kv_dim);
  keys_.resize(n);
  values_.resize(n);
}

ops::CacheView KvCache::layer(int64_t layer) {
  const int64_t offset = layer * batch_ * capacity_ * kv_dim_;
  return {keys_.data() + offset, values_.data() + offset, capacity_};
}

void KvCache::advance(int64_t tokens) {
  check(length_ + tokens <= capacity_, ErrorKind::Internal, "key/value cache overflow");
  length_ += tokens;
}

void KvCache::reorder(const std::vector<int64_t>& source_rows) {
  check(static_cast<int64_t>(source_rows.size()) == batch_, ErrorKind::Internal,
        "cache reorder needs one source row per row");
  for (int64_t source : source_rows)
    check(source >= 0 && source < batch_, ErrorKind::Internal, "cache reorder source row out of range");
  // Rows that continue themselves stay where they are; only the rows that take another row's
  // state are written, from a copy of just the rows they read (beam search moves a few beams
  // per step: copying every row twice per step was ~2% of a t5-small beam search).
  std::vector<int64_t> moved, slot(static_cast<size_t>(batch_), -1), read;
  for (int64_t b = 0; b < batch_; ++b) {
    if (source_rows[b] == b) continue;
    moved.push_back(b);
    if (slot[source_rows[b]] < 0) {
      slot[source_rows[b]] = static_cast<int64_t>(read.size());
      read.push_back(source_rows[b]);
    }
  }
  if (moved.empty()) return;  // every beam continued itself
  // Only the filled positions move.
  const int64_t row = capacity_ * kv_dim_, filled = length_ * kv_dim_;
  std::vector<float> scratch(static_cast<size_t>(static_cast<int64_t>(read.size()) * filled));
  for (Floats* store : {&keys_, &values_})
    for (int64_t l = 0; l < layers_; ++l) {
      float* base = store->data() + l * batch_ * row;
      for (size_t k = 0; k < read.size(); ++k)
        std::memcpy(scratch.data() + k * filled, base + read[k] * row, sizeof(float) * filled);
      for (int64_t b : moved)
        std::memcpy(base + b * row, scratch.data() + slot[source_rows[b]] * filled, sizeof(float) * filled);
    }
  // The recorded ids / positions (Phi-3's recompute reads a row's history) follow their rows.
  if (!ids_.empty())
    for (std::vector<int32_t>* store : {&ids_, &positions_}) {
      const std::vector<int32_t> old = *store;
      for (int64_t b = 0; b < batch_; ++b)
        std::copy(old.begin() + source_rows[b] * capacity_, old.begin() + source_rows[b] * capacity_ + length_,
                  store->begin() + b * capacity_);
    }
}

void KvCache::record(const int32_t* ids, const int32_t* positions, int64_t new_tokens) {
  check(length_ + new_tokens <= capacity_, ErrorKind::Internal, "key/value cache overflow");
  if (ids_.empty()) {
    ids_.resize(static_cast<size_t>(batch_ * capacity_));
    positions_.resize(ids_.size());
  }
  for (int64_t b = 0; b < batch_; ++b) {
    const size_t bytes = sizeof(int32_t) * static_cast<size_t>(new_tokens);
    std::memcpy(ids_.data() + b * capacity_ + length_, ids + b * new_tokens, bytes);
    std::memcpy(positions_.data() + b * capacity_ + length_, positions + b * new_tokens, bytes);
  }
}

void KvCache::copy_row(int64_t row, const KvCache& source, int64_t source_row, int64_t tokens) {
  check(source.layers_ == layers_ && source.kv_dim_ == kv_dim_ && tokens <= capacity_ && tokens <= source.capacity_,
        ErrorKind::Internal, "key/value caches of different shapes");
  const size_t bytes = sizeof(float) * static_cast<size_t>(tokens * kv_dim_);
  for (int64_t l = 0; l < layers_; ++l) {
    const int64_t to = ((l * batch_ + row) * capacity_) * kv_dim_;
    const int64_t from = ((l * source.batch_ + source_row) * source.capacity_) * kv_dim_;
    std::memcpy(keys_.data() + to, source.keys_.data() + from, bytes);
    std::memcpy(values_.data() + to, source.values_.data() + from, bytes);
  }
}

std::vector<float> select_rows(const std::vector<float>& hidden, int64_t batch, int64_t n, int64_t dim,
                               bool all_positions) {
  if (all_positions) return hidden;
  std::vector<float> last(static_cast<size_t>(batch * dim));
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(last.data() + b * dim, hidden.data() + ((b + 1) * n - 1) * dim, sizeof(float) * dim);
  return last;
}

namespace {

// An f32 [out, in] weight's column panels, its file pages given back, where the CPU prefers
// panels and the weight is mapped from the file (decoder_linear says why only then); else none.
// `what` names the weight in the error a malformed one gets.
std::optional<ops::PanelMatrix> into_panels(const Tensor& weight, const std::string& what) {
  if (!ops::panels_preferred() || !MappedFile::is_mapped(weight.raw(), weight.nbytes())) return std::nullopt;
  check(weight.dtype() == DType::F32 && weight.ndim() == 2, ErrorKind::CorruptFile,
        what + " must be F32 [rows, columns], got " + shape_to_string(weight.shape()));
  ops::PanelMatrix panels = ops::panels_from_rows(weight.f32(), weight.dim(0), weight.dim(1));
  MappedFile::release_pages(weight.raw(), weight.nbytes());
  return panels;
}

}  // namespace

ops::Linear decoder_linear(const WeightReader& reader, const Tensor& weight, const Tensor& bias,
                           ops::Activation activation) {
  if (reader.precision() == ops::Precision::Float32) {
    if (auto panels = into_panels(weight, "a decoder weight matrix")) return ops::Linear(std::move(*panels), bias, activation);
    return ops::Linear(weight, bias, activation);
  }
  ops::Linear linear(ops::to_bf16_matrix(weight), bias, activation, ops::Precision::BFloat16);
  MappedFile::release_pages(weight.raw(), weight.nbytes());
  return linear;
}

ops::Linear load_linear(const WeightReader& reader, const std::string& name, bool bias, ops::Activation activation) {
  const Tensor b = bias ? reader.base(name + ".bias") : Tensor();
  if (const ops::QuantizedMatrix* q = reader.quantized_base(name + ".weight"))
    return ops::Linear(*q, b, activation, reader.precision());
  return decoder_linear(reader, reader.base(name + ".weight"), b, activation);
}

SelfAttention load_projection_attention(const WeightReader& reader, const std::string& prefix,
                                        const std::string& out_name, bool qkv_bias, bool out_bias) {
  SelfAttention a;
  a.q = load_linear(reader, prefix + "q_proj", qkv_bias);
  a.k = load_linear(reader, prefix + "k_proj", qkv_bias);
  a.v = load_linear(reader, prefix + "v_proj", qkv_bias);
  a.o = load_linear(reader, prefix + out_name, out_bias);
  return a;
}

void RmsNormLayer::load_gated_mlp(const WeightReader& reader, const std::string& prefix, bool bias,
                                  ops::Activation activation) {
  gate = load_linear(reader, prefix + "gate_proj", bias, activation);
  up = load_linear(reader, prefix + "up_proj", bias);
  down = load_linear(reader, prefix + "down_proj", bias);
}

namespace {

// The LM head without panels: the token embeddings when tied (in float32 the table itself, no
// copy; its bf16 rounding in bfloat16), else the head tensor `name` (missing →
// Error(CorruptFile)).
ops::Linear load_lm_head(const WeightReader& reader, const Tensor& embeddings, bool tied, const std::string& name) {
  check(tied || reader.has_head(name), ErrorKind::CorruptFile,
        "the checkpoint lacks " + name + " and tie_word_embeddings is false");
  if (!tied)
    if (const ops::QuantizedMatrix* q = reader.quantized_head(name))
      return ops::Linear(*q, Tensor(), ops::Activation::None, reader.precision());
  if (tied && reader.precision() == ops::Precision::Float32) return ops::Linear(embeddings, Tensor());  // no copy
  return decoder_linear(reader, tied ? embeddings : reader.head(name), Tensor());
}

}  // namespace

TokenEmbeddings::TokenEmbeddings(const WeightReader& reader, const std::string& name) {
  if (const ops::QuantizedMatrix* q = reader.quantized_base(name))
    quantized_ = *q;
  else
    table_ = reader.base(name);
}

void TokenEmbeddings::lookup(const int32_t* ids, int64_t n, float* out) const {
  if (panels_) {
    for (int64_t i = 0; i < n; ++i) {
      check_embedding_id(ids[i], panels_->out, "token");
      ops::panel_weight_row(*panels_, ids[i], out + i * panels_->in);
    }
    return;
  }
  if (!quantized_) return embedding_lookup(table_, ids, n, out, "token");
  const ops::QuantizedMatrix& q = *quantized_;
  for (int64_t i = 0; i < n; ++i) {
    check_embedding_id(ids[i], q.rows, "token");
    ops::dequantize_rows(q, ids[i], 1, out + i * q.cols);
  }
}

ops::Linear TokenEmbeddings::lm_head(const WeightReader& reader, bool tied, const std::string& head_name) {
  if (tied && quantized_) return ops::Linear(*quantized_, Tensor(), ops::Activation::None, reader.precision());
  if (tied && reader.precision() == ops::Precision::Float32) {
    if (!panels_) {
      panels_ = into_panels(table_, "the token embedding table");
      if (panels_) table_ = Tensor();  // the lookups read the panels from here on
    }
    if (panels_) return ops::Linear(*panels_, Tensor());
  }
  return load_lm_head(reader, table_, tied, head_name);
}

DecoderScratch::DecoderScratch(int64_t rows, int64_t hidden, int64_t q_width, int64_t kv_width, int64_t inner_width,
                               bool gated)
    : normed(rows * hidden),
      q(rows * q_width),
      k(rows * kv_width),
      v(rows * kv_width),
      context(rows * q_width),
      projected(rows * hidden),
      inner(rows * inner_width),
      up(gated ? rows * inner_width : 0) {}

void self_attention(const SelfAttention& a, const AttentionParams& p, const DecoderStep& step,
                    const ops::CacheView& cache, int64_t past, DecoderScratch& b) {
  const int64_t rows = step.batch * step.new_tokens;
  a.q.forward(b.normed.data(), rows, b.q.data());
  a.k.forward(b.normed.data(), rows, b.k.data());
  a.v.forward(b.normed.data(), rows, b.v.data());
  if (a.q_norm.raw()) {  // each head_dim slice is one RMSNorm row
    ops::rms_norm(b.q.data(), rows * p.heads, p.head_dim, a.q_norm.f32(), p.norm_eps);
    ops::rms_norm(b.k.data(), rows * p.kv_heads, p.head_dim, a.k_norm.f32(), p.norm_eps);
  }
  if (p.rope) {
    p.rope->apply(b.q.data(), step.batch, step.new_tokens, p.heads, step.positions);
    p.rope->apply(b.k.data(), step.batch, step.new_tokens, p.kv_heads, step.positions);
  }
  float scale = p.scale;
  if (p.scale_queries) {
    for (float& q : b.q) q *= scale;
    scale = 1.f;
  }
  ops::CausalAttentionShape shape{step.batch, step.new_tokens, past,  p.heads,
                                  p.kv_heads, p.head_dim,      step.ignore_sliding_window ? 0 : a.sliding_window,
                                  scale};
  shape.softcap = p.softcap;
  ops::causal_attention(b.q.data(), b.k.data(), b.v.data(), cache, step.key_mask, b.context.data(), shape);
  a.o.forward(b.context.data(), rows, b.projected.data());
}

void RmsNormLayer::run(std::vector<float>& x, float eps, const AttentionParams& params, const DecoderStep& step,
                       const ops::CacheView& cache, int64_t past, DecoderScratch& b) const {
  const int64_t rows = step.batch * step.new_tokens, h = static_cast<int64_t>(x.size()) / rows;
  b.normed = x;
  ops::rms_norm(b.normed.data(), rows, h, attn_in_norm.f32(), eps);
  self_attention(attention, params, step, cache, past, b);
  if (attn_out_norm.raw()) ops::rms_norm(b.projected.data(), rows, h, attn_out_norm.f32(), eps);
  ops::add(x.data(), b.projected.data(), x.data(), rows * h);

  b.normed = x;
  ops::rms_norm(b.normed.data(), rows, h, mlp_in_norm.f32(), eps);
  gate.forward(b.normed.data(), rows, b.inner.data());
  up.forward(b.normed.data(), rows, b.up.data());
  ops::multiply(b.inner.data(), b.up.data(), b.inner.data(), rows * gate.out_features());
  down.forward(b.inner.data(), rows, b.projected.data());
  if (mlp_out_norm.raw()) ops::rms_norm(b.projected.data(), rows, h, mlp_out_norm.f32(), eps);
  ops::add(x.data(), b.projected.data(), x.data(), rows * h);
}

void LayerNormLayer::mlp(int64_t rows, DecoderScratch& b) const {
  fc.forward(b.normed.data(), rows, b.inner.data());
  proj.forward(b.inner.data(), rows, b.projected.data());
}

void LayerNormLayer::run(std::vector<float>& x, bool pre_norm, const AttentionParams& params, const DecoderStep& step,
                         const ops::CacheView& cache, int64_t past, DecoderScratch& b) const {
  const int64_t rows = step.batch * step.new_tokens, h = static_cast<int64_t>(x.size()) / rows;
  b.normed = x;
  if (pre_norm) attn_norm.apply(b.normed.data(), nullptr, rows);
  self_attention(attention, params, step, cache, past, b);
  ops::add(x.data(), b.projected.data(), x.data(), rows * h);
  if (!pre_norm) attn_norm.apply(x.data(), nullptr, rows);

  b.normed = x;
  if (pre_norm) mlp_norm.apply(b.normed.data(), nullptr, rows);
  mlp(rows, b);
  ops::add(x.data(), b.projected.data(), x.data(), rows * h);
  if (!pre_norm) mlp_norm.apply(x.data(), nullptr, rows);
}

Tensor lm_head_logits(const std::vector<float>& hidden, int64_t width, const DecoderStep& step, bool all_positions,
                      const FinalLayers& final_layers, const ops::Linear& lm_head, int64_t vocab) {
  check(lm_head.out_features() == vocab, ErrorKind::CorruptFile,
        "the LM head has " + std::to_string(lm_head.out_features()) + " rows but vocab_size is " +
            std::to_string(vocab));
  std::vector<float> rows = select_rows(hidden, step.batch, step.new_tokens, width, all_positions);
  const int64_t count = static_cast<int64_t>(rows.size()) / width;
  final_layers(rows, count);
  Tensor logits = all_positions ? Tensor::empty(DType::F32, {step.batch, step.new_tokens, vocab})
                                : Tensor::empty(DType::F32, {step.batch, vocab});
  lm_head.forward(rows.data(), count, logits.f32());
  return logits;
}

Tensor LearnedPositionsDecoder::forward(const DecoderStep& step, KvCache& cache, bool all_positions) const {
  const int64_t rows = step.batch * step.new_tokens, h = hidden_;
  std::vector<float> x(static_cast<size_t>(rows * h)), pos(static_cast<size_t>(rows * h));
  token_embeddings_.lookup(step.ids, rows, x.data());
  embedding_lookup(position_embeddings_, step.positions, rows, pos.data(), "position");
  ops::add(x.data(), pos.data(), x.data(), rows * h);
  DecoderScratch scratch(rows, h, h, h, inner_, false);
  for (size_t l = 0; l < layers_.size(); ++l)
    layers_[l].run(x, true, attention_params(l), step, cache.layer(l), cache.length(), scratch);
  cache.advance(step.new_tokens);
  return lm_head_logits(
      x, h, step, all_positions, [&](std::vector<float>& last, int64_t n) { final_norm_.apply(last.data(), nullptr, n); },
      lm_head_, sizes_.vocab);
}

Tensor fused_rows(const Tensor& fused, int64_t first, int64_t count, int64_t stride, int64_t blocks) {
  const int64_t rows = fused.ndim() ? fused.dim(0) : 0, width = rows ? fused.numel() / rows : 0;
  check(first + (blocks - 1) * stride + count <= rows, ErrorKind::CorruptFile,
        "a fused projection has " + std::to_string(rows) + " rows, fewer than the config implies");
  Shape shape = fused.shape();
  shape[0] = count * blocks;
  Tensor out = Tensor::empty(DType::F32, shape);
  for (int64_t k = 0; k < blocks; ++k)
    std::memcpy(out.f32() + k * count * width, fused.f32() + (first + k * stride) * width,
                sizeof(float) * static_cast<size_t>(count * width));
  return out;
}

namespace {
using DecoderFactory = std::unique_ptr<DecoderModel> (*)(const formats::ModelConfig&, formats::WeightMap);
const std::map<std::string, DecoderFactory>& factories() {
  static const std::map<std::string, DecoderFactory> table = {
      {"llama", make_llama}, {"mistral", make_llama}, {"qwen2", make_llama}, {"gpt2", make_gpt2},
      {"qwen3", make_llama},  // Qwen2's network with per-head q/k RMSNorm (llama.cpp)
      {"gemma", make_gemma},  {"gemma2", make_gemma}, {"gemma3_text", make_gemma}, {"gemma3", make_gemma},
      {"gpt_neo", make_gpt_neo}, {"gpt_neox", make_gpt_neox}, {"opt", make_opt}, {"phi3", make_phi3}};
  return table;
}
}  // namespace

formats::ModelConfig with_attn_implementation(const formats::ModelConfig& config, const std::string& name) {
  if (name != "sdpa" && name != "eager")
    fail(ErrorKind::InvalidArgument, "attn_implementation '" + name + "' is not supported; supported: sdpa, eager");
  Value json = config.json();
  json[kAttnImplementationKey] = name;
  return formats::ModelConfig::from_json(json);
}

std::vector<std::string> supported_decoder_types() {
  std::vector<std::string> names;
  for (const auto& entry : factories()) names.push_back(entry.first);
  return names;
}

std::unique_ptr<DecoderModel> load_decoder(const formats::ModelConfig& config, formats::WeightMap weights) {
  auto it = factories().find(config.model_type());
  if (it == factories().end()) {
    std::string list;
    for (const auto& name : supported_decoder_types()) list += (list.empty() ? "" : ", ") + name;
    fail(ErrorKind::UnsupportedModel,
         "model_type '" + config.model_type() + "' is not supported for text generation; supported: " + list);
  }
  return it->second(config, std::move(weights));
}

}  // namespace hfpipe::models
