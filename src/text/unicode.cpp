#include "text/unicode.h"

#include <utf8proc.h>

#include <algorithm>

namespace hfpipe::text {

namespace unicode_tables {
extern const CodepointRange kOtherRanges[];
extern const size_t kOtherRangesCount;
extern const CodepointRange kNonspacingRanges[];
extern const size_t kNonspacingRangesCount;
extern const CodepointRange kPunctuationRanges[];
extern const size_t kPunctuationRangesCount;
extern const CodepointRange kCombiningRanges[];
extern const size_t kCombiningRangesCount;
extern const CodepointRange kReorderedRanges[];
extern const size_t kReorderedRangesCount;
}  // namespace unicode_tables

namespace unicode {
namespace {

bool in_ranges(const CodepointRange* ranges, size_t count, char32_t c) {
  const CodepointRange* end = ranges + count;
  const CodepointRange* it =
      std::upper_bound(ranges, end, c, [](char32_t v, const CodepointRange& r) { return v < r.first; });
  if (it == ranges) return false;
  --it;
  return c >= it->first && c <= it->last;
}

utf8proc_category_t category(char32_t c) { return utf8proc_category(utf8proc_int32_t(c)); }

// Length of the maximal prefix of s[i..] that is a valid start of a UTF-8 sequence, and
// whether it is a complete character.
size_t valid_prefix(const unsigned char* p, size_t n, bool* complete) {
  unsigned char b = p[0];
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b < 0x80) {
    *complete = true;
    return 1;
  } else if (b >= 0xC2 && b <= 0xDF) {
    need = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    *complete = false;
    return 1;
  }
  size_t k = 1;
  while (k < need) {
    if (k >= n) break;
    unsigned char c = p[k];
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) break;
    ++k;
  }
  *complete = k == need;
  return k;
}

}  // namespace

std::string encode(char32_t c) {
  std::string s;
  append(s, c);
  return s;
}

std::u32string decode_all(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len;
    out.push_back(decode(s, i, &len));
    i += len;
  }
  return out;
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char b : s) n += (b & 0xC0) != 0x80;
  return n;
}

std::optional<size_t> first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    // Fast path over ASCII, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    bool complete;
    size_t k = valid_prefix(p + i, n - i, &complete);
    if (!complete) return i;
    i += k;
  }
  return std::nullopt;
}

std::string from_utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size(), i = 0;
  while (i < n) {
    bool complete;
    size_t k = valid_prefix(p + i, n - i, &complete);
    if (complete) {
      out.append(bytes.data() + i, k);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += k;
  }
  return out;
}

bool is_whitespace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_alphabetic(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  switch (category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
      return true;
    default:
      // Other_Alphabetic symbols (circled / squared letters).
      return (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
             (c >= 0x1F170 && c <= 0x1F189);
  }
}

bool is_word_char(char32_t c) {
  if (c < 0x80) return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_';
  if (c == 0x200C || c == 0x200D) return true;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return is_alphabetic(c);
  }
}

bool is_other_old(char32_t c) {
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  return in_ranges(unicode_tables::kOtherRanges, unicode_tables::kOtherRangesCount, c);
}
bool is_nonspacing_mark_old(char32_t c) {
  if (c < 0x300) return false;
  return in_ranges(unicode_tables::kNonspacingRanges, unicode_tables::kNonspacingRangesCount, c);
}
bool is_punctuation_old(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  return in_ranges(unicode_tables::kPunctuationRanges, unicode_tables::kPunctuationRangesCount, c);
}
bool is_combining_mark(char32_t c) {
  if (c < 0x300) return false;
  return in_ranges(unicode_tables::kCombiningRanges, unicode_tables::kCombiningRangesCount, c);
}

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void to_lowercase(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  if (c == 0x130) {  // the one multi-character lowercase mapping (SpecialCasing)
    out.push_back(U'i');
    out.push_back(0x307);
    return;
  }
  out.push_back(char32_t(utf8proc_tolower(utf8proc_int32_t(c))));
}

void to_uppercase(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'a' && c <= 'z' ? c - 32 : c);
    return;
  }
  if (c == 0xDF) {  // ß -> SS
    out.push_back(U'S');
    out.push_back(U'S');
    return;
  }
  out.push_back(char32_t(utf8proc_toupper(utf8proc_int32_t(c))));
}

int combining_class(char32_t c) {
  if (c < 0x300) return 0;
  int k = utf8proc_get_property(utf8proc_int32_t(c))->combining_class;
  // Marks that are newer than the normalisation tables of `tokenizers` have class 0 there.
  if (k > 1 && !in_ranges(unicode_tables::kReorderedRanges, unicode_tables::kReorderedRangesCount, c)) return 0;
  return k;
}

void decompose(char32_t c, bool compat, std::u32string& out) {
  if (c < 0xC0) {
    if (!compat || c < 0xA0) {
      out.push_back(c);
      return;
    }
  }
  utf8proc_int32_t buf[32];
  int boundclass = 0;
  utf8proc_option_t opts = utf8proc_option_t(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
  utf8proc_ssize_t n = utf8proc_decompose_char(utf8proc_int32_t(c), buf, 32, opts, &boundclass);
  if (n <= 0 || n > 32) {
    out.push_back(c);
    return;
  }
  for (utf8proc_ssize_t i = 0; i < n; ++i) out.push_back(char32_t(buf[i]));
}

std::optional<char32_t> compose_pair(char32_t a, char32_t b) {
  // Hangul syllables are algorithmic.
  constexpr char32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
  constexpr int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;
  if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
    return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
  if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
    return a + (b - TBase);
  utf8proc_int32_t buf[2] = {utf8proc_int32_t(a), utf8proc_int32_t(b)};
  utf8proc_ssize_t n = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE);
  if (n != 1) return std::nullopt;
  // Composition exclusions never compose.
  if (utf8proc_get_property(buf[0])->comp_exclusion) return std::nullopt;
  return char32_t(buf[0]);
}

CharChanges nfd_changes(std::string_view s, bool compat) {
  CharChanges out;
  out.reserve(s.size() + 8);
  std::u32string tmp;
  std::vector<int> classes;
  classes.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    size_t len;
    char32_t c = decode(s, i, &len);
    i += len;
    tmp.clear();
    decompose(c, compat, tmp);
    for (size_t k = 0; k < tmp.size(); ++k) {
      out.emplace_back(tmp[k], k == 0 ? 0 : 1);
      classes.push_back(combining_class(tmp[k]));
    }
  }
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (classes[i] == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && classes[j] != 0) ++j;
    if (j - i > 1) {
      std::vector<size_t> idx(j - i);
      for (size_t k = 0; k < idx.size(); ++k) idx[k] = i + k;
      std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return classes[x] < classes[y]; });
      CharChanges run;
      std::vector<int> run_classes;
      for (size_t k : idx) {
        run.push_back(out[k]);
        run_classes.push_back(classes[k]);
      }
      for (size_t k = 0; k < idx.size(); ++k) {
        out[i + k] = run[k];
        classes[i + k] = run_classes[k];
      }
    }
    i = j;
  }
  return out;
}

CharChanges nfc_changes(std::string_view s, bool compat) {
  CharChanges decomposed = nfd_changes(s, compat);
  CharChanges out;
  out.reserve(decomposed.size());
  CharChanges buffer;
  std::optional<std::pair<char32_t, int>> composee;
  std::optional<int> last_ccc;
  for (auto [ch, change] : decomposed) {
    int ch_class = combining_class(ch);
    if (!composee) {
      if (ch_class != 0) {
        out.emplace_back(ch, change);
      } else {
        composee = std::make_pair(ch, change);
      }
      continue;
    }
    auto k = *composee;
    if (!last_ccc) {
      if (auto r = compose_pair(k.first, ch)) {
        composee = std::make_pair(*r, k.second + change - 1);
        continue;
      }
      if (ch_class == 0) {
        composee = std::make_pair(ch, change);
        out.push_back(k);
        continue;
      }
      buffer.emplace_back(ch, change);
      last_ccc = ch_class;
    } else {
      int l_class = *last_ccc;
      if (l_class >= ch_class) {
        if (ch_class == 0) {
          composee = std::make_pair(ch, change);
          last_ccc.reset();
          out.push_back(k);
          out.insert(out.end(), buffer.begin(), buffer.end());
          buffer.clear();
          continue;
        }
        buffer.emplace_back(ch, change);
        last_ccc = ch_class;
        continue;
      }
      if (auto r = compose_pair(k.first, ch)) {
        composee = std::make_pair(*r, k.second + change - 1);
        continue;
      }
      buffer.emplace_back(ch, change);
      last_ccc = ch_class;
    }
  }
  if (composee) out.push_back(*composee);
  out.insert(out.end(), buffer.begin(), buffer.end());
  return out;
}

}  // namespace unicode
}  // namespace hfpipe::text
