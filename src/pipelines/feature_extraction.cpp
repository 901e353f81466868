// feature-extraction, as transformers' FeatureExtractionPipeline: the base model's last hidden
// state, [1, seq, hidden] per input, with tokenize_kwargs / truncation. With
// sentence_embedding=true (an hfpipe option) a sentence-transformers folder gives the pooled
// (and normalised) sentence embedding SentenceTransformer.encode() returns instead.
//
// One deliberate difference: transformers returns batched inputs padded to the longest of
// their batch; hfpipe returns each input's own tokens, so results never depend on batch_size.
#include "core/error.h"
#include "formats/weights.h"
#include "pipelines/params.h"
#include "pipelines/sentence_pooling.h"
#include "pipelines/task.h"
#include "pipelines/text_inputs.h"

namespace hfpipe::pipelines {

namespace {

class FeatureExtraction : public Task {
 public:
  explicit FeatureExtraction(const TaskContext& context)
      : Task(context),
        tokenizer_(text::Tokenizer::from_folder(context.model_dir)),
        model_(models::load_encoder(context.config, load_weights(context), models::Head::None)),
        pooling_(SentencePooling::load(context.model_dir)),
        batch_size_(context.options.batch_size) {}

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override {
    Params p(params, name(), {"tokenize_kwargs", "truncation", "return_tensors", "batch_size", "sentence_embedding"});
    Value kwargs = p.get_object("tokenize_kwargs");
    if (p.has("truncation")) {
      if (kwargs.contains("truncation"))
        fail(ErrorKind::InvalidArgument,
             "truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs)");
      kwargs["truncation"] = p.get("truncation");
    }
    const bool sentence = p.get_bool("sentence_embedding", false);
    if (sentence && !pooling_)
      fail(ErrorKind::InvalidArgument,
           "sentence_embedding=true needs a sentence-transformers model folder (modules.json and 1_Pooling/config.json)");
    text::EncodeOptions options = encode_options_from(kwargs, tokenizer_, name());
    if (sentence) sentence_truncation(options);
    const int64_t batch_size = p.get_int("batch_size").value_or(batch_size_);

    std::vector<text::Encoding> encodings;
    for (const Value& item : items)
      encodings.push_back(
          encode_input(tokenizer_, {expect_text(item, name()), std::nullopt}, options, model_->max_sequence_length()));

    std::vector<Value> results(items.size());
    for_each_batch(encodings, batch_size, tokenizer_.pad_token_id().value_or(0),
                   [&](const models::EncoderInputs& batch, const std::vector<size_t>& rows) {
                     Tensor hidden = model_->last_hidden_state(batch);
                     const int64_t h = hidden.dim(2);
                     for (size_t r = 0; r < rows.size(); ++r) {
                       const float* first = hidden.f32() + static_cast<int64_t>(r) * batch.seq * h;
                       const auto seq = static_cast<int64_t>(encodings[rows[r]].size());
                       results[rows[r]] = sentence ? Value(pooling_->pool(first, seq, h)) : token_embeddings(first, seq, h);
                     }
                   });
    return results;
  }

 private:
  // sentence-transformers always truncates to its max_seq_length (bounded by the tokenizer's).
  void sentence_truncation(text::EncodeOptions& options) const {
    if (options.truncation) return;
    int64_t limit = std::min(tokenizer_.model_max_length(), model_->max_sequence_length());
    if (pooling_->max_seq_length()) limit = std::min(limit, *pooling_->max_seq_length());
    options.truncation = text::TruncationOptions{static_cast<size_t>(limit), text::TruncationStrategy::LongestFirst, 0,
                                                 text::Side::Right};
  }

  // [1, seq, hidden] as nested lists.
  static Value token_embeddings(const float* x, int64_t seq, int64_t hidden) {
    Value rows = Value::array();
    for (int64_t s = 0; s < seq; ++s) rows.push_back(std::vector<float>(x + s * hidden, x + (s + 1) * hidden));
    Value batch_of_one = Value::array();
    batch_of_one.push_back(std::move(rows));  // Value::array({rows}) would copy every number
    return batch_of_one;
  }

  text::Tokenizer tokenizer_;
  std::unique_ptr<models::EncoderModel> model_;
  std::optional<SentencePooling> pooling_;
  int64_t batch_size_;
};

}  // namespace

std::unique_ptr<Task> make_feature_extraction(const TaskContext& context) {
  return std::make_unique<FeatureExtraction>(context);
}

}  // namespace hfpipe::pipelines
