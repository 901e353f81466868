// transformers' slow-only sentencepiece classes that map pieces to ids through a vocab.json:
// MarianTokenizer (source.spm for inputs, target.spm for text_target and decoding; one
// vocab.json, or vocab.json + target_vocab.json with separate_vocabs; a leading >>lang<< code
// kept whole) and M2M100Tokenizer (sentencepiece.bpe.model + vocab.json; __en__ language
// tokens after the vocabulary). Pieces come from sentencepiece's own encoder (SpmProcessor);
// added tokens are split out before, as PreTrainedTokenizer.tokenize does, by the engine's
// AddedVocabulary (no normaliser, no pre-tokenizer: each chunk goes to the model whole).
//
// Offsets: these classes are slow, transformers gives none. hfpipe gives each piece the byte
// span of the input text it was normalised from (sentencepiece's alignment); a >>lang<< code
// its own span. Special tokens mask: only the tokens the template adds (the slow classes'
// return_special_tokens_mask also marks special tokens typed in the text); truncation and
// padding are the engine's (tokenizers') and not compared with the slow classes'.
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.h"
#include "formats/json_depth.h"
#include "text/sentencepiece_processor.h"
#include "text/token_id.h"
#include "text/tokenizer_impl.h"
#include "text/unicode.h"

namespace hfpipe::text {

namespace fs = std::filesystem;

struct VocabJson {
  std::unordered_map<std::string, uint32_t> encoder;
  std::unordered_map<uint32_t, std::string> decoder;
};

struct SlowSpm {
  LangStyle kind = LangStyle::Marian;  // Marian or M2M100
  std::shared_ptr<const SpmProcessor> decode_spm;  // target.spm (Marian) / the only model (M2M100)
  std::shared_ptr<const VocabJson> decode_vocab;   // ids -> pieces for decode
  size_t vocab_size = 0;                           // len(self.encoder)
};

// M2M100's language tokens: "__en__" <-> len(vocab.json) + its index in the code list, known
// to the model whether or not they are added tokens (lang_token_to_id / id_to_lang_token).
struct LangTokens {
  std::unordered_map<std::string, uint32_t> to_id;
  std::unordered_map<uint32_t, std::string> to_token;
};

namespace {

std::shared_ptr<const SpmProcessor> load_spm(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    fail(ErrorKind::NotFound, "missing sentencepiece model " + file.string());
  std::string data = read_file(file);
  return std::make_shared<SpmProcessor>(read_sentencepiece_model(data, file.string()), file.string());
}

std::shared_ptr<const VocabJson> load_vocab(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) fail(ErrorKind::NotFound, "missing vocabulary " + file.string());
  const std::string text = read_file(file);
  formats::check_json_depth(text, file.string());
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    fail(ErrorKind::CorruptFile, file.string() + ": expected a JSON object of piece -> id");
  auto v = std::make_shared<VocabJson>();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_unsigned())
      fail(ErrorKind::CorruptFile, file.string() + ": the id of '" + it.key() + "' is not a non-negative integer");
    uint32_t id = checked_token_id(it.value().get<uint64_t>(), file.string() + ": the id of '" + it.key() + "'");
    v->encoder[it.key()] = id;
    v->decoder[id] = it.key();  // {v: k}: the last piece with an id wins, as the dict does
  }
  if (v->encoder.empty()) fail(ErrorKind::CorruptFile, file.string() + ": the vocabulary is empty");
  return v;
}

// sentencepiece pieces looked up in a vocab.json (unknown pieces -> the vocabulary's unk).
class SpmVocabModel final : public Model {
 public:
  SpmVocabModel(std::shared_ptr<const SpmProcessor> spm, std::shared_ptr<const VocabJson> vocab, uint32_t unk_id,
                bool marian_codes, LangTokens lang = {})
      : spm_(std::move(spm)),
        vocab_(std::move(vocab)),
        unk_id_(unk_id),
        marian_codes_(marian_codes),
        lang_(std::move(lang)) {}

  void tokenize(std::string_view s, std::vector<Token>& out) const override {
    size_t base = 0;
    if (marian_codes_ && s.substr(0, 2) == ">>") {
      // MarianTokenizer.remove_language_code: a leading ">>xx<<" is one token.
      size_t end = s.find("<<");
      if (end != std::string_view::npos) {
        std::string code(s.substr(0, end + 2));
        out.push_back(Token{lookup(code), code, {0, end + 2}});
        base = end + 2;
      }
    }
    for (auto& p : spm_->encode(s.substr(base))) {
      uint32_t id = lookup(p.piece);
      out.push_back(Token{id, std::move(p.piece), {base + p.begin, base + p.end}});
    }
  }
  std::optional<uint32_t> token_to_id(std::string_view t) const override {
    if (auto l = lang_.to_id.find(std::string(t)); l != lang_.to_id.end()) return l->second;
    auto it = vocab_->encoder.find(std::string(t));
    return it == vocab_->encoder.end() ? std::nullopt : std::optional<uint32_t>(it->second);
  }
  std::optional<std::string_view> id_to_token(uint32_t id) const override {
    if (auto l = lang_.to_token.find(id); l != lang_.to_token.end()) return std::string_view(l->second);
    auto it = vocab_->decoder.find(id);
    return it == vocab_->decoder.end() ? std::nullopt : std::optional<std::string_view>(it->second);
  }
  size_t vocab_size() const override { return vocab_->encoder.size(); }

 private:
  uint32_t lookup(const std::string& piece) const {
    auto it = vocab_->encoder.find(piece);
    return it == vocab_->encoder.end() ? unk_id_ : it->second;
  }
  std::shared_ptr<const SpmProcessor> spm_;
  std::shared_ptr<const VocabJson> vocab_;
  uint32_t unk_id_;
  bool marian_codes_;
  LangTokens lang_;
};

uint32_t unk_of(const VocabJson& v, const std::string& unk, const fs::path& file) {
  auto it = v.encoder.find(unk);
  if (it == v.encoder.end())
    fail(ErrorKind::CorruptFile, file.string() + ": the unk token '" + unk + "' is not in the vocabulary");
  return it->second;
}

// str.strip(): Python's whitespace.
std::string py_strip(const std::string& s) {
  auto space = [](char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
  };
  std::u32string chars = unicode::decode_all(s);
  size_t b = 0, e = chars.size();
  while (b < e && space(chars[b])) ++b;
  while (e > b && space(chars[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) unicode::append(out, chars[i]);
  return out;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  std::string out;
  for (size_t pos = 0;;) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) {
      out.append(s, pos, std::string::npos);
      return out;
    }
    out.append(s, pos, f - pos);
    out += to;
    pos = f + from.size();
  }
}

}  // namespace

void load_marian(Tokenizer::Impl& impl, const fs::path& dir, const MarianFiles& o) {
  auto source = load_spm(dir / "source.spm");
  auto target = load_spm(dir / "target.spm");
  auto vocab = load_vocab(dir / "vocab.json");
  uint32_t unk = unk_of(*vocab, o.unk_token, dir / "vocab.json");
  if (!vocab->encoder.count(o.pad_token))
    fail(ErrorKind::CorruptFile, (dir / "vocab.json").string() + ": the pad token '" + o.pad_token +
                                     "' is not in the vocabulary (MarianTokenizer requires it)");
  auto target_vocab = vocab;
  if (o.separate_vocabs) target_vocab = load_vocab(dir / "target_vocab.json");
  impl.model = std::make_unique<SpmVocabModel>(source, vocab, unk, true);
  uint32_t target_unk = unk_of(*target_vocab, o.unk_token, dir / (o.separate_vocabs ? "target_vocab.json" : "vocab.json"));
  impl.target_model = std::make_unique<SpmVocabModel>(target, target_vocab, target_unk, true);
  auto slow = std::make_shared<SlowSpm>();
  slow->kind = LangStyle::Marian;
  slow->decode_spm = target;
  slow->decode_vocab = target_vocab;
  slow->vocab_size = vocab->encoder.size();
  impl.slow = slow;
  impl.lang.style = LangStyle::Marian;
  // supported_language_codes: only with a joint vocabulary.
  if (!o.separate_vocabs)
    for (const auto& [piece, id] : vocab->encoder)
      if (piece.size() >= 4 && piece.compare(0, 2, ">>") == 0 && piece.compare(piece.size() - 2, 2, "<<") == 0)
        impl.lang.codes.push_back(piece);
  std::sort(impl.lang.codes.begin(), impl.lang.codes.end(),
            [&](const std::string& a, const std::string& b) { return vocab->encoder.at(a) < vocab->encoder.at(b); });
}

void load_m2m100(Tokenizer::Impl& impl, const fs::path& dir, const std::string& unk_token,
                 const std::vector<std::string>& codes) {
  auto spm = load_spm(dir / "sentencepiece.bpe.model");
  auto vocab = load_vocab(dir / "vocab.json");
  uint32_t unk = unk_of(*vocab, unk_token, dir / "vocab.json");
  LangTokens lang;
  // The language tokens' ids follow the vocabulary's size.
  check_vocab_size(vocab->encoder.size() + codes.size(), (dir / "vocab.json").string());
  for (size_t i = 0; i < codes.size(); ++i) {
    uint32_t id = uint32_t(vocab->encoder.size() + i);
    lang.to_id["__" + codes[i] + "__"] = id;
    lang.to_token[id] = "__" + codes[i] + "__";
  }
  impl.model = std::make_unique<SpmVocabModel>(spm, vocab, unk, false, std::move(lang));
  auto slow = std::make_shared<SlowSpm>();
  slow->kind = LangStyle::M2M100;
  slow->decode_spm = spm;
  slow->decode_vocab = vocab;
  slow->vocab_size = vocab->encoder.size();
  impl.slow = slow;
  impl.lang.style = LangStyle::M2M100;
  impl.lang.m2m100_first_id = uint32_t(vocab->encoder.size());
}

std::string slow_spm_decode(const Tokenizer::Impl& impl, const std::vector<int32_t>& ids, bool skip_special_tokens) {
  const SlowSpm& s = *impl.slow;
  const bool marian = s.kind == LangStyle::Marian;
  // all_special_tokens (deduplicated, in order) and all_special_ids.
  std::vector<std::string> specials;
  for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (auto it = impl.special_tokens.find(name); it != impl.special_tokens.end()) specials.push_back(it->second);
  for (const auto& t : impl.additional_special_tokens) specials.push_back(t);
  std::unordered_set<std::string> special_set;
  for (const auto& t : specials) special_set.insert(t);
  auto unk_id = [&]() -> std::optional<uint32_t> {
    auto it = impl.special_tokens.find("unk_token");
    if (it == impl.special_tokens.end()) return std::nullopt;
    return impl.model->token_to_id(it->second);
  };
  // convert_tokens_to_ids: added tokens, M2M100's language tokens, the vocabulary, else unk.
  auto to_id = [&](const std::string& t) -> std::optional<uint32_t> {
    if (auto id = impl.added.token_to_id(t, *impl.model)) return id;
    return unk_id();
  };
  std::unordered_set<uint32_t> special_ids;
  for (const auto& t : specials)
    if (auto id = to_id(t)) special_ids.insert(*id);

  std::vector<std::string> tokens;
  for (int32_t sid : ids) {
    if (sid < 0) fail(ErrorKind::InvalidArgument, "cannot decode the negative token id " + std::to_string(sid));
    uint32_t id = uint32_t(sid);
    if (skip_special_tokens && special_ids.count(id)) continue;
    if (const AddedToken* a = impl.added.by_id(id)) {
      tokens.push_back(a->content);
      continue;
    }
    if (!marian) {  // M2M100: id_to_lang_token first
      if (auto t = impl.model->id_to_token(id)) {
        tokens.emplace_back(*t);
        continue;
      }
    }
    auto it = s.decode_vocab->decoder.find(id);
    auto unk = impl.special_tokens.find("unk_token");
    tokens.push_back(it != s.decode_vocab->decoder.end() ? it->second
                     : unk != impl.special_tokens.end() ? unk->second
                                                        : std::string());
  }

  // Added tokens that are not special, and additional special tokens past the vocabulary,
  // are decoded apart from the pieces around them.
  std::unordered_set<std::string> legacy;
  for (const auto& [id, t] : impl.added.tokens_by_id())
    if (!special_set.count(t.content)) legacy.insert(t.content);
  for (const auto& t : impl.additional_special_tokens)
    if (auto id = to_id(t); id && *id >= s.vocab_size) legacy.insert(t);

  auto to_string = [&](const std::vector<std::string>& toks) {
    std::string out;
    std::vector<std::string> cur;
    for (const auto& t : toks) {
      if (special_set.count(t)) {
        out += s.decode_spm->decode_pieces(cur) + t + (marian ? " " : "");
        cur.clear();
      } else {
        cur.push_back(t);
      }
    }
    out += s.decode_spm->decode_pieces(cur);
    if (marian) out = replace_all(std::move(out), "\xE2\x96\x81", " ");
    return py_strip(out);
  };
  std::vector<std::string> sub_texts, cur;
  for (const auto& t : tokens) {
    if (skip_special_tokens && special_set.count(t)) continue;
    if (legacy.count(t)) {
      if (!cur.empty()) {
        std::string str = to_string(cur);
        if (!str.empty()) sub_texts.push_back(str);
        cur.clear();
      }
      sub_texts.push_back(t);
    } else {
      cur.push_back(t);
    }
  }
  if (!cur.empty()) sub_texts.push_back(to_string(cur));
  std::string text;
  for (size_t i = 0; i < sub_texts.size(); ++i) text += (i ? " " : "") + sub_texts[i];
  return text;
}

}  // namespace hfpipe::text
