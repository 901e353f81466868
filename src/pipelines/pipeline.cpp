// pipeline(): the task registry (names, aliases) and the Pipeline front object.
#include <initializer_list>
#include <map>
#include <optional>
#include <string>

#include "core/error.h"
#include "hub/resolve.h"
#include "models/decoder.h"
#include "ops/linear.h"
#include "pipelines/params.h"
#include "pipelines/task.h"

namespace hfpipe {

namespace {

struct TaskEntry {
  const char* name;  // canonical name
  pipelines::TaskFactory factory;
  bool runs_bfloat16 = false;  // its models honour torch_dtype="bfloat16" (encoder tasks, text-generation)
};

// The registry: task name or alias → task. Adding a task adds one line here.
const std::map<std::string, TaskEntry>& task_registry() {
  static const std::map<std::string, TaskEntry> tasks = {
      {"text-classification", {"text-classification", pipelines::make_text_classification, true}},
      {"sentiment-analysis", {"text-classification", pipelines::make_text_classification, true}},
      {"feature-extraction", {"feature-extraction", pipelines::make_feature_extraction, true}},
      {"question-answering", {"question-answering", pipelines::make_question_answering, true}},
      {"zero-shot-classification", {"zero-shot-classification", pipelines::make_zero_shot_classification, true}},
      {"token-classification", {"token-classification", pipelines::make_token_classification, true}},
      {"ner", {"token-classification", pipelines::make_token_classification, true}},
      {"fill-mask", {"fill-mask", pipelines::make_fill_mask, true}},
      {"text-generation", {"text-generation", pipelines::make_text_generation, true}},
      {"text2text-generation", {"text2text-generation", pipelines::make_text2text_generation}},
      {"summarization", {"summarization", pipelines::make_summarization}},
      {"translation", {"translation", pipelines::make_translation}},
  };
  return tasks;
}

// Pipelines share the process's single thread pool; its size is set by the latest pipeline
// built with an explicit thread count.
void configure_threads(int threads) {
  if (threads < 0) fail(ErrorKind::InvalidArgument, "threads must be 0 (all cores) or positive");
  if (threads > 0) ops::set_num_threads(threads);
}

// A parameter that configures loading rather than the calls (gguf_file, torch_dtype): taken
// out of the parameters, and out of model_kwargs, where transformers also accepts it (an
// emptied model_kwargs goes too). `keys` are its spellings; finding it twice is `twice`'s error.
std::optional<Value> take_loading_parameter(Value& params, std::initializer_list<const char*> keys,
                                            const std::string& twice) {
  std::optional<Value> found;
  auto take = [&](Value& holder) {
    for (const char* key : keys) {
      if (!holder.is_object() || !holder.contains(key)) continue;
      if (found) fail(ErrorKind::InvalidArgument, twice);
      found = holder[key];
      holder.erase(key);
    }
  };
  take(params);
  if (params.contains("model_kwargs")) {
    take(params["model_kwargs"]);
    if (params["model_kwargs"].is_object() && params["model_kwargs"].empty()) params.erase("model_kwargs");
  }
  return found;
}

// transformers' gguf_file: pipeline(task, model=dir, model_kwargs={"gguf_file": name}) hands it
// to the config, model and tokenizer loaders; hfpipe also takes it as a plain gguf_file
// parameter.
std::optional<std::string> take_gguf_file(Value& params) {
  const std::optional<Value> name = take_loading_parameter(params, {"gguf_file"}, "gguf_file is given twice");
  if (!name) return std::nullopt;
  if (!name->is_string()) fail(ErrorKind::InvalidArgument, "gguf_file must be a file name");
  return name->get<std::string>();
}

// pipeline(..., torch_dtype=...) (transformers 4.57 also spells it dtype; model_kwargs may carry
// it too): the precision of the model's products. "auto" follows config.json's torch_dtype:
// bfloat16 where the task's models run it, float32 otherwise (float16 checkpoints included:
// CPUs have no fast float16 products).
ops::Precision take_precision(Value& params, const formats::ModelConfig& config, const TaskEntry& task) {
  const std::optional<Value> asked = take_loading_parameter(
      params, {"torch_dtype", "dtype"}, "torch_dtype is given twice (torch_dtype, dtype or model_kwargs)");
  if (!asked || asked->is_null()) return ops::Precision::Float32;
  if (!asked->is_string()) fail(ErrorKind::InvalidArgument, "torch_dtype must be a string such as \"bfloat16\", got " + asked->dump());
  std::string name = asked->get<std::string>();
  if (name.rfind("torch.", 0) == 0) name = name.substr(6);
  if (name == "auto") {
    const bool bf16 = config.get_string("torch_dtype", config.get_string("dtype", "float32")) == "bfloat16";
    return bf16 && task.runs_bfloat16 ? ops::Precision::BFloat16 : ops::Precision::Float32;
  }
  if (name == "float32" || name == "float") return ops::Precision::Float32;
  if (name == "bfloat16") {
    if (!task.runs_bfloat16)
      fail(ErrorKind::UnsupportedModel, std::string("torch_dtype bfloat16 is supported by text-generation and the "
                                                    "encoder tasks (text-classification, feature-extraction, "
                                                    "question-answering, zero-shot-classification, "
                                                    "token-classification, fill-mask); ") +
                                            task.name + " runs in float32: leave torch_dtype out");
    return ops::Precision::BFloat16;
  }
  if (name == "float16" || name == "half")
    fail(ErrorKind::UnsupportedModel, "torch_dtype float16 is not supported on CPU by hfpipe; use bfloat16 or float32");
  fail(ErrorKind::InvalidArgument, "unknown torch_dtype '" + asked->get<std::string>() +
                                       "'; supported: float32, bfloat16, auto (with or without the torch. prefix)");
}

// Where the model comes from: a folder (config.json), or a GGUF file whose metadata is the
// config, as transformers' load_gguf_checkpoint derives it.
void resolve_source(pipelines::TaskContext& context) {
  const PipelineOptions& o = context.options;
  const std::optional<std::string> gguf = take_gguf_file(context.options.params);
  if (hub::is_gguf_file(o.model)) {
    if (gguf) fail(ErrorKind::InvalidArgument, "the model is a .gguf file already; do not also pass gguf_file");
    context.gguf_file = o.model;
    context.model_dir = context.gguf_file.parent_path();
  } else {
    context.model_dir = hub::resolve_model(o.model, o.revision);
    if (gguf) context.gguf_file = hub::resolve_gguf_file(context.model_dir, *gguf);
  }
  if (context.gguf_file.empty()) {
    context.config = formats::ModelConfig::load(context.model_dir);
    return;
  }
  if (context.task != "text-generation")
    fail(ErrorKind::UnsupportedModel, "GGUF models are supported by text-generation only, not " + context.task);
  context.config = formats::ModelConfig::from_json(models::gguf_model_config(context.gguf_file), context.gguf_file.string());
}

}  // namespace

std::vector<std::string> supported_tasks() {
  std::vector<std::string> names;
  for (const auto& entry : task_registry()) names.push_back(entry.first);
  return names;
}

namespace {

// "translation_XX_to_YY" (check_task): the translation task, keeping the full id as its name.
bool is_translation_pair(const std::string& task) {
  if (task.rfind("translation_", 0) != 0) return false;
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at; (at = task.find('_', start)) != std::string::npos; start = at + 1)
    parts.push_back(task.substr(start, at - start));
  parts.push_back(task.substr(start));
  if (parts.size() != 4 || parts[2] != "to" || parts[1].empty() || parts[3].empty())
    fail(ErrorKind::InvalidArgument, "Invalid translation task " + task + ", use 'translation_XX_to_YY' format");
  return true;
}

}  // namespace

Pipeline pipeline(const std::string& task, const PipelineOptions& options) {
  auto it = task_registry().find(is_translation_pair(task) ? std::string("translation") : task);
  if (it == task_registry().end()) {
    std::string list;
    for (const auto& name : supported_tasks()) list += (list.empty() ? "" : ", ") + name;
    fail(ErrorKind::InvalidArgument, "unknown task '" + task + "'; supported: " + list);
  }
  if (options.batch_size < 1) fail(ErrorKind::InvalidArgument, "batch_size must be at least 1");
  if (!options.params.is_object()) fail(ErrorKind::InvalidArgument, "pipeline parameters must be a JSON object");
  configure_threads(options.threads);
  const std::string name = is_translation_pair(task) ? task : std::string(it->second.name);
  pipelines::TaskContext context{name, {}, {}, {}, options};
  resolve_source(context);
  context.precision = take_precision(context.options.params, context.config, it->second);
  Pipeline p;
  p.impl_ = it->second.factory(context);
  return p;
}

namespace pipelines {

formats::WeightMap load_weights(const TaskContext& context) {
  return formats::load_checkpoint(context.model_dir, context.precision);
}

Value Task::call(const Value& inputs, const Value& params) const {
  if (inputs.is_array()) {
    std::vector<Value> items(inputs.begin(), inputs.end());
    std::vector<Value> results = run(items, params, /*single_call=*/false);
    if (results.size() == 1 && unwraps_single_item_list()) return std::move(results.front());
    Value list = Value::array();
    for (auto& result : results) list.push_back(std::move(result));
    return list;
  }
  return run({inputs}, params, /*single_call=*/true).front();
}

Value Task::stream(const Value&, const Value&, const Pipeline::TextCallback&) const {
  fail(ErrorKind::InvalidArgument, "streaming is for text-generation; " + name() + " does not stream");
}

}  // namespace pipelines

Value Pipeline::operator()(const Value& inputs, const Value& params) const {
  return impl_->call(inputs, pipelines::merge_params(impl_->construction_params(), params));
}

std::vector<Value> Pipeline::each(const std::vector<Value>& items, const Value& params) const {
  return impl_->run(items, pipelines::merge_params(impl_->construction_params(), params), /*single_call=*/true);
}

Value Pipeline::stream(const Value& input, const Value& params, const TextCallback& on_text) const {
  if (!on_text) fail(ErrorKind::InvalidArgument, "stream needs a callback for the text");
  return impl_->stream(input, pipelines::merge_params(impl_->construction_params(), params), on_text);
}

const std::string& Pipeline::task() const { return impl_->name(); }

}  // namespace hfpipe
