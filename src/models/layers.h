// Building blocks shared by the encoder families: a checkpoint reader that tolerates the
// naming variants found in the wild, LayerNorm, embedding lookup, and the post-norm
// transformer layer stack used by BERT, RoBERTa, DistilBERT and MPNet alike.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/config.h"
#include "formats/weights.h"
#include "ops/linear.h"

namespace hfpipe::models {

// Reads base-model tensors with or without the model's prefix ("bert.", "roberta.", ...):
// checkpoints saved from the base class lack it, those saved from a head class carry it.
// Old TF-converted checkpoints name LayerNorm parameters gamma/beta; both are accepted.
class WeightReader {
 public:
  // `probe` is a base-model tensor name that tells whether the checkpoint is prefixed.
  WeightReader(const formats::WeightMap& weights, const std::string& prefix, const std::string& probe);

  Tensor base(const std::string& name) const;  // a base-model tensor; Error(CorruptFile) if missing
  Tensor head(const std::string& name) const;  // a head tensor (never prefixed)
  bool has_head(const std::string& name) const;  // as a Tensor or block-quantised
  // The block-quantised weight `name` (a base-model one, or a head one), or null when the
  // checkpoint holds it as a Tensor or not at all.
  const ops::QuantizedMatrix* quantized_base(const std::string& name) const;
  const ops::QuantizedMatrix* quantized_head(const std::string& name) const;
  // How an encoder layer's Linear packs its weight: BlockedBf16 when the weights were loaded
  // for bfloat16 products (torch_dtype), BlockedWhenFaster otherwise.
  ops::WeightPacking encoder_packing() const;
  // The precision the model's products run in (the pipeline's torch_dtype).
  ops::Precision precision() const;

 private:
  Tensor find(const std::string& name) const;
  const formats::WeightMap& weights_;
  std::string prefix_;
};

struct LayerNorm {
  Tensor weight, bias;
  float eps = 1e-12f;
  static LayerNorm load(const WeightReader& reader, const std::string& name, float eps);
  // A head's LayerNorm (never prefixed).
  static LayerNorm load_head(const WeightReader& reader, const std::string& name, float eps);
  // x = LayerNorm(x + residual); residual may be null.
  void apply(float* x, const float* residual, int64_t rows) const;
};

// table: [vocab, dim]. Writes rows table[ids[i]] to out; an id outside the table is
// Error(InvalidArgument) (a tokenizer whose vocabulary is larger than the model's).
void embedding_lookup(const Tensor& table, const int32_t* ids, int64_t n, float* out, const char* what);
// Error(InvalidArgument) unless 0 <= id < vocab; `what` names the table ("token", "position").
void check_embedding_id(int32_t id, int64_t vocab, const char* what);

// A padded batch of token sequences, row-major [batch, seq].
struct EncoderInputs {
  int64_t batch = 0;
  int64_t seq = 0;
  std::vector<int32_t> input_ids;
  std::vector<int32_t> token_type_ids;
  std::vector<int32_t> attention_mask;
};

// Embeddings as BERT, RoBERTa, DistilBERT and MPNet compute them:
//   LayerNorm(word[ids] + position[positions] (+ token_type[types]))
// ALBERT and ELECTRA factorise them: the table width (embedding_size) is smaller than the
// hidden size and a linear projection after the LayerNorm maps one to the other.
struct Embeddings {
  Tensor word, position, token_type;  // token_type undefined for families without it
  LayerNorm norm;
  ops::Linear projection;  // embedding_size -> hidden; out_features() == 0 when absent
  // Reads <prefix>word_embeddings / position_embeddings / [token_type_embeddings] / LayerNorm.
  static Embeddings load(const WeightReader& reader, const std::string& prefix, float eps, bool token_types);
  // Adds the projection <name>.weight / <name>.bias (a base-model tensor).
  void load_projection(const WeightReader& reader, const std::string& name);
  // Width of the output: the hidden size.
  int64_t hidden() const { return projection.out_features() ? projection.out_features() : word.dim(1); }
  // types may be null (type 0 everywhere). Returns [batch, seq, hidden].
  Tensor forward(const int32_t* ids, const int32_t* positions, const int32_t* types, int64_t batch,
                 int64_t seq) const;
  // With absolute positions 0..seq-1 and the batch's token types (BERT, ALBERT, ELECTRA).
  Tensor forward_absolute(const EncoderInputs& in) const;
};

// Position ids 0..seq-1 for every sequence of a batch (absolute positions, BERT/DistilBERT).
std::vector<int32_t> sequential_position_ids(int64_t batch, int64_t seq);

// Names of one layer's tensors, with "{}" standing for the layer index.
struct EncoderLayerNames {
  std::string query, key, value, attention_out, attention_norm, ffn_in, ffn_out, output_norm;
};

struct EncoderShape {
  int64_t layers, hidden, heads, intermediate;
  ops::Activation activation;
  float layer_norm_eps;
};

// Error(UnsupportedModel) unless position_embedding_type is absent or "absolute" (the
// relative_key variants of BERT-style configs are not implemented).
void require_absolute_positions(const formats::ModelConfig& config);

// BERT's layer names, shared by RoBERTa and XLM-RoBERTa.
extern const EncoderLayerNames kBertLayerNames;

// The shape BERT-style configs describe: num_hidden_layers, num_attention_heads,
// intermediate_size, hidden_act (default "gelu").
EncoderShape bert_style_shape(const formats::ModelConfig& config, int64_t hidden, float layer_norm_eps);

// A stack of post-norm transformer layers:
//   h = LN(h + O(attention(Q h, K h, V h)));  h = LN(h + W2 act(W1 h))
class PostNormEncoder {
 public:
  PostNormEncoder() = default;
  PostNormEncoder(const WeightReader& reader, const EncoderLayerNames& names, const EncoderShape& shape);

  // hidden: [batch * seq, hidden], updated in place. mask: [batch, seq] (1 = token).
  // position_bias: optional [heads, seq, seq] added to every layer's attention scores.
  void forward(float* hidden, int64_t batch, int64_t seq, const int32_t* mask, const float* position_bias) const;

 private:
  struct Layer {
    ops::Linear query, key, value, attention_out, ffn_in, ffn_out;
    LayerNorm attention_norm, output_norm;
  };
  std::vector<Layer> layers_;
  EncoderShape shape_{};
};

// Position ids as RoBERTa and MPNet make them: padding_idx + 1 + (index among non-padding
// tokens), and padding_idx for padding tokens (create_position_ids_from_input_ids).
std::vector<int32_t> padded_position_ids(const std::vector<int32_t>& input_ids, int64_t batch, int64_t seq,
                                         int32_t padding_idx);

// Rows [b * seq + 0] (the first token of each sequence), copied out: [batch, hidden].
Tensor first_token_rows(const Tensor& hidden_states);

}  // namespace hfpipe::models
