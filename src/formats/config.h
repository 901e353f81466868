// config.json of a Hugging Face model folder, with typed accessors for the fields hfpipe
// reads. Missing optional fields fall back to the defaults of transformers' PretrainedConfig.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "hfpipe/value.h"

namespace hfpipe::formats {

class ModelConfig {
 public:
  // Reads `<dir>/config.json`. Missing → Error(NotFound); invalid JSON or not an object →
  // Error(CorruptFile); no "model_type" → Error(UnsupportedModel).
  static ModelConfig load(const std::filesystem::path& model_dir);
  // The same from the text of a config.json; `source` names it in error messages.
  static ModelConfig parse(std::string_view text, const std::string& source);
  static ModelConfig from_json(const Value& json, const std::string& source = "config.json");

  const std::string& model_type() const { return model_type_; }
  const Value& json() const { return json_; }
  bool has(const std::string& key) const { return json_.contains(key) && !json_[key].is_null(); }

  // Typed field access: a present field of the wrong type is Error(CorruptFile).
  int64_t get_int(const std::string& key) const;  // required
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;

  // Labels as transformers derives them: id2label if present, else num_labels (default 2)
  // generic names LABEL_0.. .
  const std::map<int64_t, std::string>& id2label() const { return id2label_; }
  int64_t num_labels() const { return static_cast<int64_t>(id2label_.size()); }
  // "regression", "single_label_classification", "multi_label_classification" or empty.
  std::string problem_type() const { return get_string("problem_type", ""); }

 private:
  Value json_;
  std::string model_type_;
  std::string source_;
  std::map<int64_t, std::string> id2label_;
};

}  // namespace hfpipe::formats
