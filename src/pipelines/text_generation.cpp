// text-generation, as transformers' TextGenerationPipeline: one prompt or a list of prompts
// continued by a decoder-only model. The generation config is built as the pipeline builds it
// (the pipeline's defaults max_new_tokens=256, do_sample=true, temperature=0.7, overridden by
// the model's generation_config.json where the pipeline default is the global one, then by
// task_specific_params and the call's parameters); outputs are [{"generated_text"}] (full or
// new text) or [{"generated_token_ids"}] per prompt, num_return_sequences records each.
// hfpipe adds one parameter: `seed` for sampling (hfpipe's own random stream).
#include <algorithm>
#include <atomic>

#include "core/error.h"
#include "formats/weights.h"
#include "generation/generate.h"
#include "models/decoder.h"
#include "pipelines/params.h"
#include "pipelines/task.h"
#include "pipelines/text_inputs.h"

namespace hfpipe::pipelines {

namespace {

enum class ReturnType { Tensors, NewText, FullText };

// Byte offset of code point `chars` in UTF-8 `text` (the end if it is shorter): Python's
// str slicing counts characters.
size_t byte_offset_of_char(const std::string& text, size_t chars) {
  size_t i = 0;
  for (; i < text.size() && chars > 0; --chars) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

size_t char_count(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

// _sanitize_parameters' choice of return type, with its refusals.
ReturnType return_type_from(const Params& p) {
  auto given = [&](const char* key) { return p.has(key) && !p.get(key).is_null(); };
  if (given("return_full_text")) {
    if (given("return_text")) fail(ErrorKind::InvalidArgument, "`return_text` is mutually exclusive with `return_full_text`");
    if (given("return_tensors"))
      fail(ErrorKind::InvalidArgument, "`return_full_text` is mutually exclusive with `return_tensors`");
    return p.get_bool("return_full_text", true) ? ReturnType::FullText : ReturnType::NewText;
  }
  if (given("return_tensors")) {
    if (given("return_text")) fail(ErrorKind::InvalidArgument, "`return_text` is mutually exclusive with `return_tensors`");
    return ReturnType::Tensors;  // transformers checks `is not None`: return_tensors=false too
  }
  return ReturnType::FullText;
}

// The seed of a call without `seed`: a process-wide sequence starting at 0, so that a fresh
// process repeats its samples (as torch's fixed default seed does) while successive calls differ.
uint64_t next_default_seed() {
  static std::atomic<uint64_t> calls{0};
  return calls.fetch_add(1);
}

uint64_t row_seed(uint64_t seed, size_t item, int64_t sequence) {
  return seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(item) << 20) ^ static_cast<uint64_t>(sequence);
}

struct Prompt {
  std::string text;           // the prompt as given (without prefix)
  std::vector<int32_t> ids;   // prefix + prompt, as generate sees them
  bool empty = false;         // tokenized to nothing: generation starts from bos
};

class TextGeneration : public Task {
 public:
  explicit TextGeneration(const TaskContext& context)
      : Task(context),
        tokenizer_(context.gguf_file.empty() ? text::Tokenizer::from_folder(context.model_dir)
                                             : text::Tokenizer::from_gguf(context.gguf_file)),
        model_(context.gguf_file.empty() ? models::load_decoder(context.config, formats::load_checkpoint(context.model_dir))
                                         : models::load_gguf_decoder(context.gguf_file)),
        batch_size_(context.options.batch_size) {
    init_generation_config(context);
  }

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override {
    Params p(params, name(), {"max_new_tokens", "max_length", "min_new_tokens", "min_length", "do_sample",
                              "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "num_return_sequences",
                              "eos_token_id", "pad_token_id", "bos_token_id", "return_full_text", "return_text",
                              "return_tensors", "prefix", "clean_up_tokenization_spaces", "skip_special_tokens",
                              "add_special_tokens", "seed", "batch_size"});
    const ReturnType type = return_type_from(p);
    const std::string prefix = p.has("prefix") ? p.get_string("prefix", "") : prefix_;
    bool max_length_given = false;
    const generation::GenerationConfig config = call_config(p, prefix, max_length_given);
    const int32_t pad = config.pad_token_id.value_or(config.eos_token_id.empty() ? 0 : config.eos_token_id.front());
    const uint64_t seed = p.has("seed") && !p.get("seed").is_null() ? static_cast<uint64_t>(*p.get_int("seed"))
                                                                     : next_default_seed();

    std::vector<Prompt> prompts;
    for (const Value& item : items) prompts.push_back(prepare(item, prefix, p, config));
    std::vector<generation::Row> rows;
    for (size_t i = 0; i < prompts.size(); ++i)
      for (int64_t s = 0; s < config.num_return_sequences; ++s)
        rows.push_back({prompts[i].ids, limits_of(prompts[i], config, max_length_given), row_seed(seed, i, s)});

    const int64_t batch = std::max<int64_t>(1, p.get_int("batch_size").value_or(batch_size_)) * config.num_return_sequences;
    std::vector<std::vector<int32_t>> generated;
    for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(batch)) {
      std::vector<generation::Row> chunk(rows.begin() + start, rows.begin() + std::min(rows.size(), start + batch));
      for (auto& g : generation::generate(*model_, chunk, config, pad)) generated.push_back(std::move(g));
    }

    std::vector<Value> results;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<std::vector<int32_t>> group(generated.begin() + i * config.num_return_sequences,
                                              generated.begin() + (i + 1) * config.num_return_sequences);
      results.push_back(postprocess(prompts[i], group, pad, type, p));
    }
    (void)single_call;  // pipe("x") and each item of pipe([...]) are both a list of records
    return results;
  }

 private:
  // The pipeline's generation config, as Pipeline.__init__ prepares it.
  void init_generation_config(const TaskContext& context) {
    const generation::GenerationConfig global;
    generation::GenerationConfig g;
    g.max_new_tokens = 256;
    g.do_sample = true;
    g.temperature = 0.7;
    // _prepare_generation_config(use_model_defaults=True): the model's non-default values fill
    // in where the pipeline's value is still the global default.
    const Value pipeline_values = g.non_default_values();
    const Value model_values = generation::load_model_generation_config(context.model_dir, context.config)
                                   .non_default_values();
    for (const auto& [key, value] : model_values.items())
      if (!pipeline_values.contains(key)) g.update(Value{{key, value}}, "generation_config.json key");
    if (g.temperature == 0.0) g.do_sample = false;
    // The pipeline's max_new_tokens default yields to a model's own max_length.
    if (g.max_new_tokens == 256 && g.max_length != global.max_length) g.max_new_tokens.reset();
    prefix_ = context.config.get_string("prefix", "");
    const Value& tsp = context.config.json().contains("task_specific_params")
                           ? context.config.json()["task_specific_params"] : Value();
    if (tsp.is_object() && tsp.contains("text-generation") && tsp["text-generation"].is_object()) {
      Value task_params = tsp["text-generation"];
      if (task_params.contains("prefix")) {
        prefix_ = task_params["prefix"].is_string() ? task_params["prefix"].get<std::string>() : "";
        task_params.erase("prefix");
      }
      g.update(task_params, "task_specific_params key");
    }
    if (!g.pad_token_id) g.pad_token_id = tokenizer_.pad_token_id();
    config_ = g;
  }

  // The call's generation config: the pipeline's updated by the call's generate parameters, with
  // the pipeline's prefix adjustments of max_length / min_length (TextGenerationPipeline._forward).
  generation::GenerationConfig call_config(const Params& p, const std::string& prefix, bool& max_length_given) const {
    generation::GenerationConfig g = config_;
    Value call = Value::object();
    for (const char* key : generation::GenerationConfig::keys())
      if (p.has(key)) call[key] = p.get(key);
    g.update(call);
    max_length_given = p.has("max_length") && !p.get("max_length").is_null();
    if (!prefix.empty()) {
      text::EncodeOptions options;
      options.add_special_tokens = p.get_bool("add_special_tokens", false);
      const int64_t prefix_length = static_cast<int64_t>(tokenizer_.encode(prefix, options).size());
      if (!p.has("max_new_tokens")) {
        g.max_length = (max_length_given ? *p.get_int("max_length") : config_.max_length) + prefix_length;
        max_length_given = true;
      }
      if (!p.has("min_new_tokens") && p.has("min_length")) g.min_length += prefix_length;
    }
    generation::validate(g);
    return g;
  }

  Prompt prepare(const Value& item, const std::string& prefix, const Params& p,
                 const generation::GenerationConfig& config) const {
    if (item.is_array() || item.is_object())
      fail(ErrorKind::InvalidArgument, "chat input needs chat templates: not yet supported");
    Prompt prompt{expect_text(item, name()), {}, false};
    text::EncodeOptions options;
    options.add_special_tokens = p.get_bool("add_special_tokens", true);
    // max_length reaches the tokenizer too, which then truncates (transformers warns and
    // defaults to longest_first).
    if (const auto max_length = p.get_int("max_length"))
      options.truncation = text::TruncationOptions{static_cast<size_t>(std::max<int64_t>(*max_length, 0)),
                                                   text::TruncationStrategy::LongestFirst, 0,
                                                   tokenizer_.truncation_side()};
    prompt.ids = encode_input(tokenizer_, {prefix + prompt.text, std::nullopt}, options, INT64_MAX).ids;
    if (prompt.ids.empty()) {
      // TextGenerationPipeline passes no input_ids; generate then starts from bos.
      if (!config.bos_token_id)
        fail(ErrorKind::InvalidArgument,
             "the prompt is empty and the model has no bos_token_id to start from (transformers: `bos_token_id` has "
             "to be defined when no `input_ids` are provided.)");
      prompt.ids = {*config.bos_token_id};
      prompt.empty = true;
    }
    const int64_t limit = model_->max_position_embeddings();
    if (static_cast<int64_t>(prompt.ids.size()) > limit)
      fail(ErrorKind::InvalidArgument, "the prompt is " + std::to_string(prompt.ids.size()) +
                                           " tokens long, longer than the model's max_position_embeddings (" +
                                           std::to_string(limit) + ")");
    return prompt;
  }

  generation::RowLimits limits_of(const Prompt& prompt, const generation::GenerationConfig& config,
                                  bool max_length_given) const {
    const int64_t positions = model_->max_position_embeddings();
    auto limits = generation::resolve_limits(config, static_cast<int64_t>(prompt.ids.size()), max_length_given, positions);
    if (model_->positions_are_bounded() && limits.max_length > positions)
      fail(ErrorKind::InvalidArgument,
           "the prompt (" + std::to_string(prompt.ids.size()) + " tokens) and the tokens to generate need " +
               std::to_string(limits.max_length) + " positions, but the model has " + std::to_string(positions) +
               " (lower max_new_tokens or shorten the prompt)");
    return limits;
  }

  // One prompt's records. As in transformers, the sequences of one prompt are generated
  // together: those that stop early are padded with pad_id to the longest.
  Value postprocess(const Prompt& prompt, const std::vector<std::vector<int32_t>>& group, int32_t pad,
                    ReturnType type, const Params& p) const {
    size_t longest = 0;
    for (const auto& g : group) longest = std::max(longest, g.size());
    const bool skip_special = p.get_bool("skip_special_tokens", true);
    const bool clean_up = p.get_bool("clean_up_tokenization_spaces", true);
    // generate got no input_ids for an empty prompt: the prompt part of the text is nothing.
    const size_t prompt_chars =
        prompt.empty ? 0 : char_count(tokenizer_.decode(prompt.ids, skip_special, clean_up));
    Value records = Value::array();
    for (const auto& g : group) {
      std::vector<int32_t> sequence = prompt.ids;
      sequence.insert(sequence.end(), g.begin(), g.end());
      sequence.resize(prompt.ids.size() + longest, pad);
      if (type == ReturnType::Tensors) {
        records.push_back(Value{{"generated_token_ids", sequence}});
        continue;
      }
      const std::string text = tokenizer_.decode(sequence, skip_special, clean_up);
      std::string new_text = text.substr(byte_offset_of_char(text, prompt_chars));
      if (type == ReturnType::FullText) new_text = prompt.text + new_text;
      records.push_back(Value{{"generated_text", new_text}});
    }
    return records;
  }

  text::Tokenizer tokenizer_;
  std::unique_ptr<models::DecoderModel> model_;
  int64_t batch_size_;
  generation::GenerationConfig config_;
  std::string prefix_;
};

}  // namespace

std::unique_ptr<Task> make_text_generation(const TaskContext& context) {
  return std::make_unique<TextGeneration>(context);
}

}  // namespace hfpipe::pipelines
