#include "pipelines/sentence_pooling.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "formats/json_depth.h"
#include "core/mapped_file.h"
#include "hfpipe/value.h"

namespace hfpipe::pipelines {

namespace fs = std::filesystem;

namespace {

Value read_json(const fs::path& path) {
  const std::string text = read_text_file(path);
  formats::check_json_depth(text, path.string());
  Value v = Value::parse(text, nullptr, false);
  if (v.is_discarded()) fail(ErrorKind::CorruptFile, path.string() + " is not valid JSON");
  return v;
}

bool flag(const Value& config, const char* key) {
  return config.contains(key) && config[key].is_boolean() && config[key].get<bool>();
}

SentencePooling::Mode mode_from_name(const std::string& name) {
  using Mode = SentencePooling::Mode;
  if (name == "cls") return Mode::Cls;
  if (name == "max") return Mode::Max;
  if (name == "mean") return Mode::Mean;
  if (name == "mean_sqrt_len_tokens") return Mode::MeanSqrtLen;
  if (name == "weightedmean") return Mode::WeightedMean;
  if (name == "lasttoken") return Mode::LastToken;
  fail(ErrorKind::UnsupportedModel, "sentence-transformers pooling mode '" + name + "' is not supported");
}

// The Pooling module's modes in concatenation order: "pooling_mode" (a name or a list), else
// the legacy flags in sentence-transformers' fixed order, else mean.
std::vector<SentencePooling::Mode> pooling_modes(const Value& config) {
  std::vector<SentencePooling::Mode> modes;
  if (config.contains("pooling_mode")) {
    const Value& m = config["pooling_mode"];
    if (m.is_string()) return {mode_from_name(m.get<std::string>())};
    if (m.is_array())
      for (const Value& name : m) {
        if (!name.is_string()) fail(ErrorKind::CorruptFile, "pooling_mode entries must be strings");
        modes.push_back(mode_from_name(name.get<std::string>()));
      }
    if (modes.empty()) fail(ErrorKind::CorruptFile, "pooling_mode must be a mode name or a list of them");
    return modes;
  }
  const std::pair<const char*, const char*> legacy[] = {
      {"pooling_mode_cls_token", "cls"},        {"pooling_mode_max_tokens", "max"},
      {"pooling_mode_mean_tokens", "mean"},     {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
      {"pooling_mode_weightedmean_tokens", "weightedmean"}, {"pooling_mode_lasttoken", "lasttoken"}};
  for (const auto& [key, name] : legacy)
    if (flag(config, key)) modes.push_back(mode_from_name(name));
  if (modes.empty()) modes.push_back(SentencePooling::Mode::Mean);
  return modes;
}

}  // namespace

std::optional<SentencePooling> SentencePooling::load(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "modules.json", ec)) return std::nullopt;
  const Value modules = read_json(dir / "modules.json");
  if (!modules.is_array()) fail(ErrorKind::CorruptFile, "modules.json must hold a list of modules");
  SentencePooling pooling;
  bool has_pooling = false;
  for (const Value& module : modules) {
    const std::string type = module.value("type", "");
    const std::string path = module.value("path", "");
    if (type.ends_with(".Transformer")) continue;
    if (type.ends_with(".Normalize")) {
      pooling.normalize_ = true;
    } else if (type.ends_with(".Pooling")) {
      if (path.find("..") != std::string::npos || (!path.empty() && path.front() == '/'))
        fail(ErrorKind::CorruptFile, "modules.json: invalid module path '" + path + "'");
      pooling.modes_ = pooling_modes(read_json(dir / path / "config.json"));
      has_pooling = true;
    } else {
      fail(ErrorKind::UnsupportedModel, "sentence-transformers module '" + type +
                                            "' is not supported; supported: Transformer, Pooling, Normalize");
    }
  }
  if (!has_pooling) fail(ErrorKind::UnsupportedModel, "modules.json has no Pooling module");
  if (fs::is_regular_file(dir / "sentence_bert_config.json", ec)) {
    const Value config = read_json(dir / "sentence_bert_config.json");
    if (config.contains("max_seq_length") && config["max_seq_length"].is_number_integer())
      pooling.max_seq_length_ = config["max_seq_length"].get<int64_t>();
  }
  return pooling;
}

std::vector<float> SentencePooling::pool(const float* x, int64_t seq, int64_t hidden) const {
  std::vector<float> out;
  // Sum of rows weighted by weight(s); the mean variants and weightedmean differ only in it.
  auto weighted_sum = [&](auto weight) {
    std::vector<float> sum(static_cast<size_t>(hidden), 0.f);
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < hidden; ++h) sum[h] += x[s * hidden + h] * weight(s);
    return sum;
  };
  auto append_scaled = [&](const std::vector<float>& v, float divisor) {
    for (float value : v) out.push_back(value / divisor);
  };
  for (Mode mode : modes_) {
    switch (mode) {
      case Mode::Cls: out.insert(out.end(), x, x + hidden); break;
      case Mode::LastToken: out.insert(out.end(), x + (seq - 1) * hidden, x + seq * hidden); break;
      case Mode::Max: {
        std::vector<float> m(static_cast<size_t>(hidden), -std::numeric_limits<float>::infinity());
        for (int64_t s = 0; s < seq; ++s)
          for (int64_t h = 0; h < hidden; ++h) m[h] = std::max(m[h], x[s * hidden + h]);
        out.insert(out.end(), m.begin(), m.end());
        break;
      }
      case Mode::Mean:
        append_scaled(weighted_sum([](int64_t) { return 1.f; }), std::max(static_cast<float>(seq), 1e-9f));
        break;
      case Mode::MeanSqrtLen:
        append_scaled(weighted_sum([](int64_t) { return 1.f; }), std::sqrt(std::max(static_cast<float>(seq), 1e-9f)));
        break;
      case Mode::WeightedMean:  // positions weighted 1..seq
        append_scaled(weighted_sum([](int64_t s) { return static_cast<float>(s + 1); }),
                      static_cast<float>(seq * (seq + 1) / 2));
        break;
    }
  }
  if (normalize_) {
    double norm = 0;
    for (float v : out) norm += static_cast<double>(v) * v;
    const float scale = 1.f / std::max(static_cast<float>(std::sqrt(norm)), 1e-12f);
    for (float& v : out) v *= scale;
  }
  return out;
}

}  // namespace hfpipe::pipelines
