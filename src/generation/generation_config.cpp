#include "generation/generation_config.h"

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "formats/json_depth.h"

namespace hfpipe::generation {

namespace {

[[noreturn]] void bad(const char* source, const std::string& key, const Value& v, const char* expected) {
  fail(ErrorKind::InvalidArgument,
       std::string(source) + " '" + key + "' must be " + expected + ", got " + v.dump());
}

int64_t as_int(const char* source, const std::string& key, const Value& v) {
  if (!v.is_number_integer()) bad(source, key, v, "an integer");
  return v.get<int64_t>();
}

double as_number(const char* source, const std::string& key, const Value& v) {
  if (!v.is_number()) bad(source, key, v, "a number");
  return v.get<double>();
}

std::optional<int64_t> as_optional_int(const char* source, const std::string& key, const Value& v) {
  if (v.is_null()) return std::nullopt;
  return as_int(source, key, v);
}

// A token id: the models' ids are int32, and a larger value would wrap (4294967297 -> 1) into
// a different, valid id. Negative values stay allowed (they match no token).
int32_t as_id(const char* source, const std::string& key, const Value& v) {
  int64_t id = as_int(source, key, v);
  if (id < INT32_MIN || id > INT32_MAX) bad(source, key, v, "a token id within the 32-bit range");
  return static_cast<int32_t>(id);
}

// eos_token_id: an int or a list of ints (null = none).
std::vector<int32_t> as_id_list(const char* source, const std::string& key, const Value& v) {
  std::vector<int32_t> ids;
  if (v.is_null()) return ids;
  if (v.is_number_integer()) return {as_id(source, key, v)};
  if (!v.is_array()) bad(source, key, v, "an integer or a list of integers");
  for (const Value& id : v) ids.push_back(as_id(source, key, id));
  return ids;
}

std::optional<int32_t> as_optional_id(const char* source, const std::string& key, const Value& v) {
  // Some configs hold a list for pad/bos; transformers uses the first element then.
  if (v.is_array()) {
    auto ids = as_id_list(source, key, v);
    return ids.empty() ? std::nullopt : std::optional<int32_t>(ids.front());
  }
  if (v.is_null()) return std::nullopt;
  return as_id(source, key, v);
}

// bad_words_ids: a non-empty list of non-empty lists of non-negative ids, as
// NoBadWordsLogitsProcessor and SequenceBiasLogitsProcessor validate it.
std::optional<std::vector<std::vector<int32_t>>> as_bad_words(const char* source, const std::string& key,
                                                             const Value& v) {
  if (v.is_null()) return std::nullopt;
  const char* expected = "a non-empty list of non-empty lists of non-negative token ids";
  if (!v.is_array() || v.empty()) bad(source, key, v, expected);
  std::vector<std::vector<int32_t>> words;
  for (const Value& word : v) {
    if (!word.is_array() || word.empty()) bad(source, key, v, expected);
    std::vector<int32_t> ids;
    for (const Value& id : word) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        bad(source, key, v, expected);
      ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    words.push_back(std::move(ids));
  }
  return words;
}

EarlyStopping as_early_stopping(const char* source, const std::string& key, const Value& v) {
  if (v.is_boolean()) return v.get<bool>() ? EarlyStopping::True : EarlyStopping::False;
  if (v.is_string() && v.get<std::string>() == "never") return EarlyStopping::Never;
  bad(source, key, v, "true, false or \"never\"");
}

// stop_strings: a string or a list of non-empty strings (null = none).
std::vector<std::string> as_stop_strings(const char* source, const std::string& key, const Value& v) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  const char* expected = "a non-empty string or a list of non-empty strings";
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else {
    if (!v.is_array()) bad(source, key, v, expected);
    for (const Value& s : v) {
      if (!s.is_string()) bad(source, key, v, expected);
      out.push_back(s.get<std::string>());
    }
  }
  for (const auto& s : out)
    if (s.empty()) bad(source, key, v, expected);  // transformers would stop after any token
  return out;
}

// suppress_tokens / begin_suppress_tokens: a list of token ids (null = none). Ids outside the
// vocabulary match nothing, as torch.isin finds nothing for them.
std::optional<std::vector<int32_t>> as_token_list(const char* source, const std::string& key, const Value& v) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_array()) bad(source, key, v, "a list of token ids");
  std::vector<int32_t> ids;
  for (const Value& id : v) {
    if (!id.is_number_integer() || id.get<int64_t>() < INT32_MIN || id.get<int64_t>() > INT32_MAX)
      bad(source, key, v, "a list of token ids");
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return ids;
}

// sequence_bias in its JSON form, a list of [[token ids], bias] pairs, checked as
// SequenceBiasLogitsProcessor._validate_arguments checks that form (positive ids, a float bias:
// JSON's 1.0, not 1), with its messages; an empty id list (which transformers accepts and then
// fails on at the first step) is refused too. A later pair for the same ids replaces an earlier
// one, as converting the list into a dict does.
std::optional<SequenceBias> as_sequence_bias(const Value& v) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_array() || v.empty())
    fail(ErrorKind::InvalidArgument,
         "`sequence_bias` has to be a non-empty dictionary, or non-empty list of lists but is " + v.dump() +
             ". (A dictionary's keys are tuples of token ids, which JSON cannot hold: pass a list of "
             "[[token ids], bias] pairs.)");
  auto refuse = [&] {
    fail(ErrorKind::InvalidArgument,
         "Each element in `sequence_bias` has to be a non-empty list of lists of positive integers and float, but is " +
             v.dump() + ".");
  };
  SequenceBias biases;
  for (const Value& pair : v) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_array() || pair[0].empty() || !pair[1].is_number_float())
      refuse();
    std::vector<int32_t> ids;
    for (const Value& id : pair[0]) {
      if (!id.is_number_integer() || id.get<int64_t>() <= 0 || id.get<int64_t>() > INT32_MAX) refuse();
      ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    const float bias = static_cast<float>(pair[1].get<double>());  // torch.tensor(bias): float32
    auto same = std::find_if(biases.begin(), biases.end(), [&](const auto& b) { return b.first == ids; });
    if (same != biases.end()) same->second = bias;
    else biases.emplace_back(std::move(ids), bias);
  }
  return biases;
}

Value sequence_bias_value(const SequenceBias& biases) {
  Value out = Value::array();
  for (const auto& [ids, bias] : biases) out.push_back(Value::array({Value(ids), Value(static_cast<double>(bias))}));
  return out;
}

// exponential_decay_length_penalty: [start_index, decay_factor] (null = none).
std::optional<DecayPenalty> as_decay_penalty(const char* source, const std::string& key, const Value& v) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number())
    bad(source, key, v, "a [start_index, decay_factor] pair (an integer and a number)");
  return DecayPenalty{v[0].get<int64_t>(), v[1].get<double>()};
}

bool as_bool(const char* source, const std::string& key, const Value& v) {
  if (!v.is_boolean()) bad(source, key, v, "true or false");
  return v.get<bool>();
}

// The GenerationConfig attributes kept as given in GenerationConfig::other, with
// transformers' defaults.
const std::vector<std::pair<const char*, Value>>& other_keys() {
  static const std::vector<std::pair<const char*, Value>> k = {
      // Checked by check_supported.
      {"guidance_scale", nullptr}, {"encoder_repetition_penalty", 1.0}, {"encoder_no_repeat_ngram_size", 0},
      {"max_time", nullptr}, {"token_healing", false}, {"watermarking_config", nullptr},
      {"return_dict_in_generate", false}, {"low_memory", nullptr}, {"penalty_alpha", nullptr},
      {"dola_layers", nullptr}, {"diversity_penalty", 0.0}, {"num_beam_groups", 1}, {"constraints", nullptr},
      {"force_words_ids", nullptr},
      // No effect on a pipeline's output: generate's extra outputs (only returned with
      // return_dict_in_generate), the cache and compilation, assisted decoding's tuning (greedy
      // assisted decoding gives greedy's tokens), the encoder-decoder start token (read by
      // text2text-generation from its own settings).
      {"output_attentions", false}, {"output_hidden_states", false}, {"output_scores", false},
      {"output_logits", nullptr}, {"use_cache", true}, {"cache_implementation", nullptr},
      {"cache_config", nullptr}, {"return_legacy_cache", nullptr}, {"prefill_chunk_size", nullptr},
      {"compile_config", nullptr}, {"disable_compile", false}, {"num_assistant_tokens", 20},
      {"num_assistant_tokens_schedule", "constant"}, {"assistant_confidence_threshold", 0.4},
      {"prompt_lookup_num_tokens", nullptr}, {"max_matching_ngram_size", nullptr},
      {"assistant_early_exit", nullptr}, {"assistant_lookbehind", 10}, {"target_lookbehind", 10},
      {"decoder_start_token_id", nullptr}};
  return k;
}

const Value* other_default(const std::string& key) {
  for (const auto& [name, value] : other_keys())
    if (key == name) return &value;
  return nullptr;
}

Value early_stopping_value(EarlyStopping e) {
  if (e == EarlyStopping::Never) return "never";
  return e == EarlyStopping::True;
}

}  // namespace

const std::vector<const char*>& GenerationConfig::keys() {
  static const std::vector<const char*> k = {
      "max_length",   "max_new_tokens", "min_length", "min_new_tokens",       "do_sample",
      "temperature",  "top_k",          "top_p",      "min_p",                "repetition_penalty",
      "num_return_sequences", "eos_token_id", "pad_token_id", "bos_token_id", "num_beams",
      "length_penalty", "early_stopping", "no_repeat_ngram_size", "bad_words_ids", "forced_bos_token_id",
      "forced_eos_token_id", "typical_p", "stop_strings", "sequence_bias", "remove_invalid_values",
      "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "epsilon_cutoff",
      "eta_cutoff", "renormalize_logits"};
  static const std::vector<const char*> all = [] {
    std::vector<const char*> keys = k;
    for (const auto& [name, value] : other_keys()) keys.push_back(name);
    return keys;
  }();
  return all;
}

void GenerationConfig::update(const Value& values, const char* source) {
  for (const auto& [key, v] : values.items()) {
    if (key == "max_length") max_length = as_int(source, key, v);
    else if (key == "max_new_tokens") max_new_tokens = as_optional_int(source, key, v);
    else if (key == "min_length") min_length = as_int(source, key, v);
    else if (key == "min_new_tokens") min_new_tokens = as_optional_int(source, key, v);
    else if (key == "do_sample") {
      if (!v.is_boolean()) bad(source, key, v, "true or false");
      do_sample = v.get<bool>();
    } else if (key == "temperature") temperature = v.is_null() ? 1.0 : as_number(source, key, v);
    else if (key == "top_k") top_k = as_optional_int(source, key, v);
    else if (key == "top_p") top_p = v.is_null() ? 1.0 : as_number(source, key, v);
    else if (key == "min_p") min_p = v.is_null() ? std::nullopt : std::optional<double>(as_number(source, key, v));
    else if (key == "repetition_penalty") repetition_penalty = v.is_null() ? 1.0 : as_number(source, key, v);
    else if (key == "num_return_sequences") num_return_sequences = as_int(source, key, v);
    else if (key == "eos_token_id") eos_token_id = as_id_list(source, key, v);
    else if (key == "pad_token_id") pad_token_id = as_optional_id(source, key, v);
    else if (key == "bos_token_id") bos_token_id = as_optional_id(source, key, v);
    else if (key == "num_beams") num_beams = v.is_null() ? 1 : as_int(source, key, v);
    else if (key == "length_penalty") length_penalty = v.is_null() ? 1.0 : as_number(source, key, v);
    else if (key == "early_stopping") early_stopping = v.is_null() ? EarlyStopping::False : as_early_stopping(source, key, v);
    else if (key == "no_repeat_ngram_size") no_repeat_ngram_size = v.is_null() ? 0 : as_int(source, key, v);
    else if (key == "bad_words_ids") bad_words_ids = as_bad_words(source, key, v);
    else if (key == "forced_bos_token_id") forced_bos_token_id = as_optional_id(source, key, v);
    else if (key == "forced_eos_token_id") forced_eos_token_id = as_id_list(source, key, v);
    else if (key == "typical_p") typical_p = v.is_null() ? 1.0 : as_number(source, key, v);
    else if (key == "stop_strings") stop_strings = as_stop_strings(source, key, v);
    else if (key == "sequence_bias") sequence_bias = as_sequence_bias(v);
    else if (key == "remove_invalid_values") remove_invalid_values = !v.is_null() && as_bool(source, key, v);
    else if (key == "exponential_decay_length_penalty") exponential_decay_length_penalty = as_decay_penalty(source, key, v);
    else if (key == "suppress_tokens") suppress_tokens = as_token_list(source, key, v);
    else if (key == "begin_suppress_tokens") begin_suppress_tokens = as_token_list(source, key, v);
    else if (key == "epsilon_cutoff") epsilon_cutoff = v.is_null() ? 0.0 : as_number(source, key, v);
    else if (key == "eta_cutoff") eta_cutoff = v.is_null() ? 0.0 : as_number(source, key, v);
    else if (key == "renormalize_logits") renormalize_logits = !v.is_null() && as_bool(source, key, v);
    else if (const Value* fallback = other_default(key)) {
      if (v == *fallback) other.erase(key);
      else other[key] = v;
    }
  }
}

Value GenerationConfig::non_default_values() const {
  const GenerationConfig d;
  Value out = Value::object();
  auto opt = [](const auto& o) { return o ? Value(*o) : Value(nullptr); };
  if (max_length != d.max_length) out["max_length"] = max_length;
  if (max_new_tokens != d.max_new_tokens) out["max_new_tokens"] = opt(max_new_tokens);
  if (min_length != d.min_length) out["min_length"] = min_length;
  if (min_new_tokens != d.min_new_tokens) out["min_new_tokens"] = opt(min_new_tokens);
  if (do_sample != d.do_sample) out["do_sample"] = do_sample;
  if (temperature != d.temperature) out["temperature"] = temperature;
  if (top_k != d.top_k) out["top_k"] = opt(top_k);
  if (top_p != d.top_p) out["top_p"] = top_p;
  if (min_p != d.min_p) out["min_p"] = opt(min_p);
  if (repetition_penalty != d.repetition_penalty) out["repetition_penalty"] = repetition_penalty;
  if (num_return_sequences != d.num_return_sequences) out["num_return_sequences"] = num_return_sequences;
  if (eos_token_id != d.eos_token_id) out["eos_token_id"] = eos_token_id;
  if (pad_token_id != d.pad_token_id) out["pad_token_id"] = opt(pad_token_id);
  if (bos_token_id != d.bos_token_id) out["bos_token_id"] = opt(bos_token_id);
  if (num_beams != d.num_beams) out["num_beams"] = num_beams;
  if (length_penalty != d.length_penalty) out["length_penalty"] = length_penalty;
  if (early_stopping != d.early_stopping) out["early_stopping"] = early_stopping_value(early_stopping);
  if (no_repeat_ngram_size != d.no_repeat_ngram_size) out["no_repeat_ngram_size"] = no_repeat_ngram_size;
  if (bad_words_ids != d.bad_words_ids) out["bad_words_ids"] = bad_words_ids ? Value(*bad_words_ids) : Value(nullptr);
  if (forced_bos_token_id != d.forced_bos_token_id) out["forced_bos_token_id"] = opt(forced_bos_token_id);
  if (forced_eos_token_id != d.forced_eos_token_id) out["forced_eos_token_id"] = forced_eos_token_id;
  if (typical_p != d.typical_p) out["typical_p"] = typical_p;
  if (stop_strings != d.stop_strings) out["stop_strings"] = stop_strings;
  if (sequence_bias != d.sequence_bias)
    out["sequence_bias"] = sequence_bias ? sequence_bias_value(*sequence_bias) : Value(nullptr);
  if (remove_invalid_values != d.remove_invalid_values) out["remove_invalid_values"] = remove_invalid_values;
  if (exponential_decay_length_penalty != d.exponential_decay_length_penalty)
    out["exponential_decay_length_penalty"] =
        exponential_decay_length_penalty
            ? Value::array({exponential_decay_length_penalty->start, exponential_decay_length_penalty->factor})
            : Value(nullptr);
  if (suppress_tokens != d.suppress_tokens) out["suppress_tokens"] = opt(suppress_tokens);
  if (begin_suppress_tokens != d.begin_suppress_tokens) out["begin_suppress_tokens"] = opt(begin_suppress_tokens);
  if (epsilon_cutoff != d.epsilon_cutoff) out["epsilon_cutoff"] = epsilon_cutoff;
  if (eta_cutoff != d.eta_cutoff) out["eta_cutoff"] = eta_cutoff;
  if (renormalize_logits != d.renormalize_logits) out["renormalize_logits"] = renormalize_logits;
  for (const auto& [key, value] : other.items()) out[key] = value;
  return out;
}

namespace {

bool is_set(const Value& other, const char* key) { return other.contains(key) && !other[key].is_null(); }

double number_or(const Value& other, const char* key, double fallback) {
  return other.contains(key) && other[key].is_number() ? other[key].get<double>() : fallback;
}

// A decoding mode of GenerationConfig.get_generation_mode that transformers 4.57.6 serves
// from a Hub repo (custom_generate, only with trust_remote_code=True): its name and repo, or
// nullptr for the modes it runs itself.
struct HubMode {
  const char* name;   // as transformers names it in its error
  const char* repo;
  const char* flags;  // what selects it
};

std::optional<HubMode> hub_mode(const GenerationConfig& c) {
  const Value& o = c.other;
  if (is_set(o, "constraints") || is_set(o, "force_words_ids"))
    return HubMode{"Constrained Beam Search", "transformers-community/constrained-beam-search",
                   "constraints / force_words_ids"};
  bool greedy_or_sample = false;
  if (c.num_beams == 1) {
    if (!c.do_sample && c.top_k && *c.top_k > 1 && number_or(o, "penalty_alpha", 0.0) > 0)
      return HubMode{"Contrastive Search", "transformers-community/contrastive-search", "penalty_alpha > 0 with top_k > 1"};
    greedy_or_sample = true;
  } else if (number_or(o, "num_beam_groups", 1) > 1) {
    return HubMode{"Group Beam Search", "transformers-community/group-beam-search", "num_beam_groups > 1"};
  }
  // Assisted decoding (prompt lookup, early exit) takes greedy / sampling over before DoLa can.
  const bool assisted = is_set(o, "prompt_lookup_num_tokens") || is_set(o, "assistant_early_exit");
  if (is_set(o, "dola_layers") && greedy_or_sample && !assisted)
    return HubMode{"Dola Generation", "transformers-community/dola", "dola_layers"};
  return std::nullopt;
}

void refuse_set(const Value& other, const char* key, const std::string& why) {
  const Value* fallback = other_default(key);
  if (other.contains(key) && fallback && other[key] != *fallback)
    fail(ErrorKind::InvalidArgument, "`" + std::string(key) + "` (" + other[key].dump() + ") " + why);
}

void check_cutoff(const char* key, double value) {
  // transformers skips a value outside (0, 1) silently; like typical_p, hfpipe refuses it so
  // that a typo does not pass unnoticed (0 = off).
  if (!(value >= 0.0 && value < 1.0))
    fail(ErrorKind::InvalidArgument, "`" + std::string(key) + "` has to be a float > 0 and < 1, but is " +
                                         Value(value).dump());
}

}  // namespace

void check_supported(const GenerationConfig& c) {
  // The numbers that select a mode: another type must not slip past as "not set".
  for (const char* key : {"penalty_alpha", "diversity_penalty", "num_beam_groups", "guidance_scale"})
    if (is_set(c.other, key) && !c.other[key].is_number())
      bad("parameter", key, c.other[key], "a number");
  if (const auto mode = hub_mode(c))
    fail(ErrorKind::InvalidArgument,
         std::string(mode->name) + " (" + mode->flags + ") is not available: transformers 4.57.6 moved it to the Hub "
         "repo " + mode->repo + " and runs it only with `trust_remote_code=True` (\"" + mode->name +
         " requires `trust_remote_code=True` in your `generate` call\"); hfpipe runs no remote code");
  const Value& o = c.other;
  if (c.num_beams > 1 && is_set(o, "low_memory") && o["low_memory"] == true)
    fail(ErrorKind::InvalidArgument,
         "`low_memory=True` is not supported after the beam search refactor (transformers 4.57.6 refuses it too)");
  // Classifier-free guidance (generation/guidance.h) for greedy search and sampling only.
  if (c.num_beams > 1 && number_or(o, "guidance_scale", 1.0) != 1.0)
    fail(ErrorKind::InvalidArgument,
         "`guidance_scale` (" + o["guidance_scale"].dump() +
             ") is not supported with beam search (num_beams > 1): transformers' unconditional context does not "
             "follow the beams' reordering");
  refuse_set(o, "encoder_repetition_penalty", "is not supported by hfpipe (1.0 = off)");
  refuse_set(o, "encoder_no_repeat_ngram_size", "is not supported by hfpipe (0 = off)");
  refuse_set(o, "max_time", "is not supported: hfpipe has no wall-clock stop (null = none)");
  refuse_set(o, "token_healing",
             "is not supported: token healing rewrites the prompt's tail, which hfpipe does not do (transformers' "
             "pipeline refuses it too: it needs the tokenizer passed to `generate`)");
  refuse_set(o, "watermarking_config", "is not supported: hfpipe does not watermark (null = none)");
  // With return_dict_in_generate, transformers' pipeline adds generate's requested extra outputs
  // (scores, logits, attentions, hidden states) to its records; hfpipe does not produce them.
  if (o.contains("return_dict_in_generate") && o["return_dict_in_generate"] == true)
    for (const char* extra : {"output_scores", "output_logits", "output_attentions", "output_hidden_states"})
      if (o.contains(extra) && o[extra] == true)
        fail(ErrorKind::InvalidArgument, "`" + std::string(extra) +
                                             "` with `return_dict_in_generate` is not supported: hfpipe returns the "
                                             "generated text or token ids, not generate's extra outputs");
  check_cutoff("epsilon_cutoff", c.epsilon_cutoff);
  check_cutoff("eta_cutoff", c.eta_cutoff);
}

GenerationConfig load_model_generation_config(const std::filesystem::path& model_dir,
                                              const formats::ModelConfig& config) {
  GenerationConfig g;
  const auto path = model_dir / "generation_config.json";
  std::ifstream in(path);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    formats::check_json_depth(text.str(), path.string());
    Value json = Value::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object())
      fail(ErrorKind::CorruptFile, path.string() + " is not a JSON object");
    g.update(json, "generation_config.json key");
    return g;
  }
  Value from_model = Value::object();
  for (const char* key : GenerationConfig::keys())
    if (config.json().contains(key)) from_model[key] = config.json()[key];
  g.update(from_model, "config.json key");
  return g;
}

}  // namespace hfpipe::generation
