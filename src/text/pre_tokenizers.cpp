// Pre-tokenizers: BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit, Punctuation,
// Digits, Split, Metaspace, CharDelimiterSplit, FixedLength, UnicodeScripts, Sequence.
#include <array>
#include <memory>

#include "text/components.h"
#include "text/json_util.h"
#include "text/regex.h"

namespace hfpipe::text {

void parse_pattern(const JsonValue& v, const std::string& where, std::string* literal, std::unique_ptr<Regex>* regex);

namespace u = unicode;

namespace {

struct ByteMap {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  ByteMap() {
    std::array<bool, 256> printable{};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      to_char[b] = printable[b] ? char32_t(b) : char32_t(256 + n++);
      to_utf8[b] = u::encode(to_char[b]);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

SplitBehavior parse_behavior(const JsonValue& v, std::string_view key, SplitBehavior dflt, const std::string& where) {
  auto s = json::get_opt_string(v, key, where);
  if (!s) return dflt;
  if (*s == "Removed") return SplitBehavior::Removed;
  if (*s == "Isolated") return SplitBehavior::Isolated;
  if (*s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (*s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (*s == "Contiguous") return SplitBehavior::Contiguous;
  json::corrupt(json::field_where(where, key), "unknown split behavior '" + *s + "'");
}

const char* kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class BertPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& pts) const override {
    // Split on whitespace (removed), then isolate punctuation: one pass over the string.
    pts.split([](size_t, NormalizedString n) {
      std::vector<NormalizedString> out;
      const std::string& s = n.get();
      size_t start = 0;
      for (size_t i = 0; i < s.size();) {
        size_t len;
        char32_t c = u::decode(s, i, &len);
        if (u::is_whitespace(c)) {
          if (start < i) out.push_back(n.slice(start, i));
          start = i + len;
        } else if (u::is_punctuation_old(c)) {
          if (start < i) out.push_back(n.slice(start, i));
          out.push_back(n.slice(i, i + len));
          start = i + len;
        }
        i += len;
      }
      if (start < s.size()) out.push_back(n.slice(start, s.size()));
      return out;
    });
  }
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  explicit ByteLevelPreTokenizer(const ByteLevelOptions& o) : o_(o), re_(kGpt2Pattern, "ByteLevel regex") {}
  const ByteLevelOptions* byte_level_options() const override { return &o_; }
  std::unique_ptr<PreTokenizer> with_add_prefix_space(bool aps) const override {
    ByteLevelOptions o = o_;
    o.add_prefix_space = aps;
    return std::make_unique<ByteLevelPreTokenizer>(o);
  }

  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([this](size_t, NormalizedString n) {
      if (o_.add_prefix_space && (n.get().empty() || n.get()[0] != ' ')) n.prepend(" ");
      if (!o_.use_regex) return std::vector<NormalizedString>{std::move(n)};
      return n.split(re_.find_matches(n.get()), SplitBehavior::Isolated);
    });
    pts.normalize([](NormalizedString& n) { byte_level_encode(n); });
  }

 private:
  ByteLevelOptions o_;
  Regex re_;
};

// Whitespace: the regex \w+|[^\w\s]+ — runs of word characters and runs of other
// non-space characters; spaces are dropped.
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([](size_t, NormalizedString n) {
      std::vector<NormalizedString> out;
      const std::string& s = n.get();
      size_t start = 0;
      int kind = 0;  // 0 = space, 1 = word, 2 = other
      for (size_t i = 0; i < s.size();) {
        size_t len;
        char32_t c = u::decode(s, i, &len);
        int k = u::is_word_char(c) ? 1 : u::is_whitespace(c) ? 0 : 2;
        if (k != kind) {
          if (kind != 0 && start < i) out.push_back(n.slice(start, i));
          start = i;
          kind = k;
        }
        i += len;
      }
      if (kind != 0 && start < s.size()) out.push_back(n.slice(start, s.size()));
      return out;
    });
  }
};

class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  CharSplitPreTokenizer(bool (*pred)(char32_t), SplitBehavior b) : pred_(pred), behavior_(b) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([this](size_t, NormalizedString n) {
      return n.split(find_char_matches(n.get(), pred_), behavior_);
    });
  }

 private:
  bool (*pred_)(char32_t);
  SplitBehavior behavior_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::string literal, std::unique_ptr<Regex> regex, SplitBehavior b, bool invert)
      : literal_(std::move(literal)), regex_(std::move(regex)), behavior_(b), invert_(invert) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([this](size_t, NormalizedString n) {
      Matches m = regex_ ? regex_->find_matches(n.get()) : find_literal_matches(n.get(), literal_);
      if (invert_) m = invert_matches(std::move(m));
      return n.split(m, behavior_);
    });
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

// Metaspace: spaces become the replacement character, a prefix one is added (always, or
// only on the split that starts the original text), then each piece starts at one.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  explicit MetaspacePreTokenizer(MetaspaceOptions o) : o_(std::move(o)) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([this](size_t, NormalizedString n) {
      n.replace(find_literal_matches(n.get(), " "), o_.replacement);
      bool starts = n.get().compare(0, o_.replacement.size(), o_.replacement) == 0;
      if (!starts && (o_.prepend_scheme == PrependScheme::Always ||
                      (o_.prepend_scheme == PrependScheme::First && n.offsets_original().first == 0)))
        n.prepend(o_.replacement);
      if (!o_.split) return std::vector<NormalizedString>{std::move(n)};
      return n.split(find_literal_matches(n.get(), o_.replacement), SplitBehavior::MergedWithNext);
    });
  }

 private:
  MetaspaceOptions o_;
};

class CharDelimiterPreTokenizer final : public PreTokenizer {
 public:
  explicit CharDelimiterPreTokenizer(char32_t delimiter) : delimiter_(delimiter) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([this](size_t, NormalizedString n) {
      return n.split(find_char_matches(n.get(), [this](char32_t c) { return c == delimiter_; }), SplitBehavior::Removed);
    });
  }

 private:
  char32_t delimiter_;
};

// FixedLength: pieces of `length` characters.
class FixedLengthPreTokenizer final : public PreTokenizer {
 public:
  explicit FixedLengthPreTokenizer(size_t length) : length_(length) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([this](size_t, NormalizedString n) {
      std::vector<NormalizedString> out;
      const std::string& s = n.get();
      size_t start = 0, chars = 0;
      for (size_t i = 0; i < s.size();) {
        i += u::utf8_len(static_cast<unsigned char>(s[i]));
        if (++chars == length_) {
          out.push_back(n.slice(start, i));
          start = i;
          chars = 0;
        }
      }
      if (start < s.size()) out.push_back(n.slice(start, s.size()));
      return out;
    });
  }

 private:
  size_t length_;
};

// UnicodeScripts: a piece ends where the script changes; characters of no particular script
// (Script "Any": the space, and code points the library's old table does not know) never
// split and join the piece before them. As in `tokenizers`, a leading run of them is dropped.
class UnicodeScriptsPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& pts) const override {
    pts.split([](size_t, NormalizedString n) {
      const std::string& s = n.get();
      std::vector<size_t> cuts;
      int last = -1;  // no script seen yet
      for (size_t i = 0; i < s.size();) {
        size_t len;
        int script = u::script_of(u::decode(s, i, &len));
        if (script != 0 && last != 0 && last != script) cuts.push_back(i);
        if (script != 0) last = script;
        i += len;
      }
      cuts.push_back(s.size());
      std::vector<NormalizedString> out;
      for (size_t k = 0; k + 1 < cuts.size(); ++k) out.push_back(n.slice(cuts[k], cuts[k + 1]));
      return out;
    });
  }
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void pre_tokenize(PreTokenizedString& pts) const override {
    for (const auto& p : items_) p->pre_tokenize(pts);
  }
  const ByteLevelOptions* byte_level_options() const override {
    for (const auto& p : items_)
      if (auto* o = p->byte_level_options()) return o;
    return nullptr;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

bool is_ws(char32_t c) { return u::is_whitespace(c); }
bool is_punc(char32_t c) { return u::is_punctuation_old(c); }
bool is_num(char32_t c) { return u::is_numeric(c); }

}  // namespace

char32_t byte_to_char(uint8_t b) { return byte_map().to_char[b]; }

std::optional<uint8_t> char_to_byte(char32_t c) {
  static const std::array<int, 512> rev = [] {
    std::array<int, 512> r{};
    r.fill(-1);
    for (int b = 0; b < 256; ++b) r[byte_map().to_char[b]] = b;
    return r;
  }();
  if (c >= 512 || rev[c] < 0) return std::nullopt;
  return uint8_t(rev[c]);
}

void byte_level_encode(NormalizedString& n) { n.map_bytes(byte_map().to_utf8.data()); }

std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() { return std::make_unique<BertPreTokenizer>(); }
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(const ByteLevelOptions& o) {
  return std::make_unique<ByteLevelPreTokenizer>(o);
}

std::unique_ptr<PreTokenizer> make_metaspace_pre_tokenizer(const MetaspaceOptions& o) {
  return std::make_unique<MetaspacePreTokenizer>(o);
}

std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(const std::string& regex, SplitBehavior b, const std::string& where) {
  return std::make_unique<SplitPreTokenizer>("", std::make_unique<Regex>(regex, where), b, false);
}
std::unique_ptr<PreTokenizer> make_sequence_pre_tokenizer(std::vector<std::unique_ptr<PreTokenizer>> items) {
  return std::make_unique<SequencePreTokenizer>(std::move(items));
}

MetaspaceOptions parse_metaspace(const JsonValue& v, const std::string& where) {
  MetaspaceOptions o;
  o.replacement = json::require_string(v, "replacement", where);
  if (u::count_chars(o.replacement) != 1) json::corrupt(where + ".replacement", "expected a single character");
  auto scheme = json::get_opt_string(v, "prepend_scheme", where);
  if (!scheme || *scheme == "always") {
    o.prepend_scheme = PrependScheme::Always;
  } else if (*scheme == "first") {
    o.prepend_scheme = PrependScheme::First;
  } else if (*scheme == "never") {
    o.prepend_scheme = PrependScheme::Never;
  } else {
    json::corrupt(where + ".prepend_scheme", "unknown prepend_scheme '" + *scheme + "' (expected first, always or never)");
  }
  // The legacy add_prefix_space must agree with the scheme (tokenizers refuses the file otherwise).
  if (auto aps = json::get_opt_bool(v, "add_prefix_space", where); aps && *aps != (o.prepend_scheme != PrependScheme::Never))
    json::corrupt(where, "add_prefix_space does not match prepend_scheme");
  o.split = json::get_bool(v, "split", true, where);
  return o;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonValue& v, const std::string& where) {
  std::string type = json::type_of(v, where);
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  if (type == "ByteLevel") {
    ByteLevelOptions o;
    o.add_prefix_space = json::get_bool(v, "add_prefix_space", true, where);
    o.trim_offsets = json::get_bool(v, "trim_offsets", true, where);
    o.use_regex = json::get_bool(v, "use_regex", true, where);
    return make_byte_level_pre_tokenizer(o);
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") return std::make_unique<CharSplitPreTokenizer>(is_ws, SplitBehavior::Removed);
  if (type == "Punctuation")
    return std::make_unique<CharSplitPreTokenizer>(is_punc,
                                                   parse_behavior(v, "behavior", SplitBehavior::Isolated, where));
  if (type == "Digits")
    return std::make_unique<CharSplitPreTokenizer>(is_num, json::get_bool(v, "individual_digits", false, where)
                                                               ? SplitBehavior::Isolated
                                                               : SplitBehavior::Contiguous);
  if (type == "Split") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    parse_pattern(json::required(v, "pattern", where), where + ".pattern", &literal, &regex);
    auto behavior = parse_behavior(v, "behavior", SplitBehavior::Removed, where);
    if (!json::member(v, "behavior")) json::corrupt(where, "missing field 'behavior'");
    return std::make_unique<SplitPreTokenizer>(std::move(literal), std::move(regex), behavior,
                                               json::get_bool(v, "invert", false, where));
  }
  if (type == "Metaspace") return make_metaspace_pre_tokenizer(parse_metaspace(v, where));
  if (type == "CharDelimiterSplit") {
    std::u32string d = u::decode_all(json::require_string(v, "delimiter", where));
    if (d.size() != 1) json::corrupt(where + ".delimiter", "expected a single character");
    return std::make_unique<CharDelimiterPreTokenizer>(d[0]);
  }
  if (type == "FixedLength") {
    int64_t len = json::get_int(v, "length", 5, where);
    if (len <= 0) json::corrupt(where + ".length", "must be positive");
    return std::make_unique<FixedLengthPreTokenizer>(size_t(len));
  }
  if (type == "UnicodeScripts") return std::make_unique<UnicodeScriptsPreTokenizer>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> items;
    size_t i = 0;
    for (auto e : json::as_array(json::required(v, "pretokenizers", where), where + ".pretokenizers"))
      items.push_back(make_pre_tokenizer(e, where + ".pretokenizers[" + std::to_string(i++) + "]"));
    return std::make_unique<SequencePreTokenizer>(std::move(items));
  }
  fail(ErrorKind::UnsupportedModel,
       where + ": pre-tokenizer type '" + type +
           "' is not supported; supported: BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit, Punctuation, "
           "Digits, Split, Metaspace, CharDelimiterSplit, FixedLength, UnicodeScripts, Sequence");
}

}  // namespace hfpipe::text
