// text-generation, as transformers' TextGenerationPipeline: one prompt or a list of prompts
// continued by a decoder-only model. The generation config is built as the pipeline builds it
// (the pipeline's defaults max_new_tokens=256, do_sample=true, temperature=0.7, overridden by
// the model's generation_config.json where the pipeline default is the global one, then by
// task_specific_params and the call's parameters); outputs are [{"generated_text"}] (full or
// new text) or [{"generated_token_ids"}] per prompt, num_return_sequences records each.
// hfpipe adds one parameter: `seed` for sampling (hfpipe's own random stream).
//
// Chat input (transformers' `Chat`): a list of {"role", "content", ...} messages is one
// conversation, a list of such lists a batch of them. A chat goes through the tokenizer's chat
// template (with the generation prompt, or left open with continue_final_message, which
// defaults to "the final message is the assistant's") and is tokenized without special
// tokens; its full text is the message list with a new assistant message appended, or the
// final message's content extended. Streaming (Pipeline::stream) feeds the new tokens of one
// input to a TextStreamer.
#include <algorithm>
#include <atomic>
#include <map>
#include <optional>

#include "core/error.h"
#include "formats/weights.h"
#include "generation/beam_search.h"
#include "generation/generate.h"
#include "generation/guidance.h"
#include "models/decoder.h"
#include "pipelines/params.h"
#include "pipelines/task.h"
#include "pipelines/text_inputs.h"
#include "pipelines/text_streamer.h"
#include "text/chat_template.h"
#include "text/unicode.h"

namespace hfpipe::pipelines {

namespace {

enum class ReturnType { Tensors, NewText, FullText };

using text::unicode::byte_offset_of_char;

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

// pipeline(..., model_kwargs={...}) hands model_kwargs to from_pretrained. hfpipe honours
// attn_implementation ("sdpa", transformers' default, or "eager": Gemma 2's attention
// soft-capping exists only in the eager path) and refuses the keys it does not implement.
// A GGUF file's tokenizer.chat_template is its tokenizer's chat_template (transformers maps it
// into tokenizer_config); a file without one has none, and a chat input then fails as there.
text::ChatTemplate gguf_chat_template(const text::Tokenizer& tokenizer) {
  std::map<std::string, std::string> templates;
  if (auto t = tokenizer.embedded_chat_template()) templates[""] = *t;
  return text::ChatTemplate(std::move(templates), Value::object());
}

formats::ModelConfig decoder_config(const TaskContext& context) {
  const Value& params = context.options.params;
  if (!params.is_object() || !params.contains("model_kwargs") || params["model_kwargs"].is_null())
    return context.config;
  const Value& kwargs = params["model_kwargs"];
  if (!kwargs.is_object()) fail(ErrorKind::InvalidArgument, "model_kwargs must be a JSON object");
  std::string attn = "sdpa";
  for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
    if (it.key() != "attn_implementation")
      fail(ErrorKind::InvalidArgument,
           "model_kwargs key '" + it.key() + "' is not supported; supported: attn_implementation");
    if (!it.value().is_null()) {
      if (!it.value().is_string()) fail(ErrorKind::InvalidArgument, "model_kwargs.attn_implementation must be a string");
      attn = it.value().get<std::string>();
    }
  }
  return models::with_attn_implementation(context.config, attn);
}

struct Prompt {
  std::string text;             // a text prompt as given (without prefix)
  Value chat;                   // a chat's messages; null for a text prompt
  bool continue_final = false;  // a chat whose final message the model continues
  std::vector<int32_t> ids;     // prefix + prompt (or the rendered chat), as generate sees them
  bool empty = false;           // tokenized to nothing: generation starts from bos
};

// transformers' __call__ test for chat mode: a list whose first item is a message (a dict).
bool is_chat(const Value& v) { return v.is_array() && !v.empty() && v.front().is_object(); }

bool given(const Params& p, const char* key) { return p.has(key) && !p.get(key).is_null(); }

// The keys of tokenizer_encode_kwargs that reach the tokenizer rather than the chat template.
bool is_tokenizer_key(const std::string& key) {
  return key == "truncation" || key == "max_length" || key == "padding";
}

class TextGeneration : public Task {
 public:
  explicit TextGeneration(const TaskContext& context)
      : Task(context),
        tokenizer_(context.gguf_file.empty() ? text::Tokenizer::from_folder(context.model_dir)
                                             : text::Tokenizer::from_gguf(context.gguf_file)),
        model_(context.gguf_file.empty()
                   ? models::load_decoder(decoder_config(context), load_weights(context))
                   : models::load_gguf_decoder(context.gguf_file, context.precision)),
        batch_size_(context.options.batch_size),
        chat_template_(context.gguf_file.empty() ? text::ChatTemplate::from_folder(context.model_dir)
                                                 : gguf_chat_template(tokenizer_)) {
    init_generation_config(context);
    // The template sees the special tokens as the loaded tokenizer resolved them.
    for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
      chat_template_.set_special_token(name, tokenizer_.special_token(name).value_or(""));
  }

  std::vector<Value> run(const std::vector<Value>& items, const Value& params, bool single_call) const override {
    const Call c(params, *this);
    // model_kwargs only configure loading (a pipeline() argument): a call cannot change them.
    const Value& built = construction_params();
    const Value loaded = built.is_object() && built.contains("model_kwargs") ? built["model_kwargs"] : Value();
    if (c.p.has("model_kwargs") && c.p.get("model_kwargs") != loaded)
      fail(ErrorKind::InvalidArgument, "model_kwargs is a pipeline() argument applied when the model is loaded; "
                                       "a call cannot change it");
    std::vector<Prompt> prompts;
    for (const Value& item : items) prompts.push_back(prepare(item, c));
    const auto generated = generate_all(prompts, c, {});
    std::vector<Value> results;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<std::vector<int32_t>> group(generated.begin() + i * c.config.num_return_sequences,
                                              generated.begin() + (i + 1) * c.config.num_return_sequences);
      results.push_back(postprocess(prompts[i], group, c));
    }
    (void)single_call;  // pipe("x") and each item of pipe([...]) are both a list of records
    return results;
  }

  // A list whose first item is a message is one chat, not a batch (transformers' __call__).
  Value call(const Value& inputs, const Value& params) const override {
    if (is_chat(inputs)) return run({inputs}, params, /*single_call=*/true).front();
    return Task::call(inputs, params);
  }

  Value stream(const Value& input, const Value& params, const Pipeline::TextCallback& on_text) const override {
    if (input.is_array() && !is_chat(input))
      fail(ErrorKind::InvalidArgument, "stream takes one prompt or one chat (a list of messages), not a list of inputs");
    const Call c(params, *this);
    // transformers' streamers take one sequence ("TextStreamer only supports batch size 1").
    if (c.config.num_return_sequences != 1)
      fail(ErrorKind::InvalidArgument, "streaming generates one sequence: num_return_sequences must be 1, got " +
                                           std::to_string(c.config.num_return_sequences));
    const Prompt prompt = prepare(input, c);
    TextStreamer streamer(tokenizer_, prompt.ids, prompt_chars(prompt, c), c.skip_special, c.clean_up,
                          [&](std::string_view text) { on_text(text); });
    const auto generated = generate_all({prompt}, c, [&](size_t, int32_t token) { streamer.put(token); });
    streamer.end();
    return postprocess(prompt, generated, c);
  }

 private:
  // One call's parameters, sanitised as _sanitize_parameters does.
  struct Call {
    Call(const Value& params, const TextGeneration& task)
        : p(params, task.name(), known_parameters()),
          type(return_type_from(p)),
          prefix(p.has("prefix") ? p.get_string("prefix", "") : task.prefix_),
          config(task.call_config(p, prefix, max_length_given)),
          pad(config.pad_token_id.value_or(config.eos_token_id.empty() ? 0 : config.eos_token_id.front())),
          seed(given(p, "seed") ? static_cast<uint64_t>(*p.get_int("seed")) : next_default_seed()),
          skip_special(p.get_bool("skip_special_tokens", true)),
          clean_up(p.get_bool("clean_up_tokenization_spaces", true)),
          hole(long_generation_from(p)),
          encode_kwargs(p.get_object("tokenizer_encode_kwargs")),
          batch(std::max<int64_t>(1, p.get_int("batch_size").value_or(task.batch_size_))) {}

    // The pipeline's own parameters and every generate parameter (GenerationConfig's keys).
    static const std::vector<std::string>& known_parameters() {
      static const std::vector<std::string> known = [] {
        std::vector<std::string> keys = {"return_full_text", "return_text", "return_tensors", "prefix",
                                         "clean_up_tokenization_spaces", "skip_special_tokens", "add_special_tokens",
                                         "seed", "batch_size", "continue_final_message", "handle_long_generation",
                                         "stop_sequence", "truncation", "padding", "tokenizer_encode_kwargs",
                                         "model_kwargs"};
        for (const char* key : generation::GenerationConfig::keys()) keys.emplace_back(key);
        return keys;
      }();
      return known;
    }

    static bool long_generation_from(const Params& p) {
      if (!given(p, "handle_long_generation")) return false;
      const Value& v = p.get("handle_long_generation");
      if (v != "hole")
        fail(ErrorKind::InvalidArgument, (v.is_string() ? v.get<std::string>() : v.dump()) +
                                             " is not a valid value for `handle_long_generation` parameter expected "
                                             "[None, 'hole']");
      return true;
    }

    Params p;
    ReturnType type;
    std::string prefix;
    bool max_length_given = false;
    generation::GenerationConfig config;
    int32_t pad;
    uint64_t seed;
    bool skip_special, clean_up;
    bool hole;  // handle_long_generation="hole"
    Value encode_kwargs;
    int64_t batch;  // prompts per generate call
  };

  // Generates every prompt's sequences (num_return_sequences rows each), `batch` prompts at a
  // time; on_token hears the rows of one call (streaming passes a single prompt).
  std::vector<std::vector<int32_t>> generate_all(const std::vector<Prompt>& prompts, const Call& c,
                                                 const generation::TokenCallback& on_token) const {
    // Beam search returns num_return_sequences per prompt from one row of beams, already
    // filled to one length (with transformers' beam fill value, see beam_search.h).
    const bool beams = c.config.num_beams > 1;
    if (beams && on_token)
      fail(ErrorKind::InvalidArgument,
           "`streamer` cannot be used with beam search (yet!). Make sure that `num_beams` is set to 1.");
    // transformers needs generate(tokenizer=...) for stop_strings; hfpipe uses the pipeline's.
    const generation::StopStrings stops(tokenizer_, c.config.stop_strings);
    const int64_t copies = beams ? 1 : c.config.num_return_sequences;
    std::vector<generation::Row> rows;
    for (size_t i = 0; i < prompts.size(); ++i)
      for (int64_t s = 0; s < copies; ++s)
        rows.push_back({prompts[i].ids, limits_of(prompts[i], c.config, c.max_length_given), row_seed(c.seed, i, s)});
    const size_t step = static_cast<size_t>(c.batch * copies);
    std::vector<std::vector<int32_t>> generated;
    for (size_t start = 0; start < rows.size(); start += step) {
      std::vector<generation::Row> chunk(rows.begin() + start, rows.begin() + std::min(rows.size(), start + step));
      if (beams) {
        for (auto& group : generation::beam_search(*model_, chunk, c.config, c.pad, &stops))
          for (auto& g : group) generated.push_back(std::move(g));
      } else {
        // guidance_scale: the model wrapped to decode each row's unconditional context too.
        std::optional<generation::GuidedDecoder> guided;
        if (const auto scale = generation::guidance_scale(c.config)) guided.emplace(*model_, *scale);
        const models::DecoderModel& model = guided ? *guided : *model_;
        for (auto& g : generation::generate(model, chunk, c.config, c.pad, on_token, &stops))
          generated.push_back(std::move(g));
      }
    }
    return generated;
  }

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
    // stop_sequence: its tokens become the eos ids (any of them stops, as in transformers).
    if (given(p, "stop_sequence")) {
      text::EncodeOptions options;
      options.add_special_tokens = false;
      const auto ids = tokenizer_.encode(p.get_string("stop_sequence", ""), options).ids;
      if (ids.empty()) fail(ErrorKind::InvalidArgument, "stop_sequence encodes to no tokens");
      call["eos_token_id"] = ids;
    }
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

  Prompt prepare(const Value& item, const Call& c) const {
    Prompt prompt;
    if (is_chat(item)) {
      prompt.chat = item;
      prompt.ids = encode_chat(prompt, c);
    } else if (item.is_string()) {
      prompt.text = expect_text(item, name());
      prompt.ids = encode_text(c.prefix + prompt.text, c);
    } else {
      fail(ErrorKind::InvalidArgument,
           "a text-generation input is a string or a chat (a non-empty list of {\"role\", \"content\"} messages); "
           "a list of those is a batch, got " + std::string(item.type_name()) +
               (item.is_array() && !item.empty() ? " of " + std::string(item.front().type_name()) + "s" : ""));
    }
    if (c.hole) keep_room_for_generation(prompt.ids, c);
    if (prompt.ids.empty()) {
      // TextGenerationPipeline passes no input_ids; generate then starts from bos.
      if (!c.config.bos_token_id)
        fail(ErrorKind::InvalidArgument,
             "the prompt is empty and the model has no bos_token_id to start from (transformers: `bos_token_id` has "
             "to be defined when no `input_ids` are provided.)");
      prompt.ids = {*c.config.bos_token_id};
      prompt.empty = true;
    }
    const int64_t limit = model_->max_position_embeddings();
    if (static_cast<int64_t>(prompt.ids.size()) > limit)
      fail(ErrorKind::InvalidArgument, "the prompt is " + std::to_string(prompt.ids.size()) +
                                           " tokens long, longer than the model's max_position_embeddings (" +
                                           std::to_string(limit) +
                                           "); shorten it, or pass handle_long_generation=\"hole\" to keep its end");
    return prompt;
  }

  // The tokenizer arguments of preprocess (add_special_tokens, truncation, padding, max_length)
  // updated by tokenizer_encode_kwargs, as encode options.
  text::EncodeOptions encode_options(Value kwargs) const {
    text::EncodeOptions options = encode_options_from(kwargs, tokenizer_, name());
    if (options.truncation) options.truncation->direction = tokenizer_.truncation_side();
    return options;
  }

  Value preprocess_kwargs(const Params& p, std::initializer_list<const char*> keys) const {
    Value kwargs = Value::object();
    for (const char* key : keys)
      if (given(p, key)) kwargs[key] = p.get(key);
    return kwargs;
  }

  std::vector<int32_t> encode_text(const std::string& text, const Call& c) const {
    Value kwargs = preprocess_kwargs(c.p, {"add_special_tokens", "truncation", "padding", "max_length"});
    for (const auto& [key, value] : c.encode_kwargs.items()) kwargs[key] = value;
    // max_length without truncation truncates (transformers' tokenizer warns and defaults to
    // longest_first); max_length reaches the tokenizer whenever it is a call parameter.
    if (kwargs.contains("max_length") && !kwargs["max_length"].is_null() &&
        (!kwargs.contains("truncation") || kwargs["truncation"].is_null()))
      kwargs["truncation"] = "longest_first";
    return encode_input(tokenizer_, {text, std::nullopt}, encode_options(kwargs), INT64_MAX).ids;
  }

  // apply_chat_template(messages, add_generation_prompt=not continue_final_message,
  // continue_final_message=..., tokenize=True, **tokenizer_kwargs): tokenizer_encode_kwargs'
  // truncation / max_length / padding reach the tokenizer (truncation off by default),
  // chat_template / tools / documents select and feed the template, other keys become
  // template variables; add_special_tokens is ignored for chats.
  std::vector<int32_t> encode_chat(Prompt& prompt, const Call& c) const {
    for (const Value& message : prompt.chat)
      if (!message.is_object() || !message.contains("role") || !message.contains("content"))
        fail(ErrorKind::InvalidArgument,
             "When passing chat dicts as input, each dict must have a 'role' and 'content' key.");
    const Value& last = prompt.chat.back();
    prompt.continue_final = given(c.p, "continue_final_message") ? c.p.get_bool("continue_final_message", false)
                                                                 : last["role"] == "assistant";
    text::ChatTemplateOptions options;
    options.add_generation_prompt = !prompt.continue_final;
    options.continue_final_message = prompt.continue_final;
    Value kwargs = preprocess_kwargs(c.p, {"truncation", "padding", "max_length"});
    for (const auto& [key, value] : c.encode_kwargs.items()) {
      if (is_tokenizer_key(key)) kwargs[key] = value;
      else if (key == "chat_template" && value.is_string()) options.chat_template = value.get<std::string>();
      else if (key == "tools") options.tools = value;
      else if (key == "documents") options.documents = value;
      else if (key == "add_generation_prompt" || key == "continue_final_message" || key == "tokenize" ||
               key == "return_dict" || key == "return_tensors" || key == "return_assistant_tokens_mask")
        fail(ErrorKind::InvalidArgument, "tokenizer_encode_kwargs cannot set '" + key + "': the pipeline sets it");
      else if (key != "add_special_tokens") options.variables[key] = value;
    }
    if (!kwargs.contains("truncation")) kwargs["truncation"] = false;
    text::EncodeOptions encode = encode_options(kwargs);
    encode.add_special_tokens = false;
    const std::string rendered = chat_template_.apply(prompt.chat, options);
    return encode_input(tokenizer_, {rendered, std::nullopt}, encode, INT64_MAX).ids;
  }

  // handle_long_generation="hole" (preprocess): keep the prompt's last tokens so that the new
  // tokens still fit in the tokenizer's model_max_length.
  void keep_room_for_generation(std::vector<int32_t>& ids, const Call& c) const {
    const int64_t length = static_cast<int64_t>(ids.size());
    int64_t new_tokens = 0;
    if (c.p.has("max_new_tokens")) {
      const auto n = c.p.get_int("max_new_tokens");
      if (!n) fail(ErrorKind::InvalidArgument, "handle_long_generation=\"hole\" needs max_new_tokens, got null");
      new_tokens = *n;
    } else {
      new_tokens = c.p.get_int("max_length").value_or(config_.max_length) - length;
      if (new_tokens < 0) fail(ErrorKind::InvalidArgument, "We cannot infer how many new tokens are expected");
    }
    const int64_t window = tokenizer_.model_max_length();
    if (length + new_tokens <= window) return;
    const int64_t keep = window - new_tokens;
    if (keep <= 0)
      fail(ErrorKind::InvalidArgument,
           "We cannot use `hole` to handle this generation the number of desired tokens exceeds the models max length");
    ids.erase(ids.begin(), ids.end() - keep);
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

  // The number of characters of the decoded sequence that are the prompt's (postprocess cuts
  // them off); generate got no input_ids for an empty prompt, so then none.
  size_t prompt_chars(const Prompt& prompt, const Call& c) const {
    return prompt.empty ? 0 : char_count(tokenizer_.decode(prompt.ids, c.skip_special, c.clean_up));
  }

  // The full text of a record: the prompt and the new text, or for a chat the messages with a
  // new assistant message (or the final message's content extended).
  Value full_text(const Prompt& prompt, const std::string& new_text) const {
    if (prompt.chat.is_null()) return prompt.text + new_text;
    Value messages = prompt.chat;
    if (!prompt.continue_final) {
      messages.push_back(Value{{"role", "assistant"}, {"content", new_text}});
      return messages;
    }
    const Value last = messages.back();
    if (!last["content"].is_string())
      fail(ErrorKind::InvalidArgument,
           "continue_final_message needs the final message's content as a string to extend, got " +
               std::string(last["content"].type_name()));
    // transformers rebuilds the final message from its role and content alone.
    messages.back() = Value{{"role", last["role"]}, {"content", last["content"].get<std::string>() + new_text}};
    return messages;
  }

  // One prompt's records. As in transformers, the sequences of one prompt are generated
  // together: those that stop early are padded with pad_id to the longest.
  Value postprocess(const Prompt& prompt, const std::vector<std::vector<int32_t>>& group, const Call& c) const {
    size_t longest = 0;
    for (const auto& g : group) longest = std::max(longest, g.size());
    const size_t skip_chars = c.type == ReturnType::Tensors ? 0 : prompt_chars(prompt, c);
    Value records = Value::array();
    for (const auto& g : group) {
      std::vector<int32_t> sequence = prompt.ids;
      sequence.insert(sequence.end(), g.begin(), g.end());
      sequence.resize(prompt.ids.size() + longest, c.pad);
      if (c.type == ReturnType::Tensors) {
        records.push_back(Value{{"generated_token_ids", sequence}});
        continue;
      }
      const std::string text = tokenizer_.decode(sequence, c.skip_special, c.clean_up);
      const std::string new_text = text.substr(byte_offset_of_char(text, skip_chars));
      records.push_back(Value{{"generated_text", c.type == ReturnType::FullText ? full_text(prompt, new_text)
                                                                                  : Value(new_text)}});
    }
    return records;
  }

  text::Tokenizer tokenizer_;
  std::unique_ptr<models::DecoderModel> model_;
  int64_t batch_size_;
  text::ChatTemplate chat_template_;
  generation::GenerationConfig config_;
  std::string prefix_;
};

}  // namespace

std::unique_ptr<Task> make_text_generation(const TaskContext& context) {
  return std::make_unique<TextGeneration>(context);
}

}  // namespace hfpipe::pipelines
