// The inside of hfpipe::text::Tokenizer, shared by tokenizer.cpp (the pipeline and
// tokenizer.json), tokenizer_config.cpp (folders, tokenizer_config.json and transformers'
// per-class rules) and legacy_vocab.cpp (vocab.txt / vocab.json + merges.txt converters).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/added_vocabulary.h"
#include "text/components.h"
#include "text/tokenizer.h"

namespace hfpipe::text {

// transformers' VERY_LARGE_INTEGER (int(1e30)) clamped to int64.
constexpr int64_t kVeryLargeInteger = INT64_MAX;

// Sequence-to-sequence language codes (language_codes.cpp): which transformers class rules
// apply, the codes its src_lang / tgt_lang accept, and the current ones.
enum class LangStyle { None, Marian, MBart50, Nllb, M2M100 };
struct LanguageCodes {
  LangStyle style = LangStyle::None;
  std::vector<std::string> codes;  // as src_lang / tgt_lang take them ("en_XX", "eng_Latn", "en", ">>fr<<")
  std::optional<std::string> src, tgt;
  bool legacy_behaviour = false;  // NLLB: suffix [eos, lang] instead of prefix [lang] ... [eos]
  uint32_t m2m100_first_id = 0;    // M2M100: the id of the first code's token (len(vocab.json))
};

struct SlowSpm;  // slow_spm_tokenizers.cpp

struct PadParams {
  uint32_t pad_id = 0;
  uint32_t pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

struct Tokenizer::Impl {
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Model> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  AddedVocabulary added;

  // tokenizer.json's own truncation / padding sections (transformers resets them per call;
  // they are kept for callers that want the file's defaults).
  std::optional<TruncationOptions> file_truncation;
  std::optional<PaddingOptions> file_padding;
  std::optional<PadParams> file_pad;

  // From tokenizer_config.json / special_tokens_map.json (or the tokenizer class defaults).
  int64_t model_max_length = kVeryLargeInteger;
  std::map<std::string, std::string> special_tokens;  // "cls_token" -> "[CLS]"
  std::vector<std::string> additional_special_tokens;
  bool clean_up_tokenization_spaces = false;
  Side padding_side = Side::Right;
  Side truncation_side = Side::Right;
  uint32_t pad_token_type_id = 0;
  std::string tokenizer_class;  // e.g. "BertTokenizerFast"; empty for a bare tokenizer.json
  std::vector<std::string> model_input_names{"input_ids", "token_type_ids", "attention_mask"};
  // CLIPTokenizerFast's decode: the model's end-of-word suffix becomes a space, then strip().
  std::optional<std::string> decode_suffix_to_space;
  // A GGUF file's tokenizer.chat_template (transformers' tokenizer_config "chat_template").
  std::optional<std::string> chat_template;

  // Sequence-to-sequence classes: the model and post-processor of transformers' target mode
  // (text_target), when they differ from the source ones; unset = the source ones.
  std::unique_ptr<Model> target_model;
  std::unique_ptr<PostProcessor> target_post_processor;
  LanguageCodes lang;
  // Slow sentencepiece classes (MarianTokenizer, M2M100Tokenizer): their own decode.
  std::shared_ptr<const SlowSpm> slow;

  Enc encode_single(std::string_view text, uint32_t type_id, bool char_offsets, bool target = false) const;
  Enc post_process(Enc enc, std::optional<Enc> pair, const EncodeOptions& options) const;
  std::optional<PadParams> pad_params() const;
  void add_tokens(const std::vector<AddedToken>& tokens, const std::string& where = "added tokens");
};

// Builds the pipeline from a tokenizer.json document.
void load_tokenizer_json(Tokenizer::Impl& impl, std::string_view json_text, const std::string& where);

// Slow-tokenizer conversions (transformers' convert_slow_tokenizer.py).
struct BertVocabOptions {
  bool do_lower_case = true;
  bool tokenize_chinese_chars = true;
  std::optional<bool> strip_accents;
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  bool mpnet = false;  // MPNetConverter: "<s> A </s> </s> B </s>"
};
void load_bert_vocab(Tokenizer::Impl& impl, const std::filesystem::path& vocab_txt, const BertVocabOptions& o);

struct ByteLevelBpeOptions {
  bool add_prefix_space = false;
  bool trim_offsets = true;
  bool roberta = false;  // RobertaProcessing instead of ByteLevel post-processing
  bool add_bos_token = false;  // GPT-2 with a bos template
  std::string bos_token = "<|endoftext|>";
  std::string cls_token = "<s>";
  std::string sep_token = "</s>";
};
void load_byte_level_bpe(Tokenizer::Impl& impl, const std::filesystem::path& vocab_json,
                         const std::filesystem::path& merges_txt, const ByteLevelBpeOptions& o);

std::string read_file(const std::filesystem::path& p);

// The slow sentencepiece classes (slow_spm_tokenizers.cpp): the model(s) from the folder's
// .spm / .model files and vocab.json; special tokens come from tokenizer_config.json after.
struct MarianFiles {
  bool separate_vocabs = false;
  std::string unk_token = "<unk>";
  std::string pad_token = "<pad>";
};
void load_marian(Tokenizer::Impl& impl, const std::filesystem::path& dir, const MarianFiles& o);
// `codes`: the language codes, whose "__xx__" tokens follow vocab.json's ids.
void load_m2m100(Tokenizer::Impl& impl, const std::filesystem::path& dir, const std::string& unk_token,
                 const std::vector<std::string>& codes);
// PreTrainedTokenizer._decode for those classes (without the clean-up of spaces).
std::string slow_spm_decode(const Tokenizer::Impl& impl, const std::vector<int32_t>& ids, bool skip_special_tokens);

// language_codes.cpp: the code lists of mBART-50, NLLB and M2M100 (`which` = "mbart50",
// "nllb", "m2m100", "wmt21"); empty for another name.
const std::vector<std::string>& fairseq_language_codes(const std::string& which);
// Rebuilds post_processor / target_post_processor for lang.src / lang.tgt, as the class's
// set_src_lang_special_tokens / set_tgt_lang_special_tokens do.
void apply_language_codes(Tokenizer::Impl& impl);
// The token of a language code and its id; Error(InvalidArgument) naming the known codes.
std::string language_token(const Tokenizer::Impl& impl, const std::string& code);
uint32_t language_token_id(const Tokenizer::Impl& impl, const std::string& code);

}  // namespace hfpipe::text
