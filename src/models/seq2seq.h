// Encoder-decoder (sequence-to-sequence) models as the text2text pipelines see them: the
// encoder runs once over a batch of source texts, and the decoder, bound to that output, is an
// ordinary DecoderModel that the generation engine drives unchanged (greedy, sampling, beam
// search): its forward(DecoderStep, KvCache&) runs decoder self-attention through the cache
// and cross-attention over keys/values computed from the encoder output once, at bind time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/config.h"
#include "formats/weights.h"
#include "models/decoder.h"
#include "ops/linear.h"

namespace hfpipe::models {

// The encoder's last hidden state for a right-padded batch of sources.
struct EncoderOutput {
  int64_t batch = 0, seq = 0, hidden = 0;
  std::vector<float> states;   // [batch, seq, hidden]; padding rows hold unread values
  std::vector<int32_t> mask;   // [batch, seq]; 1 = token, 0 = padding
};

class Seq2SeqModel {
 public:
  virtual ~Seq2SeqModel() = default;

  // ids, mask: [batch, seq], right-padded (mask 0 after each source's tokens).
  virtual EncoderOutput encode(const int32_t* ids, const int32_t* mask, int64_t batch, int64_t seq) const = 0;

  // A decoder over `encoded`: decoding row r attends to source row_sources[r] (several rows
  // may share a source: num_return_sequences, beams). Cross-attention keys and values are
  // computed here once per source, not per step. Positions of the decoder come from
  // DecoderStep.positions; all rows must start together (the decoder prompt is the same
  // length for every row: decoder_start_token_id), so cache index = position.
  virtual std::unique_ptr<DecoderModel> bind(const EncoderOutput& encoded, std::vector<int32_t> row_sources) const = 0;

  virtual int64_t vocab_size() const = 0;
  // The longest source the encoder can take (learned position tables); 0 when unbounded
  // (T5's relative positions).
  virtual int64_t max_source_positions() const = 0;
  // The decoder's position limit for generation's max_length cap (config.json's
  // max_position_embeddings); 0 when the config has none (T5).
  virtual int64_t max_target_positions() const = 0;
};

// Builds the model for config.model_type (t5, bart, mbart, marian, pegasus, m2m_100). Unknown → Error(UnsupportedModel).
std::unique_ptr<Seq2SeqModel> load_seq2seq(const formats::ModelConfig& config, formats::WeightMap weights);
std::vector<std::string> supported_seq2seq_types();
bool is_seq2seq_type(const std::string& model_type);

// Family factories, one per file.
std::unique_ptr<Seq2SeqModel> make_t5(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<Seq2SeqModel> make_bart(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<Seq2SeqModel> make_mbart(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<Seq2SeqModel> make_marian(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<Seq2SeqModel> make_pegasus(const formats::ModelConfig&, formats::WeightMap);
std::unique_ptr<Seq2SeqModel> make_m2m100(const formats::ModelConfig&, formats::WeightMap);

// What a bound decoder cross-attends to: the encoder output's mask, which source each decoding
// row reads (beams and returned sequences repeat a source), and every decoder layer's
// cross-attention keys and values over the encoder output, projected once at bind time.
struct CrossAttentionSources {
  // `layers` are the decoder layers' (k, v) projections; `width` their output width.
  CrossAttentionSources(const EncoderOutput& encoded, std::vector<int32_t> row_sources, int64_t d_model,
                        const std::vector<std::pair<const ops::Linear*, const ops::Linear*>>& layers, int64_t width);

  std::vector<int32_t> row_sources;
  int64_t source_seq = 0;
  std::vector<int32_t> source_mask;              // [sources, source_seq]
  std::vector<std::vector<float>> keys, values;  // per layer: [sources, source_seq, width]
};

// The (k, v) cross-attention projections of decoder layers that hold a `cross_attention`.
template <typename Layers>
std::vector<std::pair<const ops::Linear*, const ops::Linear*>> cross_projections(const Layers& layers) {
  std::vector<std::pair<const ops::Linear*, const ops::Linear*>> out;
  for (const auto& layer : layers) out.emplace_back(&layer.cross_attention.k, &layer.cross_attention.v);
  return out;
}

// Attention of one batch row's `queries` over `keys` as the seq2seq families compute it:
// scores = scale * q.k (+ bias[h, i, j]) over keys whose mask is 1 and (with causal_past >= 0)
// j <= causal_past + i; softmax; weighted sum of values. q/out rows have stride q_stride,
// keys/values stride kv_stride; heads of head_dim floats each. bias may be null; mask may be
// null (all keys visible). A query that sees no key gets zeros.
struct Seq2SeqAttention {
  int64_t queries, keys, heads, head_dim;
  int64_t q_stride, kv_stride;
  int64_t causal_past;  // -1: not causal
  float scale;
};
void seq2seq_attend(const float* q, const float* k, const float* v, const int32_t* key_mask, const float* bias,
                    float* out, const Seq2SeqAttention& shape);

}  // namespace hfpipe::models
