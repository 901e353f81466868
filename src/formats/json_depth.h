// A nesting limit for the JSON files of a model folder (config.json, tokenizer_config.json,
// generation_config.json, ...), checked before nlohmann::json parses them. nlohmann parses
// and destroys any depth without recursion, but copying, comparing or dumping a value recurses
// once per level: a config.json holding a megabyte of '[' overflowed the stack on its first
// copy. Real files nest a handful of levels.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/error.h"

namespace hfpipe::formats {

inline constexpr size_t kMaxJsonDepth = 512;

// Throws Error(CorruptFile) naming `source` when `text` nests arrays / objects more than
// kMaxJsonDepth deep. Brackets inside strings do not count; malformed text is left to the parser.
inline void check_json_depth(std::string_view text, const std::string& source) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        fail(ErrorKind::CorruptFile, source + ": JSON nested more than " + std::to_string(kMaxJsonDepth) +
                                         " levels deep");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

}  // namespace hfpipe::formats
