// Fuzz target: parse_safetensors over arbitrary bytes must return tensors that lie inside
// the input, or throw hfpipe::Error. Anything else (a crash, a sanitizer report, another
// exception type, a hang) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  try {
    const formats::WeightMap weights = formats::parse_safetensors(formats::ByteView{data, size, nullptr, "fuzz"});
    fuzz::touch_all(weights);
  } catch (const Error&) {
  }
  return 0;
}
