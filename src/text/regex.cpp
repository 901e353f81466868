#include "text/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <vector>

#include "core/error.h"

namespace hfpipe::text {

namespace {

// Oniguruma's \s is Unicode White_Space; PCRE2's (with UCP) leaves out U+0085 and U+00A0
// in some versions. Spell the class out so both engines agree.
constexpr const char* kSpaceClass = "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// Oniguruma's Unicode \w is Alphabetic | Mark | Decimal_Number | Connector_Punctuation, plus
// the Latin-1 digits-like ² ³ ¹ ¼ ½ ¾ of its ISO-8859-1 table (measured against `tokenizers`);
// PCRE2 10.42's is letters, all numbers (also No, Nl) and '_'.
constexpr const char* kWordClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
// Inside a character class ([\w], [^\W], [a\W]) Oniguruma goes by the Unicode property alone:
// ² ³ ¹ ¼ ½ ¾ are not word characters there (measured against `tokenizers` too).
constexpr const char* kWordClassInClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";

// The class body of a shorthand escape letter (s, S, w, W, d, D, h, H) with Oniguruma's meaning (which
// for \w depends on whether it stands inside a character class), or
// nullptr for any other letter. Oniguruma's Unicode \d is Decimal_Number, as PCRE2's with UCP,
// but spelling it out lets a negated \D take part in a character class like \W and \S.
const char* shorthand_class(char n, bool in_class) {
  switch (n) {
    case 's': case 'S': return kSpaceClass;
    case 'w': case 'W': return in_class ? kWordClassInClass : kWordClass;
    case 'd': case 'D': return "\\p{Nd}";
    case 'h': case 'H': return "0-9A-Fa-f";  // Ruby syntax: a hexadecimal digit (PCRE2: horizontal space)
    default: return nullptr;
  }
}

bool is_negated_shorthand(char n) { return n == 'S' || n == 'W' || n == 'D' || n == 'H'; }

// Rewrites the character class starting at p[i] == '[' and returns the index just past its
// closing ']'. Positive shorthands are spliced into the class. PCRE2 10.42 has no class
// operators, so a class holding negated shorthands (\W, \S, \D: "not a word character") is
// rewritten as a one-character alternative with Oniguruma's meaning:
//   [X\W\S]   -> (?:[X]|[^word]|[^space])        (any of the members)
//   [^X\W\S]  -> (?:(?![X])(?=[word])[space])    (none of them: not X, a word char, a space)
// Every branch consumes exactly one code point, as the class would.
size_t rewrite_class(const std::string& p, size_t i, std::string& out) {
  ++i;  // '['
  bool negated = i < p.size() && p[i] == '^';
  if (negated) ++i;
  std::string pos;                 // the members other than negated shorthands
  std::vector<const char*> negs;   // class bodies of the negated shorthands
  bool first = true;
  while (i < p.size()) {
    char c = p[i];
    if (c == ']' && !first) break;
    first = false;
    if (c == ']') {  // a ']' right after '[' or '[^' is literal
      pos += "\\]";
      ++i;
    } else if (c == '\\' && i + 1 < p.size()) {
      const char* cls = shorthand_class(p[i + 1], true);
      if (cls && is_negated_shorthand(p[i + 1]))
        negs.push_back(cls);
      else if (cls)
        pos += cls;
      else
        pos.append(p, i, 2);
      i += 2;
    } else if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // A POSIX class [:name:] is one member: its ']' does not close the class.
      size_t e = p.find(":]", i + 2);
      size_t stop = e == std::string::npos ? i + 1 : e + 2;
      pos.append(p, i, stop - i);
      i = stop;
    } else {
      pos += c;
      ++i;
    }
  }
  if (i >= p.size()) {
    // Unterminated: hand the rest to PCRE2 unchanged so that it reports the error.
    out += '[';
    if (negated) out += '^';
    out += pos;
    for (const char* n : negs) out += n;
    return i;
  }
  ++i;  // ']'
  // A literal '^' leading the positive part must not read as a negation once rewrapped.
  if (!pos.empty() && pos[0] == '^') pos.insert(0, "\\");
  if (negs.empty()) {
    out += negated ? "[^" : "[";
    out += pos;
    out += ']';
    return i;
  }
  out += "(?:";
  if (!negated) {
    bool bar = false;
    if (!pos.empty()) {
      out += "[" + pos + "]";
      bar = true;
    }
    for (const char* n : negs) {
      if (bar) out += '|';
      out += std::string("[^") + n + "]";
      bar = true;
    }
  } else {
    if (!pos.empty()) out += "(?![" + pos + "])";
    for (size_t k = 0; k + 1 < negs.size(); ++k) out += std::string("(?=[") + negs[k] + "])";
    out += std::string("[") + negs.back() + "]";
  }
  out += ')';
  return i;
}

// Rewrites \s, \S, \w, \W, \d, \D, \h and \H (outside and inside character classes) to explicit
// classes with Oniguruma's meaning.
std::string rewrite_classes(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 64);
  for (size_t i = 0; i < p.size();) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char* cls = shorthand_class(p[i + 1], false);
      if (cls) {
        out += is_negated_shorthand(p[i + 1]) ? "[^" : "[";
        out += cls;
        out += ']';
      } else {
        out.append(p, i, 2);
      }
      i += 2;
      continue;
    }
    if (c == '[') {
      i = rewrite_class(p, i, out);
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern, const std::string& what) : pattern_(pattern), impl_(std::make_unique<Impl>()) {
  std::string p = rewrite_classes(pattern);
  int err = 0;
  PCRE2_SIZE off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    fail(ErrorKind::CorruptFile, what + ": regular expression '" + pattern + "' does not compile: " +
                                     reinterpret_cast<const char*>(buf) + " at offset " + std::to_string(off));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

std::vector<Offsets> Regex::find_all(std::string_view s) const {
  std::vector<Offsets> out;
  thread_local pcre2_match_data* md = pcre2_match_data_create(16, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t last_end = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (last_end <= s.size()) {
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, s.size(), last_end, 0, md, nullptr)
                        : pcre2_match(impl_->code, subject, s.size(), last_end, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // very long runs: the interpreter keeps its stack on the heap
      rc = pcre2_match(impl_->code, subject, s.size(), last_end, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
    if (rc < 0) {
      if (rc == PCRE2_ERROR_NOMATCH) break;
      fail(ErrorKind::InvalidArgument, "regular expression '" + pattern_ + "' failed on the input (PCRE2 error " +
                                           std::to_string(rc) + ")");
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t st = ov[0], en = ov[1];
    if (st == en && have_last && last_match_end == en) {
      if (last_end >= s.size()) break;
      last_end += unicode::utf8_len(static_cast<unsigned char>(s[last_end]));
      continue;
    }
    last_end = en;
    have_last = true;
    last_match_end = en;
    out.emplace_back(st, en);
    if (st == en) {
      // onig would re-search at the same position and skip the empty match there.
      if (last_end >= s.size()) break;
    }
  }
  return out;
}

Matches Regex::find_matches(std::string_view s) const {
  Matches out;
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return out;
  }
  size_t prev = 0;
  for (const auto& [st, en] : find_all(s)) {
    if (prev != st) out.push_back({{prev, st}, false});
    out.push_back({{st, en}, true});
    prev = en;
  }
  if (prev != s.size()) out.push_back({{prev, s.size()}, false});
  return out;
}

Matches find_literal_matches(std::string_view s, std::string_view needle) {
  Matches out;
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return out;
  }
  size_t prev = 0;
  if (!needle.empty()) {
    size_t pos = 0;
    while ((pos = s.find(needle, pos)) != std::string_view::npos) {
      if (prev != pos) out.push_back({{prev, pos}, false});
      out.push_back({{pos, pos + needle.size()}, true});
      pos += needle.size();
      prev = pos;
    }
  }
  if (prev != s.size()) out.push_back({{prev, s.size()}, false});
  return out;
}

}  // namespace hfpipe::text
