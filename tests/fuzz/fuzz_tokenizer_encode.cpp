// Fuzz target: encode + decode arbitrary text (valid UTF-8 or not) with small tokenizers that
// exercise every model family and the byte-level, Metaspace and Precompiled-free pipelines;
// only hfpipe::Error may escape the engine.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

namespace {

const std::vector<hfpipe::text::Tokenizer>& tokenizers() {
  static const std::vector<hfpipe::text::Tokenizer> all = [] {
    std::vector<hfpipe::text::Tokenizer> t;
    t.push_back(hfpipe::text::Tokenizer::from_json(R"({"normalizer":{"type":"BertNormalizer"},
      "pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"type":"WordPiece","unk_token":"[UNK]",
      "vocab":{"[UNK]":0,"a":1,"##b":2,"hello":3}},"decoder":{"type":"WordPiece"}})"));
    t.push_back(hfpipe::text::Tokenizer::from_json(R"({"pre_tokenizer":{"type":"ByteLevel"},
      "model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3},"merges":["a b"]},"decoder":{"type":"ByteLevel"},
      "added_tokens":[{"id":4,"content":"<s>","special":true}]})"));
    t.push_back(hfpipe::text::Tokenizer::from_json(R"({"pre_tokenizer":{"type":"Sequence","pretokenizers":[
      {"type":"UnicodeScripts"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"first"}]},
      "model":{"type":"Unigram","unk_id":0,"byte_fallback":true,"vocab":[["<unk>",0],["▁",-1],["a",-2],["<0x41>",-3]]},
      "decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Metaspace","replacement":"▁"}]}})"));
    t.push_back(hfpipe::text::Tokenizer::from_json(R"({"pre_tokenizer":{"type":"FixedLength","length":3},
      "model":{"type":"BPE","vocab":{"<unk>":0,"<0x41>":1,"x":2},"merges":[],"unk_token":"<unk>","fuse_unk":true,
      "byte_fallback":true},"decoder":{"type":"CTC"}})"));
    return t;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& tok : tokenizers()) {
    try {
      auto e = tok.encode(text, {});
      tok.decode(std::vector<int32_t>(e.ids.begin(), e.ids.end()), true, true);
      tok.encode_pair(text, text, {});
    } catch (const Error&) {
    }
  }
  return 0;
}
