// Task heads on top of an encoder's last hidden state. Every encoder family builds the head a
// task asks for from its own state-dict names; the shapes are shared:
//   sequence classification: two linear layers on the first token (FirstTokenHead);
//   token classification and question answering: one linear layer on every token;
//   masked LM: dense + activation + LayerNorm, then the decoder (usually the word embeddings).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/layers.h"
#include "ops/linear.h"

namespace hfpipe::models {

// Which head to load on top of the base model.
enum class Head { None, SequenceClassification, TokenClassification, QuestionAnswering, MaskedLM };

const char* head_name(Head head);

// BERT's tanh pooler + classifier, RoBERTa's and MPNet's dense (tanh) + out_proj, DistilBERT's
// pre_classifier (ReLU) + classifier, ... on the first token's hidden state.
class FirstTokenHead {
 public:
  FirstTokenHead() = default;
  FirstTokenHead(Tensor first_weight, Tensor first_bias, ops::Activation first_activation, Tensor second_weight,
                 Tensor second_bias);
  // hidden_states: [batch, seq, hidden] → logits [batch, num_labels].
  Tensor apply(const Tensor& hidden_states) const;

 private:
  ops::Linear first_, second_;
};

// BertLMPredictionHead, RobertaLMHead, DistilBERT's vocab_transform/vocab_layer_norm/
// vocab_projector: decoder(LayerNorm(act(dense(h)))) + bias.
class MaskedLmHead {
 public:
  MaskedLmHead() = default;
  // decoder_weight: [vocab, hidden] (the word embeddings when tied); decoder_bias: [vocab].
  MaskedLmHead(Tensor dense_weight, Tensor dense_bias, ops::Activation activation, LayerNorm norm,
               Tensor decoder_weight, Tensor decoder_bias);
  // rows: [n, hidden] → [n, vocab]
  Tensor apply(const Tensor& rows) const;

 private:
  ops::Linear dense_, decoder_;
  LayerNorm norm_;
};

// The head a model was loaded with.
class EncoderHead {
 public:
  EncoderHead() = default;  // Head::None
  static EncoderHead sequence_classification(FirstTokenHead head);
  // TokenClassification (num_labels outputs) or QuestionAnswering (2 outputs: start, end).
  static EncoderHead per_token(Head kind, Tensor weight, Tensor bias);
  static EncoderHead masked_lm(MaskedLmHead head);

  Head kind() const { return kind_; }
  // hidden_states [batch, seq, hidden] → SequenceClassification: [batch, num_labels];
  // TokenClassification: [batch, seq, num_labels]; QuestionAnswering: [batch, seq, 2].
  Tensor logits(const Tensor& hidden_states) const;
  // MaskedLM: vocabulary logits at the flat positions rows (b * seq + s) → [rows, vocab].
  Tensor masked_lm_logits(const Tensor& hidden_states, const std::vector<int64_t>& rows) const;

 private:
  Head kind_ = Head::None;
  FirstTokenHead sequence_;
  ops::Linear per_token_;
  MaskedLmHead masked_lm_;
};

// RoBERTa's and MPNet's heads (same names, same shapes): classifier.dense + tanh on the first
// token then classifier.out_proj; lm_head.dense + GELU + lm_head.layer_norm, lm_head.decoder
// tied to the word embeddings, lm_head.bias; classifier / qa_outputs per token.
EncoderHead load_roberta_style_head(Head kind, const WeightReader& reader, float layer_norm_eps,
                                    const Tensor& word_embeddings);

// Token classification's `classifier` and question answering's `qa_outputs` carry the same
// names in every family that has them; None gives the empty head. Other kinds → Error(Internal).
EncoderHead load_per_token_head(Head kind, const WeightReader& reader);

// The masked-LM decoder weight: `name` when the checkpoint has it, else the (tied) word
// embeddings, as save_pretrained drops tied copies.
Tensor tied_decoder_weight(const WeightReader& reader, const std::string& name, const Tensor& word_embeddings);

}  // namespace hfpipe::models
