// Fuzz target: Tokenizer::from_json over arbitrary bytes must build a tokenizer or throw
// hfpipe::Error; a tokenizer it builds must encode and decode a few fixed texts without
// anything but hfpipe::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  try {
    auto tok = text::Tokenizer::from_json(std::string_view(reinterpret_cast<const char*>(data), size));
    for (const char* s : {"Hello world!", "", "  héllo\t日本語 😀 <s> [CLS] 123"}) {
      try {
        auto e = tok.encode(s, {});
        tok.decode(std::vector<int32_t>(e.ids.begin(), e.ids.end()), false, true);
      } catch (const Error&) {
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
