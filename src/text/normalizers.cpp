// Normalizers: BertNormalizer, Lowercase, NFD/NFC/NFKC/NFKD, StripAccents, Strip, Replace,
// Prepend, ByteLevel, Precompiled (sentencepiece's charsmap), Sequence.
#include <utf8proc.h>

#include <cstring>
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

// sentencepiece's precompiled_charsmap: [u32 LE trie byte size][Darts-clone double array of
// u32 units][NUL-terminated replacement strings]. Replacements are looked up per grapheme
// cluster, as `tokenizers` does (spm_precompiled + unicode-segmentation): a grapheme shorter
// than 6 bytes is looked up whole (the value of the SHORTEST trie prefix replaces all of it),
// otherwise each of its characters is looked up alone.
class PrecompiledNormalizer final : public Normalizer {
 public:
  PrecompiledNormalizer(std::string_view blob, const std::string& where) {
    if (blob.size() < 4) json::corrupt(where, "precompiled_charsmap is too short");
    uint32_t trie_bytes;
    std::memcpy(&trie_bytes, blob.data(), 4);  // little-endian hosts only (x86-64, aarch64)
    if (size_t(trie_bytes) > blob.size() - 4) json::corrupt(where, "precompiled_charsmap: trie size out of range");
    // Checked before the copy: an empty vector's data() may be null, and memcpy to null is
    // undefined even for 0 bytes (UBSan, found by fuzz_sentencepiece_model).
    if (trie_bytes < 4) json::corrupt(where, "precompiled_charsmap: empty trie");
    units_.resize(trie_bytes / 4);
    std::memcpy(units_.data(), blob.data() + 4, units_.size() * 4);
    normalized_.assign(blob.substr(4 + units_.size() * 4));
    if (u::first_invalid_utf8(normalized_))
      json::corrupt(where, "precompiled_charsmap: replacement strings are not valid UTF-8");
  }

  void normalize(NormalizedString& s) const override {
    const std::string& n = s.get();
    CharChanges dest;
    dest.reserve(n.size());
    bool modified = false;
    utf8proc_int32_t state = 0;
    size_t g_start = 0;
    char32_t prev = 0;
    for (size_t i = 0; i <= n.size();) {
      size_t len = 0;
      char32_t c = i < n.size() ? u::decode(n, i, &len) : 0;
      bool boundary = i == n.size() || (i > 0 && utf8proc_grapheme_break_stateful(utf8proc_int32_t(prev),
                                                                                      utf8proc_int32_t(c), &state));
      if (boundary && i > g_start) {
        modified |= grapheme(std::string_view(n).substr(g_start, i - g_start), dest);
        g_start = i;
      }
      if (i == n.size()) break;
      prev = c;
      i += len;
    }
    if (modified) s.transform(dest, 0);
  }

 private:
  // Darts-clone unit fields.
  static bool has_leaf(uint32_t u) { return (u >> 8) & 1; }
  static uint32_t value(uint32_t u) { return u & ((1u << 31) - 1); }
  static uint32_t label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
  static size_t offset(uint32_t u) { return size_t(u >> 10) << ((u & (1u << 9)) >> 6); }

  // The value of the shortest key that is a prefix of `key` (a NUL byte ends the key); a
  // position outside the array (corrupt data) ends the search.
  std::optional<uint32_t> first_prefix_value(std::string_view key) const {
    size_t pos = offset(units_[0]);
    for (unsigned char c : key) {
      if (c == 0) break;
      pos ^= c;
      if (pos >= units_.size()) return std::nullopt;
      uint32_t unit = units_[pos];
      if (label(unit) != c) return std::nullopt;
      pos ^= offset(unit);
      if (pos >= units_.size()) return std::nullopt;
      if (has_leaf(unit)) return value(units_[pos]);
    }
    return std::nullopt;
  }

  std::optional<std::string_view> transform(std::string_view chunk) const {
    auto v = first_prefix_value(chunk);
    if (!v || *v > normalized_.size()) return std::nullopt;
    size_t end = normalized_.find('\0', *v);
    if (end == std::string::npos) end = normalized_.size();
    std::string_view r = std::string_view(normalized_).substr(*v, end - *v);
    // A value pointing inside a character would make invalid UTF-8: treat as no entry.
    if (u::first_invalid_utf8(r)) return std::nullopt;
    return r;
  }

  // tokenizers' replace(): the new characters replace the old ones one for one; extra new
  // ones are insertions (+1, the last ones), missing ones are removed with the last.
  static void replace(CharChanges& dest, std::string_view old_part, std::string_view new_part) {
    long old_count = long(u::count_chars(old_part));
    size_t first = dest.size();
    for (size_t i = 0; i < new_part.size();) {
      size_t len;
      dest.emplace_back(u::decode(new_part, i, &len), 0);
      i += len;
    }
    long diff = long(dest.size() - first) - old_count;
    if (diff > 0) {
      for (long k = 0; k < diff; ++k) dest[dest.size() - 1 - size_t(k)].second = 1;
    } else if (diff < 0 && !dest.empty()) {
      dest.back().second += int(diff);
    }
  }

  bool grapheme(std::string_view g, CharChanges& dest) const {
    if (g.size() < 6) {
      if (auto norm = transform(g)) {
        replace(dest, g, *norm);
        return true;
      }
    }
    bool modified = false;
    for (size_t i = 0; i < g.size();) {
      size_t len;
      char32_t c = u::decode(g, i, &len);
      std::string_view part = g.substr(i, len);
      if (auto norm = transform(part)) {
        replace(dest, part, *norm);
        modified = true;
      } else {
        dest.emplace_back(c, 0);
      }
      i += len;
    }
    return modified;
  }

  std::vector<uint32_t> units_;
  std::string normalized_;
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

std::string base64_decode(std::string_view in, const std::string& where) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) json::corrupt(where, "invalid base64");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6) json::corrupt(where, "invalid base64 length");
  return out;
}

std::unique_ptr<Normalizer> make_precompiled_normalizer(std::string_view charsmap, const std::string& where) {
  return std::make_unique<PrecompiledNormalizer>(charsmap, where);
}

std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prepend) {
  return std::make_unique<PrependNormalizer>(std::move(prepend));
}
std::unique_ptr<Normalizer> make_replace_normalizer(std::string literal, std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(literal), nullptr, std::move(content));
}
std::unique_ptr<Normalizer> make_regex_replace_normalizer(const std::string& pattern, std::string content,
                                                          const std::string& where) {
  return std::make_unique<ReplaceNormalizer>("", std::make_unique<Regex>(pattern, where), std::move(content));
}
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right) {
  return std::make_unique<StripNormalizer>(left, right);
}
std::unique_ptr<Normalizer> make_sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> items) {
  return std::make_unique<SequenceNormalizer>(std::move(items));
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
  if (type == "Precompiled") {
    std::string w = where + ".precompiled_charsmap";
    return make_precompiled_normalizer(base64_decode(json::as_string(json::required(v, "precompiled_charsmap", where), w), w),
                                       where);
  }
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
           "Replace, Prepend, ByteLevel, Precompiled, Sequence");
}

}  // namespace hfpipe::text
