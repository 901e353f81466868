#include "cli/logits_command.h"

#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/config.h"
#include "formats/weights.h"
#include "hfpipe/value.h"
#include "hub/resolve.h"
#include "models/decoder.h"

namespace hfpipe::cli {

namespace {

constexpr const char* kUsage =
    "usage: hfpipe logits --model M [--step N] [--attn-implementation sdpa|eager] [--dtype float32|bfloat16] IDS_JSON\n";

// Logits of every position of `ids`, fed `step` tokens per forward call.
Value all_logits(const models::DecoderModel& model, const std::vector<int32_t>& ids, int64_t step) {
  const int64_t n = static_cast<int64_t>(ids.size()), vocab = model.vocab_size();
  models::KvCache cache = model.new_cache(1, n);
  std::vector<int32_t> positions(ids.size()), mask(ids.size(), 1);
  for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(i);
  Value rows = Value::array();
  for (int64_t start = 0; start < n; start += step) {
    const int64_t count = std::min(step, n - start);
    const models::DecoderStep s{1, count, ids.data() + start, positions.data() + start, mask.data()};
    Tensor logits = model.forward(s, cache, /*all_positions=*/true);
    for (int64_t r = 0; r < count; ++r)
      rows.push_back(std::vector<float>(logits.f32() + r * vocab, logits.f32() + (r + 1) * vocab));
  }
  return rows;
}

}  // namespace

int logits_main(int argc, char** argv) {
  std::string model, ids_json, attn_implementation = "sdpa";
  ops::Precision precision = ops::Precision::Float32;
  int64_t step = 0;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--model" && i + 1 < argc) {
        model = argv[++i];
      } else if (a == "--step" && i + 1 < argc) {
        step = std::stoll(argv[++i]);
      } else if (a == "--attn-implementation" && i + 1 < argc) {
        attn_implementation = argv[++i];  // transformers' attn_implementation; Gemma 2 depends on it
      } else if (a == "--dtype" && i + 1 < argc) {
        const std::string dtype = argv[++i];  // pipeline()'s torch_dtype
        if (dtype != "float32" && dtype != "bfloat16") throw std::invalid_argument("--dtype takes float32 or bfloat16");
        precision = dtype == "bfloat16" ? ops::Precision::BFloat16 : ops::Precision::Float32;
      } else if (ids_json.empty() && a.rfind("--", 0) != 0) {
        ids_json = a;
      } else {
        throw std::invalid_argument("unexpected argument " + a);
      }
    }
    if (model.empty() || ids_json.empty()) throw std::invalid_argument("--model and IDS_JSON are required");
  } catch (const std::exception& e) {
    std::cerr << "hfpipe: error: " << e.what() << '\n' << kUsage;
    return 2;
  }
  try {
    const Value parsed = Value::parse(ids_json, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_array() || parsed.empty())
      fail(ErrorKind::InvalidArgument, "IDS_JSON must be a non-empty JSON list of token ids");
    const std::vector<int32_t> ids = parsed.get<std::vector<int32_t>>();
    std::unique_ptr<models::DecoderModel> decoder;
    if (model.size() > 5 && model.compare(model.size() - 5, 5, ".gguf") == 0) {
      decoder = models::load_gguf_decoder(model, precision);
    } else {
      const auto dir = hub::resolve_model(model, "main");
      decoder = models::load_decoder(
          models::with_attn_implementation(formats::ModelConfig::load(dir), attn_implementation),
          formats::load_checkpoint(dir, precision));
    }
    const Value rows = all_logits(*decoder, ids, step > 0 ? step : static_cast<int64_t>(ids.size()));
    std::cout << Value{{"logits", rows}}.dump() << '\n';
    return 0;
  } catch (const Error& e) {
    std::cerr << "hfpipe: error: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "hfpipe: error: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace hfpipe::cli
