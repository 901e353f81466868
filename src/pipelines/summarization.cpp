// summarization, as SummarizationPipeline: text2text-generation with "summary_*" outputs and
// its two length warnings (check_inputs), with the same wording as transformers' logger.
#include "core/error.h"
#include "pipelines/text2text.h"

namespace hfpipe::pipelines {

namespace {

class Summarization final : public Text2TextGeneration {
 public:
  explicit Summarization(const TaskContext& context) : Text2TextGeneration(context, "summary") {
    init(context, context.task);
  }

 protected:
  void check_inputs(int64_t input_length, int64_t min_length, int64_t max_length) const override {
    if (max_length < min_length)
      warn("Your min_length=" + std::to_string(min_length) + " must be inferior than your max_length=" +
           std::to_string(max_length) + ".");
    if (input_length < max_length)
      warn("Your max_length is set to " + std::to_string(max_length) + ", but your input_length is only " +
           std::to_string(input_length) +
           ". Since this is a summarization task, where outputs shorter than the input are typically wanted, you "
           "might consider decreasing max_length manually, e.g. summarizer('...', max_length=" +
           std::to_string(input_length / 2) + ")");
  }
};

}  // namespace

std::unique_ptr<Task> make_summarization(const TaskContext& context) {
  return std::make_unique<Summarization>(context);
}

}  // namespace hfpipe::pipelines
