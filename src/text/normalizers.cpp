// Normalizers: BertNormalizer, Lowercase, NFD/NFC/NFKC/NFKD, StripAccents, Strip, Replace,
// Prepend, ByteLevel, Sequence.
#include <memory>

#include "text/components.h"
#include "text/json_util.h"
#include "text/regex.h"

namespace hfpipe::text {

namespace u = unicode;

namespace {

bool ascii_only(const std::string& s) {
  for (unsigned char b : s)
    if (b >= 0x80) return false;
  return true;
}

class BertNormalizer final : public Normalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& o) : o_(o) {}
  const BertNormalizerOptions* bert_options() const override { return &o_; }

  void normalize(NormalizedString& s) const override {
    if (o_.clean_text) clean_text(s);
    if (o_.handle_chinese_chars) chinese_chars(s);
    if (o_.strip_accents.value_or(o_.lowercase)) {
      s.nfd();
      if (!ascii_only(s.get())) s.filter([](char32_t c) { return !u::is_nonspacing_mark_old(c); });
    }
    if (o_.lowercase) s.lowercase();
  }

 private:
  static bool is_control(char32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    return u::is_other_old(c);
  }
  static bool is_bert_whitespace(char32_t c) { return c == '\t' || c == '\n' || c == '\r' || u::is_whitespace(c); }

  static void clean_text(NormalizedString& s) {
    bool needs_filter = false, needs_map = false;
    const std::string& n = s.get();
    for (size_t i = 0; i < n.size();) {
      unsigned char b = static_cast<unsigned char>(n[i]);
      if (b < 0x80) {
        if (b == '\t' || b == '\n' || b == '\r') {
          needs_map = true;
        } else if (b < 0x20 || b == 0x7F) {
          needs_filter = true;
        }
        ++i;
        continue;
      }
      size_t len;
      char32_t c = u::decode(n, i, &len);
      i += len;
      if (c == 0xFFFD || is_control(c)) needs_filter = true;
      if (is_bert_whitespace(c)) needs_map = true;
    }
    if (needs_filter) s.filter([](char32_t c) { return !(c == 0 || c == 0xFFFD || is_control(c)); });
    if (needs_map) s.map([](char32_t c) { return is_bert_whitespace(c) ? char32_t(' ') : c; });
  }

  static void chinese_chars(NormalizedString& s) {
    const std::string& n = s.get();
    bool any = false;
    for (size_t i = 0; i < n.size();) {
      unsigned char b = static_cast<unsigned char>(n[i]);
      if (b < 0x80) {
        ++i;
        continue;
      }
      size_t len;
      char32_t c = u::decode(n, i, &len);
      i += len;
      if (u::is_chinese_char(c)) {
        any = true;
        break;
      }
    }
    if (!any) return;
    CharChanges dest;
    dest.reserve(n.size() + 16);
    for (size_t i = 0; i < n.size();) {
      size_t len;
      char32_t c = u::decode(n, i, &len);
      i += len;
      if (u::is_chinese_char(c)) {
        dest.emplace_back(U' ', 0);
        dest.emplace_back(c, 1);
        dest.emplace_back(U' ', 1);
      } else {
        dest.emplace_back(c, 0);
      }
    }
    s.transform(dest, 0);
  }

  BertNormalizerOptions o_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override { s.lowercase(); }
};

class UnicodeNormalizer final : public Normalizer {
 public:
  UnicodeNormalizer(bool compose, bool compat) : compose_(compose), compat_(compat) {}
  void normalize(NormalizedString& s) const override {
    if (compose_)
      compat_ ? s.nfkc() : s.nfc();
    else
      compat_ ? s.nfkd() : s.nfd();
  }

 private:
  bool compose_, compat_;
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    if (!ascii_only(s.get())) s.filter([](char32_t c) { return !u::is_combining_mark(c); });
  }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(NormalizedString& s) const override { s.strip(left_, right_); }

 private:
  bool left_, right_;
};

// Replace: a literal string or a regular expression, replaced by `content`.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  void normalize(NormalizedString& s) const override {
    Matches m = regex_ ? regex_->find_matches(s.get()) : find_literal_matches(s.get(), literal_);
    s.replace(m, content_);
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prepend_(std::move(p)) {}
  void normalize(NormalizedString& s) const override { s.prepend(prepend_); }

 private:
  std::string prepend_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    if (!s.empty()) byte_level_encode(s);
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> n) : items_(std::move(n)) {}
  void normalize(NormalizedString& s) const override {
    for (const auto& n : items_) n->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

// The {"String": ...} / {"Regex": ...} pattern of Replace and Split.
struct PatternSpec {
  std::string literal;
  std::unique_ptr<Regex> regex;
};

}  // namespace

// Shared with pre_tokenizers.cpp and decoders.cpp through this declaration.
void parse_pattern(const JsonValue& v, const std::string& where, std::string* literal, std::unique_ptr<Regex>* regex) {
  json::as_object(v, where);
  if (auto s = json::member(v, "String")) {
    *literal = std::string(json::as_string(*s, where + ".String"));
    return;
  }
  if (auto r = json::member(v, "Regex")) {
    *regex = std::make_unique<Regex>(std::string(json::as_string(*r, where + ".Regex")), where + ".Regex");
    return;
  }
  json::corrupt(where, "expected {\"String\": ...} or {\"Regex\": ...}");
}

std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& o) {
  return std::make_unique<BertNormalizer>(o);
}

std::unique_ptr<Normalizer> make_normalizer(const JsonValue& v, const std::string& where) {
  std::string type = json::type_of(v, where);
  if (type == "BertNormalizer") {
    BertNormalizerOptions o;
    o.clean_text = json::get_bool(v, "clean_text", true, where);
    o.handle_chinese_chars = json::get_bool(v, "handle_chinese_chars", true, where);
    o.strip_accents = json::get_opt_bool(v, "strip_accents", where);
    o.lowercase = json::get_bool(v, "lowercase", true, where);
    return std::make_unique<BertNormalizer>(o);
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(false, false);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(false, true);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(true, false);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(true, true);
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(json::get_bool(v, "strip_left", true, where),
                                             json::get_bool(v, "strip_right", true, where));
  if (type == "Replace") {
    std::string literal;
    std::unique_ptr<Regex> regex;
    parse_pattern(json::required(v, "pattern", where), where + ".pattern", &literal, &regex);
    return std::make_unique<ReplaceNormalizer>(std::move(literal), std::move(regex),
                                               json::require_string(v, "content", where));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(json::require_string(v, "prepend", where));
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> items;
    size_t i = 0;
    for (auto e : json::as_array(json::required(v, "normalizers", where), where + ".normalizers")) {
      items.push_back(make_normalizer(e, where + ".normalizers[" + std::to_string(i++) + "]"));
    }
    return std::make_unique<SequenceNormalizer>(std::move(items));
  }
  fail(ErrorKind::UnsupportedModel,
       where + ": normalizer type '" + type +
           "' is not supported; supported: BertNormalizer, Lowercase, NFD, NFKD, NFC, NFKC, StripAccents, Strip, "
           "Replace, Prepend, ByteLevel, Sequence");
}

}  // namespace hfpipe::text
