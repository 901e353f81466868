// hfpipe::pipeline — transformers' pipeline() in C++.
//
//   auto classifier = hfpipe::pipeline("sentiment-analysis", {.model = "path/to/model"});
//   hfpipe::Value result = classifier("I love this.");          // [{"label": ..., "score": ...}]
//   hfpipe::Value results = classifier(hfpipe::Value::array({"a", "b"}), {{"top_k", nullptr}});
//
// Inputs, parameters and results are JSON-shaped values with transformers' keys and nesting.
// A Pipeline is immutable once built: copy it freely and call it from several threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hfpipe/errors.h"
#include "hfpipe/value.h"

namespace hfpipe {

struct PipelineOptions {
  std::string model;              // a local folder or a Hub id in the local Hugging Face cache
  std::string revision = "main";  // branch, tag or commit, for Hub ids
  int batch_size = 1;             // inputs per forward pass (sorted by length, padded per batch)
  int threads = 0;                // size of the process's thread pool; 0 = all cores
  Value params = Value::object();  // construction-time parameters, as pipeline(..., **kwargs)
};

namespace pipelines {
class Task;
}

class Pipeline {
 public:
  // inputs: one input (a string, or what the task accepts) or an array of inputs. The result
  // is what transformers returns for pipe(inputs, **params).
  Value operator()(const Value& inputs, const Value& params = Value::object()) const;
  // Several inputs, each result shaped as for its own call pipe(item, **params), computed in
  // batches together (what the CLI's --jsonl mode prints, one line per input).
  std::vector<Value> each(const std::vector<Value>& items, const Value& params = Value::object()) const;

  // Streaming (text-generation): calls `on_text` with each piece of new text as soon as it is
  // generated, then returns what operator()(input, params) returns. `input` is one prompt or
  // one chat (a list of {"role", "content"} messages); num_return_sequences must be 1.
  //
  //   auto generator = hfpipe::pipeline("text-generation", {.model = "path/to/model"});
  //   generator.stream("Once upon a time", {{"max_new_tokens", 40}},
  //                    [](std::string_view text) { std::cout << text << std::flush; });
  //
  // The pieces are valid UTF-8 (a character whose bytes span several tokens is held back
  // until complete) and add up to the result's new text: generated_text with
  // return_full_text=false, the assistant's content for a chat. A piece is released once
  // later tokens can no longer change it, so it may lag a token behind (see
  // src/pipelines/text_streamer.h). Other tasks throw Error(InvalidArgument).
  using TextCallback = std::function<void(std::string_view text)>;
  Value stream(const Value& input, const Value& params, const TextCallback& on_text) const;
  Value stream(const Value& input, const TextCallback& on_text) const { return stream(input, Value::object(), on_text); }

  const std::string& task() const;

 private:
  friend Pipeline pipeline(const std::string& task, const PipelineOptions& options);
  std::shared_ptr<const pipelines::Task> impl_;
};

// Builds the pipeline for `task` (a task name or alias, e.g. "text-classification",
// "sentiment-analysis", "feature-extraction", "question-answering", "zero-shot-classification").
// question-answering also takes its inputs as the question/context parameters, with a null
// input: pipe(Value(), {{"question", ...}, {"context", ...}}). Throws hfpipe::Error.
Pipeline pipeline(const std::string& task, const PipelineOptions& options);

// The task names and aliases pipeline() accepts, sorted.
std::vector<std::string> supported_tasks();

}  // namespace hfpipe
