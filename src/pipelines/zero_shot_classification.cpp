// zero-shot-classification, as transformers' ZeroShotClassificationPipeline: every (sequence,
// candidate label) pair posed to an NLI model as premise / hypothesis_template.format(label),
// all pairs of a call batched together; the entailment logits give the scores, softmaxed over
// the labels, or against contradiction per label when multi_label (or one label).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "formats/weights.h"
#include "pipelines/params.h"
#include "pipelines/task.h"
#include "pipelines/text_inputs.h"
#include "text/unicode.h"

namespace hfpipe::pipelines {

namespace {

constexpr const char* kNoLabelOrSequence = "You must include at least one label and at least one sequence.";

// Python's str.strip() (whitespace as str.isspace sees it, close enough: Unicode White_Space).
std::string strip(const std::string& s) {
  const std::u32string chars = text::unicode::decode_all(s);
  size_t b = 0, e = chars.size();
  while (b < e && text::unicode::is_whitespace(chars[b])) ++b;
  while (e > b && text::unicode::is_whitespace(chars[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) text::unicode::append(out, chars[i]);
  return out;
}

// ZeroShotClassificationArgumentHandler._parse_labels: a list as given, or a comma-separated
// string split on commas with empty pieces dropped.
std::vector<std::string> parse_labels(const Params& p) {
  if (!p.has("candidate_labels") || p.get("candidate_labels").is_null())
    fail(ErrorKind::InvalidArgument, "zero-shot-classification needs candidate_labels (a list of labels or a "
                                     "comma-separated string)");
  const Value& v = p.get("candidate_labels");
  std::vector<std::string> labels;
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    for (size_t from = 0;;) {
      const size_t comma = s.find(',', from);
      std::string piece = strip(s.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
      if (!piece.empty()) labels.push_back(std::move(piece));
      if (comma == std::string::npos) break;
      from = comma + 1;
    }
  } else if (v.is_array()) {
    for (const Value& label : v) {
      if (!label.is_string()) fail(ErrorKind::InvalidArgument, "candidate_labels must be strings, got " + label.dump());
      labels.push_back(label.get<std::string>());
    }
  } else {
    fail(ErrorKind::InvalidArgument, "candidate_labels must be a list of strings or a comma-separated string, got " + v.dump());
  }
  if (labels.empty()) fail(ErrorKind::InvalidArgument, kNoLabelOrSequence);
  return labels;
}

// Python's template.format(label) for the forms a hypothesis template uses: {} and {0} for the
// label, {{ and }} for braces. Other replacement fields are refused (Python would raise too, or
// apply a format spec hfpipe does not implement).
std::string format_template(const std::string& tpl, const std::string& label) {
  std::string out;
  for (size_t i = 0; i < tpl.size(); ++i) {
    const char c = tpl[i];
    if (c == '{' && i + 1 < tpl.size() && tpl[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < tpl.size() && tpl[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = tpl.find('}', i);
      const std::string field = close == std::string::npos ? "" : tpl.substr(i + 1, close - i - 1);
      if (close == std::string::npos || (field != "" && field != "0"))
        fail(ErrorKind::InvalidArgument, "hypothesis_template \"" + tpl +
                                             "\": only {} (or {0}) for the label and {{ }} for braces are supported");
      out += label;
      i = close;
    } else if (c == '}') {
      fail(ErrorKind::InvalidArgument, "Single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

std::string hypothesis_template(const Params& p, const std::string& first_label) {
  const std::string tpl = p.get_string("hypothesis_template", "This example is {}.");
  if (format_template(tpl, first_label) == tpl)
    fail(ErrorKind::InvalidArgument,
         "The provided hypothesis_template \"" + tpl +
             "\" was not able to be formatted with the target labels. Make sure the passed template includes "
             "formatting syntax such as {} where the label should go.");
  return tpl;
}

// One sequence to classify and where its result goes.
struct Request {
  std::vector<size_t> sequences;
  bool list = false;
};

class ZeroShotClassification : public Task {
 public:
  explicit ZeroShotClassification(const TaskContext& context)
      : Task(context),
        tokenizer_(text::Tokenizer::from_folder(context.model_dir)),
        model_(models::load_encoder(context.config, load_weights(context),
                                    models::Head::SequenceClassification)),
        batch_size_(context.options.batch_size),
        entailment_id_(entailment_id(context.config)) {}

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override {
    Params p(params, name(), {"candidate_labels", "hypothesis_template", "multi_label", "multi_class", "batch_size"});
    const std::vector<std::string> labels = parse_labels(p);
    const std::string tpl = hypothesis_template(p, labels.front());
    // multi_class is multi_label's deprecated name and wins when given.
    const bool multi_label = p.has("multi_class") && !p.get("multi_class").is_null() ? p.get_bool("multi_class", false)
                                                                                    : p.get_bool("multi_label", false);
    const int64_t batch_size = p.get_int("batch_size").value_or(batch_size_);

    std::vector<std::string> sequences;
    std::vector<Request> requests;
    for (const Value& item : items) {
      Request request;
      if (single_call && item.is_array()) {
        request.list = true;
        for (const Value& x : item) {
          request.sequences.push_back(sequences.size());
          sequences.push_back(sequence_of(x));
        }
      } else {
        request.sequences.push_back(sequences.size());
        sequences.push_back(sequence_of(item));
      }
      requests.push_back(std::move(request));
    }

    std::vector<std::string> hypotheses;
    for (const std::string& label : labels) hypotheses.push_back(format_template(tpl, label));
    const std::vector<std::vector<float>> logits = forward(sequences, hypotheses, batch_size);

    std::vector<Value> results;
    for (const Request& request : requests) {
      Value list = Value::array();
      for (size_t s : request.sequences)
        list.push_back(postprocess(sequences[s], labels, logits.begin() + static_cast<std::ptrdiff_t>(s * labels.size()),
                                   multi_label));
      results.push_back(request.list ? list : list.front());
    }
    return results;
  }

 private:
  // ZeroShotClassificationPipeline.entailment_id: the first label of config.label2id (in the
  // file's order) starting with "entail", case-insensitively; -1 (the last logit) otherwise.
  static int64_t entailment_id(const formats::ModelConfig& config) {
    std::vector<std::pair<std::string, int64_t>> label2id;
    const Value& json = config.json();
    if (json.contains("label2id") && json["label2id"].is_object()) {
      for (const auto& [label, id] : json["label2id"].items())
        if (id.is_number_integer()) label2id.emplace_back(label, id.get<int64_t>());
    } else {
      for (const auto& [id, label] : config.id2label()) label2id.emplace_back(label, id);
    }
    for (const auto& [label, id] : label2id) {
      std::string head = label.substr(0, 6);
      std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
      if (head == "entail") {
        if (id < -config.num_labels() || id >= config.num_labels())
          fail(ErrorKind::CorruptFile, "config.json's label2id gives \"" + label + "\" the id " + std::to_string(id) +
                                           ", outside the model's " + std::to_string(config.num_labels()) + " labels");
        return id;
      }
    }
    return -1;
  }

  static std::string sequence_of(const Value& item) {
    const std::string s = expect_text(item, "zero-shot-classification");
    if (s.empty()) fail(ErrorKind::InvalidArgument, kNoLabelOrSequence);
    return s;
  }

  // Whether (sequence, hypothesis) pairs can be truncated as transformers' _parse_and_tokenize
  // asks (only_first, to the tokenizer's model_max_length): tokenizers can only cut the
  // sequence when the hypothesis leaves room for it; otherwise it raises "too short" and
  // transformers tokenizes again without truncation.
  bool can_truncate(const std::string& hypothesis) const {
    const auto limit = static_cast<uint64_t>(tokenizer_.model_max_length());
    const size_t added = tokenizer_.num_special_tokens_to_add(true);
    if (limit <= added) return false;
    text::EncodeOptions plain;
    plain.add_special_tokens = false;
    return tokenizer_.encode(hypothesis, plain).size() < limit - added;
  }

  text::Encoding encode(const std::string& sequence, const std::string& hypothesis, bool truncate) const {
    text::EncodeOptions options;
    if (truncate)
      options.truncation = text::TruncationOptions{static_cast<size_t>(tokenizer_.model_max_length()),
                                                   text::TruncationStrategy::OnlyFirst, 0, tokenizer_.truncation_side()};
    return encode_input(tokenizer_, TextInput{sequence, hypothesis}, options, model_->max_sequence_length());
  }

  // The classifier's logits of every (sequence, hypothesis) pair, sequence-major.
  std::vector<std::vector<float>> forward(const std::vector<std::string>& sequences,
                                          const std::vector<std::string>& hypotheses, int64_t batch_size) const {
    std::vector<bool> truncate;
    for (const std::string& h : hypotheses) truncate.push_back(can_truncate(h));
    std::vector<text::Encoding> encodings;
    for (const std::string& s : sequences)
      for (size_t h = 0; h < hypotheses.size(); ++h) encodings.push_back(encode(s, hypotheses[h], truncate[h]));
    std::vector<std::vector<float>> logits(encodings.size());
    for_each_batch(encodings, batch_size, tokenizer_.pad_token_id().value_or(0),
                   [&](const models::EncoderInputs& batch, const std::vector<size_t>& rows) {
                     const Tensor out = model_->head_logits(batch);
                     const int64_t n = out.dim(1);
                     for (size_t r = 0; r < rows.size(); ++r)
                       logits[rows[r]].assign(out.f32() + r * n, out.f32() + (r + 1) * n);
                   });
    return logits;
  }

  // numpy's x[..., i] with a possibly negative index.
  float at(const std::vector<float>& row, int64_t i) const {
    return row[static_cast<size_t>(i < 0 ? i + static_cast<int64_t>(row.size()) : i)];
  }

  // ZeroShotClassificationPipeline.postprocess for one sequence (float32 as numpy, exp without
  // subtracting the maximum).
  Value postprocess(const std::string& sequence, const std::vector<std::string>& labels,
                    std::vector<std::vector<float>>::const_iterator logits, bool multi_label) const {
    const size_t n = labels.size();
    std::vector<float> scores(n);
    if (multi_label || n == 1) {
      const int64_t contradiction_id = entailment_id_ == 0 ? -1 : 0;
      for (size_t i = 0; i < n; ++i) {
        const float e = std::exp(at(logits[i], entailment_id_)), c = std::exp(at(logits[i], contradiction_id));
        scores[i] = e / (c + e);
      }
    } else {
      float sum = 0.f;
      for (size_t i = 0; i < n; ++i) sum += (scores[i] = std::exp(at(logits[i], entailment_id_)));
      for (float& s : scores) s /= sum;
    }
    // reversed(argsort(scores)): descending, equal scores in reverse input order.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
    std::reverse(order.begin(), order.end());
    Value sorted_labels = Value::array(), sorted_scores = Value::array();
    for (size_t i : order) {
      sorted_labels.push_back(labels[i]);
      sorted_scores.push_back(static_cast<double>(scores[i]));
    }
    return Value{{"sequence", sequence}, {"labels", sorted_labels}, {"scores", sorted_scores}};
  }

  text::Tokenizer tokenizer_;
  std::unique_ptr<models::EncoderModel> model_;
  int64_t batch_size_;
  int64_t entailment_id_;
};

}  // namespace

std::unique_ptr<Task> make_zero_shot_classification(const TaskContext& context) {
  return std::make_unique<ZeroShotClassification>(context);
}

}  // namespace hfpipe::pipelines
