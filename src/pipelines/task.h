// The shape every task shares: a Task is built once from a model folder and then turns
// inputs into results with transformers' preprocess → forward → postprocess steps.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "formats/config.h"
#include "formats/weights.h"
#include "hfpipe/pipeline.h"
#include "text/tokenizer.h"

namespace hfpipe::pipelines {

// What a task is built from: the resolved model folder and the pipeline options.
struct TaskContext {
  std::string task;  // canonical task name
  std::filesystem::path model_dir;
  // A GGUF model (a .gguf given as the model, or transformers' gguf_file inside model_dir):
  // weights, config and tokenizer all come from this one file. Empty otherwise.
  std::filesystem::path gguf_file;
  formats::ModelConfig config;
  PipelineOptions options;
  // The precision of the model's products: pipeline(..., torch_dtype=...) (pipeline.cpp).
  ops::Precision precision = ops::Precision::Float32;
};

// The checkpoint of context.model_dir, marked with context.precision for the model built from it.
formats::WeightMap load_weights(const TaskContext& context);

class Task {
 public:
  explicit Task(const TaskContext& context) : name_(context.task), construction_params_(context.options.params) {}
  virtual ~Task() = default;

  // Runs `items` (each one input). With single_call each result is shaped as transformers'
  // pipe(item) returns it; otherwise as the element of pipe([items...]) for that item.
  // params are the construction-time parameters merged with the call's.
  virtual std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const = 0;

  // pipe(inputs, **params): by default (transformers' base Pipeline) an array is a batch of
  // items whose results come back in a list, anything else one item. Tasks whose __call__
  // differs (token-classification's pre-split words) override it.
  virtual Value call(const Value& inputs, const Value& params) const;
  // Pipeline::stream: one input, its new text passed to on_text as it is generated. Only
  // text-generation streams; the others refuse.
  virtual Value stream(const Value& input, const Value& params, const Pipeline::TextCallback& on_text) const;
  // Whether pipe([item]) returns item's result rather than a list of one (transformers'
  // question-answering and fill-mask do).
  virtual bool unwraps_single_item_list() const { return false; }

  const std::string& name() const { return name_; }
  const Value& construction_params() const { return construction_params_; }

 private:
  std::string name_;
  Value construction_params_;
};

using TaskFactory = std::unique_ptr<Task> (*)(const TaskContext&);
std::unique_ptr<Task> make_text_classification(const TaskContext& context);
std::unique_ptr<Task> make_feature_extraction(const TaskContext& context);
std::unique_ptr<Task> make_question_answering(const TaskContext& context);
std::unique_ptr<Task> make_zero_shot_classification(const TaskContext& context);
std::unique_ptr<Task> make_token_classification(const TaskContext& context);
std::unique_ptr<Task> make_fill_mask(const TaskContext& context);
std::unique_ptr<Task> make_text_generation(const TaskContext& context);
std::unique_ptr<Task> make_text2text_generation(const TaskContext& context);
std::unique_ptr<Task> make_summarization(const TaskContext& context);
std::unique_ptr<Task> make_translation(const TaskContext& context);

}  // namespace hfpipe::pipelines
