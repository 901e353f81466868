#include "models/encoder.h"

#include <map>

#include "core/error.h"

namespace hfpipe::models {

namespace {
// The registry: model_type → family factory. Adding an architecture adds one line here.
const std::map<std::string, EncoderFactory>& registry() {
  static const std::map<std::string, EncoderFactory> factories = {
      {"albert", make_albert},
      {"bert", make_bert},
      {"deberta", make_deberta},
      {"deberta-v2", make_deberta_v2},
      {"distilbert", make_distilbert},
      {"electra", make_electra},
      {"roberta", make_roberta},
      {"xlm-roberta", make_roberta},
      {"mpnet", make_mpnet},
  };
  return factories;
}
}  // namespace

std::vector<std::string> supported_encoder_types() {
  std::vector<std::string> types;
  for (const auto& entry : registry()) types.push_back(entry.first);
  return types;
}

std::unique_ptr<EncoderModel> load_encoder(const formats::ModelConfig& config, formats::WeightMap weights, Head head) {
  auto it = registry().find(config.model_type());
  if (it == registry().end()) {
    std::string list;
    for (const auto& type : supported_encoder_types()) list += (list.empty() ? "" : ", ") + type;
    fail(ErrorKind::UnsupportedModel, "model_type '" + config.model_type() + "' is not supported; supported: " + list);
  }
  return it->second(config, std::move(weights), head);
}

}  // namespace hfpipe::models
