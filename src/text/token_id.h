#pragma once
// Token ids read from tokenizer files. The `tokenizers` library keeps ids as u32, but hfpipe's
// Encoding, the pipelines and the models' embedding lookups hold them as int32, where an id
// above INT32_MAX would wrap to a negative one. No real vocabulary comes near 2^31 entries, so
// every path that reads an id (or a type id) from a file refuses such an id at load with a
// CorruptFile naming the id and the file, instead of matching the library's u32 range.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace hfpipe::text {

inline constexpr uint32_t kMaxTokenId = uint32_t(INT32_MAX);

// `id` as a uint32_t, or CorruptFile "<where>: <what> <id> is larger than 2147483647 ...".
inline uint32_t checked_token_id(uint64_t id, const std::string& where, const char* what = "token id") {
  if (id > kMaxTokenId)
    fail(ErrorKind::CorruptFile, where + ": " + what + " " + std::to_string(id) + " is larger than " +
                                     std::to_string(kMaxTokenId) + ", the largest id hfpipe holds (its ids are int32)");
  return uint32_t(id);
}

// For vocabularies whose ids are positions (Unigram, vocab.txt, sentencepiece, tiktoken's
// special tokens, GGUF): the last position must still be an id.
inline void check_vocab_size(uint64_t entries, const std::string& where) {
  if (entries > uint64_t(kMaxTokenId) + 1) checked_token_id(entries - 1, where);
}

}  // namespace hfpipe::text
