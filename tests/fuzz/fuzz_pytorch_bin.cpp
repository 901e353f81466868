// Fuzz target: parse_pytorch_bin over arbitrary bytes (a whole torch.save archive: zip
// directory, records, pickle) must return tensors that lie inside the input or in buffers
// it owns, or throw hfpipe::Error.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/pytorch_bin.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  try {
    const formats::WeightMap weights = formats::parse_pytorch_bin(formats::ByteView{data, size, nullptr, "fuzz"});
    fuzz::touch_all(weights);
  } catch (const Error&) {
  }
  return 0;
}
