// sentencepiece's own encoder and decoder (SentencePieceProcessor::Encode / DecodePieces), for
// the slow transformers classes that call it directly instead of a converted fast pipeline:
// MarianTokenizer and M2M100Tokenizer (slow_spm_tokenizers.cpp). The converted pipelines of
// sentencepiece_model.cpp follow convert_slow_tokenizer.py, which differs from sentencepiece
// itself on whitespace (remove_extra_whitespaces), user-defined symbols and float scores;
// these classes need sentencepiece's exact behaviour.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/sentencepiece_model.h"

namespace hfpipe::text {

struct SpmPieceOut {
  std::string piece;  // the piece's text (for an unknown run: the normalised text it covers)
  int32_t id = 0;     // the id in the .model file
  size_t begin = 0;   // byte span in the input text
  size_t end = 0;
};

class SpmProcessor {
 public:
  // `where` names the file in errors; model types other than unigram and BPE, whitespace as a
  // suffix and denormalisation rules are refused (Error UnsupportedModel).
  SpmProcessor(SpmModel model, const std::string& where);
  ~SpmProcessor();
  SpmProcessor(SpmProcessor&&) noexcept;

  // sp.encode(text, out_type=str) with the pieces' ids and spans.
  std::vector<SpmPieceOut> encode(std::string_view text) const;
  // sp.decode_pieces(pieces).
  std::string decode_pieces(const std::vector<std::string>& pieces) const;
  // sp.piece_to_id: the unk id for a piece the model does not have.
  int32_t piece_to_id(std::string_view piece) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hfpipe::text
