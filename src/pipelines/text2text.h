// text2text-generation and the two tasks transformers derives from it (summarization,
// translation), as Text2TextGenerationPipeline and its subclasses: a source text (with the
// pipeline's prefix) is encoded once by an encoder-decoder model and the decoder generates
// from decoder_start_token_id. Outputs are [{"<name>_text"}] or, with return_tensors,
// [{"<name>_token_ids"}] (the decoder start token first, as generate returns it) per input;
// a list of texts whose results each hold one record is flattened, as transformers' __call__
// does. The subclasses change the output name, the length warnings (check_inputs) and, for
// translation, the source/target language handling.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "generation/generation_config.h"
#include "models/layers.h"
#include "models/seq2seq.h"
#include "pipelines/params.h"
#include "pipelines/task.h"

namespace hfpipe::pipelines {

// The generation setting of encoder-decoder generation that GenerationConfig does not hold:
// layered exactly like it (pipeline default, model's generation config, task_specific_params,
// call). Beam search settings (num_beams, length_penalty, early_stopping) and the processors
// live in GenerationConfig.
struct Seq2SeqSettings {
  std::optional<int32_t> decoder_start_token_id;

  static const std::vector<const char*>& keys();
  void update(const Value& values, const char* source);
  Value non_default_values() const;
};

class Text2TextGeneration : public Task {
 public:
  Text2TextGeneration(const TaskContext& context, std::string return_name);

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override;

 protected:
  // Initialises the generation config once the subclass has settled the task name that
  // task_specific_params is looked up with (translation's "translation" → its first
  // translation_xx_to_yy key).
  void init(const TaskContext& context, const std::string& task_for_params);

  // SummarizationPipeline / TranslationPipeline.check_inputs: warnings only.
  virtual void check_inputs(int64_t input_length, int64_t min_length, int64_t max_length) const {}
  // Parameters a subclass adds (translation's src_lang, tgt_lang).
  virtual std::vector<std::string> extra_parameters() const { return {}; }
  // Settings a subclass derives per call (translation: forced_bos_token_id from tgt_lang).
  virtual void adjust_settings(const Params&, Seq2SeqSettings&) const {}
  virtual void adjust_generation(const Params&, generation::GenerationConfig&) const {}
  // How a call's sources are encoded: by which tokenizer, and whether the pipeline's prefix
  // goes first (_parse_and_tokenize). Translation with a multilingual tokenizer encodes as its
  // _build_translation_inputs does: the tokenizer set to the call's src_lang, no prefix.
  struct SourceEncoder {
    const text::Tokenizer* tokenizer;
    bool with_prefix;
  };
  virtual SourceEncoder source_encoder(const Params&) const { return {&tokenizer_, true}; }

  const formats::ModelConfig& config() const { return config_json_; }
  const text::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  struct Source {
    std::vector<int32_t> ids;
  };
  struct CallConfig {
    generation::GenerationConfig generation;
    Seq2SeqSettings settings;
    bool max_length_given = false;
    int32_t decoder_start = 0, pad = 0;
  };

  CallConfig call_config(const Params& p) const;
  Source prepare(const Value& item, const Params& p) const;
  // Generates for sources [batch members], each num_return_sequences times; returns per
  // member its sequences (decoder start token first).
  std::vector<std::vector<std::vector<int32_t>>> generate_batch(const models::EncoderInputs& batch,
                                                                 const CallConfig& c, uint64_t seed,
                                                                 const std::vector<size_t>& items) const;
  Value postprocess(std::vector<std::vector<int32_t>> sequences, int32_t pad, const Params& p) const;

  std::string return_name_;
  formats::ModelConfig config_json_;
  text::Tokenizer tokenizer_;
  std::unique_ptr<models::Seq2SeqModel> model_;
  int64_t batch_size_ = 1;
  generation::GenerationConfig generation_;
  Seq2SeqSettings settings_;
  std::string prefix_;
};

}  // namespace hfpipe::pipelines
