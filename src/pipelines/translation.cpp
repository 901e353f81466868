// translation and translation_xx_to_yy, as TranslationPipeline: text2text-generation with
// "translation_*" outputs, its length warning, and the task id naming the language pair.
//
// "translation" on a model whose task_specific_params lists translation_xx_to_yy entries uses
// the first of them (transformers warns and does the same), so T5 gets its
// "translate English to German: " prefix. A translation_xx_to_yy id that such a model does not
// list is refused: transformers would run it without any prefix and return an untranslated
// echo, never what was asked.
//
// Multilingual tokenizers (MBart50TokenizerFast, NllbTokenizerFast, M2M100Tokenizer) encode as
// their _build_translation_inputs: both src_lang and tgt_lang are required (the call's, else
// xx / yy of a task id translation_xx_to_yy, as _sanitize_parameters splits it); the source is
// encoded with the tokenizer's src_lang set (its language token where the class puts it, no
// pipeline prefix), and generation gets forced_bos_token_id = the tgt_lang token's id, so the
// decoder's first token after decoder_start is the target language. Other tokenizers ignore
// src_lang / tgt_lang, as transformers' single-pair models do. Unknown codes are refused
// naming the known ones, where NLLB's and mBART-50's transformers classes would silently use
// <unk>'s id (M2M100's raise a KeyError). Tokenizer classes with language rules hfpipe lacks
// (mBART-cc25's MBartTokenizer, PLBart, SeamlessM4T) are refused rather than run without them.
#include <algorithm>
#include <map>
#include <mutex>

#include "core/error.h"
#include "pipelines/text2text.h"

namespace hfpipe::pipelines {

namespace {

const Value& task_specific_params(const formats::ModelConfig& config) {
  static const Value none = Value::object();
  const Value& json = config.json();
  return json.contains("task_specific_params") && json["task_specific_params"].is_object()
             ? json["task_specific_params"] : none;
}

std::vector<std::string> translation_tasks_of(const formats::ModelConfig& config) {
  std::vector<std::string> tasks;
  for (const auto& [key, value] : task_specific_params(config).items())
    if (key.rfind("translation", 0) == 0) tasks.push_back(key);
  return tasks;
}

// The task whose task_specific_params apply (pipeline(): "translation" → the first
// translation_* key of the model), refusing a language pair the model does not list.
std::string task_for_params(const TaskContext& context) {
  const auto tasks = translation_tasks_of(context.config);
  if (context.task == "translation") {
    if (tasks.empty()) return context.task;
    warn("UserWarning: \"translation\" task was used, instead of \"translation_XX_to_YY\", defaulting to \"" +
         tasks.front() + "\"");
    return tasks.front();
  }
  if (!tasks.empty() && std::find(tasks.begin(), tasks.end(), context.task) == tasks.end()) {
    std::string list;
    for (const auto& t : tasks) list += (list.empty() ? "" : ", ") + t;
    fail(ErrorKind::InvalidArgument, "the model does not translate as '" + context.task +
                                         "': its task_specific_params list only " + list);
  }
  return context.task;
}

// Tokenizer classes with a _build_translation_inputs that hfpipe implements (their language
// rules are in text/language_codes.cpp), and those whose rules it does not have.
bool builds_translation_inputs(const std::string& cls) {
  return cls == "MBart50TokenizerFast" || cls == "NllbTokenizerFast" || cls == "M2M100Tokenizer";
}
bool has_unsupported_language_rules(const std::string& cls) {
  for (const char* name : {"MBartTokenizer", "MBartTokenizerFast", "PLBartTokenizer", "SeamlessM4TTokenizer",
                           "SeamlessM4TTokenizerFast"})
    if (cls == name) return true;
  return false;
}

std::optional<std::string> language_param(const Params& p, const char* key) {
  if (!p.has(key) || p.get(key).is_null()) return std::nullopt;
  if (!p.get(key).is_string()) fail(ErrorKind::InvalidArgument, std::string(key) + " must be a string");
  return p.get(key).get<std::string>();
}

class Translation final : public Text2TextGeneration {
 public:
  explicit Translation(const TaskContext& context)
      : Text2TextGeneration(context, "translation"), model_dir_(context.model_dir), task_(context.task) {
    const std::string& cls = tokenizer().tokenizer_class();
    if (has_unsupported_language_rules(cls))
      fail(ErrorKind::UnsupportedModel, "translation with " + cls +
                                            " needs its language codes (src_lang / tgt_lang), which hfpipe does not "
                                            "implement for this tokenizer class");
    multilingual_ = builds_translation_inputs(cls);
    init(context, task_for_params(context));
  }

 protected:
  void check_inputs(int64_t input_length, int64_t, int64_t max_length) const override {
    if (static_cast<double>(input_length) > 0.9 * static_cast<double>(max_length))
      warn("Your input_length: " + std::to_string(input_length) + " is bigger than 0.9 * max_length: " +
           std::to_string(max_length) +
           ". You might consider increasing your max_length manually, e.g. translator('...', max_length=400)");
  }

  // Single-pair models ignore the languages (their tokenizers have no _build_translation_inputs).
  std::vector<std::string> extra_parameters() const override { return {"src_lang", "tgt_lang"}; }

  SourceEncoder source_encoder(const Params& p) const override {
    if (!multilingual_) return Text2TextGeneration::source_encoder(p);
    return {&tokenizer_for(languages(p).first), false};
  }

  void adjust_generation(const Params& p, generation::GenerationConfig& g) const override {
    if (!multilingual_) return;
    const auto [src, tgt] = languages(p);
    tokenizer_for(src);  // an unknown src_lang fails first, as the class's src_lang setter does
    // generate(**model_inputs, **generate_kwargs) with forced_bos_token_id in both.
    if (p.has("forced_bos_token_id"))
      fail(ErrorKind::InvalidArgument,
           "generate() got multiple values for keyword argument 'forced_bos_token_id' (translation sets it from "
           "tgt_lang)");
    g.forced_bos_token_id = tokenizer().language_token_id(tgt);
  }

 private:
  // The call's src_lang / tgt_lang, else those a task id translation_xx_to_yy names; both are
  // required (_build_translation_inputs).
  std::pair<std::string, std::string> languages(const Params& p) const {
    std::optional<std::string> src = language_param(p, "src_lang"), tgt = language_param(p, "tgt_lang");
    if (!src && !tgt) {
      std::vector<std::string> items;
      size_t start = 0;
      for (size_t at; (at = task_.find('_', start)) != std::string::npos; start = at + 1)
        items.push_back(task_.substr(start, at - start));
      items.push_back(task_.substr(start));
      if (items.size() == 4) {
        src = items[1];
        tgt = items[3];
      }
    }
    if (!src || !tgt) fail(ErrorKind::InvalidArgument, "Translation requires a `src_lang` and a `tgt_lang` for this model");
    return {*src, *tgt};
  }

  // The model's tokenizer with src_lang set (set_src_lang rebuilds its special tokens, so each
  // source language gets its own copy, loaded once; calls may run concurrently).
  const text::Tokenizer& tokenizer_for(const std::string& src_lang) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_src_lang_.find(src_lang);
    if (it != by_src_lang_.end()) return *it->second;
    auto tok = std::make_unique<text::Tokenizer>(text::Tokenizer::from_folder(model_dir_));
    tok->set_src_lang(src_lang);
    return *by_src_lang_.emplace(src_lang, std::move(tok)).first->second;
  }

  std::filesystem::path model_dir_;
  std::string task_;
  bool multilingual_ = false;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::unique_ptr<text::Tokenizer>> by_src_lang_;
};

}  // namespace

std::unique_ptr<Task> make_translation(const TaskContext& context) {
  return std::make_unique<Translation>(context);
}

}  // namespace hfpipe::pipelines
