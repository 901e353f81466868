// translation and translation_xx_to_yy, as TranslationPipeline: text2text-generation with
// "translation_*" outputs, its length warning, and the task id naming the language pair.
//
// "translation" on a model whose task_specific_params lists translation_xx_to_yy entries uses
// the first of them (transformers warns and does the same), so T5 gets its
// "translate English to German: " prefix. A translation_xx_to_yy id that such a model does not
// list is refused: transformers would run it without any prefix and return an untranslated
// echo, never what was asked. Multilingual models (mBART-50, M2M100, NLLB) take src_lang /
// tgt_lang through their tokenizer's language codes (_build_translation_inputs), which
// hfpipe's tokenizers do not provide yet: those model types are refused with a clear error.
#include <algorithm>

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

bool is_multilingual(const std::string& model_type) {
  return model_type == "mbart" || model_type == "m2m_100" || model_type == "nllb-moe";
}

class Translation final : public Text2TextGeneration {
 public:
  explicit Translation(const TaskContext& context) : Text2TextGeneration(context, "translation") {
    if (is_multilingual(context.config.model_type()))
      fail(ErrorKind::UnsupportedModel, "translation with the multilingual model_type '" +
                                            context.config.model_type() +
                                            "' needs its tokenizer's language codes (src_lang / tgt_lang), which "
                                            "hfpipe does not support yet");
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
};

}  // namespace

std::unique_ptr<Task> make_translation(const TaskContext& context) {
  return std::make_unique<Translation>(context);
}

}  // namespace hfpipe::pipelines
