#include "models/seq2seq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"

namespace hfpipe::models {

namespace {
using Seq2SeqFactory = std::unique_ptr<Seq2SeqModel> (*)(const formats::ModelConfig&, formats::WeightMap);
const std::map<std::string, Seq2SeqFactory>& factories() {
  static const std::map<std::string, Seq2SeqFactory> table = {
      {"t5", make_t5}, {"bart", make_bart}, {"mbart", make_mbart}, {"marian", make_marian}, {"pegasus", make_pegasus},
      {"m2m_100", make_m2m100}};
  return table;
}

#define HFPIPE_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

// q.k over one head. `omp simd reduction` lets the compiler split the sum over vector lanes
// (AVX2 in the x86-64-v3 clone), which plain C++ forbids without -ffast-math: a decoding
// step runs this per beam, head and key, so it is the attention's inner loop.
HFPIPE_CLONES
float head_dot(const float* a, const float* b, int64_t d) {
  float dot = 0.f;
#pragma omp simd reduction(+ : dot)
  for (int64_t x = 0; x < d; ++x) dot += a[x] * b[x];
  return dot;
}

// out += p * v over one head (vectorises as it stands).
HFPIPE_CLONES
void head_axpy(float p, const float* v, float* out, int64_t d) {
  for (int64_t x = 0; x < d; ++x) out[x] += p * v[x];
}

// One head of one query: softmax(scale * q.k + bias) . v over the visible keys.
void attend_one(const float* q, const float* k, const float* v, const int32_t* key_mask, const float* bias,
                int64_t visible_end, const Seq2SeqAttention& s, float* scores, float* out) {
  const int64_t d = s.head_dim;
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < visible_end; ++j) {
    if (key_mask && !key_mask[j]) continue;
    float score = head_dot(q, k + j * s.kv_stride, d) * s.scale;
    if (bias) score += bias[j];
    scores[j] = score;
    max_score = std::max(max_score, score);
  }
  std::fill(out, out + d, 0.f);
  if (max_score == -std::numeric_limits<float>::infinity()) return;  // no visible key
  float total = 0.f;
  for (int64_t j = 0; j < visible_end; ++j) {
    if (key_mask && !key_mask[j]) continue;
    scores[j] = std::exp(scores[j] - max_score);
    total += scores[j];
  }
  for (int64_t j = 0; j < visible_end; ++j) {
    if (key_mask && !key_mask[j]) continue;
    head_axpy(scores[j] / total, v + j * s.kv_stride, out, d);
  }
}
}  // namespace

std::vector<std::string> supported_seq2seq_types() {
  std::vector<std::string> names;
  for (const auto& entry : factories()) names.push_back(entry.first);
  return names;
}

bool is_seq2seq_type(const std::string& model_type) { return factories().count(model_type) != 0; }

std::unique_ptr<Seq2SeqModel> load_seq2seq(const formats::ModelConfig& config, formats::WeightMap weights) {
  auto it = factories().find(config.model_type());
  if (it == factories().end()) {
    std::string list;
    for (const auto& name : supported_seq2seq_types()) list += (list.empty() ? "" : ", ") + name;
    fail(ErrorKind::UnsupportedModel, "model_type '" + config.model_type() +
                                          "' is not supported as an encoder-decoder (text2text) model; supported: " +
                                          list);
  }
  return it->second(config, std::move(weights));
}

CrossAttentionSources::CrossAttentionSources(const EncoderOutput& encoded, std::vector<int32_t> rows, int64_t d_model,
                                             const std::vector<std::pair<const ops::Linear*, const ops::Linear*>>& layers,
                                             int64_t width)
    : row_sources(std::move(rows)), source_seq(encoded.seq), source_mask(encoded.mask) {
  check(encoded.hidden == d_model, ErrorKind::Internal, "encoder output width differs from d_model");
  for (int32_t s : row_sources)
    check(s >= 0 && s < encoded.batch, ErrorKind::Internal, "a decoding row names a source outside the batch");
  const int64_t n = encoded.batch * encoded.seq;
  for (const auto& [k, v] : layers) {
    keys.emplace_back(static_cast<size_t>(n * width));
    values.emplace_back(static_cast<size_t>(n * width));
    k->forward(encoded.states.data(), n, keys.back().data());
    v->forward(encoded.states.data(), n, values.back().data());
  }
}

void seq2seq_attend(const float* q, const float* k, const float* v, const int32_t* key_mask, const float* bias,
                    float* out, const Seq2SeqAttention& s) {
  std::vector<float> scores(static_cast<size_t>(std::max<int64_t>(s.keys, 1)));
  for (int64_t i = 0; i < s.queries; ++i) {
    const int64_t visible_end = s.causal_past >= 0 ? std::min(s.keys, s.causal_past + i + 1) : s.keys;
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t offset = h * s.head_dim;
      const float* head_bias = bias ? bias + (h * s.queries + i) * s.keys : nullptr;
      attend_one(q + i * s.q_stride + offset, k + offset, v + offset, key_mask, head_bias, visible_end, s,
                 scores.data(), out + i * s.q_stride + offset);
    }
  }
}

}  // namespace hfpipe::models
