// Fuzz target: GgufFile::parse over arbitrary bytes, then dequantising every tensor, must
// read only inside the input and either succeed or throw hfpipe::Error. Anything else (a
// crash, a sanitizer report, another exception type, a hang) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/gguf.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  try {
    const auto file = formats::GgufFile::parse(formats::ByteView{data, size, nullptr, "fuzz"});
    fuzz::touch_all(file.load_all());
  } catch (const Error&) {
  }
  return 0;
}
