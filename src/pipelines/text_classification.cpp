// text-classification (alias sentiment-analysis), as transformers' TextClassificationPipeline:
// one text, a {"text", "text_pair"} pair, or a list of those; top_k (null = all labels,
// sorted), the deprecated return_all_scores, function_to_apply with transformers' default
// rule, and the legacy output shapes (a bare string input with no top_k gives [{...}]).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "formats/weights.h"
#include "pipelines/params.h"
#include "pipelines/task.h"
#include "pipelines/text_inputs.h"

namespace hfpipe::pipelines {

namespace {

enum class ScoreFunction { Sigmoid, Softmax, None };

struct ClassificationResult {
  std::string label;
  float score;
};

// What postprocess does with the logits, from the call's parameters.
struct PostprocessSettings {
  std::optional<int64_t> top_k;  // nullopt = every label
  bool legacy = true;            // top_k not given: transformers' older output shapes
  std::optional<ScoreFunction> function;
};

ScoreFunction score_function_from(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "sigmoid") return ScoreFunction::Sigmoid;
  if (lower == "softmax") return ScoreFunction::Softmax;
  if (lower == "none") return ScoreFunction::None;
  fail(ErrorKind::InvalidArgument,
       "function_to_apply must be \"default\", \"sigmoid\", \"softmax\" or \"none\", got \"" + name + "\"");
}

PostprocessSettings postprocess_settings(const Params& p) {
  PostprocessSettings s;
  s.top_k = 1;
  if (p.has("top_k")) {
    s.legacy = false;
    s.top_k = p.get_int("top_k");
    if (s.top_k && *s.top_k < 1)
      fail(ErrorKind::InvalidArgument, "top_k must be a positive integer or null (all labels), got " +
                                           std::to_string(*s.top_k));
  } else if (p.has("return_all_scores") && !p.get("return_all_scores").is_null()) {
    // Deprecated: return_all_scores=True is top_k=None, False is top_k=1, legacy shapes kept.
    s.top_k = p.get_bool("return_all_scores", false) ? std::nullopt : std::optional<int64_t>(1);
  }
  const std::string function = p.get_string("function_to_apply", "default");
  if (function != "default") s.function = score_function_from(function);
  return s;
}

class TextClassification : public Task {
 public:
  explicit TextClassification(const TaskContext& context)
      : Task(context),
        config_(context.config),
        tokenizer_(text::Tokenizer::from_folder(context.model_dir)),
        model_(models::load_encoder(context.config, load_weights(context),
                                    models::Head::SequenceClassification)),
        batch_size_(context.options.batch_size) {}

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override {
    Params p(params, name(),
             {"top_k", "function_to_apply", "return_all_scores", "batch_size", "truncation", "max_length",
              "add_special_tokens", "padding"});
    const PostprocessSettings settings = postprocess_settings(p);
    Value tokenizer_kwargs = Value::object();
    for (const char* key : {"truncation", "max_length", "add_special_tokens", "padding"})
      if (p.has(key)) tokenizer_kwargs[key] = p.get(key);
    const auto options = encode_options_from(tokenizer_kwargs, tokenizer_, name());
    const int64_t batch_size = p.get_int("batch_size").value_or(batch_size_);

    std::vector<text::Encoding> encodings;
    for (const Value& item : items)
      encodings.push_back(encode_input(tokenizer_, parse_input(item), options, model_->max_sequence_length()));

    std::vector<std::vector<float>> logits(items.size());
    for_each_batch(encodings, batch_size, tokenizer_.pad_token_id().value_or(0),
                   [&](const models::EncoderInputs& batch, const std::vector<size_t>& rows) {
                     Tensor out = model_->head_logits(batch);
                     const int64_t labels = out.dim(1);
                     for (size_t r = 0; r < rows.size(); ++r)
                       logits[rows[r]].assign(out.f32() + r * labels, out.f32() + (r + 1) * labels);
                   });

    std::vector<Value> results;
    for (size_t i = 0; i < items.size(); ++i) {
      Value result = to_value(postprocess(logits[i], settings), settings);
      // transformers wraps a bare string's legacy result in a list (TextClassificationPipeline.__call__).
      if (single_call && settings.legacy && items[i].is_string()) result = Value::array({result});
      results.push_back(std::move(result));
    }
    return results;
  }

 private:
  static TextInput parse_input(const Value& item) {
    if (item.is_string()) return {item.get<std::string>(), std::nullopt};
    if (item.is_object()) {
      for (const auto& [key, value] : item.items())
        if (key != "text" && key != "text_pair")
          fail(ErrorKind::InvalidArgument, "a text-classification input object takes only \"text\" and \"text_pair\", got \"" + key + "\"");
      if (!item.contains("text") || !item["text"].is_string())
        fail(ErrorKind::InvalidArgument, "a text-classification input object needs a string \"text\"");
      TextInput input{item["text"].get<std::string>(), std::nullopt};
      if (item.contains("text_pair") && !item["text_pair"].is_null()) {
        if (!item["text_pair"].is_string()) fail(ErrorKind::InvalidArgument, "\"text_pair\" must be a string");
        input.pair = item["text_pair"].get<std::string>();
      }
      return input;
    }
    fail(ErrorKind::InvalidArgument,
         "The pipeline received invalid inputs, if you are trying to send text pairs, you can try to send a "
         "dictionary `{\"text\": \"My text\", \"text_pair\": \"My pair\"}` in order to send a text pair.");
  }

  // transformers' default: regression → none; multi-label or one label → sigmoid; else softmax.
  ScoreFunction default_function() const {
    const std::string problem = config_.problem_type();
    if (problem == "regression") return ScoreFunction::None;
    if (problem == "multi_label_classification" || config_.num_labels() == 1) return ScoreFunction::Sigmoid;
    return ScoreFunction::Softmax;
  }

  std::vector<ClassificationResult> postprocess(std::vector<float> scores, const PostprocessSettings& settings) const {
    switch (settings.function.value_or(default_function())) {
      case ScoreFunction::Sigmoid:
        for (float& s : scores) s = 1.f / (1.f + std::exp(-s));
        break;
      case ScoreFunction::Softmax: {
        const float m = *std::max_element(scores.begin(), scores.end());
        float sum = 0.f;
        for (float& s : scores) sum += (s = std::exp(s - m));
        for (float& s : scores) s /= sum;
        break;
      }
      case ScoreFunction::None: break;
    }
    std::vector<ClassificationResult> results;
    for (size_t i = 0; i < scores.size(); ++i) results.push_back({label_of(static_cast<int64_t>(i)), scores[i]});
    if (settings.legacy && settings.top_k == 1) {
      // argmax: the first of equal maxima, as numpy.
      auto best = std::max_element(results.begin(), results.end(),
                                   [](const auto& a, const auto& b) { return a.score < b.score; });
      return {*best};
    }
    if (!settings.legacy) {
      std::stable_sort(results.begin(), results.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
      if (settings.top_k && static_cast<size_t>(*settings.top_k) < results.size()) results.resize(*settings.top_k);
    }
    return results;
  }

  std::string label_of(int64_t id) const {
    auto it = config_.id2label().find(id);
    if (it == config_.id2label().end())
      fail(ErrorKind::CorruptFile, "config.json's id2label has no label for class " + std::to_string(id) +
                                       " of the classifier's " + std::to_string(config_.num_labels()));
    return it->second;
  }

  static Value to_value(const std::vector<ClassificationResult>& results, const PostprocessSettings& settings) {
    auto one = [](const ClassificationResult& r) {
      return Value{{"label", r.label}, {"score", static_cast<double>(r.score)}};
    };
    if (settings.legacy && settings.top_k == 1) return one(results.front());
    Value list = Value::array();
    for (const auto& r : results) list.push_back(one(r));
    return list;
  }

  formats::ModelConfig config_;
  text::Tokenizer tokenizer_;
  std::unique_ptr<models::EncoderModel> model_;
  int64_t batch_size_;
};

}  // namespace

std::unique_ptr<Task> make_text_classification(const TaskContext& context) {
  return std::make_unique<TextClassification>(context);
}

}  // namespace hfpipe::pipelines
