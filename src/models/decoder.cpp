#include "models/decoder.h"

#include <cstring>
#include <map>

#include "core/error.h"

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
  for (std::vector<float>* store : {&keys_, &values_})
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
