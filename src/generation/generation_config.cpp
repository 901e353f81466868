#include "generation/generation_config.h"

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

// eos_token_id: an int or a list of ints (null = none).
std::vector<int32_t> as_id_list(const char* source, const std::string& key, const Value& v) {
  std::vector<int32_t> ids;
  if (v.is_null()) return ids;
  if (v.is_number_integer()) return {static_cast<int32_t>(v.get<int64_t>())};
  if (!v.is_array()) bad(source, key, v, "an integer or a list of integers");
  for (const Value& id : v) ids.push_back(static_cast<int32_t>(as_int(source, key, id)));
  return ids;
}

std::optional<int32_t> as_optional_id(const char* source, const std::string& key, const Value& v) {
  // Some configs hold a list for pad/bos; transformers uses the first element then.
  if (v.is_array()) {
    auto ids = as_id_list(source, key, v);
    return ids.empty() ? std::nullopt : std::optional<int32_t>(ids.front());
  }
  auto id = as_optional_int(source, key, v);
  return id ? std::optional<int32_t>(static_cast<int32_t>(*id)) : std::nullopt;
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
      "forced_eos_token_id", "typical_p", "stop_strings"};
  return k;
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
  return out;
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
