// Fuzz target: ModelConfig::parse (config.json) over arbitrary bytes, then the typed
// accessors the models use, must succeed or throw hfpipe::Error. Deep nesting once overflowed
// the stack here (nlohmann copies recursively), and num_labels once allocated without bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "formats/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  try {
    const auto config =
        formats::ModelConfig::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const char* key : {"hidden_size", "num_hidden_layers", "vocab_size", "max_position_embeddings"})
      config.get_int(key, 0);
    config.get_double("layer_norm_eps", 1e-12);
    config.get_string("hidden_act", "gelu");
    config.get_bool("tie_word_embeddings", true);
    config.problem_type();
    (void)config.json().dump();  // recursive in nlohmann: must be bounded by the depth limit
  } catch (const Error&) {
  }
  return 0;
}
