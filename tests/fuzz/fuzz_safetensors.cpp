// Fuzz target: parse_safetensors over arbitrary bytes must return tensors that lie inside
// the input, or throw hfpipe::Error — loading for float32 and for bfloat16 (which keeps 2-D
// BF16 tensors as views, read back through WeightMap::at). Anything else (a crash, a sanitizer report, another
// exception type, a hang) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  for (ops::Precision precision : {ops::Precision::Float32, ops::Precision::BFloat16}) {
    try {
      const formats::WeightMap weights =
          formats::parse_safetensors(formats::ByteView{data, size, nullptr, "fuzz"}, precision);
      fuzz::touch_all(weights);
    } catch (const Error&) {
    }
  }
  return 0;
}
