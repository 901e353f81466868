// Test support, not a user command: applies hfpipe's logits-processor chain for a generation
// config to given next-token scores, so that tests/python/test_generation_strategies.py can
// compare the processed scores with transformers' LogitsProcessorList (the warpers only act
// under sampling, whose random draws differ from torch's by design).
//
// usage: hfpipe_generation_processors < request.json
//   stdin: {"config": {GenerationConfig keys}, "prompt_length": N,
//           "sequences": [[id, ...], ...] (each row's tokens so far, prompt included),
//           "scores": [[float, ...], ...] (one row per sequence, vocab wide)}
//   The limits are those generate derives for a prompt of prompt_length (max_length as given
//   or max_new_tokens + prompt_length; min_new_tokens + prompt_length over min_length).
// stdout: {"scores": [[float or null (-inf), ...], ...]}
// Errors: "hfpipe_generation_processors: error: ..." on stderr and exit status 1.
#include <cmath>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "generation/generate.h"
#include "generation/logits_processors.h"
#include "hfpipe/value.h"

namespace {

using hfpipe::ErrorKind;
using hfpipe::Value;
namespace gen = hfpipe::generation;

Value run(const Value& request) {
  hfpipe::check(request.is_object() && request.contains("sequences") && request.contains("scores"),
                ErrorKind::InvalidArgument, "request needs \"sequences\" and \"scores\"");
  gen::GenerationConfig config;
  if (request.contains("config")) config.update(request["config"]);
  gen::validate(config);
  const int64_t prompt_length = request.value("prompt_length", int64_t{1});
  const gen::RowLimits limits = gen::resolve_limits(config, prompt_length, /*max_length_given=*/true, INT64_MAX);
  const auto sequences = request["sequences"].get<std::vector<std::vector<int32_t>>>();
  auto scores = request["scores"].get<std::vector<std::vector<float>>>();
  hfpipe::check(sequences.size() == scores.size(), ErrorKind::InvalidArgument, "one score row per sequence");
  Value out = Value::array();
  for (size_t r = 0; r < scores.size(); ++r) {
    auto& row = scores[r];
    gen::process_scores(row.data(), static_cast<int64_t>(row.size()), sequences[r], limits.prompt_length,
                        limits.min_length, limits.max_length, config);
    Value values = Value::array();
    for (float v : row) values.push_back(std::isinf(v) && v < 0 ? Value(nullptr) : Value(v));
    out.push_back(values);
  }
  return Value{{"scores", out}};
}

}  // namespace

int main() {
  try {
    const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    const Value request = Value::parse(text, nullptr, /*allow_exceptions=*/false);
    hfpipe::check(!request.is_discarded(), ErrorKind::InvalidArgument, "stdin is not JSON");
    std::cout << run(request).dump() << '\n';
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "hfpipe_generation_processors: error: " << e.what() << '\n';
    return 1;
  }
}
