// token-classification (alias ner), as transformers' TokenClassificationPipeline: per-token
// labels, or entities grouped with aggregation_strategy simple / first / average / max
// (B-/I- tags, word boundaries from the tokenizer's continuing-subword prefix or transformers'
// space heuristic), ignore_labels, the deprecated grouped_entities / ignore_subwords, stride
// (overlapping windows of model_max_length tokens, merged as transformers merges them) and
// is_split_into_words (pre-split words joined by a delimiter). start/end are character
// offsets into the text; `word` is what transformers returns: the token for "none", the
// tokens run through the tokenizer's decoder for groups.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "formats/weights.h"
#include "ops/ops.h"
#include "pipelines/params.h"
#include "pipelines/task.h"
#include "pipelines/text_inputs.h"
#include "text/unicode.h"

namespace hfpipe::pipelines {

namespace {

enum class Aggregation { None, Simple, First, Average, Max };

const char* enum_name(Aggregation a) {
  switch (a) {
    case Aggregation::None: return "AggregationStrategy.NONE";
    case Aggregation::Simple: return "AggregationStrategy.SIMPLE";
    case Aggregation::First: return "AggregationStrategy.FIRST";
    case Aggregation::Average: return "AggregationStrategy.AVERAGE";
    case Aggregation::Max: return "AggregationStrategy.MAX";
  }
  return "";
}

bool is_word_strategy(Aggregation a) {
  return a == Aggregation::First || a == Aggregation::Average || a == Aggregation::Max;
}

// transformers' AggregationStrategy[name.upper()].
Aggregation aggregation_from(const std::string& name) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (upper == "NONE") return Aggregation::None;
  if (upper == "SIMPLE") return Aggregation::Simple;
  if (upper == "FIRST") return Aggregation::First;
  if (upper == "AVERAGE") return Aggregation::Average;
  if (upper == "MAX") return Aggregation::Max;
  fail(ErrorKind::InvalidArgument, "invalid aggregation_strategy \"" + name + "\" (transformers: KeyError: '" + upper +
                                       "'); valid: \"none\", \"simple\", \"first\", \"average\", \"max\"");
}

struct Settings {
  Aggregation strategy = Aggregation::None;
  std::vector<std::string> ignore_labels{"O"};
  std::optional<int64_t> stride;
  bool split_into_words = false;
  std::string delimiter = " ";
};

// A token (special tokens left out) with its label scores, as gather_pre_entities makes it.
struct PreEntity {
  std::string word;
  std::vector<float> scores;
  int64_t start, end, index;
  bool is_subword;
};

// An entity (a token with "none"/"simple" before grouping, a word with first/average/max) or
// a group of them (`group`: entity_group, no index).
struct Entity {
  std::string label;
  float score;
  std::optional<int64_t> index;
  std::string word;
  int64_t start, end;
  bool group = false;
};

// The text as Python sees it: code points, for character slicing.
struct Sentence {
  std::u32string chars;
  // sentence[start:end] with Python's clamping.
  std::u32string slice(int64_t start, int64_t end) const {
    const auto n = static_cast<int64_t>(chars.size());
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, start, n);
    return chars.substr(static_cast<size_t>(start), static_cast<size_t>(end - start));
  }
};

std::string utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) text::unicode::append(out, c);
  return out;
}

// numpy's argmax: the first of equal maxima.
size_t argmax(const std::vector<float>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// get_tag: ("B"|"I", tag); a label without a B-/I- prefix continues ("I").
std::pair<char, std::string> bio_tag(const std::string& label) {
  if (label.rfind("B-", 0) == 0) return {'B', label.substr(2)};
  if (label.rfind("I-", 0) == 0) return {'I', label.substr(2)};
  return {'I', label};
}

// One input after preprocessing: the sentence and its windows (one without stride).
struct Prepared {
  Sentence sentence;
  std::vector<std::pair<int64_t, int64_t>> word_chars;  // is_split_into_words: each word's span
  std::vector<text::Encoding> chunks;
};

class TokenClassification : public Task {
 public:
  explicit TokenClassification(const TaskContext& context)
      : Task(context),
        config_(context.config),
        tokenizer_(text::Tokenizer::from_folder(context.model_dir)),
        model_(models::load_encoder(context.config, load_weights(context),
                                    models::Head::TokenClassification)),
        batch_size_(context.options.batch_size) {
    if (auto unk = tokenizer_.special_token("unk_token")) unk_id_ = tokenizer_.token_to_id(*unk);
    word_aware_ = tokenizer_.continuing_subword_prefix().has_value();
  }

  // TokenClassificationPipeline.__call__: a list of words with is_split_into_words is one
  // input (its result comes back in a list); an empty list or a non-text is refused.
  Value call(const Value& inputs, const Value& params) const override {
    if (!inputs.is_string() && !(inputs.is_array() && !inputs.empty()))
      fail(ErrorKind::InvalidArgument, "At least one input is required.");
    const bool split = params.is_object() && params.contains("is_split_into_words") &&
                       params["is_split_into_words"].is_boolean() && params["is_split_into_words"].get<bool>();
    if (split && inputs.is_array() && !std::all_of(inputs.begin(), inputs.end(), [](const Value& v) { return v.is_array(); }))
      return Value::array({run({inputs}, params, /*single_call=*/false).front()});
    return Task::call(inputs, params);
  }

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override {
    Params p(params, name(), {"aggregation_strategy", "ignore_labels", "grouped_entities", "ignore_subwords", "stride",
                              "is_split_into_words", "delimiter", "batch_size"});
    const Settings settings = settings_from(p);
    const int64_t batch_size = p.get_int("batch_size").value_or(batch_size_);

    std::vector<Prepared> prepared;
    for (const Value& item : items) prepared.push_back(prepare(item, settings, single_call));

    // Every window of every input, batched together.
    std::vector<text::Encoding> chunks;
    std::vector<size_t> owner;  // chunk → its item
    for (size_t i = 0; i < prepared.size(); ++i)
      for (const text::Encoding& chunk : prepared[i].chunks) {
        chunks.push_back(chunk);
        owner.push_back(i);
      }
    std::vector<std::vector<std::vector<float>>> scores(chunks.size());  // [chunk][token][label]
    for_each_batch(chunks, batch_size, tokenizer_.pad_token_id().value_or(0),
                   [&](const models::EncoderInputs& batch, const std::vector<size_t>& rows) {
                     Tensor logits = model_->head_logits(batch);
                     ops::softmax_rows(logits.f32(), logits.dim(0) * logits.dim(1), logits.dim(2));
                     const auto labels = static_cast<size_t>(logits.dim(2));
                     for (size_t r = 0; r < rows.size(); ++r)
                       for (size_t t = 0; t < chunks[rows[r]].size(); ++t) {
                         const float* row = logits.f32() + (r * static_cast<size_t>(batch.seq) + t) * labels;
                         scores[rows[r]].emplace_back(row, row + labels);
                       }
                   });

    std::vector<std::vector<Entity>> entities(items.size());
    for (size_t k = 0; k < chunks.size(); ++k)
      for (Entity& e : chunk_entities(prepared[owner[k]], chunks[k], scores[k], settings))
        entities[owner[k]].push_back(std::move(e));
    std::vector<Value> results;
    for (size_t i = 0; i < items.size(); ++i) {
      if (prepared[i].chunks.size() > 1) entities[i] = merge_overlapping(std::move(entities[i]));
      Value result = to_value(entities[i]);
      // pipe(words, is_split_into_words=True) runs pipe([words]): a list of one result.
      if (single_call && settings.split_into_words) result = Value::array({result});
      results.push_back(std::move(result));
    }
    return results;
  }

 private:
  // _sanitize_parameters, in transformers' order.
  Settings settings_from(const Params& p) const {
    Settings s;
    std::optional<Aggregation> strategy;
    const bool has_grouped = p.has("grouped_entities") && !p.get("grouped_entities").is_null();
    const bool has_subwords = p.has("ignore_subwords") && !p.get("ignore_subwords").is_null();
    if (has_grouped || has_subwords) {
      const bool grouped = p.get_bool("grouped_entities", false), subwords = p.get_bool("ignore_subwords", false);
      strategy = grouped && subwords ? Aggregation::First : grouped ? Aggregation::Simple : Aggregation::None;
      for (const char* key : {"grouped_entities", "ignore_subwords"})
        if (p.has(key) && !p.get(key).is_null())
          warn(std::string("UserWarning: `") + key +
               "` is deprecated and will be removed in version v5.0.0, defaulted to `aggregation_strategy=\"" +
               enum_name(*strategy) + "\"` instead.");
    } else if (p.has("aggregation_strategy") && !p.get("aggregation_strategy").is_null()) {
      strategy = aggregation_from(p.get_string("aggregation_strategy", ""));
    }
    // (Slow tokenizers refuse first/average/max and stride; hfpipe's tokenizers are all fast.)
    if (strategy) s.strategy = *strategy;
    if (p.has("ignore_labels") && !p.get("ignore_labels").is_null())
      s.ignore_labels = string_list(p.get("ignore_labels"),
                                    "ignore_labels must be a list of label strings, got " + p.get("ignore_labels").dump());
    s.stride = p.get_int("stride");
    if (s.stride) {
      if (*s.stride >= tokenizer_.model_max_length())
        fail(ErrorKind::InvalidArgument,
             "`stride` must be less than `tokenizer.model_max_length` (or even lower if the tokenizer adds special tokens)");
      if (*s.stride < 0) fail(ErrorKind::InvalidArgument, "`stride` must not be negative");
      if (strategy == Aggregation::None)
        fail(ErrorKind::InvalidArgument,
             "`stride` was provided to process all the text but `aggregation_strategy=\"AggregationStrategy.NONE\"`, "
             "please select another one instead.");
    }
    s.split_into_words = p.get_bool("is_split_into_words", false);
    if (s.split_into_words) s.delimiter = p.get_string("delimiter", " ");
    return s;
  }

  // A JSON list of strings, or `message` as an error.
  static std::vector<std::string> string_list(const Value& v, const std::string& message) {
    std::vector<std::string> out;
    if (v.is_array())
      for (const Value& x : v) {
        if (!x.is_string()) break;
        out.push_back(x.get<std::string>());
      }
    if (!v.is_array() || out.size() != v.size()) fail(ErrorKind::InvalidArgument, message);
    return out;
  }

  // preprocess: the sentence and its windows. transformers always truncates to the
  // tokenizer's model_max_length; with a stride the cut-off windows are kept as more chunks.
  Prepared prepare(const Value& item, const Settings& settings, bool single_call) const {
    text::EncodeOptions options;
    options.char_offsets = true;
    options.truncation = text::TruncationOptions{static_cast<size_t>(tokenizer_.model_max_length()),
                                                 text::TruncationStrategy::LongestFirst,
                                                 static_cast<size_t>(settings.stride.value_or(0)),
                                                 tokenizer_.truncation_side()};
    Prepared out;
    text::Encoding encoding;
    if (settings.split_into_words) {
      const std::vector<std::string> words = word_list(item);
      check_pretokenized_support();
      std::string sentence;
      int64_t chars = 0;
      for (size_t w = 0; w < words.size(); ++w) {
        const auto n = static_cast<int64_t>(text::unicode::count_chars(words[w]));
        out.word_chars.emplace_back(chars, chars + n);
        chars += n + static_cast<int64_t>(text::unicode::count_chars(settings.delimiter));
        sentence += (w ? settings.delimiter : "") + words[w];
      }
      out.sentence.chars = text::unicode::decode_all(sentence);
      encoding = tokenizer_.encode_words(words, options);
    } else {
      if (!item.is_string())
        fail(ErrorKind::InvalidArgument,
             single_call && !item.is_array()
                 ? "At least one input is required."
                 : "When `is_split_into_words=False`, `sentence` must be an untokenized string.");
      const std::string text = item.get<std::string>();
      if (!text::is_valid_utf8(text)) fail(ErrorKind::InvalidArgument, "the input text is not valid UTF-8");
      out.sentence.chars = text::unicode::decode_all(text);
      encoding = tokenizer_.encode(text, options);
    }
    if (static_cast<int64_t>(encoding.size()) > model_->max_sequence_length())
      fail(ErrorKind::InvalidArgument, "the input is " + std::to_string(encoding.size()) +
                                           " tokens long, but the model accepts at most " +
                                           std::to_string(model_->max_sequence_length()) +
                                           " (the tokenizer's model_max_length does not limit it)");
    std::vector<text::Encoding> windows = std::move(encoding.overflowing);
    encoding.overflowing.clear();
    out.chunks.push_back(std::move(encoding));
    if (settings.stride)
      for (text::Encoding& w : windows) out.chunks.push_back(std::move(w));
    return out;
  }

  static std::vector<std::string> word_list(const Value& item) {
    std::vector<std::string> words =
        string_list(item, "When `is_split_into_words=True`, `sentence` must be a list of tokens.");
    for (const auto& w : words)
      if (!text::is_valid_utf8(w)) fail(ErrorKind::InvalidArgument, "the input text is not valid UTF-8");
    return words;
  }

  // transformers' byte-level BPE tokenizers (GPT-2, RoBERTa, ...) refuse pre-split words
  // unless they add a prefix space.
  void check_pretokenized_support() const {
    static const char* kNeedPrefixSpace[] = {"GPT2", "Roberta", "Bart", "Deberta", "Longformer", "LED",
                                             "Blenderbot", "Mvp", "Bloom", "Whisper", "CodeGen", "Cohere"};
    std::string cls = tokenizer_.tokenizer_class();
    if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
    for (const char* base : kNeedPrefixSpace)
      if (cls == std::string(base) + "Tokenizer" && tokenizer_.byte_level_add_prefix_space() == false)
        fail(ErrorKind::InvalidArgument, "You need to instantiate " + cls +
                                             "Fast with add_prefix_space=True to use it with pretokenized inputs.");
  }

  // postprocess for one window: gather_pre_entities, aggregate, ignore_labels.
  std::vector<Entity> chunk_entities(const Prepared& input, const text::Encoding& chunk,
                                     const std::vector<std::vector<float>>& scores, const Settings& settings) const {
    std::vector<PreEntity> pre = gather_pre_entities(input, chunk, scores, settings.strategy);
    std::vector<Entity> entities;
    if (settings.strategy == Aggregation::None || settings.strategy == Aggregation::Simple) {
      for (const PreEntity& t : pre) {
        const size_t best = argmax(t.scores);
        entities.push_back({label_of(best), t.scores[best], t.index, t.word, t.start, t.end});
      }
    } else {
      entities = aggregate_words(pre, settings.strategy);
    }
    if (settings.strategy != Aggregation::None) entities = group_entities(entities);
    std::vector<Entity> kept;
    for (Entity& e : entities)
      if (std::find(settings.ignore_labels.begin(), settings.ignore_labels.end(), e.label) == settings.ignore_labels.end())
        kept.push_back(std::move(e));
    return kept;
  }

  std::vector<PreEntity> gather_pre_entities(const Prepared& input, const text::Encoding& chunk,
                                             const std::vector<std::vector<float>>& scores, Aggregation strategy) const {
    std::vector<PreEntity> out;
    for (size_t idx = 0; idx < chunk.size(); ++idx) {
      if (chunk.special_tokens_mask[idx]) continue;
      PreEntity e{tokenizer_.id_to_token(chunk.ids[idx]).value_or(""), scores[idx],
                  static_cast<int64_t>(chunk.offsets[idx].first), static_cast<int64_t>(chunk.offsets[idx].second),
                  static_cast<int64_t>(idx), false};
      // Pre-split words: offsets are relative to their word; shift them into the sentence.
      if (!input.word_chars.empty() && chunk.word_ids[idx] >= 0) {
        const int64_t shift = input.word_chars[static_cast<size_t>(chunk.word_ids[idx])].first;
        e.start += shift;
        e.end += shift;
      }
      const std::u32string word_ref = input.sentence.slice(e.start, e.end);
      if (word_aware_) {
        e.is_subword = text::unicode::count_chars(e.word) != word_ref.size();
      } else {
        if (is_word_strategy(strategy)) warn_fallback_heuristic();
        e.is_subword = e.start > 0 && input.sentence.slice(e.start - 1, e.start + 1).find(U' ') == std::u32string::npos;
      }
      if (unk_id_ && chunk.ids[idx] == *unk_id_) {
        e.word = utf8(word_ref);
        e.is_subword = false;
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  static void warn_fallback_heuristic() {
    // Python's warnings show a warning once per place.
    static std::atomic<bool> shown{false};
    if (!shown.exchange(true)) warn("UserWarning: Tokenizer does not support real words, using fallback heuristic");
  }

  // aggregate_words: tokens of one word (a token and the subwords after it) become one entity.
  std::vector<Entity> aggregate_words(const std::vector<PreEntity>& tokens, Aggregation strategy) const {
    std::vector<Entity> words;
    size_t begin = 0;
    for (size_t i = 1; i <= tokens.size(); ++i)
      if (i == tokens.size() || !tokens[i].is_subword) {
        if (i > begin) words.push_back(aggregate_word(tokens, begin, i, strategy));
        begin = i;
      }
    return words;
  }

  Entity aggregate_word(const std::vector<PreEntity>& tokens, size_t begin, size_t end, Aggregation strategy) const {
    std::vector<std::string> pieces;
    for (size_t i = begin; i < end; ++i) pieces.push_back(tokens[i].word);
    std::vector<float> scores;
    if (strategy == Aggregation::First) {
      scores = tokens[begin].scores;
    } else if (strategy == Aggregation::Max) {
      // max(entities, key=max score): the first token holding the highest score.
      size_t best = begin;
      for (size_t i = begin + 1; i < end; ++i)
        if (*std::max_element(tokens[i].scores.begin(), tokens[i].scores.end()) >
            *std::max_element(tokens[best].scores.begin(), tokens[best].scores.end()))
          best = i;
      scores = tokens[best].scores;
    } else {
      // np.nanmean over the tokens, in float32.
      scores.assign(tokens[begin].scores.size(), 0.f);
      for (size_t i = begin; i < end; ++i)
        for (size_t l = 0; l < scores.size(); ++l) scores[l] += tokens[i].scores[l];
      for (float& s : scores) s /= static_cast<float>(end - begin);
    }
    const size_t best = argmax(scores);
    return {label_of(best), scores[best], std::nullopt, tokenizer_.convert_tokens_to_string(pieces),
            tokens[begin].start, tokens[end - 1].end};
  }

  // group_entities: adjacent entities with the same tag merge unless the next one is a B-.
  std::vector<Entity> group_entities(const std::vector<Entity>& entities) const {
    std::vector<Entity> groups;
    size_t begin = 0;
    for (size_t i = 1; i <= entities.size(); ++i) {
      if (i < entities.size()) {
        const auto [bi, tag] = bio_tag(entities[i].label);
        if (tag == bio_tag(entities[i - 1].label).second && bi != 'B') continue;
      }
      if (i > begin) groups.push_back(group_sub_entities(entities, begin, i));
      begin = i;
    }
    return groups;
  }

  Entity group_sub_entities(const std::vector<Entity>& entities, size_t begin, size_t end) const {
    const std::string& first = entities[begin].label;
    const size_t dash = first.find('-');
    std::vector<std::string> pieces;
    float sum = 0.f;
    for (size_t i = begin; i < end; ++i) {
      pieces.push_back(entities[i].word);
      sum += entities[i].score;
    }
    Entity group{dash == std::string::npos ? first : first.substr(dash + 1),
                 sum / static_cast<float>(end - begin),
                 std::nullopt,
                 tokenizer_.convert_tokens_to_string(pieces),
                 entities[begin].start,
                 entities[end - 1].end};
    group.group = true;
    return group;
  }

  // aggregate_overlapping_entities: entities of overlapping windows sorted by start; of two
  // overlapping ones the longer stays, or the higher-scoring one of equal length.
  static std::vector<Entity> merge_overlapping(std::vector<Entity> entities) {
    if (entities.empty()) return entities;
    std::stable_sort(entities.begin(), entities.end(), [](const Entity& a, const Entity& b) { return a.start < b.start; });
    std::vector<Entity> out;
    Entity previous = entities.front();
    for (const Entity& e : entities) {
      if (previous.start <= e.start && e.start < previous.end) {
        const int64_t length = e.end - e.start, previous_length = previous.end - previous.start;
        if (length > previous_length || (length == previous_length && e.score > previous.score)) previous = e;
      } else {
        out.push_back(previous);
        previous = e;
      }
    }
    out.push_back(previous);
    return out;
  }

  std::string label_of(size_t id) const {
    auto it = config_.id2label().find(static_cast<int64_t>(id));
    if (it == config_.id2label().end())
      fail(ErrorKind::CorruptFile, "config.json's id2label has no label for class " + std::to_string(id));
    return it->second;
  }

  static Value to_value(const std::vector<Entity>& entities) {
    Value list = Value::array();
    for (const Entity& e : entities) {
      Value v = Value::object();
      v[e.group ? "entity_group" : "entity"] = e.label;
      v["score"] = static_cast<double>(e.score);
      if (e.index) v["index"] = *e.index;
      v["word"] = e.word;
      v["start"] = e.start;
      v["end"] = e.end;
      list.push_back(std::move(v));
    }
    return list;
  }

  formats::ModelConfig config_;
  text::Tokenizer tokenizer_;
  std::unique_ptr<models::EncoderModel> model_;
  int64_t batch_size_;
  std::optional<int32_t> unk_id_;
  bool word_aware_ = false;  // the tokenizer's model marks subwords with a prefix ("##")
};

}  // namespace

std::unique_ptr<Task> make_token_classification(const TaskContext& context) {
  return std::make_unique<TokenClassification>(context);
}

}  // namespace hfpipe::pipelines
