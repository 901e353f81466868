// Tokenizer::from_gguf: the tokenizer a GGUF file's tokenizer.ggml.* metadata describes, built
// as transformers 4.57 builds it for AutoTokenizer.from_pretrained(dir, gguf_file=...):
//
//   load_gguf_checkpoint (modeling_gguf_pytorch_utils.py) renames the metadata keys
//   (GGUF_TOKENIZER_MAPPING), convert_gguf_tokenizer (integrations/ggml.py) picks a converter by
//   the file's ARCHITECTURE (not by tokenizer.ggml.model):
//     llama / deci / decilm → GGUFLlamaConverter, then LlamaTokenizerFast;
//     gemma2 / gemma3        → GGUFGemmaConverter, then GemmaTokenizerFast.
//
// Quirks reproduced on purpose, since parity is the contract:
//   - GGUFLlamaConverter swaps its bos/eos variables: both bos_token and eos_token end up as
//     tokens[bos_token_id] (each only when the *other* id is present);
//   - tokenizer.ggml.add_bos_token / add_eos_token are not read: the classes' defaults apply
//     (bos added, eos not);
//   - a "gpt2" (byte-level) tokenizer in a llama file is the "llama 3" variant: ByteLevel
//     pre-tokenizer, empty normaliser, ByteLevel decoder after the sentencepiece ones;
//   - the Strip decoder follows tokenizer.ggml.add_space_prefix, true when the key is absent.
#include <algorithm>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "formats/gguf.h"
#include "text/token_id.h"
#include "text/tokenizer_impl.h"
#include "text/unicode.h"

namespace hfpipe::text {

namespace {

const std::string kMeta = "\xE2\x96\x81";  // U+2581, sentencepiece's space

enum class Converter { Llama, Gemma };

// GGUFTokenizerSkeleton's fields, read from the file's tokenizer.ggml.* keys.
struct GgufVocab {
  std::string type;  // tokenizer.ggml.model: "llama" (sentencepiece) or "gpt2" (byte-level BPE)
  std::vector<std::string> tokens;
  std::vector<double> scores;   // empty when absent
  std::vector<int64_t> token_type;  // empty when absent
  std::optional<std::vector<std::pair<std::string, std::string>>> merges;
  std::optional<uint32_t> bos, eos, unk;
  bool add_prefix_space = true;  // tokenizer.ggml.add_space_prefix
  std::optional<std::string> chat_template;
};

const Value* find(const Value& meta, const std::string& key) {
  auto it = meta.find(key);
  return it == meta.end() ? nullptr : &*it;
}

const Value& require_array(const Value& meta, const std::string& key, const std::string& where) {
  const Value* v = find(meta, key);
  if (!v) fail(ErrorKind::CorruptFile, where + ": the GGUF file has no " + key + " (no tokenizer)");
  if (!v->is_array()) fail(ErrorKind::CorruptFile, where + ": " + key + " is not an array");
  return *v;
}

std::optional<uint32_t> token_id(const Value& meta, const std::string& key, size_t vocab, const std::string& where) {
  const Value* v = find(meta, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer() || v->get<int64_t>() < 0 || uint64_t(v->get<int64_t>()) >= vocab)
    fail(ErrorKind::CorruptFile, where + ": " + key + " is not a token id of the " + std::to_string(vocab) +
                                     "-token vocabulary");
  return uint32_t(v->get<int64_t>());
}

// A token's id is its position in tokenizer.ggml.tokens, an array the GGUF reader caps well
// below the int32 limit of ids.
static_assert(formats::kMaxGgufArray <= uint64_t(kMaxTokenId) + 1);

GgufVocab read_vocab(const Value& meta, const std::string& where) {
  GgufVocab g;
  const Value* model = find(meta, "tokenizer.ggml.model");
  if (!model || !model->is_string()) fail(ErrorKind::CorruptFile, where + ": the GGUF file has no tokenizer.ggml.model");
  g.type = model->get<std::string>();
  if (g.type != "llama" && g.type != "gpt2")
    fail(ErrorKind::UnsupportedModel, where + ": GGUF tokenizer model '" + g.type +
                                          "' is not supported (supported: llama, gpt2)");
  for (const auto& t : require_array(meta, "tokenizer.ggml.tokens", where)) {
    if (!t.is_string()) fail(ErrorKind::CorruptFile, where + ": tokenizer.ggml.tokens holds a non-string");
    g.tokens.push_back(t.get<std::string>());
  }
  if (g.tokens.empty()) fail(ErrorKind::CorruptFile, where + ": tokenizer.ggml.tokens is empty");
  auto same_length = [&](const Value& a, const char* key) {
    if (a.size() != g.tokens.size())
      fail(ErrorKind::CorruptFile, where + ": " + key + " has " + std::to_string(a.size()) + " entries for " +
                                       std::to_string(g.tokens.size()) + " tokens");
  };
  if (find(meta, "tokenizer.ggml.scores")) {
    const Value& s = require_array(meta, "tokenizer.ggml.scores", where);
    same_length(s, "tokenizer.ggml.scores");
    for (const auto& v : s) {
      if (!v.is_number()) fail(ErrorKind::CorruptFile, where + ": tokenizer.ggml.scores holds a non-number");
      g.scores.push_back(v.get<double>());
    }
  }
  if (find(meta, "tokenizer.ggml.token_type")) {
    const Value& s = require_array(meta, "tokenizer.ggml.token_type", where);
    same_length(s, "tokenizer.ggml.token_type");
    for (const auto& v : s) {
      if (!v.is_number_integer()) fail(ErrorKind::CorruptFile, where + ": tokenizer.ggml.token_type holds a non-integer");
      g.token_type.push_back(v.get<int64_t>());
    }
  }
  if (find(meta, "tokenizer.ggml.merges")) {
    g.merges.emplace();
    for (const auto& v : require_array(meta, "tokenizer.ggml.merges", where)) {
      // tuple(merge.split(" ")): a merge is exactly two pieces joined by one space.
      const std::string m = v.is_string() ? v.get<std::string>() : std::string();
      const size_t sp = m.find(' ');
      if (sp == std::string::npos || m.find(' ', sp + 1) != std::string::npos)
        fail(ErrorKind::CorruptFile, where + ": tokenizer.ggml.merges entry '" + m + "' is not two pieces");
      g.merges->emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
  }
  g.bos = token_id(meta, "tokenizer.ggml.bos_token_id", g.tokens.size(), where);
  g.eos = token_id(meta, "tokenizer.ggml.eos_token_id", g.tokens.size(), where);
  g.unk = token_id(meta, "tokenizer.ggml.unknown_token_id", g.tokens.size(), where);
  if (const Value* v = find(meta, "tokenizer.ggml.add_space_prefix"); v && v->is_boolean()) g.add_prefix_space = v->get<bool>();
  if (const Value* v = find(meta, "tokenizer.chat_template"); v && v->is_string()) g.chat_template = v->get<std::string>();
  return g;
}

// GGUFTokenizerSkeleton's merges for a sentencepiece vocabulary without any: every split of a
// token into two tokens, per token by the halves' scores (highest first), then all by the
// token's score (highest first); Python's sorts are stable, so ties keep their order.
std::vector<std::pair<std::string, std::string>> skeleton_merges(const GgufVocab& g) {
  std::unordered_map<std::string_view, double> score;  // dict: the last score of a token
  std::vector<std::string_view> order;                 // dict order: first occurrence
  for (size_t i = 0; i < g.tokens.size(); ++i) {
    auto [it, fresh] = score.insert_or_assign(g.tokens[i], g.scores[i]);
    if (fresh) order.push_back(g.tokens[i]);
  }
  struct M {
    std::string_view l, r;
    double score;
  };
  std::vector<M> merges;
  for (std::string_view piece : order) {
    std::vector<M> local;
    for (size_t i = 0; i < piece.size();) {
      i += unicode::utf8_len(static_cast<unsigned char>(piece[i]));  // split between code points
      if (i >= piece.size()) break;
      std::string_view l = piece.substr(0, i), r = piece.substr(i);
      if (score.count(l) && score.count(r)) local.push_back(M{l, r, score[piece]});
    }
    std::stable_sort(local.begin(), local.end(), [&](const M& a, const M& b) {
      return std::make_pair(score[a.l], score[a.r]) > std::make_pair(score[b.l], score[b.r]);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const auto& m : merges) out.emplace_back(std::string(m.l), std::string(m.r));
  return out;
}

// Python's str.isspace() over the whole string: Unicode White_Space plus U+001C..U+001F.
bool is_whitespace_only(std::string_view s) {
  for (char32_t c : unicode::decode_all(s))
    if (!unicode::is_whitespace(c) && !(c >= 0x1C && c <= 0x1F)) return false;
  return true;
}

AddedToken special_token(const std::string& content) {
  AddedToken t;
  t.content = content;
  t.normalized = false;
  t.special = true;
  return t;
}

// GGUFLlamaConverter.converted(): BPE over the file's tokens and merges with byte fallback.
void build_llama(Tokenizer::Impl& impl, const GgufVocab& g, const std::string& where) {
  const bool llama3 = g.type != "llama";
  std::vector<std::pair<std::string, std::string>> merges;
  if (g.merges) {
    merges = *g.merges;
  } else {
    if (g.scores.empty())
      fail(ErrorKind::CorruptFile, where + ": a sentencepiece GGUF tokenizer without merges needs tokenizer.ggml.scores");
    merges = skeleton_merges(g);
  }
  VocabTable vocab;
  vocab.reserve(g.tokens.size(), g.tokens.size() * 8);
  for (size_t i = 0; i < g.tokens.size(); ++i) vocab.insert(g.tokens[i], uint32_t(i));
  vocab.finalize();
  std::vector<std::pair<std::string_view, std::string_view>> views(merges.begin(), merges.end());
  BpeOptions b;
  if (g.unk) b.unk_token = g.tokens[*g.unk];
  b.fuse_unk = true;
  b.byte_fallback = true;
  impl.model = make_bpe(std::move(vocab), views, b, where);

  // Special tokens: token type 3 (control), or without types the unk / bos / "eos" (the
  // converter's eos variable holds tokens[bos_token_id]).
  std::vector<AddedToken> specials;
  if (!g.token_type.empty()) {
    for (size_t i = 0; i < g.tokens.size(); ++i)
      if (g.token_type[i] == 3) specials.push_back(special_token(g.tokens[i]));
  } else {
    if (g.unk) specials.push_back(special_token(g.tokens[*g.unk]));
    if (g.bos) specials.push_back(special_token(g.tokens[*g.bos]));
    if (g.eos && g.bos) specials.push_back(special_token(g.tokens[*g.bos]));
  }
  impl.add_tokens(specials, where);

  if (llama3) {
    impl.normalizer = make_sequence_normalizer({});
    ByteLevelOptions bl;
    bl.add_prefix_space = false;
    bl.trim_offsets = false;
    impl.pre_tokenizer = make_byte_level_pre_tokenizer(bl);
  } else {
    // LlamaConverter.normalizer with legacy (the skeleton has no `legacy`): Prepend + Replace.
    std::vector<std::unique_ptr<Normalizer>> seq;
    if (g.add_prefix_space) seq.push_back(make_prepend_normalizer(kMeta));
    seq.push_back(make_replace_normalizer(" ", kMeta));
    impl.normalizer = make_sequence_normalizer(std::move(seq));
  }
  std::vector<std::unique_ptr<Decoder>> dec;
  dec.push_back(make_byte_fallback_decoder());
  dec.push_back(make_fuse_decoder());
  dec.push_back(make_replace_decoder(kMeta, " "));
  if (llama3) dec.push_back(make_byte_level_decoder());
  if (g.add_prefix_space) dec.push_back(make_strip_decoder(U' ', 1, 0));
  impl.decoder = make_sequence_decoder(std::move(dec));

  impl.tokenizer_class = "LlamaTokenizerFast";
  impl.clean_up_tokenization_spaces = llama3;  // the converter's additional kwargs for llama 3
  // The swapped additional kwargs: eos_token = bos variable, bos_token = "eos" variable.
  if (g.bos) impl.special_tokens["eos_token"] = g.tokens[*g.bos];
  if (g.bos && g.eos) impl.special_tokens["bos_token"] = g.tokens[*g.bos];
  if (g.eos && !g.bos)
    fail(ErrorKind::CorruptFile, where + ": tokenizer.ggml.eos_token_id without bos_token_id (transformers fails on it)");
  if (g.unk) impl.special_tokens["unk_token"] = g.tokens[*g.unk];
}

// GGUFGemmaConverter.converted(): Unigram over the file's tokens and scores with byte fallback.
void build_gemma(Tokenizer::Impl& impl, const GgufVocab& g, const std::string& where) {
  if (g.scores.empty()) fail(ErrorKind::CorruptFile, where + ": a Gemma GGUF tokenizer needs tokenizer.ggml.scores");
  std::vector<std::pair<std::string, double>> pieces;
  pieces.reserve(g.tokens.size());
  for (size_t i = 0; i < g.tokens.size(); ++i) {
    const std::string& t = g.tokens[i];
    // GGUFGemmaConverter.vocab: the tab byte token is a tab; whitespace-only tokens holding an
    // ASCII space become that many U+2581 (llama.cpp's converter stored them as spaces).
    if (t == "<0x09>") {
      pieces.emplace_back("\t", g.scores[i]);
    } else if (t.find(' ') != std::string::npos && is_whitespace_only(t)) {
      std::string meta;
      for (size_t n = unicode::count_chars(t); n > 0; --n) meta += kMeta;
      pieces.emplace_back(std::move(meta), g.scores[i]);
    } else {
      pieces.emplace_back(t, g.scores[i]);
    }
  }
  UnigramOptions u;
  u.unk_id = g.unk;
  u.byte_fallback = true;
  impl.model = make_unigram(std::move(pieces), u, where);
  impl.normalizer = make_replace_normalizer(" ", kMeta);
  impl.pre_tokenizer = make_split_pre_tokenizer(" ", SplitBehavior::MergedWithPrevious, where);
  std::vector<std::unique_ptr<Decoder>> dec;
  dec.push_back(make_replace_decoder(kMeta, " "));
  dec.push_back(make_byte_fallback_decoder());
  dec.push_back(make_fuse_decoder());
  if (g.add_prefix_space) dec.push_back(make_strip_decoder(U' ', 1, 0));
  impl.decoder = make_sequence_decoder(std::move(dec));

  impl.tokenizer_class = "GemmaTokenizerFast";
  impl.clean_up_tokenization_spaces = false;
  // GemmaTokenizerFast's defaults: the converter passes no special token names.
  impl.special_tokens = {{"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}};
}

// PreTrainedTokenizerFast.__init__ adds the special tokens the backend does not know as added
// tokens yet; then Llama/GemmaTokenizerFast.update_post_processor() prepends bos
// (add_bos_token=True, add_eos_token=False: the classes' defaults).
void finish_class(Tokenizer::Impl& impl, const std::string& where) {
  std::vector<AddedToken> missing;
  for (const char* name : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    auto it = impl.special_tokens.find(name);
    if (it == impl.special_tokens.end()) continue;
    bool known = false;
    for (const auto& [id, t] : impl.added.tokens_by_id()) known = known || t.content == it->second;
    for (const auto& t : missing) known = known || t.content == it->second;
    if (!known) missing.push_back(special_token(it->second));
  }
  if (!missing.empty()) impl.add_tokens(missing);

  auto bos = impl.special_tokens.find("bos_token");
  if (bos == impl.special_tokens.end())
    fail(ErrorKind::CorruptFile, where + ": add_bos_token is true but the GGUF tokenizer has no bos token");
  auto id = impl.added.token_to_id(bos->second, *impl.model);
  if (!id) fail(ErrorKind::CorruptFile, where + ": special token '" + bos->second + "' has no id");
  std::map<std::string, TemplateSpecialToken> st;
  st[bos->second] = TemplateSpecialToken{{*id}, {bos->second}};
  impl.post_processor =
      make_template_processing(parse_template(bos->second + ":0 $A:0", where),
                               parse_template(bos->second + ":0 $A:0 " + bos->second + ":1 $B:1", where), std::move(st),
                               where);
  impl.padding_side = Side::Left;  // both classes: padding_side = "left"
  impl.model_input_names = {"input_ids", "attention_mask"};
  impl.model_max_length = kVeryLargeInteger;
}

Converter converter_for(const std::string& arch, const std::string& where) {
  if (arch == "llama" || arch == "deci" || arch == "decilm") return Converter::Llama;
  if (arch == "gemma2" || arch == "gemma3") return Converter::Gemma;
  fail(ErrorKind::UnsupportedModel, where + ": no GGUF tokenizer conversion for architecture '" + arch +
                                        "' (supported: llama, deci, gemma2, gemma3)");
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const std::filesystem::path& gguf_file) {
  const auto file = formats::GgufFile::open(gguf_file);
  const std::string where = gguf_file.string();
  const Value& meta = file.metadata();
  const Value* arch = find(meta, "general.architecture");
  if (!arch || !arch->is_string()) fail(ErrorKind::CorruptFile, where + ": the GGUF file has no general.architecture");
  const Converter converter = converter_for(arch->get<std::string>(), where);
  const GgufVocab vocab = read_vocab(meta, where);
  auto impl = std::make_unique<Impl>();
  if (converter == Converter::Llama)
    build_llama(*impl, vocab, where);
  else
    build_gemma(*impl, vocab, where);
  finish_class(*impl, where);
  impl->chat_template = vocab.chat_template;
  return Tokenizer(std::move(impl));
}

}  // namespace hfpipe::text
