// Encoder-only transformer models (BERT family) and their heads, as the pipelines see them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/config.h"
#include "formats/weights.h"
#include "models/heads.h"

namespace hfpipe::models {

class EncoderModel {
 public:
  virtual ~EncoderModel() = default;

  // The base model's last hidden state, [batch, seq, hidden].
  virtual Tensor last_hidden_state(const EncoderInputs& inputs) const = 0;
  // The head the model was loaded with.
  virtual const EncoderHead& head() const = 0;

  // The head's logits (see EncoderHead::logits): [batch, num_labels] for sequence
  // classification, [batch, seq, num_labels] for token classification, [batch, seq, 2] for
  // question answering.
  Tensor head_logits(const EncoderInputs& inputs) const { return head().logits(last_hidden_state(inputs)); }
  // The masked-LM head's vocabulary logits at the flat positions rows (b * seq + s): [rows, vocab].
  Tensor masked_lm_logits(const EncoderInputs& inputs, const std::vector<int64_t>& rows) const {
    return head().masked_lm_logits(last_hidden_state(inputs), rows);
  }

  // The longest sequence (special tokens included) the position embeddings allow.
  virtual int64_t max_sequence_length() const = 0;
  // Whether the model reads token_type_ids (BERT does; RoBERTa's single type is harmless).
  virtual int64_t type_vocab_size() const = 0;
};

// Builds the model for config.model_type from the folder's weights. Unknown model_type →
// Error(UnsupportedModel) listing the supported ones.
std::unique_ptr<EncoderModel> load_encoder(const formats::ModelConfig& config, formats::WeightMap weights, Head head);

// The model types load_encoder() knows, sorted.
std::vector<std::string> supported_encoder_types();

// One factory per architecture family; each lives in its family's file (bert.cpp, ...).
using EncoderFactory = std::unique_ptr<EncoderModel> (*)(const formats::ModelConfig&, formats::WeightMap, Head);
std::unique_ptr<EncoderModel> make_bert(const formats::ModelConfig&, formats::WeightMap, Head);
std::unique_ptr<EncoderModel> make_distilbert(const formats::ModelConfig&, formats::WeightMap, Head);
std::unique_ptr<EncoderModel> make_roberta(const formats::ModelConfig&, formats::WeightMap, Head);
std::unique_ptr<EncoderModel> make_mpnet(const formats::ModelConfig&, formats::WeightMap, Head);
std::unique_ptr<EncoderModel> make_albert(const formats::ModelConfig&, formats::WeightMap, Head);
std::unique_ptr<EncoderModel> make_electra(const formats::ModelConfig&, formats::WeightMap, Head);
// DeBERTa (model_type "deberta") and DeBERTa-v2/v3 ("deberta-v2"), both in deberta.cpp.
std::unique_ptr<EncoderModel> make_deberta(const formats::ModelConfig&, formats::WeightMap, Head);
std::unique_ptr<EncoderModel> make_deberta_v2(const formats::ModelConfig&, formats::WeightMap, Head);

}  // namespace hfpipe::models
