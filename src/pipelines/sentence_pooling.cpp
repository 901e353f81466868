#include "pipelines/sentence_pooling.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/mapped_file.h"
#include "hfpipe/value.h"

namespace hfpipe::pipelines {

namespace fs = std::filesystem;

namespace {

Value read_json(const fs::path& path) {
  Value v = Value::parse(read_text_file(path), nullptr, false);
  if (v.is_discarded()) fail(ErrorKind::CorruptFile, path.string() + " is not valid JSON");
  return v;
}

bool flag(const Value& config, const char* key) { return config.contains(key) && config[key].is_boolean() && config[key].get<bool>(); }

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
      const Value config = read_json(dir / path / "config.json");
      pooling.cls_ = flag(config, "pooling_mode_cls_token");
      pooling.mean_ = flag(config, "pooling_mode_mean_tokens");
      pooling.max_ = flag(config, "pooling_mode_max_tokens");
      pooling.mean_sqrt_len_ = flag(config, "pooling_mode_mean_sqrt_len_tokens");
      for (const char* unsupported : {"pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"})
        if (flag(config, unsupported))
          fail(ErrorKind::UnsupportedModel, std::string("sentence-transformers pooling mode ") + unsupported +
                                                " is not supported yet");
      has_pooling = true;
    } else {
      fail(ErrorKind::UnsupportedModel, "sentence-transformers module '" + type +
                                            "' is not supported; supported: Transformer, Pooling, Normalize");
    }
  }
  if (!has_pooling || !(pooling.cls_ || pooling.mean_ || pooling.max_ || pooling.mean_sqrt_len_))
    fail(ErrorKind::UnsupportedModel, "modules.json has no Pooling module with a supported pooling mode");
  if (fs::is_regular_file(dir / "sentence_bert_config.json", ec)) {
    const Value config = read_json(dir / "sentence_bert_config.json");
    if (config.contains("max_seq_length") && config["max_seq_length"].is_number_integer())
      pooling.max_seq_length_ = config["max_seq_length"].get<int64_t>();
  }
  return pooling;
}

std::vector<float> SentencePooling::pool(const float* x, int64_t seq, int64_t hidden) const {
  std::vector<float> out;
  // The order sentence-transformers concatenates modes in: cls, max, mean, mean_sqrt_len.
  if (cls_) out.insert(out.end(), x, x + hidden);
  if (max_) {
    std::vector<float> m(static_cast<size_t>(hidden), std::numeric_limits<float>::lowest());
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < hidden; ++h) m[h] = std::max(m[h], x[s * hidden + h]);
    out.insert(out.end(), m.begin(), m.end());
  }
  if (mean_ || mean_sqrt_len_) {
    std::vector<float> sum(static_cast<size_t>(hidden), 0.f);
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < hidden; ++h) sum[h] += x[s * hidden + h];
    const float count = std::max(static_cast<float>(seq), 1e-9f);
    if (mean_)
      for (float v : sum) out.push_back(v / count);
    if (mean_sqrt_len_)
      for (float v : sum) out.push_back(v / std::sqrt(count));
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
