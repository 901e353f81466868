#include "generation/generation_config.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

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

}  // namespace

const std::vector<const char*>& GenerationConfig::keys() {
  static const std::vector<const char*> k = {
      "max_length",   "max_new_tokens", "min_length", "min_new_tokens",       "do_sample",
      "temperature",  "top_k",          "top_p",      "min_p",                "repetition_penalty",
      "num_return_sequences", "eos_token_id", "pad_token_id", "bos_token_id", "forced_bos_token_id",
      "forced_eos_token_id"};
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
    else if (key == "forced_bos_token_id") forced_bos_token_id = as_optional_id(source, key, v);
    else if (key == "forced_eos_token_id") forced_eos_token_id = as_id_list(source, key, v);
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
  if (forced_bos_token_id != d.forced_bos_token_id) out["forced_bos_token_id"] = opt(forced_bos_token_id);
  if (forced_eos_token_id != d.forced_eos_token_id) out["forced_eos_token_id"] = forced_eos_token_id;
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
