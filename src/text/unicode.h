// Unicode helpers for the tokenizer engine: UTF-8 coding, the character classes the
// `tokenizers` library uses (some from an old Unicode version, see unicode_tables.cpp),
// case mapping and normalisation forms with the per-character change counts that
// NormalizedString::transform consumes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hfpipe::text {

struct CodepointRange {
  char32_t first;
  char32_t last;
};

// (character, change) pairs as `tokenizers`' NormalizedString::transform takes them:
// 0 = replaces the current character, +1 = inserted, -N = replaces and removes N more.
using CharChanges = std::vector<std::pair<char32_t, int>>;

namespace unicode {

// Length of the UTF-8 sequence that starts with byte `b` (1 for continuation bytes, so a
// caller never loops forever on bad data; the engine validates input up front).
inline size_t utf8_len(unsigned char b) {
  if (b < 0x80) return 1;
  if (b < 0xE0) return b < 0xC0 ? 1 : 2;
  if (b < 0xF0) return 3;
  return 4;
}
inline size_t utf8_len(char32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

// Byte offset of code point number `chars` in UTF-8 `text` (its size if the text is shorter):
// for Python's str slicing, which counts characters.
inline size_t byte_offset_of_char(std::string_view text, size_t chars) {
  size_t i = 0;
  for (; i < text.size() && chars > 0; --chars) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

// Decodes the character at s[i] (valid UTF-8 assumed) and stores its byte length in `len`.
inline char32_t decode(std::string_view s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  unsigned char b = p[0];
  if (b < 0x80) {
    *len = 1;
    return b;
  }
  if (b < 0xE0) {
    *len = 2;
    return (char32_t(b & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b < 0xF0) {
    *len = 3;
    return (char32_t(b & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *len = 4;
  return (char32_t(b & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

inline void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(char(c));
  } else if (c < 0x800) {
    out.push_back(char(0xC0 | (c >> 6)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(char(0xE0 | (c >> 12)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (c >> 18)));
    out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  }
}

std::string encode(char32_t c);
std::u32string decode_all(std::string_view s);
size_t count_chars(std::string_view s);

// Byte offset of the first invalid sequence, or nullopt when `s` is well-formed UTF-8.
std::optional<size_t> first_invalid_utf8(std::string_view s);

// Rust's String::from_utf8_lossy: each maximal ill-formed subpart becomes U+FFFD.
std::string from_utf8_lossy(std::string_view bytes);

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_whitespace(char32_t c);
// Rust's char::is_alphanumeric / is_numeric / is_alphabetic (current Unicode via utf8proc).
bool is_numeric(char32_t c);
bool is_alphabetic(char32_t c);
// Regex crate's \w: alphabetic, marks, decimal numbers, connector punctuation, Join_Control.
bool is_word_char(char32_t c);

// The old-Unicode classes of the `unicode_categories` crate that `tokenizers` uses.
bool is_other_old(char32_t c);        // Cc | Cf | Co | Cs
bool is_nonspacing_mark_old(char32_t c);  // Mn
bool is_punctuation_old(char32_t c);  // P* (plus ASCII punctuation)
bool is_combining_mark(char32_t c);   // Mn | Mc | Me, as StripAccents sees it

// The script class of `tokenizers`' UnicodeScripts pre-tokenizer (0 = "Any": never splits);
// other numbers only tell classes apart (unicode_scripts.cpp, generated).
int script_of(char32_t c);

// BERT's CJK ideograph ranges.
bool is_chinese_char(char32_t c);

// Rust's char::to_lowercase / to_uppercase (full mappings); appends to `out`.
void to_lowercase(char32_t c, std::u32string& out);
void to_uppercase(char32_t c, std::u32string& out);

int combining_class(char32_t c);
// Full (recursive) canonical or compatibility decomposition of one character.
void decompose(char32_t c, bool compat, std::u32string& out);
// The primary composite of a + b, if any.
std::optional<char32_t> compose_pair(char32_t a, char32_t b);

// NFD / NFKD / NFC / NFKC of `s` as (char, change) pairs, as the
// unicode-normalization-alignments crate yields them.
CharChanges nfd_changes(std::string_view s, bool compat);
CharChanges nfc_changes(std::string_view s, bool compat);

}  // namespace unicode
}  // namespace hfpipe::text
