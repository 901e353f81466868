// Encoder-decoder (sequence-to-sequence) models as the text2text pipelines see them: the
// encoder runs once over a batch of source texts, and the decoder, bound to that output, is an
// ordinary DecoderModel that the generation engine drives unchanged (greedy, sampling, beam
// search): its forward(DecoderStep, KvCache&) runs decoder self-attention through the cache
// and cross-attention over keys/values computed from the encoder output once, at bind time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/config.h"
#include "formats/weights.h"
#include "models/decoder.h"

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
