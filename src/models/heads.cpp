#include "models/heads.h"

#include <cstring>

#include "core/error.h"

namespace hfpipe::models {

const char* head_name(Head head) {
  switch (head) {
    case Head::None: return "none";
    case Head::SequenceClassification: return "sequence classification";
    case Head::TokenClassification: return "token classification";
    case Head::QuestionAnswering: return "question answering";
    case Head::MaskedLM: return "masked LM";
  }
  return "?";
}

FirstTokenHead::FirstTokenHead(Tensor first_weight, Tensor first_bias, ops::Activation first_activation,
                               Tensor second_weight, Tensor second_bias)
    : first_(first_weight, first_bias, first_activation), second_(second_weight, second_bias) {}

Tensor FirstTokenHead::apply(const Tensor& hidden_states) const {
  return second_.forward(first_.forward(first_token_rows(hidden_states)));
}

MaskedLmHead::MaskedLmHead(Tensor dense_weight, Tensor dense_bias, ops::Activation activation, LayerNorm norm,
                           Tensor decoder_weight, Tensor decoder_bias)
    : dense_(dense_weight, dense_bias, activation), decoder_(decoder_weight, decoder_bias), norm_(std::move(norm)) {
  check(decoder_.in_features() == dense_.out_features(), ErrorKind::CorruptFile,
        "the masked-LM decoder's input size does not match its transform's output size");
}

Tensor MaskedLmHead::apply(const Tensor& rows) const {
  Tensor transformed = dense_.forward(rows);
  norm_.apply(transformed.f32(), nullptr, transformed.dim(0));
  return decoder_.forward(transformed);
}

EncoderHead EncoderHead::sequence_classification(FirstTokenHead head) {
  EncoderHead h;
  h.kind_ = Head::SequenceClassification;
  h.sequence_ = std::move(head);
  return h;
}

EncoderHead EncoderHead::per_token(Head kind, Tensor weight, Tensor bias) {
  check(kind == Head::TokenClassification || kind == Head::QuestionAnswering, ErrorKind::Internal,
        "a per-token head is for token classification or question answering");
  EncoderHead h;
  h.kind_ = kind;
  h.per_token_ = ops::Linear(weight, bias);
  check(kind != Head::QuestionAnswering || h.per_token_.out_features() == 2, ErrorKind::CorruptFile,
        "the question-answering head (qa_outputs) must have 2 outputs");
  return h;
}

EncoderHead EncoderHead::masked_lm(MaskedLmHead head) {
  EncoderHead h;
  h.kind_ = Head::MaskedLM;
  h.masked_lm_ = std::move(head);
  return h;
}

Tensor EncoderHead::logits(const Tensor& hidden_states) const {
  switch (kind_) {
    case Head::SequenceClassification: return sequence_.apply(hidden_states);
    case Head::TokenClassification:
    case Head::QuestionAnswering: return per_token_.forward(hidden_states);
    default: fail(ErrorKind::Internal, std::string("logits() asked of a model loaded with the ") + head_name(kind_) + " head");
  }
}

Tensor EncoderHead::masked_lm_logits(const Tensor& hidden_states, const std::vector<int64_t>& rows) const {
  check(kind_ == Head::MaskedLM, ErrorKind::Internal, "masked_lm_logits() asked of a model without a masked-LM head");
  const int64_t total = hidden_states.dim(0) * hidden_states.dim(1), hidden = hidden_states.dim(2);
  Tensor gathered = Tensor::empty(DType::F32, {static_cast<int64_t>(rows.size()), hidden});
  for (size_t i = 0; i < rows.size(); ++i) {
    check(rows[i] >= 0 && rows[i] < total, ErrorKind::Internal, "masked-LM row outside the batch");
    std::memcpy(gathered.f32() + i * hidden, hidden_states.f32() + rows[i] * hidden, sizeof(float) * hidden);
  }
  return masked_lm_.apply(gathered);
}

EncoderHead load_per_token_head(Head kind, const WeightReader& reader) {
  switch (kind) {
    case Head::None: return {};
    case Head::TokenClassification:
      return EncoderHead::per_token(kind, reader.head("classifier.weight"), reader.head("classifier.bias"));
    case Head::QuestionAnswering:
      return EncoderHead::per_token(kind, reader.head("qa_outputs.weight"), reader.head("qa_outputs.bias"));
    default: fail(ErrorKind::Internal, std::string("load_per_token_head() cannot load the ") + head_name(kind) + " head");
  }
}

EncoderHead load_roberta_style_head(Head kind, const WeightReader& reader, float layer_norm_eps,
                                    const Tensor& word_embeddings) {
  if (kind == Head::SequenceClassification)
    return EncoderHead::sequence_classification(FirstTokenHead(
        reader.head("classifier.dense.weight"), reader.head("classifier.dense.bias"), ops::Activation::Tanh,
        reader.head("classifier.out_proj.weight"), reader.head("classifier.out_proj.bias")));
  if (kind == Head::MaskedLM)
    return EncoderHead::masked_lm(MaskedLmHead(reader.head("lm_head.dense.weight"), reader.head("lm_head.dense.bias"),
                                               ops::Activation::GeluErf,
                                               LayerNorm::load_head(reader, "lm_head.layer_norm", layer_norm_eps),
                                               tied_decoder_weight(reader, "lm_head.decoder.weight", word_embeddings),
                                               reader.head("lm_head.bias")));
  return load_per_token_head(kind, reader);
}

Tensor tied_decoder_weight(const WeightReader& reader, const std::string& name, const Tensor& word_embeddings) {
  return reader.has_head(name) ? reader.head(name) : word_embeddings;
}

}  // namespace hfpipe::models
