// text2text-generation (Text2TextGenerationPipeline); summarization.cpp and translation.cpp
// derive from it as transformers' classes do. See text2text.h for the shape of the outputs.
//
// The generation config is built as Pipeline.__init__ builds it for these tasks: the pipeline
// defaults max_new_tokens=256 and num_beams=4, then the model's generation_config.json values
// where the pipeline's is still the global default, then task_specific_params[task] (whose
// "prefix" becomes the pipeline's prefix), then the call's parameters. hfpipe adds `seed`
// for sampling (its own random stream), as text-generation does.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "formats/json_depth.h"
#include "formats/weights.h"
#include "generation/beam_search.h"
#include "generation/generate.h"
#include "generation/guidance.h"
#include "generation/stop_strings.h"
#include "pipelines/text2text.h"
#include "pipelines/text_inputs.h"

namespace hfpipe::pipelines {

namespace {

uint64_t next_default_seed() {
  static std::atomic<uint64_t> calls{0};
  return calls.fetch_add(1);
}

uint64_t row_seed(uint64_t seed, size_t item, int64_t sequence) {
  return seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(item) << 20) ^ static_cast<uint64_t>(sequence);
}

// The model's generation settings as JSON: generation_config.json, else config.json (whose
// generation keys GenerationConfig.from_model_config takes).
Value model_generation_json(const std::filesystem::path& model_dir, const formats::ModelConfig& config) {
  const auto path = model_dir / "generation_config.json";
  std::ifstream in(path);
  if (!in) return config.json();
  std::stringstream text;
  text << in.rdbuf();
  formats::check_json_depth(text.str(), path.string());
  Value json = Value::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) fail(ErrorKind::CorruptFile, path.string() + " is not a JSON object");
  return json;
}

std::optional<int32_t> optional_id(const char* source, const std::string& key, const Value& v) {
  if (v.is_null()) return std::nullopt;
  // Checked against int32 before the cast: 4294967297 would otherwise wrap to the id 1.
  if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
    fail(ErrorKind::InvalidArgument, std::string(source) + " '" + key + "' must be a 32-bit integer, got " + v.dump());
  return static_cast<int32_t>(v.get<int64_t>());
}

const std::vector<const char*> kKnownParameters = {
    "return_tensors", "return_text", "clean_up_tokenization_spaces", "truncation", "stop_sequence", "seed",
    "batch_size"};

}  // namespace

// ----------------------------------------------------------------------------- Seq2SeqSettings

const std::vector<const char*>& Seq2SeqSettings::keys() {
  static const std::vector<const char*> k = {"decoder_start_token_id"};
  return k;
}

void Seq2SeqSettings::update(const Value& values, const char* source) {
  for (const auto& [key, v] : values.items())
    if (key == "decoder_start_token_id") decoder_start_token_id = optional_id(source, key, v);
}

Value Seq2SeqSettings::non_default_values() const {
  const Seq2SeqSettings d;
  Value out = Value::object();
  if (decoder_start_token_id != d.decoder_start_token_id)
    out["decoder_start_token_id"] = decoder_start_token_id ? Value(*decoder_start_token_id) : Value(nullptr);
  return out;
}

// ----------------------------------------------------------------------------- the task

Text2TextGeneration::Text2TextGeneration(const TaskContext& context, std::string return_name)
    : Task(context),
      return_name_(std::move(return_name)),
      config_json_(context.config),
      tokenizer_(text::Tokenizer::from_folder(context.model_dir)),
      batch_size_(context.options.batch_size) {
  if (!models::is_seq2seq_type(context.config.model_type())) {
    std::string list;
    for (const auto& name : models::supported_seq2seq_types()) list += (list.empty() ? "" : ", ") + name;
    fail(ErrorKind::UnsupportedModel, context.task + " needs an encoder-decoder model; model_type '" +
                                          context.config.model_type() + "' is not one hfpipe supports (" + list + ")");
  }
  model_ = models::load_seq2seq(context.config, formats::load_checkpoint(context.model_dir));
}

void Text2TextGeneration::init(const TaskContext& context, const std::string& task_for_params) {
  const generation::GenerationConfig global;
  generation::GenerationConfig g;
  g.max_new_tokens = 256;
  g.num_beams = 4;
  Seq2SeqSettings s;
  // _prepare_generation_config(use_model_defaults=True): the model's non-default values fill in
  // where the pipeline's value is still the global default.
  const Value model_json = model_generation_json(context.model_dir, context.config);
  const Value pipeline_values = g.non_default_values(), pipeline_settings = s.non_default_values();
  const Value model_values =
      generation::load_model_generation_config(context.model_dir, context.config).non_default_values();
  for (const auto& [key, value] : model_values.items())
    if (!pipeline_values.contains(key)) g.update(Value{{key, value}}, "generation_config.json key");
  Seq2SeqSettings model_settings;
  Value known = Value::object();
  for (const char* key : Seq2SeqSettings::keys())
    if (model_json.contains(key)) known[key] = model_json[key];
  model_settings.update(known, "generation_config.json key");
  const Value model_setting_values = model_settings.non_default_values();
  for (const auto& [key, value] : model_setting_values.items())
    if (!pipeline_settings.contains(key)) s.update(Value{{key, value}}, "generation_config.json key");
  if (g.temperature == 0.0) g.do_sample = false;
  // The pipeline's max_new_tokens default yields to a model's own max_length.
  if (g.max_new_tokens == 256 && g.max_length != global.max_length) g.max_new_tokens.reset();

  prefix_ = context.config.get_string("prefix", "");
  const Value& tsp = context.config.json().contains("task_specific_params")
                         ? context.config.json()["task_specific_params"] : Value();
  if (tsp.is_object() && tsp.contains(task_for_params) && tsp[task_for_params].is_object()) {
    Value task_params = tsp[task_for_params];
    if (task_params.contains("prefix")) {
      prefix_ = task_params["prefix"].is_string() ? task_params["prefix"].get<std::string>() : "";
      task_params.erase("prefix");
    }
    g.update(task_params, "task_specific_params key");
    s.update(task_params, "task_specific_params key");
  }
  if (!g.pad_token_id) g.pad_token_id = tokenizer_.pad_token_id();
  generation_ = g;
  settings_ = s;
}

Text2TextGeneration::CallConfig Text2TextGeneration::call_config(const Params& p) const {
  CallConfig c{generation_, settings_, false, 0, 0};
  Value call = Value::object(), call_settings = Value::object();
  for (const char* key : generation::GenerationConfig::keys())
    if (p.has(key)) call[key] = p.get(key);
  for (const char* key : Seq2SeqSettings::keys())
    if (p.has(key)) call_settings[key] = p.get(key);
  c.generation.update(call);
  c.settings.update(call_settings, "parameter");
  if (p.has("stop_sequence") && !p.get("stop_sequence").is_null()) {
    // _sanitize_parameters: the first token of the stop sequence becomes the eos.
    text::EncodeOptions options;
    options.add_special_tokens = false;
    const auto ids = tokenizer_.encode(p.get_string("stop_sequence", ""), options).ids;
    if (ids.empty()) fail(ErrorKind::InvalidArgument, "stop_sequence tokenizes to no tokens");
    if (ids.size() > 1)
      warn("UserWarning: Stopping on a multiple token sequence is not yet supported on transformers. The first token of"
           " the stop sequence will be used as the stop sequence string in the interim.");
    c.generation.eos_token_id = {ids.front()};
  }
  c.max_length_given = p.has("max_length") && !p.get("max_length").is_null();
  adjust_settings(p, c.settings);
  adjust_generation(p, c.generation);
  generation::validate(c.generation);
  // transformers' guidance feeds the decoder's token to an encoder-decoder model's encoder.
  if (generation::guidance_scale(c.generation))
    fail(ErrorKind::InvalidArgument, "`guidance_scale` is not supported for encoder-decoder models");
  const Seq2SeqSettings& s = c.settings;
  if (s.decoder_start_token_id) c.decoder_start = *s.decoder_start_token_id;
  else if (c.generation.bos_token_id) c.decoder_start = *c.generation.bos_token_id;
  else
    fail(ErrorKind::InvalidArgument,
         "`decoder_start_token_id` or `bos_token_id` has to be defined for encoder-decoder generation.");
  c.pad = c.generation.pad_token_id.value_or(c.generation.eos_token_id.empty() ? 0 : c.generation.eos_token_id.front());
  return c;
}

Text2TextGeneration::Source Text2TextGeneration::prepare(const Value& item, const Params& p) const {
  const SourceEncoder encoder = source_encoder(p);
  const std::string text = (encoder.with_prefix ? prefix_ : std::string()) + expect_text(item, name());
  Value kwargs = Value::object();
  if (p.has("truncation")) kwargs["truncation"] = p.get("truncation");
  const text::EncodeOptions options = encode_options_from(kwargs, *encoder.tokenizer, name());
  const int64_t limit = model_->max_source_positions() > 0 ? model_->max_source_positions() : INT64_MAX;
  Source source{encode_input(*encoder.tokenizer, {text, std::nullopt}, options, limit).ids};
  if (source.ids.empty())
    fail(ErrorKind::InvalidArgument, "the input tokenizes to no tokens: the encoder needs at least one");
  return source;
}

std::vector<std::vector<std::vector<int32_t>>> Text2TextGeneration::generate_batch(
    const models::EncoderInputs& batch, const CallConfig& c, uint64_t seed, const std::vector<size_t>& items) const {
  const models::EncoderOutput encoded =
      model_->encode(batch.input_ids.data(), batch.attention_mask.data(), batch.batch, batch.seq);
  const int64_t positions = model_->max_target_positions() > 0 ? model_->max_target_positions() : INT64_MAX;
  const generation::RowLimits limits = generation::resolve_limits(c.generation, 1, c.max_length_given, positions);
  // Learned / fixed position tables end at max_position_embeddings (transformers fails with an
  // IndexError mid-generation): refuse up front.
  if (limits.max_length > positions)
    fail(ErrorKind::InvalidArgument, "generation needs " + std::to_string(limits.max_length) +
                                         " decoder positions, but the model has " + std::to_string(positions) +
                                         " (max_position_embeddings); lower max_new_tokens / max_length");
  // Greedy / sampling decode num_return_sequences rows per source; beam search decodes one row
  // per source, as num_beams model rows (row * num_beams + beam) that all attend to that source:
  // beams are only reordered within a source's group, so the cross keys/values bound here
  // stay valid under the default reorder_rows.
  const bool beams = c.generation.num_beams > 1;
  const int64_t copies = beams ? 1 : c.generation.num_return_sequences;
  const int64_t model_rows_per_row = beams ? c.generation.num_beams : 1;
  std::vector<generation::Row> rows;
  std::vector<int32_t> row_sources, model_row_sources;
  for (int64_t m = 0; m < batch.batch; ++m)
    for (int64_t s = 0; s < copies; ++s) {
      rows.push_back({{c.decoder_start}, limits, row_seed(seed, items[m], s)});
      row_sources.push_back(static_cast<int32_t>(m));
      for (int64_t b = 0; b < model_rows_per_row; ++b) model_row_sources.push_back(static_cast<int32_t>(m));
    }
  const auto decoder = model_->bind(encoded, model_row_sources);
  // transformers needs generate(tokenizer=...) for stop_strings; hfpipe uses the pipeline's.
  const generation::StopStrings stops(tokenizer_, c.generation.stop_strings);
  std::vector<std::vector<int32_t>> generated;
  if (beams) {
    for (auto& group : generation::beam_search(*decoder, rows, c.generation, c.pad, &stops))
      for (auto& g : group) generated.push_back(std::move(g));
  } else {
    generated = generation::generate(*decoder, rows, c.generation, c.pad, {}, &stops);
  }
  const int64_t per_row = beams ? c.generation.num_return_sequences : 1;
  std::vector<std::vector<std::vector<int32_t>>> out(static_cast<size_t>(batch.batch));
  for (size_t r = 0; r < generated.size(); ++r) {
    std::vector<int32_t> sequence{c.decoder_start};
    sequence.insert(sequence.end(), generated[r].begin(), generated[r].end());
    out[row_sources[r / static_cast<size_t>(per_row)]].push_back(std::move(sequence));
  }
  return out;
}

Value Text2TextGeneration::postprocess(std::vector<std::vector<int32_t>> sequences, int32_t pad,
                                       const Params& p) const {
  // generate pads the sequences of one input to the longest with pad_token_id.
  size_t longest = 0;
  for (const auto& s : sequences) longest = std::max(longest, s.size());
  const bool tensors = p.has("return_tensors") && !p.get("return_tensors").is_null() &&
                       p.get_bool("return_tensors", false);
  const bool clean_up = p.get_bool("clean_up_tokenization_spaces", false);
  Value records = Value::array();
  for (auto& s : sequences) {
    s.resize(longest, pad);
    if (tensors) records.push_back(Value{{return_name_ + "_token_ids", s}});
    else records.push_back(Value{{return_name_ + "_text", tokenizer_.decode(s, /*skip_special_tokens=*/true, clean_up)}});
  }
  return records;
}

std::vector<Value> Text2TextGeneration::run(const std::vector<Value>& items, const Value& params,
                                            bool single_call) const {
  std::vector<std::string> known(kKnownParameters.begin(), kKnownParameters.end());
  for (const char* key : generation::GenerationConfig::keys()) known.push_back(key);
  for (const char* key : Seq2SeqSettings::keys()) known.push_back(key);
  for (const auto& key : extra_parameters()) known.push_back(key);
  Params p(params, name(), known);
  const CallConfig c = call_config(p);
  const uint64_t seed = p.has("seed") && !p.get("seed").is_null() ? static_cast<uint64_t>(*p.get_int("seed"))
                                                                   : next_default_seed();
  std::vector<text::Encoding> encodings;
  for (const Value& item : items) {
    text::Encoding e;
    e.ids = prepare(item, p).ids;
    e.type_ids.assign(e.ids.size(), 0);
    encodings.push_back(std::move(e));
  }
  // check_inputs sees the call's min_length / max_length, else the pipeline's (not the
  // effective limits), as Text2TextGenerationPipeline._forward passes them.
  const int64_t min_length = p.get_int("min_length").value_or(generation_.min_length);
  const int64_t max_length = p.get_int("max_length").value_or(generation_.max_length);
  std::vector<Value> results(items.size());
  const int64_t batch_size = std::max<int64_t>(1, p.get_int("batch_size").value_or(batch_size_));
  for_each_batch(encodings, batch_size, c.pad, [&](const models::EncoderInputs& batch, const std::vector<size_t>& members) {
    for (size_t i : members) check_inputs(static_cast<int64_t>(encodings[i].ids.size()), min_length, max_length);
    auto sequences = generate_batch(batch, c, seed, members);
    for (size_t m = 0; m < members.size(); ++m) results[members[m]] = postprocess(std::move(sequences[m]), c.pad, p);
  });
  // __call__: a list of texts whose results are single records comes back flat.
  if (!single_call && std::all_of(results.begin(), results.end(), [](const Value& r) { return r.size() == 1; }))
    for (auto& r : results) {
      Value record = r[0];
      r = std::move(record);
    }
  return results;
}

std::unique_ptr<Task> make_text2text_generation(const TaskContext& context) {
  struct Task final : Text2TextGeneration {
    explicit Task(const TaskContext& c) : Text2TextGeneration(c, "generated") { init(c, c.task); }
  };
  return std::make_unique<Task>(context);
}

}  // namespace hfpipe::pipelines
