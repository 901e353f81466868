// sentencepiece .model files (ModelProto) and their conversion to a tokenizer pipeline, as
// transformers' convert_slow_tokenizer.py does it (sentencepiece_model.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_impl.h"

namespace hfpipe::text {

struct SpmPiece {
  std::string piece;
  float score = 0;
  int type = 1;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
};

struct SpmModel {
  std::vector<SpmPiece> pieces;
  int model_type = 1;  // 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;
  int32_t unk_id = 0;
  std::string unk_piece = "<unk>";
  std::string precompiled_charsmap;  // raw bytes; empty = no normalisation
  // NormalizerSpec / TrainerSpec flags that sentencepiece's own encoder honours (the
  // converters above approximate them; SpmProcessor in sentencepiece_processor.h uses them).
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  bool treat_whitespace_as_suffix = false;
  std::string unk_surface = " \xE2\x81\x87 ";  // " ⁇ "
  bool has_denormalizer = false;                 // a denormalizer_spec with rules
};

// Parses a ModelProto; Error(CorruptFile) naming `where` on any malformed byte.
SpmModel read_sentencepiece_model(std::string_view data, const std::string& where);
// Whether `data` starts like a ModelProto (tokenizer.model is either that or a tiktoken file).
bool looks_like_sentencepiece(std::string_view data);

// Which converter: SpmConverter itself (Generic), LlamaConverter, T5Converter, XLMRobertaConverter.
enum class SpmFlavor { Generic, Llama, T5, XlmRoberta };
inline constexpr size_t kMaxExtraIds = size_t(1) << 20;  // see load_sentencepiece

struct SpmConvertOptions {
  SpmFlavor flavor = SpmFlavor::Generic;
  bool legacy = true;  // the slow class's `legacy`
  bool add_prefix_space = true;
  size_t extra_ids = 0;  // T5: <extra_id_N> pieces appended
};
void load_sentencepiece(Tokenizer::Impl& impl, const SpmModel& m, const SpmConvertOptions& o, const std::string& where);

// tiktoken rank files (tiktoken.cpp); `pattern` empty = TikTokenConverter's default (Llama 3's).
constexpr const char* kTiktokenPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
void load_tiktoken(Tokenizer::Impl& impl, std::string_view data, const std::string& where,
                   const std::vector<std::string>& special_tokens, const std::string& pattern);

}  // namespace hfpipe::text
