// Fuzz target: the sentencepiece ModelProto reader and the Unigram / BPE conversions over
// arbitrary bytes: a model or hfpipe::Error, nothing else.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "text/sentencepiece_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  try {
    auto m = text::read_sentencepiece_model(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    text::Tokenizer::Impl impl;
    text::load_sentencepiece(impl, m, {}, "fuzz");
    std::vector<text::Token> out;
    impl.model->tokenize("\xE2\x96\x81hello world", out);
  } catch (const Error&) {
  }
  return 0;
}
