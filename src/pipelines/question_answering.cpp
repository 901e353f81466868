// question-answering, as transformers' QuestionAnsweringPipeline with a fast tokenizer:
// {"question", "context"} objects (one, or a list), or question=/context= parameters; the
// context cut into overlapping windows (truncation of the context with doc_stride, overflowing
// windows), every window of every input batched together, and the best spans chosen over all
// windows of an input as postprocess / select_starts_ends / decode_spans choose them.
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

struct Example {
  std::string question;
  std::string context;
};

// How one input's results are shaped: a lone object gives its example's result; a list (or the
// question=/context= parameters) gives a list, or the bare result when it holds one example
// (QuestionAnsweringPipeline.__call__ unwraps a single example).
struct Request {
  std::vector<size_t> examples;
  bool list = false;
};

struct PreprocessSettings {
  int64_t max_seq_len = 0;
  int64_t doc_stride = 0;
};

struct PostprocessSettings {
  int64_t top_k = 1;
  bool handle_impossible_answer = false;
  int64_t max_answer_len = 15;
  bool align_to_words = true;
};

// One window of an example's context with the question, as the model sees it.
struct Chunk {
  size_t example;
  text::Encoding encoding;
  std::vector<uint8_t> allowed;  // 1 where a token may be part of an answer (1 - p_mask)
};

struct Answer {
  double score;
  int64_t start;
  int64_t end;
  std::string answer;
};

struct Span {
  size_t start;
  size_t end;
  float score;
};

// ------------------------------------------------------------------------ inputs

Example example_from_object(const Value& item) {
  // QuestionAnsweringArgumentHandler.normalize's checks and messages.
  for (const char* key : {"question", "context"}) {
    if (!item.contains(key))
      fail(ErrorKind::InvalidArgument, "You need to provide a dictionary with keys {question:..., context:...}");
    const Value& v = item[key];
    if (v.is_null()) fail(ErrorKind::InvalidArgument, std::string("`") + key + "` cannot be None");
    if (!v.is_string())
      fail(ErrorKind::InvalidArgument, std::string("`") + key + "` must be a string, got " + v.dump());
    if (v.get<std::string>().empty()) fail(ErrorKind::InvalidArgument, std::string("`") + key + "` cannot be empty");
  }
  for (const auto& [key, value] : item.items())
    if (key != "question" && key != "context")
      fail(ErrorKind::InvalidArgument,
           "a question-answering input takes only \"question\" and \"context\", got \"" + key + "\"");
  return {item["question"].get<std::string>(), item["context"].get<std::string>()};
}

// `alone`: the item is the whole call (pipe(item)), where transformers iterates a string and
// so reports its first character.
Example example_from(const Value& item, bool alone) {
  if (item.is_object()) return example_from_object(item);
  std::string shown = item.is_string() ? item.get<std::string>() : item.dump();
  if (alone && item.is_string() && !shown.empty())
    shown = shown.substr(0, text::unicode::utf8_len(static_cast<unsigned char>(shown[0])));
  fail(ErrorKind::InvalidArgument, shown + " argument needs to be of type (SquadExample, dict)");
}

// question=/context= (QuestionAnsweringArgumentHandler.__call__): a string and a string, a
// list of questions over one context, or two lists of the same length.
std::vector<Example> examples_from_params(const Value& question, const Value& context) {
  auto as_object = [](const Value& q, const Value& c) { return example_from_object(Value{{"question", q}, {"context", c}}); };
  std::vector<Example> out;
  if (question.is_string() && context.is_string()) {
    out.push_back(as_object(question, context));
  } else if (question.is_array() && context.is_string()) {
    for (const Value& q : question) out.push_back(as_object(q, context));
  } else if (question.is_array() && context.is_array()) {
    if (question.size() != context.size())
      fail(ErrorKind::InvalidArgument, "Questions and contexts don't have the same lengths");
    for (size_t i = 0; i < question.size(); ++i) out.push_back(as_object(question[i], context[i]));
  } else {
    fail(ErrorKind::InvalidArgument, "Arguments can't be understood");
  }
  return out;
}

// ------------------------------------------------------------------------ settings

PostprocessSettings postprocess_settings(const Params& p) {
  PostprocessSettings s;
  // topk is the deprecated spelling of top_k.
  std::optional<int64_t> top_k = p.get_int("top_k");
  if (!top_k) top_k = p.get_int("topk");
  if (top_k) {
    if (*top_k < 1) fail(ErrorKind::InvalidArgument, "top_k parameter should be >= 1 (got " + std::to_string(*top_k) + ")");
    s.top_k = *top_k;
  }
  if (auto n = p.get_int("max_answer_len")) {
    // transformers' message, its missing parenthesis included.
    if (*n < 1) fail(ErrorKind::InvalidArgument, "max_answer_len parameter should be >= 1 (got " + std::to_string(*n));
    s.max_answer_len = *n;
  }
  s.handle_impossible_answer = p.get_bool("handle_impossible_answer", false);
  s.align_to_words = p.get_bool("align_to_words", true);
  return s;
}

PreprocessSettings preprocess_settings(const Params& p, const text::Tokenizer& tokenizer) {
  PreprocessSettings s;
  s.max_seq_len = p.get_int("max_seq_len").value_or(std::min<int64_t>(tokenizer.model_max_length(), 384));
  s.doc_stride = p.get_int("doc_stride").value_or(std::min<int64_t>(s.max_seq_len / 2, 128));
  if (s.max_seq_len < 1) fail(ErrorKind::InvalidArgument, "max_seq_len must be a positive integer");
  if (s.doc_stride < 0) fail(ErrorKind::InvalidArgument, "doc_stride must be a non-negative integer");
  if (s.doc_stride > s.max_seq_len)
    fail(ErrorKind::InvalidArgument, "`doc_stride` (" + std::to_string(s.doc_stride) + ") is larger than `max_seq_len` (" +
                                         std::to_string(s.max_seq_len) + ")");
  // tokenizers refuses a stride over the length left by one sequence's special tokens when
  // truncation is set up, whatever the input (TokenizerImpl::with_truncation).
  const int64_t added = static_cast<int64_t>(tokenizer.num_special_tokens_to_add(false));
  if (s.max_seq_len >= added && s.doc_stride > s.max_seq_len - added)
    fail(ErrorKind::InvalidArgument,
         "tokenizer stride set to " + std::to_string(s.doc_stride) +
             ", which is greater than or equal to its effective max length of " + std::to_string(s.max_seq_len - added) +
             " (= " + std::to_string(s.max_seq_len) + " original max length - " + std::to_string(added) +
             " added special tokens), ");
  // padding only pads windows that are then masked out: it changes nothing for right padding.
  if (p.has("padding")) {
    const Value& v = p.get("padding");
    const bool known = v.is_null() || v.is_boolean() ||
                       (v.is_string() && (v == "longest" || v == "max_length" || v == "do_not_pad"));
    if (!known)
      fail(ErrorKind::InvalidArgument,
           "padding must be true, false, \"longest\", \"max_length\" or \"do_not_pad\", got " + v.dump());
  }
  return s;
}

// ------------------------------------------------------------------------ helpers

// Python's str.lower() for comparing answers (full case mapping, as Rust's char::to_lowercase).
std::string lower(std::string_view s) {
  std::u32string mapped;
  for (char32_t c : text::unicode::decode_all(s)) text::unicode::to_lowercase(c, mapped);
  std::string out;
  for (char32_t c : mapped) text::unicode::append(out, c);
  return out;
}

// Byte position of every character of `s`, plus the end: Python's s[start:end] in bytes.
std::vector<size_t> char_starts(std::string_view s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); i += text::unicode::utf8_len(static_cast<unsigned char>(s[i]))) starts.push_back(i);
  starts.push_back(s.size());
  return starts;
}

std::string char_slice(std::string_view s, const std::vector<size_t>& starts, int64_t start, int64_t end) {
  const int64_t n = static_cast<int64_t>(starts.size()) - 1;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, 0, n);
  if (start >= end) return "";
  return std::string(s.substr(starts[start], starts[end] - starts[start]));
}

// numpy: x = where(allowed, x, -10000); exp(x - max) / sum, in float32.
std::vector<float> masked_softmax(const float* logits, const std::vector<uint8_t>& allowed) {
  std::vector<float> p(allowed.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = allowed[i] ? logits[i] : -10000.f;
  const float m = *std::max_element(p.begin(), p.end());
  double sum = 0;
  for (float& v : p) sum += (v = std::exp(v - m));
  for (float& v : p) v /= static_cast<float>(sum);
  return p;
}

// decode_spans: the topk (start, end) pairs by start[s] * end[e] over s <= e < s +
// max_answer_len, then only those whose two ends are allowed. numpy picks the k best of the
// whole [L, L] matrix, zeros included, before that filter: when fewer than k products are
// positive, zero cells fill the list. Which zero cells numpy's argpartition picks is not
// specified; here they come in row-major order (their answers score 0 and rank last).
std::vector<Span> decode_spans(const std::vector<float>& start, const std::vector<float>& end, size_t topk,
                               size_t max_answer_len, const std::vector<uint8_t>& allowed) {
  const size_t n = start.size();
  std::vector<Span> positive;
  for (size_t s = 0; s < n; ++s)
    for (size_t e = s; e < n && e < s + max_answer_len; ++e)
      if (const float v = start[s] * end[e]; v > 0.f) positive.push_back({s, e, v});
  // Equal scores: the lower flat index first, as numpy's argmax for topk == 1.
  auto better = [](const Span& a, const Span& b) {
    return a.score != b.score ? a.score > b.score : std::tie(a.start, a.end) < std::tie(b.start, b.end);
  };
  const size_t keep = std::min(topk, positive.size());
  std::partial_sort(positive.begin(), positive.begin() + static_cast<std::ptrdiff_t>(keep), positive.end(), better);
  positive.resize(keep);
  std::vector<Span> picked = positive;
  for (size_t flat = 0; picked.size() < std::min(topk, n * n) && flat < n * n; ++flat) {
    const size_t s = flat / n, e = flat % n;
    const bool is_positive = e >= s && e < s + max_answer_len && start[s] * end[e] > 0.f;
    if (!is_positive) picked.push_back({s, e, 0.f});
  }
  std::vector<Span> out;
  for (const Span& span : picked)
    if (allowed[span.start] && allowed[span.end]) out.push_back(span);
  return out;
}

// Encoding.word_to_chars(word, sequence_index): the characters of the word's tokens in that
// sequence (tokens are scanned in order and the scan stops past the word, as tokenizers does).
std::optional<std::pair<size_t, size_t>> word_to_chars(const text::Encoding& enc, int32_t word, int32_t sequence) {
  std::optional<size_t> first, last;
  for (size_t i = 0; i < enc.size(); ++i) {
    if (enc.sequence_ids[i] != sequence || enc.word_ids[i] < 0) continue;
    if (enc.word_ids[i] > word) break;
    if (enc.word_ids[i] == word) {
      if (!first) first = i;
      last = i;
    }
  }
  if (!first) return std::nullopt;
  return std::make_pair(enc.offsets[*first].first, enc.offsets[*last].second);
}

// QuestionAnsweringPipeline.get_indices: the whole words under the span's first and last
// tokens, or the tokens' own offsets when a token has no word.
std::pair<int64_t, int64_t> char_span(const text::Encoding& enc, size_t s, size_t e, int32_t sequence, bool align) {
  if (align && enc.word_ids[s] >= 0 && enc.word_ids[e] >= 0) {
    const auto first = word_to_chars(enc, enc.word_ids[s], sequence);
    const auto last = word_to_chars(enc, enc.word_ids[e], sequence);
    if (first && last) return {static_cast<int64_t>(first->first), static_cast<int64_t>(last->second)};
  }
  return {static_cast<int64_t>(enc.offsets[s].first), static_cast<int64_t>(enc.offsets[e].second)};
}

Value answer_value(const Answer& a) {
  return Value{{"score", a.score}, {"start", a.start}, {"end", a.end}, {"answer", a.answer}};
}

// ------------------------------------------------------------------------ the task

class QuestionAnswering : public Task {
 public:
  explicit QuestionAnswering(const TaskContext& context)
      : Task(context),
        tokenizer_(text::Tokenizer::from_folder(context.model_dir)),
        model_(models::load_encoder(context.config, load_weights(context),
                                    models::Head::QuestionAnswering)),
        batch_size_(context.options.batch_size),
        // transformers puts the question first unless the tokenizer pads on the left.
        question_first_(tokenizer_.padding_side() == text::Side::Right) {
    if (auto cls = tokenizer_.special_token("cls_token")) cls_id_ = tokenizer_.token_to_id(*cls);
  }

  // pipe([one example]) returns that example's result, not a list of one.
  bool unwraps_single_item_list() const override { return true; }

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override {
    Params p(params, name(),
             {"top_k", "topk", "doc_stride", "max_answer_len", "max_seq_len", "max_question_len",
              "handle_impossible_answer", "align_to_words", "padding", "batch_size", "question", "context"});
    const PostprocessSettings post = postprocess_settings(p);
    const PreprocessSettings pre = preprocess_settings(p, tokenizer_);
    const int64_t batch_size = p.get_int("batch_size").value_or(batch_size_);

    std::vector<Example> examples;
    const std::vector<Request> requests = parse_requests(items, p, single_call, examples);

    std::vector<Chunk> chunks;
    for (size_t i = 0; i < examples.size(); ++i) add_chunks(examples[i], i, pre, chunks);
    const std::vector<std::vector<float>> logits = forward(chunks, batch_size);

    std::vector<std::vector<size_t>> chunks_of(examples.size());
    for (size_t c = 0; c < chunks.size(); ++c) chunks_of[chunks[c].example].push_back(c);
    std::vector<Value> results;
    for (const Request& request : requests) {
      Value list = Value::array();
      for (size_t e : request.examples) list.push_back(postprocess(examples[e], chunks, chunks_of[e], logits, post));
      results.push_back(request.list && list.size() != 1 ? list : list.front());
    }
    return results;
  }

 private:
  // The inputs of one call as examples, and how each input's result is shaped.
  static std::vector<Request> parse_requests(const std::vector<Value>& items, const Params& p, bool single_call,
                                             std::vector<Example>& examples) {
    std::vector<Request> requests;
    if (p.has("question") || p.has("context")) {
      if (!p.has("question") || !p.has("context"))
        fail(ErrorKind::InvalidArgument, "question-answering needs both question= and context=");
      if (items.size() != 1 || !items.front().is_null())
        fail(ErrorKind::InvalidArgument,
             "give question-answering inputs either as {\"question\", \"context\"} objects or as question=/context= "
             "parameters, not both");
      Request request{{}, true};
      for (Example& ex : examples_from_params(p.get("question"), p.get("context"))) {
        request.examples.push_back(examples.size());
        examples.push_back(std::move(ex));
      }
      return {request};
    }
    for (const Value& item : items) {
      Request request;
      if (single_call && item.is_array()) {
        request.list = true;
        for (const Value& x : item) {
          request.examples.push_back(examples.size());
          examples.push_back(example_from(x, false));
        }
      } else {
        request.examples.push_back(examples.size());
        examples.push_back(example_from(item, single_call));
      }
      requests.push_back(std::move(request));
    }
    return requests;
  }

  // The windows of one example: question and context tokenized as a pair, the context cut to
  // max_seq_len with doc_stride tokens shared by neighbouring windows.
  void add_chunks(const Example& ex, size_t index, const PreprocessSettings& pre, std::vector<Chunk>& chunks) const {
    if (!text::is_valid_utf8(ex.question) || !text::is_valid_utf8(ex.context))
      fail(ErrorKind::InvalidArgument, "the question or context is not valid UTF-8");
    const std::string& first = question_first_ ? ex.question : ex.context;
    const std::string& second = question_first_ ? ex.context : ex.question;
    text::EncodeOptions options;
    options.char_offsets = true;
    options.truncation = text::TruncationOptions{
        static_cast<size_t>(pre.max_seq_len),
        question_first_ ? text::TruncationStrategy::OnlySecond : text::TruncationStrategy::OnlyFirst,
        static_cast<size_t>(pre.doc_stride), tokenizer_.truncation_side()};
    if (!context_can_be_cut(ex, pre)) options.truncation.reset();  // only valid when nothing needs cutting
    text::Encoding encoding = tokenizer_.encode_pair(first, second, options);
    if (!options.truncation && static_cast<int64_t>(encoding.size()) > pre.max_seq_len) fail_cut(ex, pre);

    std::vector<text::Encoding> windows;
    windows.push_back(std::move(encoding));
    for (text::Encoding& o : windows.front().overflowing) windows.push_back(std::move(o));
    windows.front().overflowing.clear();
    for (text::Encoding& window : windows) {
      if (static_cast<int64_t>(window.size()) > model_->max_sequence_length())
        fail(ErrorKind::InvalidArgument, "max_seq_len " + std::to_string(pre.max_seq_len) +
                                             " is longer than the model accepts (" +
                                             std::to_string(model_->max_sequence_length()) + " tokens)");
      chunks.push_back({index, std::move(window), {}});
      chunks.back().allowed = allowed_tokens(chunks.back().encoding);
    }
  }

  // Tokens of the question (the sequence that is never cut), without special tokens.
  size_t question_tokens(const Example& ex) const {
    text::EncodeOptions plain;
    plain.add_special_tokens = false;
    return tokenizer_.encode(ex.question, plain).size();
  }

  // Room left for the context in a window.
  int64_t context_room(const Example& ex, const PreprocessSettings& pre) const {
    return pre.max_seq_len - static_cast<int64_t>(tokenizer_.num_special_tokens_to_add(true)) -
           static_cast<int64_t>(question_tokens(ex));
  }

  // Whether tokenizers can cut this context into windows: there must be room for it beside the
  // question, and the stride must be shorter than that room.
  bool context_can_be_cut(const Example& ex, const PreprocessSettings& pre) const {
    const int64_t room = context_room(ex, pre);
    return room > 0 && pre.doc_stride < room;
  }

  // tokenizers' errors (a panic for the stride) when the context would need cutting but cannot be.
  [[noreturn]] void fail_cut(const Example& ex, const PreprocessSettings& pre) const {
    const int64_t room = context_room(ex, pre);
    if (room <= 0)
      fail(ErrorKind::InvalidArgument, "Truncation error: Sequence to truncate too short to respect the provided max_length");
    fail(ErrorKind::InvalidArgument,
         "`stride` must be strictly less than `max_len=" + std::to_string(room) +
             "` (note that `max_len` may be shorter than the max length of the original model, as it subtracts the "
             "number of special characters");
  }

  // 1 - p_mask: the context's tokens, and the CLS token (some models point there for "no answer").
  // With left padding transformers' p_mask is all zeros (every token allowed); kept as it is.
  std::vector<uint8_t> allowed_tokens(const text::Encoding& enc) const {
    std::vector<uint8_t> allowed(enc.size(), 1);
    for (size_t i = 0; i < enc.size(); ++i) {
      if (question_first_) allowed[i] = enc.sequence_ids[i] == 1;
      if (cls_id_ && enc.ids[i] == *cls_id_) allowed[i] = 1;
    }
    return allowed;
  }

  // Start and end logits of every window, interleaved per token: [seq, 2].
  std::vector<std::vector<float>> forward(const std::vector<Chunk>& chunks, int64_t batch_size) const {
    std::vector<text::Encoding> encodings;
    for (const Chunk& c : chunks) encodings.push_back(c.encoding);
    std::vector<std::vector<float>> logits(chunks.size());
    for_each_batch(encodings, batch_size, tokenizer_.pad_token_id().value_or(0),
                   [&](const models::EncoderInputs& batch, const std::vector<size_t>& rows) {
                     const Tensor out = model_->head_logits(batch);
                     for (size_t r = 0; r < rows.size(); ++r) {
                       const float* row = out.f32() + r * static_cast<size_t>(batch.seq) * 2;
                       logits[rows[r]].assign(row, row + encodings[rows[r]].size() * 2);
                     }
                   });
    return logits;
  }

  // QuestionAnsweringPipeline.postprocess over the windows of one example.
  Value postprocess(const Example& ex, const std::vector<Chunk>& chunks, const std::vector<size_t>& mine,
                    const std::vector<std::vector<float>>& logits, const PostprocessSettings& post) const {
    const std::vector<size_t> starts = char_starts(ex.context);
    // Candidates lost to word alignment are made up for by asking for more.
    const size_t pre_topk = static_cast<size_t>(post.align_to_words ? post.top_k * 2 + 10 : post.top_k);
    const int32_t sequence = question_first_ ? 1 : 0;
    double min_null_score = 1000000;
    std::vector<Answer> answers;
    for (size_t c : mine) {
      const Chunk& chunk = chunks[c];
      const size_t n = chunk.encoding.size();
      std::vector<float> start_logits(n), end_logits(n);
      for (size_t i = 0; i < n; ++i) {
        start_logits[i] = logits[c][2 * i];
        end_logits[i] = logits[c][2 * i + 1];
      }
      std::vector<float> start = masked_softmax(start_logits.data(), chunk.allowed);
      std::vector<float> end = masked_softmax(end_logits.data(), chunk.allowed);
      if (post.handle_impossible_answer) min_null_score = std::min(min_null_score, static_cast<double>(start[0] * end[0]));
      start[0] = end[0] = 0.f;  // the first token (CLS) is never part of an answer
      for (const Span& span : decode_spans(start, end, pre_topk, static_cast<size_t>(post.max_answer_len), chunk.allowed)) {
        const auto [from, to] = char_span(chunk.encoding, span.start, span.end, sequence, post.align_to_words);
        std::string text = char_slice(ex.context, starts, from, to);
        // The same answer text (case-insensitively) found again adds its score to the first.
        const std::string key = lower(text);
        auto same = std::find_if(answers.begin(), answers.end(), [&](const Answer& a) { return lower(a.answer) == key; });
        if (same != answers.end())
          same->score += span.score;
        else
          answers.push_back({span.score, from, to, std::move(text)});
      }
    }
    if (post.handle_impossible_answer) answers.push_back({min_null_score, 0, 0, ""});
    std::stable_sort(answers.begin(), answers.end(), [](const Answer& a, const Answer& b) { return a.score > b.score; });
    if (answers.size() > static_cast<size_t>(post.top_k)) answers.resize(static_cast<size_t>(post.top_k));
    if (answers.size() == 1) return answer_value(answers.front());
    Value list = Value::array();
    for (const Answer& a : answers) list.push_back(answer_value(a));
    return list;
  }

  text::Tokenizer tokenizer_;
  std::unique_ptr<models::EncoderModel> model_;
  int64_t batch_size_;
  bool question_first_;
  std::optional<int32_t> cls_id_;
};

}  // namespace

std::unique_ptr<Task> make_question_answering(const TaskContext& context) {
  return std::make_unique<QuestionAnswering>(context);
}

}  // namespace hfpipe::pipelines
