// Tokenizer::from_folder: which files to load, tokenizer_config.json /
// special_tokens_map.json / config.json, and the rules transformers' tokenizer classes
// apply on top of tokenizer.json (AutoTokenizer's class resolution, BertTokenizerFast's
// normaliser options, RobertaTokenizerFast's post-processor options, special and added
// tokens, model_max_length, padding and truncation sides).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/json_depth.h"
#include "text/sentencepiece_model.h"
#include "text/tokenizer_impl.h"

namespace hfpipe::text {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// BosEos: classes whose update_post_processor() rebuilds the template from add_bos_token /
// add_eos_token (Llama, Gemma, Cohere).
enum class Family { Generic, Bert, MPNet, Roberta, Gpt2, BosEos };

struct SpecialDefault {
  const char* name;
  const char* content;
  bool lstrip = false;
};

struct ClassTraits {
  const char* model_type;
  const char* name;  // transformers' fast class name
  Family family;
  bool token_type_ids;
  bool slow_cleanup;  // the slow class's clean_up_tokenization_spaces default
  std::vector<SpecialDefault> specials;
};

const std::vector<ClassTraits>& class_table() {
  static const std::vector<SpecialDefault> bert = {
      {"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"}};
  static const std::vector<SpecialDefault> roberta = {{"bos_token", "<s>"},   {"eos_token", "</s>"},
                                                      {"unk_token", "<unk>"}, {"sep_token", "</s>"},
                                                      {"pad_token", "<pad>"}, {"cls_token", "<s>"},
                                                      {"mask_token", "<mask>", true}};
  static const std::vector<SpecialDefault> mpnet = {{"bos_token", "<s>"},   {"eos_token", "</s>"},
                                                    {"unk_token", "[UNK]"}, {"sep_token", "</s>"},
                                                    {"pad_token", "<pad>"}, {"cls_token", "<s>"},
                                                    {"mask_token", "<mask>", true}};
  static const std::vector<SpecialDefault> gpt2 = {
      {"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"}, {"unk_token", "<|endoftext|>"}};
  static const std::vector<SpecialDefault> clip = {{"bos_token", "<|startoftext|>"},
                                                   {"eos_token", "<|endoftext|>"},
                                                   {"unk_token", "<|endoftext|>"},
                                                   {"pad_token", "<|endoftext|>"}};
  static const std::vector<SpecialDefault> llama = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
  static const std::vector<SpecialDefault> cohere = {
      {"bos_token", "<BOS_TOKEN>"}, {"eos_token", "<|END_OF_TURN_TOKEN|>"}, {"unk_token", "<UNK>"}};
  static const std::vector<SpecialDefault> gemma = {
      {"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}};
  static const std::vector<SpecialDefault> t5 = {{"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}};
  static const std::vector<SpecialDefault> m2m100 = {{"bos_token", "<s>"},   {"eos_token", "</s>"},
                                                     {"unk_token", "<unk>"}, {"sep_token", "</s>"},
                                                     {"pad_token", "<pad>"}};
  static const std::vector<ClassTraits> table = {
      {"bert", "BertTokenizerFast", Family::Bert, true, true, bert},
      {"distilbert", "DistilBertTokenizerFast", Family::Bert, false, true, bert},
      {"electra", "ElectraTokenizerFast", Family::Bert, true, true, bert},
      {"mpnet", "MPNetTokenizerFast", Family::MPNet, false, true, mpnet},
      {"roberta", "RobertaTokenizerFast", Family::Roberta, false, false, roberta},
      {"xlm-roberta", "XLMRobertaTokenizerFast", Family::Generic, false, false, roberta},
      {"camembert", "CamembertTokenizerFast", Family::Generic, false, false, roberta},
      {"bart", "BartTokenizerFast", Family::Roberta, false, false, roberta},
      {"longformer", "LongformerTokenizerFast", Family::Roberta, false, false, roberta},
      {"gpt2", "GPT2TokenizerFast", Family::Gpt2, false, false, gpt2},
      {"codegen", "CodeGenTokenizerFast", Family::Gpt2, false, false, gpt2},
      {"phi", "CodeGenTokenizerFast", Family::Gpt2, false, false, gpt2},
      {"whisper", "WhisperTokenizerFast", Family::Gpt2, false, false, gpt2},
      {"gpt_neox", "GPTNeoXTokenizerFast", Family::Generic, false, false, gpt2},
      {"clip", "CLIPTokenizerFast", Family::Generic, false, false, clip},
      {"llama", "LlamaTokenizerFast", Family::BosEos, false, false, llama},
      {"mistral", "LlamaTokenizerFast", Family::BosEos, false, false, llama},
      {"gemma", "GemmaTokenizerFast", Family::BosEos, false, false, gemma},
      {"cohere", "CohereTokenizerFast", Family::BosEos, false, false, cohere},
      {"t5", "T5TokenizerFast", Family::Generic, false, false, t5},
      {"falcon", "PreTrainedTokenizerFast", Family::Generic, true, false, {}},
      // Sequence-to-sequence classes with language codes (language_codes.cpp). Marian and
      // M2M100 are slow-only classes (slow_spm_tokenizers.cpp).
      {"", "MBart50TokenizerFast", Family::Generic, false, false, roberta},
      {"", "NllbTokenizerFast", Family::Generic, false, false, roberta},
      {"marian", "MarianTokenizer", Family::Generic, false, false, t5},
      {"m2m_100", "M2M100Tokenizer", Family::Generic, false, false, m2m100},
  };
  return table;
}

const ClassTraits& generic_traits() {
  static const ClassTraits t{"", "PreTrainedTokenizerFast", Family::Generic, true, false, {}};
  return t;
}

std::string without_fast(std::string name) {
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Fast") == 0) name.resize(name.size() - 4);
  return name;
}

const ClassTraits* traits_by_class(const std::string& cls) {
  std::string name = without_fast(cls);
  for (const auto& t : class_table())
    if (without_fast(t.name) == name) return &t;
  if (name == "PreTrainedTokenizer") return &generic_traits();
  return nullptr;
}

const ClassTraits* traits_by_model_type(const std::string& mt) {
  for (const auto& t : class_table())
    if (!mt.empty() && mt == t.model_type) return &t;
  return nullptr;
}

// AutoConfig's last resort: the longest known model type contained in the path.
const ClassTraits* traits_by_path(const std::string& path) {
  const ClassTraits* best = nullptr;
  for (const auto& t : class_table()) {
    std::string mt = t.model_type;
    if (!mt.empty() && path.find(mt) != std::string::npos && (!best || mt.size() > std::string(best->model_type).size())) best = &t;
  }
  return best;
}

std::optional<json> read_json(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  std::string text = read_file(p);
  formats::check_json_depth(text, p.string());
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) fail(ErrorKind::CorruptFile, p.string() + ": not valid JSON");
  if (!j.is_object()) fail(ErrorKind::CorruptFile, p.string() + ": expected a JSON object");
  return j;
}

// A special token value: a string or a serialised AddedToken {"content": ...}.
std::optional<AddedToken> parse_token(const json& v, bool special) {
  AddedToken t;
  t.special = special;
  if (v.is_string()) {
    t.content = v.get<std::string>();
    t.normalized = !special;
    return t;
  }
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    t.content = v["content"].get<std::string>();
    t.single_word = v.value("single_word", false);
    t.lstrip = v.value("lstrip", false);
    t.rstrip = v.value("rstrip", false);
    t.special = v.contains("special") && v["special"].is_boolean() ? v["special"].get<bool>() : special;
    t.normalized = v.contains("normalized") && v["normalized"].is_boolean() ? v["normalized"].get<bool>() : !t.special;
    return t;
  }
  return std::nullopt;
}

bool has(const std::optional<json>& j, const char* key) { return j && j->contains(key) && !(*j)[key].is_null(); }

bool get_bool(const std::optional<json>& j, const char* key, bool dflt) {
  return has(j, key) && (*j)[key].is_boolean() ? (*j)[key].get<bool>() : dflt;
}

// The sentencepiece (or tiktoken) model file of a folder, under the names the slow classes use.
std::optional<fs::path> sentencepiece_file(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"tokenizer.model", "spiece.model", "sentencepiece.bpe.model"})
    if (fs::is_regular_file(dir / name, ec)) return dir / name;
  return std::nullopt;
}

// Converts a .model file the way the class's converter does (convert_slow_tokenizer.py).
void load_model_file(Tokenizer::Impl& impl, const fs::path& file, const ClassTraits& traits,
                     const std::optional<json>& cfg, const std::vector<std::string>& special_tokens) {
  std::string data = read_file(file);
  if (!looks_like_sentencepiece(data)) {
    // PreTrainedTokenizerFast: TikTokenConverter with the config's additional special tokens.
    load_tiktoken(impl, data, file.string(), special_tokens, "");
    return;
  }
  SpmModel m = read_sentencepiece_model(data, file.string());
  SpmConvertOptions o;
  std::string mt = traits.model_type;
  if (traits.family == Family::BosEos && (mt == "llama" || mt == "mistral")) o.flavor = SpmFlavor::Llama;
  if (mt == "t5") o.flavor = SpmFlavor::T5;
  if (mt == "xlm-roberta") o.flavor = SpmFlavor::XlmRoberta;
  o.legacy = get_bool(cfg, "legacy", true);
  o.add_prefix_space = get_bool(cfg, "add_prefix_space", true);
  if (o.flavor == SpmFlavor::T5)
    o.extra_ids = has(cfg, "extra_ids") && (*cfg)["extra_ids"].is_number_unsigned() ? (*cfg)["extra_ids"].get<size_t>() : 100;
  load_sentencepiece(impl, m, o, file.string());
}

}  // namespace

Tokenizer Tokenizer::from_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail(ErrorKind::NotFound, "tokenizer folder " + dir.string() + " does not exist or is not a folder");
  auto cfg = read_json(dir / "tokenizer_config.json");
  auto stm = read_json(dir / "special_tokens_map.json");
  auto model_cfg = read_json(dir / "config.json");

  // 1. Which transformers class AutoTokenizer picks.
  const ClassTraits* traits = nullptr;
  if (has(cfg, "tokenizer_class") && (*cfg)["tokenizer_class"].is_string())
    traits = traits_by_class((*cfg)["tokenizer_class"].get<std::string>());
  if (!traits && model_cfg && model_cfg->contains("model_type") && (*model_cfg)["model_type"].is_string())
    traits = traits_by_model_type((*model_cfg)["model_type"].get<std::string>());
  if (!traits) traits = traits_by_path(fs::absolute(dir).string());
  if (!traits) traits = &generic_traits();

  auto impl = std::make_unique<Impl>();
  impl->tokenizer_class = traits->name;

  // Special tokens: class defaults < tokenizer_config.json < special_tokens_map.json (the
  // latter only when tokenizer_config.json has no added_tokens_decoder, as transformers).
  // `object` marks values that are AddedToken objects rather than strings.
  struct Special {
    AddedToken token;
    bool object = false;
  };
  std::map<std::string, Special> specials;
  for (const auto& d : traits->specials) {
    Special sp;
    sp.token.content = d.content;
    sp.token.special = true;
    sp.token.normalized = false;
    sp.token.lstrip = d.lstrip;
    sp.object = d.lstrip;  // classes build their lstrip mask token as an AddedToken
    specials[d.name] = sp;
  }
  static const char* kNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                 "pad_token", "cls_token", "mask_token"};
  bool has_decoder = has(cfg, "added_tokens_decoder");
  std::vector<Special> additional;
  for (const auto* src : {&cfg, &stm}) {
    if (!*src) continue;
    if (src == &stm && has_decoder) continue;
    for (const char* name : kNames) {
      if (!(*src)->contains(name)) continue;
      const json& v = (**src)[name];
      if (v.is_null()) {
        specials.erase(name);
        continue;
      }
      if (auto t = parse_token(v, true)) specials[name] = Special{*t, v.is_object()};
    }
    if ((*src)->contains("additional_special_tokens") && (**src)["additional_special_tokens"].is_array()) {
      additional.clear();
      for (const auto& v : (**src)["additional_special_tokens"])
        if (auto t = parse_token(v, true)) additional.push_back(Special{*t, v.is_object()});
    }
  }

  // Sequence-to-sequence classes: which language rules, and the language tokens their
  // __init__ appends to additional_special_tokens.
  const std::string cls = traits->name;
  if (cls == "MarianTokenizer" && !fs::is_regular_file(dir / "source.spm", ec) &&
      fs::is_regular_file(dir / "tokenizer.json", ec)) {
    // Not a folder MarianTokenizer can load (e.g. a tokenizer.json made by another tool): it
    // is read as a plain tokenizer.json, as for any class hfpipe does not know.
    traits = &generic_traits();
    impl->tokenizer_class = traits->name;
  }
  LangStyle style = cls == "MBart50TokenizerFast" ? LangStyle::MBart50
                    : cls == "NllbTokenizerFast"  ? LangStyle::Nllb
                    : cls == "M2M100Tokenizer"    ? LangStyle::M2M100
                                                  : LangStyle::None;
  std::vector<std::string> lang_codes;
  if (style == LangStyle::MBart50) lang_codes = fairseq_language_codes("mbart50");
  if (style == LangStyle::M2M100) {
    std::string which = has(cfg, "language_codes") && (*cfg)["language_codes"].is_string()
                            ? (*cfg)["language_codes"].get<std::string>()
                            : "m2m100";
    lang_codes = fairseq_language_codes(which);
    if (lang_codes.empty())
      fail(ErrorKind::CorruptFile, dir.string() + ": unknown M2M100 language_codes '" + which + "' (known: m2m100, wmt21)");
  }
  if (style == LangStyle::Nllb) {
    bool given = false;
    for (const auto* src : {&cfg, &stm})
      given = given || (*src && (*src)->contains("additional_special_tokens") && !(**src)["additional_special_tokens"].is_null());
    if (!given) {
      for (const auto& c : fairseq_language_codes("nllb")) {
        Special sp;
        sp.token.content = c;
        sp.token.special = true;
        sp.token.normalized = false;
        additional.push_back(sp);
      }
    }
    for (const auto& sp : additional) lang_codes.push_back(sp.token.content);
  }
  // (M2M100Tokenizer's own test for it is always false in transformers 4.57: its __xx__
  // tokens are added tokens only when the folder lists them.)
  if (style == LangStyle::MBart50) {
    for (const auto& c : lang_codes) {
      const std::string& tok = c;
      bool present = std::any_of(additional.begin(), additional.end(), [&](const Special& sp) { return sp.token.content == tok; });
      if (present) continue;
      Special sp;
      sp.token.content = tok;
      sp.token.special = true;
      sp.token.normalized = false;
      additional.push_back(sp);
    }
  }

  // 2. The backend tokenizer.
  bool from_slow = false;
  if (std::string(traits->name) == "MarianTokenizer") {
    MarianFiles o;
    o.separate_vocabs = get_bool(cfg, "separate_vocabs", false);
    if (specials.count("unk_token")) o.unk_token = specials["unk_token"].token.content;
    if (specials.count("pad_token")) o.pad_token = specials["pad_token"].token.content;
    load_marian(*impl, dir, o);
    from_slow = true;
    impl->model_max_length = 512;  // the class default
  } else if (style == LangStyle::M2M100) {
    load_m2m100(*impl, dir, specials.count("unk_token") ? specials["unk_token"].token.content : "<unk>", lang_codes);
    from_slow = true;
  } else if (fs::is_regular_file(dir / "tokenizer.json", ec)) {
    load_tokenizer_json(*impl, read_file(dir / "tokenizer.json"), (dir / "tokenizer.json").string());
  } else if (fs::is_regular_file(dir / "vocab.txt", ec) &&
             (traits->family == Family::Bert || traits->family == Family::MPNet || traits == &generic_traits())) {
    BertVocabOptions o;
    if (has(cfg, "do_lower_case")) o.do_lower_case = (*cfg)["do_lower_case"].get<bool>();
    if (has(cfg, "tokenize_chinese_chars")) o.tokenize_chinese_chars = (*cfg)["tokenize_chinese_chars"].get<bool>();
    if (has(cfg, "strip_accents")) o.strip_accents = (*cfg)["strip_accents"].get<bool>();
    o.mpnet = traits->family == Family::MPNet;
    if (specials.count("unk_token")) o.unk_token = specials["unk_token"].token.content;
    if (specials.count("cls_token")) o.cls_token = specials["cls_token"].token.content;
    if (specials.count("sep_token")) o.sep_token = specials["sep_token"].token.content;
    load_bert_vocab(*impl, dir / "vocab.txt", o);
    from_slow = true;
    if (traits == &generic_traits()) impl->tokenizer_class = "BertTokenizerFast";
  } else if (fs::is_regular_file(dir / "vocab.json", ec) && fs::is_regular_file(dir / "merges.txt", ec)) {
    ByteLevelBpeOptions o;
    if (has(cfg, "add_prefix_space")) o.add_prefix_space = (*cfg)["add_prefix_space"].get<bool>();
    if (has(cfg, "trim_offsets")) o.trim_offsets = (*cfg)["trim_offsets"].get<bool>();
    if (has(cfg, "add_bos_token")) o.add_bos_token = (*cfg)["add_bos_token"].get<bool>();
    o.roberta = traits->family == Family::Roberta;
    if (specials.count("bos_token")) o.bos_token = specials["bos_token"].token.content;
    if (specials.count("cls_token")) o.cls_token = specials["cls_token"].token.content;
    if (specials.count("sep_token")) o.sep_token = specials["sep_token"].token.content;
    load_byte_level_bpe(*impl, dir / "vocab.json", dir / "merges.txt", o);
    from_slow = true;
  } else if (auto spm = sentencepiece_file(dir)) {
    std::vector<std::string> extra;
    for (const auto& sp : additional) extra.push_back(sp.token.content);
    load_model_file(*impl, *spm, *traits, cfg, extra);
    from_slow = true;
  } else {
    fail(ErrorKind::NotFound, "no tokenizer in " + dir.string() +
                                  ": expected tokenizer.json, vocab.txt, vocab.json with merges.txt, or a "
                                  "sentencepiece / tiktoken tokenizer.model");
  }

  // 3. The class's own adjustments of the backend.
  if (traits->family == Family::Bert || traits->family == Family::MPNet) {
    if (impl->normalizer && impl->normalizer->bert_options()) {
      BertNormalizerOptions cur = *impl->normalizer->bert_options();
      bool do_lower_case = has(cfg, "do_lower_case") ? (*cfg)["do_lower_case"].get<bool>() : true;
      std::optional<bool> strip_accents;
      if (has(cfg, "strip_accents")) strip_accents = (*cfg)["strip_accents"].get<bool>();
      bool chinese = has(cfg, "tokenize_chinese_chars") ? (*cfg)["tokenize_chinese_chars"].get<bool>() : true;
      bool differs = cur.lowercase != do_lower_case || cur.strip_accents != strip_accents ||
                     (traits->family == Family::Bert && cur.handle_chinese_chars != chinese);
      if (differs) {
        cur.lowercase = do_lower_case;
        cur.strip_accents = strip_accents;
        if (traits->family == Family::Bert) cur.handle_chinese_chars = chinese;
        impl->normalizer = make_bert_normalizer(cur);
      }
    }
  }
  if (traits->family == Family::Roberta && impl->post_processor && impl->post_processor->roberta_options()) {
    RobertaOptions r = *impl->post_processor->roberta_options();
    bool aps = has(cfg, "add_prefix_space") ? (*cfg)["add_prefix_space"].get<bool>() : false;
    bool trim = has(cfg, "trim_offsets") ? (*cfg)["trim_offsets"].get<bool>() : true;
    if (r.add_prefix_space != aps || r.trim_offsets != trim) {
      r.add_prefix_space = aps;
      r.trim_offsets = trim;
      impl->post_processor = impl->post_processor->with_roberta_options(r);
    }
  }

  // PreTrainedTokenizerFast.__init__: a top-level pre-tokenizer with an add_prefix_space option
  // (ByteLevel) gets the config's value, False when the config has none.
  if (impl->pre_tokenizer) {
    bool aps = has(cfg, "add_prefix_space") && (*cfg)["add_prefix_space"].is_boolean() ? (*cfg)["add_prefix_space"].get<bool>()
                                                                                       : false;
    const ByteLevelOptions* cur = impl->pre_tokenizer->byte_level_options();
    if (cur && cur->add_prefix_space != aps)
      if (auto p = impl->pre_tokenizer->with_add_prefix_space(aps)) impl->pre_tokenizer = std::move(p);
  }

  // tokenizer.json's padding / truncation sections provide defaults (setdefault).
  if (impl->file_pad && !specials.count("pad_token")) {
    Special sp;
    sp.token.content = impl->file_pad->pad_token;
    sp.token.special = true;
    sp.token.normalized = false;
    specials["pad_token"] = sp;
  }
  if (impl->file_pad) impl->pad_token_type_id = impl->file_pad->pad_type_id;
  if (impl->file_padding) impl->padding_side = impl->file_padding->direction;
  if (impl->file_truncation) impl->truncation_side = impl->file_truncation->direction;

  // 4. Added tokens (PreTrainedTokenizerFast.__init__): the added_tokens_decoder entries
  // (tokenizer_config.json's, else tokenizer.json's own), then the special tokens the
  // backend does not know yet. Special token values that match an added token by content
  // become that token (with its flags).
  std::vector<AddedToken> decoder_tokens;
  if (has_decoder && (*cfg)["added_tokens_decoder"].is_object()) {
    std::vector<std::pair<long long, AddedToken>> entries;
    for (auto it = (*cfg)["added_tokens_decoder"].begin(); it != (*cfg)["added_tokens_decoder"].end(); ++it) {
      auto t = parse_token(it.value(), false);
      if (!t) continue;
      long long id = 0;
      try {
        id = std::stoll(it.key());
      } catch (...) {
        fail(ErrorKind::CorruptFile, (dir / "tokenizer_config.json").string() + ": added_tokens_decoder key '" +
                                         it.key() + "' is not an id");
      }
      entries.emplace_back(id, *t);
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, t] : entries) decoder_tokens.push_back(t);
  } else {
    std::vector<std::pair<uint32_t, AddedToken>> entries(impl->added.tokens_by_id().begin(),
                                                         impl->added.tokens_by_id().end());
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, t] : entries) decoder_tokens.push_back(t);
  }
  auto by_content = [&](const std::string& c) -> const AddedToken* {
    for (const auto& t : decoder_tokens)
      if (t.content == c) return &t;
    return nullptr;
  };
  for (auto& [name, sp] : specials)
    if (const AddedToken* t = by_content(sp.token.content)) sp = Special{*t, true};
  for (auto& sp : additional)
    if (const AddedToken* t = by_content(sp.token.content)) sp = Special{*t, true};

  std::vector<AddedToken> to_add = decoder_tokens;
  std::vector<Special> all_specials;
  for (const char* name : kNames)
    if (specials.count(name)) all_specials.push_back(specials[name]);
  for (const auto& t : additional) all_specials.push_back(t);
  std::vector<std::string> encoder;
  for (const auto& [id, t] : impl->added.tokens_by_id()) encoder.push_back(t.content);
  for (const auto& t : to_add) encoder.push_back(t.content);
  for (const auto& sp : all_specials) {
    bool skip = !sp.object && std::find(encoder.begin(), encoder.end(), sp.token.content) != encoder.end();
    if (!skip) to_add.push_back(sp.token);
  }
  if (!to_add.empty()) {
    for (auto& t : to_add)
      for (const auto& sp : all_specials)
        if (sp.token.content == t.content) t.special = true;
    impl->add_tokens(to_add, (dir / "tokenizer_config.json").string());
  }
  for (const char* name : kNames)
    if (specials.count(name)) impl->special_tokens[name] = specials[name].token.content;
  for (const auto& sp : additional) impl->additional_special_tokens.push_back(sp.token.content);

  // 5. Class hooks that need the final token ids.
  auto id_of = [&](const std::string& tok) -> std::optional<uint32_t> {
    if (auto id = impl->added.token_to_id(tok, *impl->model)) return id;
    auto unk = impl->special_tokens.find("unk_token");  // convert_tokens_to_ids falls back to unk
    if (unk != impl->special_tokens.end()) return impl->added.token_to_id(unk->second, *impl->model);
    return std::nullopt;
  };
  if (traits->family == Family::BosEos) {
    // update_post_processor(): "[bos:0 ]$A:0[ eos:0]" and the pair "... [bos:1 ]$B:1[ eos:1]".
    bool add_bos = has(cfg, "add_bos_token") ? (*cfg)["add_bos_token"].get<bool>() : true;
    bool add_eos = has(cfg, "add_eos_token") ? (*cfg)["add_eos_token"].get<bool>() : false;
    std::string bos = impl->special_tokens.count("bos_token") ? impl->special_tokens["bos_token"] : "";
    std::string eos = impl->special_tokens.count("eos_token") ? impl->special_tokens["eos_token"] : "";
    if (add_bos && bos.empty()) fail(ErrorKind::CorruptFile, dir.string() + ": add_bos_token is true but there is no bos_token");
    if (add_eos && eos.empty()) fail(ErrorKind::CorruptFile, dir.string() + ": add_eos_token is true but there is no eos_token");
    std::string single = (add_bos ? bos + ":0 " : "") + "$A:0" + (add_eos ? " " + eos + ":0" : "");
    std::string pair = single + (add_bos ? " " + bos + ":1" : "") + " $B:1" + (add_eos ? " " + eos + ":1" : "");
    std::map<std::string, TemplateSpecialToken> st;
    for (const auto& [on, tok] : {std::make_pair(add_bos, bos), std::make_pair(add_eos, eos)}) {
      if (!on) continue;
      auto id = id_of(tok);
      if (!id) fail(ErrorKind::CorruptFile, dir.string() + ": special token '" + tok + "' has no id");
      st[tok] = TemplateSpecialToken{{*id}, {tok}};
    }
    impl->post_processor = make_template_processing(parse_template(single, dir.string()),
                                                    parse_template(pair, dir.string()), std::move(st), dir.string());
  }
  if (std::string(traits->name) == "CLIPTokenizerFast") impl->decode_suffix_to_space = impl->model->end_of_word_suffix();

  // Language codes: the class's src_lang (default en_XX / eng_Latn / en) and tgt_lang.
  if (style != LangStyle::None) {
    impl->lang.style = style;
    impl->lang.codes = lang_codes;
    impl->lang.legacy_behaviour = get_bool(cfg, "legacy_behaviour", false);
    impl->lang.src = style == LangStyle::MBart50 ? "en_XX" : style == LangStyle::Nllb ? "eng_Latn" : "en";
    if (has(cfg, "src_lang") && (*cfg)["src_lang"].is_string()) impl->lang.src = (*cfg)["src_lang"].get<std::string>();
    if (has(cfg, "tgt_lang") && (*cfg)["tgt_lang"].is_string()) impl->lang.tgt = (*cfg)["tgt_lang"].get<std::string>();
    language_token(*impl, *impl->lang.src);  // an unknown code is an error naming the known ones
    if (impl->lang.tgt) language_token(*impl, *impl->lang.tgt);
  }
  apply_language_codes(*impl);

  // 6. Plain settings.
  if (has(cfg, "model_max_length") && (*cfg)["model_max_length"].is_number()) {
    double v = (*cfg)["model_max_length"].get<double>();
    impl->model_max_length = v >= 9.2e18 ? kVeryLargeInteger : int64_t(v);
  }
  impl->clean_up_tokenization_spaces = from_slow && traits->slow_cleanup;
  if (has(cfg, "clean_up_tokenization_spaces"))
    impl->clean_up_tokenization_spaces = (*cfg)["clean_up_tokenization_spaces"].get<bool>();
  if (has(cfg, "padding_side"))
    impl->padding_side = (*cfg)["padding_side"].get<std::string>() == "left" ? Side::Left : Side::Right;
  if (has(cfg, "truncation_side"))
    impl->truncation_side = (*cfg)["truncation_side"].get<std::string>() == "left" ? Side::Left : Side::Right;
  if (has(cfg, "model_input_names") && (*cfg)["model_input_names"].is_array()) {
    impl->model_input_names.clear();
    for (const auto& v : (*cfg)["model_input_names"]) impl->model_input_names.push_back(v.get<std::string>());
  } else if (!traits->token_type_ids) {
    impl->model_input_names = {"input_ids", "attention_mask"};
  }
  return Tokenizer(std::move(impl));
}

}  // namespace hfpipe::text
