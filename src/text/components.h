// The pipeline stages of the tokenizer engine, each a small class behind one of these
// interfaces, built from the matching section of tokenizer.json (see json_util.h) or
// programmatically by the converters of vocab-file folders (legacy_vocab.cpp):
//
//   added tokens -> Normalizer -> PreTokenizer -> Model -> PostProcessor     (encode)
//   ids -> tokens -> Decoder                                                  (decode)
//
// One source file per family: normalizers.cpp, pre_tokenizers.cpp, wordpiece.cpp,
// bpe.cpp, post_processors.cpp, decoders.cpp. A new component type is one class in its
// family's file plus one line in that file's make_* factory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/normalized_string.h"
#include "text/tokenizer.h"
#include "text/vocab_map.h"

namespace simdjson::dom {
class element;
}

namespace hfpipe::text {

using JsonValue = simdjson::dom::element;

struct Token {
  uint32_t id;
  std::string value;
  Offsets offsets;
};

// ---------------------------------------------------------------------------------------
// Encodings as the engine builds them (tokenizers' Encoding): converted to the public
// Encoding at the end.
struct Enc {
  std::vector<uint32_t> ids;
  std::vector<uint32_t> type_ids;
  std::vector<std::string> tokens;
  std::vector<int32_t> words;  // -1 = none
  std::vector<Offsets> offsets;
  std::vector<uint32_t> special_tokens_mask;
  std::vector<uint32_t> attention_mask;
  std::vector<Enc> overflowing;
  std::map<size_t, std::pair<size_t, size_t>> sequence_ranges;

  size_t size() const { return ids.size(); }
  void reserve(size_t n);
  void push(uint32_t id, uint32_t type_id, std::string token, int32_t word, Offsets off, uint32_t special,
            uint32_t attention = 1);
  void set_sequence_id(size_t seq) { sequence_ranges[seq] = {0, size()}; }
  void set_type_ids(uint32_t type_id) { type_ids.assign(size(), type_id); }
  std::vector<int32_t> sequence_ids() const;

  void truncate(size_t max_len, size_t stride, Side direction);
  void merge_with(Enc pair, bool growing_offsets);
  static Enc merge(std::vector<Enc> encodings, bool growing_offsets);
  void pad(size_t target_length, uint32_t pad_id, uint32_t pad_type_id, const std::string& pad_token, Side direction);
};

// ---------------------------------------------------------------------------------------
// Pre-tokenised string: the input cut into splits, each a NormalizedString, some already
// tokenised (added tokens).
struct Split {
  NormalizedString normalized;
  std::optional<std::vector<Token>> tokens;
};

class PreTokenizedString {
 public:
  explicit PreTokenizedString(std::vector<Split> splits) : splits_(std::move(splits)) {}
  std::vector<Split>& splits() { return splits_; }
  const std::vector<Split>& splits() const { return splits_; }

  // Replaces every split without tokens by the pieces `fn` returns (empty ones dropped).
  template <typename F>
  void split(F&& fn) {
    std::vector<Split> out;
    out.reserve(splits_.size());
    for (size_t i = 0; i < splits_.size(); ++i) {
      if (splits_[i].tokens) {
        out.push_back(std::move(splits_[i]));
        continue;
      }
      for (auto& piece : fn(i, std::move(splits_[i].normalized)))
        if (!piece.empty()) out.push_back(Split{std::move(piece), std::nullopt});
    }
    splits_ = std::move(out);
  }
  template <typename F>
  void normalize(F&& fn) {
    for (auto& s : splits_)
      if (!s.tokens) fn(s.normalized);
  }

 private:
  std::vector<Split> splits_;
};

// ---------------------------------------------------------------------------------------
struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // nullopt = follow lowercase
  bool lowercase = true;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& s) const = 0;
  // Introspection for transformers' tokenizer classes that rewrite the normaliser.
  virtual const BertNormalizerOptions* bert_options() const { return nullptr; }
};

struct ByteLevelOptions {
  bool add_prefix_space = true;
  bool trim_offsets = true;
  bool use_regex = true;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(PreTokenizedString& s) const = 0;
  virtual const ByteLevelOptions* byte_level_options() const { return nullptr; }
  // A copy with another add_prefix_space, for pre-tokenizers that have that option at their
  // top level (ByteLevel; not a Sequence holding one); nullptr otherwise.
  virtual std::unique_ptr<PreTokenizer> with_add_prefix_space(bool) const { return nullptr; }
};

class Model {
 public:
  virtual ~Model() = default;
  // Tokens of one pre-token; offsets are byte offsets into `sequence`.
  virtual void tokenize(std::string_view sequence, std::vector<Token>& out) const = 0;
  virtual std::optional<uint32_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string_view> id_to_token(uint32_t id) const = 0;
  virtual size_t vocab_size() const = 0;
  virtual std::optional<std::string> end_of_word_suffix() const { return std::nullopt; }
  // The prefix marking a word's continuation pieces ("##"); nullopt when there is none.
  virtual std::optional<std::string> continuing_subword_prefix() const { return std::nullopt; }
};

struct RobertaOptions {
  std::pair<std::string, uint32_t> sep{"</s>", 2};
  std::pair<std::string, uint32_t> cls{"<s>", 0};
  bool trim_offsets = true;
  bool add_prefix_space = true;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual size_t added_tokens(bool is_pair) const = 0;
  // Processes the (one or two) encodings, each already carrying its sequence id.
  virtual std::vector<Enc> process_encodings(std::vector<Enc> encodings, bool add_special_tokens) const = 0;
  virtual const RobertaOptions* roberta_options() const { return nullptr; }
  virtual std::unique_ptr<PostProcessor> with_roberta_options(const RobertaOptions&) const { return nullptr; }
  // tokenizers' PostProcessor::process: sequence ids, process_encodings, merge.
  Enc process(Enc encoding, std::optional<Enc> pair, bool add_special_tokens) const;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
  std::string decode(std::vector<std::string> tokens) const;
};

// ---------------------------------------------------------------------------------------
// Factories from tokenizer.json sections (`where` names the section for error messages).
std::unique_ptr<Normalizer> make_normalizer(const JsonValue& v, const std::string& where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonValue& v, const std::string& where);
// `raw_unigram_scores`: the score tokens of a Unigram vocabulary as written in the file (see
// unigram.cpp: they are re-read the way `tokenizers` reads them); may be null.
std::unique_ptr<Model> make_model(const JsonValue& v, const std::string& where,
                                  const std::vector<std::string_view>* raw_unigram_scores = nullptr);
std::unique_ptr<PostProcessor> make_post_processor(const JsonValue& v, const std::string& where);
std::unique_ptr<Decoder> make_decoder(const JsonValue& v, const std::string& where);

// Programmatic constructors (used by the vocab-file converters and by transformers'
// class-specific adjustments).
std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& o);
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(const ByteLevelOptions& o);
// sentencepiece's precompiled_charsmap (raw bytes, not base64).
std::unique_ptr<Normalizer> make_precompiled_normalizer(std::string_view charsmap, const std::string& where);
std::string base64_decode(std::string_view in, const std::string& where);
std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prepend);
std::unique_ptr<Normalizer> make_replace_normalizer(std::string literal, std::string content);
std::unique_ptr<Normalizer> make_regex_replace_normalizer(const std::string& pattern, std::string content,
                                                          const std::string& where);
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right);
std::unique_ptr<Normalizer> make_sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> items);

enum class PrependScheme { First, Always, Never };
struct MetaspaceOptions {
  std::string replacement = "\xE2\x96\x81";  // U+2581
  PrependScheme prepend_scheme = PrependScheme::Always;
  bool split = true;
};
std::unique_ptr<PreTokenizer> make_metaspace_pre_tokenizer(const MetaspaceOptions& o);
std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(const std::string& regex, SplitBehavior b, const std::string& where);
std::unique_ptr<PreTokenizer> make_sequence_pre_tokenizer(std::vector<std::unique_ptr<PreTokenizer>> items);
std::unique_ptr<Decoder> make_metaspace_decoder(const MetaspaceOptions& o);
// Metaspace's options from tokenizer.json (shared by the pre-tokenizer and the decoder).
MetaspaceOptions parse_metaspace(const JsonValue& v, const std::string& where);

// Unigram: pieces with their log-probability scores, in id order.
struct UnigramOptions {
  std::optional<uint32_t> unk_id;
  bool byte_fallback = false;
};
std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> pieces, UnigramOptions o,
                                    const std::string& where);

std::unique_ptr<Model> make_wordpiece(VocabTable vocab, std::string unk_token, std::string continuing_subword_prefix,
                                      size_t max_input_chars_per_word);

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};
// `merges` in rank order; the views need only live through the call.
std::unique_ptr<Model> make_bpe(VocabTable vocab, const std::vector<std::pair<std::string_view, std::string_view>>& merges,
                                BpeOptions options, const std::string& where);

struct TemplatePiece {
  bool is_sequence;  // else a special token
  size_t sequence = 0;  // 0 = A, 1 = B
  std::string special_id;
  uint32_t type_id = 0;
};
struct TemplateSpecialToken {
  std::vector<uint32_t> ids;
  std::vector<std::string> tokens;
};
std::unique_ptr<PostProcessor> make_template_processing(std::vector<TemplatePiece> single,
                                                        std::vector<TemplatePiece> pair,
                                                        std::map<std::string, TemplateSpecialToken> special_tokens,
                                                        const std::string& where);
// Parses "[CLS]:0 $A:0 [SEP]:0" template strings.
std::vector<TemplatePiece> parse_template(const std::string& s, const std::string& where);
std::unique_ptr<PostProcessor> make_roberta_processing(const RobertaOptions& o);
std::unique_ptr<PostProcessor> make_byte_level_processing(bool trim_offsets, bool add_prefix_space);

std::unique_ptr<Decoder> make_wordpiece_decoder(std::string prefix, bool cleanup);
std::unique_ptr<Decoder> make_byte_level_decoder();
std::unique_ptr<Decoder> make_byte_fallback_decoder();
std::unique_ptr<Decoder> make_fuse_decoder();
std::unique_ptr<Decoder> make_strip_decoder(char32_t content, size_t start, size_t stop);
std::unique_ptr<Decoder> make_replace_decoder(std::string literal, std::string content);
std::unique_ptr<Decoder> make_sequence_decoder(std::vector<std::unique_ptr<Decoder>> items);

// tokenizers' ByteLevel offset trimming (shared by the ByteLevel and Roberta processors).
void byte_level_process_offsets(Enc& encoding, bool add_prefix_space);
// Maps every byte of the normalised string to its GPT-2 printable character.
void byte_level_encode(NormalizedString& s);
// The GPT-2 byte <-> printable character mapping.
char32_t byte_to_char(uint8_t b);
std::optional<uint8_t> char_to_byte(char32_t c);

}  // namespace hfpipe::text
