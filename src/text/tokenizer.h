// The tokenizer engine: a reimplementation of Hugging Face `tokenizers` (the Rust library
// behind transformers' fast tokenizers) driven by tokenizer.json, or by the older vocab
// files (vocab.txt, vocab.json + merges.txt) converted at load as transformers converts them.
//
// Offsets are BYTE offsets into the UTF-8 text of their own sequence (the first text or the
// pair); callers that need Python's character offsets convert with byte_to_char_offsets().
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hfpipe::text {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  std::vector<std::string> tokens;
  std::vector<std::pair<size_t, size_t>> offsets;  // byte [start, end) in the token's own sequence
  std::vector<int32_t> special_tokens_mask;        // 1 for tokens added by the post-processor
  std::vector<int32_t> attention_mask;             // 0 for padding
  std::vector<int32_t> word_ids;                   // -1 where there is no word (special, padding)
  std::vector<int32_t> sequence_ids;               // 0 or 1; -1 for special and padding tokens
  std::vector<Encoding> overflowing;               // windows cut off by truncation with a stride

  size_t size() const { return ids.size(); }
};

enum class TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond };
enum class Side { Left, Right };

struct TruncationOptions {
  size_t max_length = 0;
  TruncationStrategy strategy = TruncationStrategy::LongestFirst;
  size_t stride = 0;
  Side direction = Side::Right;
};

// Padding uses the tokenizer's pad token (tokenizer_config.json / special_tokens_map.json, or
// tokenizer.json's padding section) and its id; a tokenizer without one raises
// Error(InvalidArgument), as transformers does. transformers pads on padding_side().
struct PaddingOptions {
  std::optional<size_t> length;  // pad to this length; unset = only as long as the longest in a batch
  size_t pad_to_multiple_of = 0;
  Side direction = Side::Right;
};

struct EncodeOptions {
  bool add_special_tokens = true;
  // Offsets in Python characters of their own sequence, converted before post-processing
  // exactly as transformers' fast tokenizers do, instead of bytes.
  bool char_offsets = false;
  std::optional<TruncationOptions> truncation;  // unset = no truncation
  std::optional<PaddingOptions> padding;        // unset = no padding
  // transformers' text_target: encode as the decoder's labels. Sequence-to-sequence classes
  // switch to their target mode (Marian: target.spm and the target vocabulary; mBART-50, NLLB,
  // M2M100: the tgt_lang code instead of src_lang); other tokenizers encode as usual.
  bool target = false;
};

class Tokenizer {
 public:
  // Loads from a model folder: tokenizer.json if present, otherwise vocab.txt (WordPiece) or
  // vocab.json + merges.txt (byte-level BPE); tokenizer_config.json and
  // special_tokens_map.json supply model_max_length, lower-casing, special tokens, padding side.
  static Tokenizer from_folder(const std::filesystem::path& model_dir);
  // Loads a tokenizer.json document (no tokenizer_config.json).
  static Tokenizer from_json(std::string_view tokenizer_json);

  Encoding encode(std::string_view text, const EncodeOptions& options = {}) const;
  Encoding encode_pair(std::string_view text, std::string_view pair, const EncodeOptions& options = {}) const;
  // Encodes a text already split into words (transformers' is_split_into_words=True): each
  // word is normalized and pre-tokenized on its own, its tokens carry the word's index as
  // word id, and offsets are relative to the word they belong to.
  Encoding encode_words(const std::vector<std::string>& words, const EncodeOptions& options = {}) const;
  // Encodes several inputs (pair may be empty vector or one per text), padding them together
  // when options.padding is set; may use several threads.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts, const std::vector<std::string>& pairs,
                                     const EncodeOptions& options = {}) const;

  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false,
                     bool clean_up_tokenization_spaces = true) const;

  // transformers' convert_tokens_to_string for fast tokenizers: the decoder over token
  // strings (tokens joined by spaces without one), no clean-up of tokenization spaces.
  std::string convert_tokens_to_string(const std::vector<std::string>& tokens) const;
  // The model's continuing-subword prefix ("##" for WordPiece) when it has a non-empty one:
  // transformers' pipelines take such a tokenizer as word-aware.
  std::optional<std::string> continuing_subword_prefix() const;
  // The ByteLevel pre-tokenizer's add_prefix_space; nullopt without a ByteLevel pre-tokenizer.
  std::optional<bool> byte_level_add_prefix_space() const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  size_t vocab_size() const;  // including added tokens

  // From tokenizer_config.json; INT64_MAX (transformers' VERY_LARGE_INTEGER, int(1e30), clamped)
  // when the folder does not set one.
  int64_t model_max_length() const;
  std::optional<int32_t> pad_token_id() const;
  std::optional<std::string> special_token(std::string_view name) const;  // "cls_token", "mask_token", ...
  // How many tokens the post-processor adds to one sequence (pair = false) or to a pair.
  size_t num_special_tokens_to_add(bool pair) const;

  // transformers' defaults for this tokenizer (tokenizer_config.json or the class's):
  bool clean_up_tokenization_spaces() const;
  Side padding_side() const;
  Side truncation_side() const;
  // The keys transformers returns from tokenizer(text), e.g. {"input_ids", "attention_mask"}.
  const std::vector<std::string>& model_input_names() const;
  // The transformers class this folder loads as ("BertTokenizerFast"), empty for from_json.
  const std::string& tokenizer_class() const;
  // tokenizer.json's own "truncation" / "padding" sections, if any. transformers ignores
  // them unless asked, and so does encode(); they are here for callers that want them.
  std::optional<TruncationOptions> default_truncation() const;
  std::optional<PaddingOptions> default_padding() const;

  // ---- Sequence-to-sequence language codes (mBART-50, NLLB, M2M100, Marian) ----------------
  // The codes the class's src_lang / tgt_lang accept, as transformers' translation pipeline
  // passes them: "en_XX" (MBart50TokenizerFast), "eng_Latn" (NllbTokenizerFast), "en"
  // (M2M100Tokenizer, token "__en__"), ">>fr<<" (MarianTokenizer with a joint vocabulary: the
  // code goes at the start of the text, there is no src_lang). Empty for other tokenizers.
  const std::vector<std::string>& language_codes() const;
  // The id of a code's token: the forced_bos_token_id of translation into that language
  // (lang_code_to_id / get_lang_id / convert_tokens_to_ids(tgt_lang)). An unknown code (or a
  // tokenizer without codes) is Error(InvalidArgument) naming the known ones.
  int32_t language_token_id(std::string_view code) const;
  // src_lang / tgt_lang (tokenizer_config.json's, else the class default for src_lang: en_XX,
  // eng_Latn, en); setting one rebuilds the special tokens as the class's setter does.
  // Unknown codes are Error(InvalidArgument) (transformers would silently use <unk>). Not
  // thread-safe against concurrent encode() calls: set, then encode.
  std::optional<std::string> src_lang() const;
  std::optional<std::string> tgt_lang() const;
  void set_src_lang(const std::string& code);
  void set_tgt_lang(const std::string& code);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Converts byte offsets into `text` to Python character (code point) offsets, exactly as
// `tokenizers` converts them (an offset pair starting at or past the end is left as it is).
std::vector<std::pair<size_t, size_t>> byte_to_char_offsets(std::string_view text,
                                                            const std::vector<std::pair<size_t, size_t>>& offsets);

// True when `text` is well-formed UTF-8.
bool is_valid_utf8(std::string_view text);

}  // namespace hfpipe::text
