#include "formats/config.h"

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/json_depth.h"

namespace hfpipe::formats {

namespace {

constexpr int64_t kMaxGenericLabels = int64_t{1} << 20;

std::map<int64_t, std::string> read_labels(const Value& json, const std::string& source) {
  std::map<int64_t, std::string> labels;
  if (json.contains("id2label") && json["id2label"].is_object()) {
    for (const auto& [key, value] : json["id2label"].items()) {
      try {
        size_t used = 0;
        int64_t id = std::stoll(key, &used);
        if (used != key.size()) throw std::invalid_argument(key);
        labels[id] = value.is_string() ? value.get<std::string>() : value.dump();
      } catch (const std::exception&) {
        fail(ErrorKind::CorruptFile, source + ": id2label key '" + key + "' is not an integer");
      }
    }
    return labels;
  }
  int64_t n = 2;
  if (json.contains("num_labels") && json["num_labels"].is_number_integer()) n = json["num_labels"].get<int64_t>();
  // One generic name is made per label, so a hostile count would allocate without bound.
  if (n > kMaxGenericLabels)
    fail(ErrorKind::CorruptFile, source + ": num_labels " + std::to_string(n) + " is implausibly large (more than " +
                                     std::to_string(kMaxGenericLabels) + ") for a config without id2label");
  for (int64_t i = 0; i < n; ++i) labels[i] = "LABEL_" + std::to_string(i);
  return labels;
}

}  // namespace

ModelConfig ModelConfig::load(const std::filesystem::path& model_dir) {
  auto path = model_dir / "config.json";
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const Error& e) {
    fail(ErrorKind::NotFound, "no config.json in " + model_dir.string() +
                                  ": a Hugging Face model folder needs one (save it with model.save_pretrained())");
  }
  return parse(text, path.string());
}

ModelConfig ModelConfig::parse(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  Value json = Value::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) fail(ErrorKind::CorruptFile, source + " is not valid JSON");
  return from_json(json, source);
}

ModelConfig ModelConfig::from_json(const Value& json, const std::string& source) {
  if (!json.is_object()) fail(ErrorKind::CorruptFile, source + " must hold a JSON object");
  ModelConfig config;
  config.json_ = json;
  config.source_ = source;
  if (!json.contains("model_type") || !json["model_type"].is_string())
    fail(ErrorKind::UnsupportedModel, source + " has no \"model_type\"; hfpipe needs it to pick the architecture");
  config.model_type_ = json["model_type"].get<std::string>();
  config.id2label_ = read_labels(json, source);
  return config;
}

int64_t ModelConfig::get_int(const std::string& key) const {
  if (!has(key)) fail(ErrorKind::CorruptFile, source_ + " lacks the required field \"" + key + "\"");
  return get_int(key, 0);
}

int64_t ModelConfig::get_int(const std::string& key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const Value& v = json_[key];
  if (!v.is_number_integer()) fail(ErrorKind::CorruptFile, source_ + ": \"" + key + "\" must be an integer");
  return v.get<int64_t>();
}

double ModelConfig::get_double(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const Value& v = json_[key];
  if (!v.is_number()) fail(ErrorKind::CorruptFile, source_ + ": \"" + key + "\" must be a number");
  return v.get<double>();
}

std::string ModelConfig::get_string(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const Value& v = json_[key];
  if (!v.is_string()) fail(ErrorKind::CorruptFile, source_ + ": \"" + key + "\" must be a string");
  return v.get<std::string>();
}

bool ModelConfig::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const Value& v = json_[key];
  if (!v.is_boolean()) fail(ErrorKind::CorruptFile, source_ + ": \"" + key + "\" must be true or false");
  return v.get<bool>();
}

}  // namespace hfpipe::formats
