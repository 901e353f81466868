#include "text/onig_syntax.h"

#include <cstdio>
#include <optional>
#include <vector>

#include "core/error.h"
#include "text/regex_tables.h"
#include "text/unicode.h"

namespace hfpipe::text {

namespace {

// A set of code points: a PCRE2 class body, or a union / intersection of sets, each possibly
// complemented. Emitted as a PCRE2 construct that consumes exactly one code point.
struct CharSet {
  enum class Op { Items, Union, Intersection };
  Op op = Op::Items;
  bool negated = false;
  std::string items;  // Op::Items: PCRE2 class body (no leading '^')
  std::vector<CharSet> parts;
};

CharSet items_set(std::string body) {
  CharSet s;
  s.items = std::move(body);
  return s;
}

CharSet complement(CharSet s) {
  s.negated = !s.negated;
  return s;
}

CharSet combine(CharSet::Op op, std::vector<CharSet> parts) {
  if (parts.size() == 1) return std::move(parts[0]);
  CharSet s;
  s.op = op;
  s.parts = std::move(parts);
  return s;
}

constexpr const char* kAnyCodePoint = "[\\x{0}-\\x{10FFFF}]";

std::string class_of(const std::string& body, bool negated) {
  if (body.empty()) return negated ? kAnyCodePoint : "(?!)";
  return (negated ? "[^" : "[") + body + "]";
}

// PCRE2 has no class operators (10.42), so a union becomes an alternation and an intersection
// a run of one-code-point lookaheads before the last member; negations are pushed down to the
// leaves (De Morgan). Leaves that one class can hold are merged into it: the positive ones of a
// union ([ab]), the negated ones of an intersection ([^ab] is "not a and not b").
std::string emit(const CharSet& s, bool negate) {
  bool neg = s.negated != negate;
  if (s.op == CharSet::Op::Items) return class_of(s.items, neg);
  bool any_of = (s.op == CharSet::Op::Union) != neg;
  std::string merged;
  bool have_merged = false;
  std::vector<std::string> others;
  for (const CharSet& part : s.parts) {
    bool part_neg = part.negated != neg;
    if (part.op == CharSet::Op::Items && part_neg != any_of) {
      merged += part.items;
      have_merged = true;
    } else {
      others.push_back(emit(part, neg));
    }
  }
  if (any_of) {
    if (have_merged) others.insert(others.begin(), class_of(merged, false));
    if (others.empty()) return "(?!)";
    if (others.size() == 1) return others[0];
    std::string out = "(?:";
    for (size_t k = 0; k < others.size(); ++k) out += (k ? "|" : "") + others[k];
    return out + ")";
  }
  std::string last;
  if (have_merged) {
    last = class_of(merged, true);
  } else if (!others.empty()) {
    last = others.back();
    others.pop_back();
  } else {
    last = kAnyCodePoint;
  }
  std::string out = "(?:";
  for (const std::string& o : others) out += "(?=" + o + ")";
  return out + last + ")";
}

CharSet from_table(const OnigCharSet& t) {
  CharSet set = items_set(t.base);
  if (t.base_negated) set = complement(std::move(set));
  if (*t.add) set = combine(CharSet::Op::Union, {std::move(set), items_set(t.add)});
  if (*t.remove) set = combine(CharSet::Op::Intersection, {std::move(set), complement(items_set(t.remove))});
  return set;
}

std::string hex_escape(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\x{%X}", static_cast<unsigned>(c));
  return buf;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower_ascii(char c) { return c >= 'a' && c <= 'z'; }

// Oniguruma compares property names ignoring case, spaces, '-' and '_'.
std::string loose_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '_') continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

class Translator {
 public:
  explicit Translator(const std::string& pattern) : p_(pattern) {}

  std::string run() {
    while (i_ < p_.size()) translate_one();
    return out_;
  }

 private:
  const std::string& p_;
  size_t i_ = 0;
  std::string out_;
  bool caseless_ = false;             // (?i) in force at i_
  std::vector<bool> enclosing_caseless_;  // at each open group's start, restored at its ')'

  [[noreturn]] void refuse(const std::string& what) const {
    fail(ErrorKind::CorruptFile, what + " (at offset " + std::to_string(i_) + ")");
  }

  bool at(size_t k, char c) const { return k < p_.size() && p_[k] == c; }

  const OnigCharSet& table(const std::string& key, const std::string& construct) const {
    const OnigCharSet* t = find_onig_char_set(key);
    if (!t) refuse("unsupported " + construct);
    return *t;
  }

  void translate_one() {
    char c = p_[i_];
    switch (c) {
      case '\\': return translate_escape();
      case '[': out_ += emit(parse_class(), false); return;
      case '^': out_ += "(?m:^)"; ++i_; return;  // Ruby syntax: ^ and $ are always line anchors
      case '$': out_ += "(?m:$)"; ++i_; return;
      case '(': return translate_group_open();
      case ')':
        if (!enclosing_caseless_.empty()) {
          caseless_ = enclosing_caseless_.back();
          enclosing_caseless_.pop_back();
        }
        out_ += ')';
        ++i_;
        return;
      case '{': return translate_interval();
      default: break;
    }
    size_t len = unicode::utf8_len(static_cast<unsigned char>(c));
    if (caseless_) check_caseless_literal(i_, len);
    out_.append(p_, i_, len);
    i_ += len;
  }

  // Oniguruma folds case with the multi-character foldings too ((?i)ss matches ß, (?i)ß matches
  // "SS"); PCRE2 folds one code point to one. Refuse the literals where that can differ.
  void check_caseless_literal(size_t k, size_t len) const {
    if (len > 1) refuse("case-insensitive matching of a non-ASCII literal (Oniguruma's multi-character case folding)");
    auto low = [&](size_t j) { return j < p_.size() ? static_cast<char>(p_[j] | 0x20) : '\0'; };
    char a = low(k), b = low(k + 1);
    if ((a == 's' && (b == 's' || b == 't')) || (a == 'f' && (b == 'f' || b == 'i' || b == 'l')))
      refuse(std::string("case-insensitive matching of '") + p_[k] + p_[k + 1] +
             "' (Oniguruma's multi-character case folding also matches a ligature or sharp s)");
  }

  void translate_escape() {
    if (i_ + 1 >= p_.size()) refuse("a pattern ending in '\\'");
    char n = p_[i_ + 1];
    if (auto set = shorthand_set(n, false)) {
      out_ += emit(*set, false);
      i_ += 2;
      return;
    }
    switch (n) {
      case 'p': case 'P': out_ += emit(parse_property(false), false); return;
      case 'b': case 'B': out_ += word_boundary(n == 'B'); i_ += 2; return;
      case 'v': out_ += "\\x{0B}"; i_ += 2; return;  // Oniguruma: vertical tab (PCRE2: any vertical space)
      case 'u': case 'x': out_ += hex_escape(parse_escaped_char()); return;
      case 'X': refuse("\\X (extended grapheme clusters: Oniguruma's segmentation rules differ from PCRE2 10.42's)");
      case 'Q': case 'E': refuse("\\Q...\\E quoting (Oniguruma's Ruby syntax reads \\Q as 'Q')");
      default: break;
    }
    out_.append(p_, i_, 2);
    i_ += 2;
  }

  // \w \W \s \S \d \D \h \H with Oniguruma's meaning; outside a class \w takes a few Latin-1
  // characters (² ³ ¹ ¼ ½ ¾) that the class form [\w] = [[:word:]] does not.
  std::optional<CharSet> shorthand_set(char n, bool in_class) const {
    std::string key;
    switch (n) {
      case 'w': case 'W': key = in_class ? "posix:word" : "escape:w"; break;
      case 's': case 'S': key = in_class ? "posix:space" : "escape:s"; break;
      case 'd': case 'D': key = in_class ? "posix:digit" : "escape:d"; break;
      case 'h': case 'H': key = "posix:xdigit"; break;  // Ruby syntax: a hex digit (PCRE2: horizontal space)
      default: return std::nullopt;
    }
    CharSet s = from_table(table(key, std::string("\\") + n));
    return (n >= 'A' && n <= 'Z') ? complement(std::move(s)) : s;
  }

  // \b and \B by Oniguruma's word characters (those of \w), written as lookarounds: PCRE2's
  // \b goes by its own \w, which leaves out marks.
  std::string word_boundary(bool negated) const {
    std::string w = emit(from_table(table("escape:w", "\\b")), false);
    if (negated) return "(?:(?<=" + w + ")(?=" + w + ")|(?<!" + w + ")(?!" + w + "))";
    return "(?:(?<=" + w + ")(?!" + w + ")|(?<!" + w + ")(?=" + w + "))";
  }

  // \p{Name}, \p{^Name}, \P{Name}, \P{^Name}. Outside a class \p{Word} is \w, with its Latin-1 extras.
  CharSet parse_property(bool in_class) {
    bool negated = p_[i_ + 1] == 'P';
    size_t start = i_;
    i_ += 2;
    if (!at(i_, '{')) refuse("\\p without a {name}");
    size_t close = p_.find('}', i_);
    if (close == std::string::npos) refuse("an unterminated \\p{...}");
    std::string_view name(p_.data() + i_ + 1, close - i_ - 1);
    if (!name.empty() && name[0] == '^') {
      negated = !negated;
      name.remove_prefix(1);
    }
    i_ = close + 1;
    std::string key = "property:" + loose_name(name);
    if (key == "property:word" && !in_class) key = "escape:w";
    const OnigCharSet* t = find_onig_char_set(key);
    if (!t) {
      i_ = start;
      refuse("unsupported Unicode property \\p{" + std::string(name) + "}");
    }
    CharSet s = from_table(*t);
    return negated ? complement(std::move(s)) : s;
  }

  // A character escape at p_[i_] == '\\': \xHH, \x{H..}, \uHHHH, \t \n \r \f \v \a \e, \0oo,
  // or an escaped non-alphanumeric character. Returns its code point.
  char32_t parse_escaped_char() {
    char n = p_[i_ + 1];
    i_ += 2;
    auto hex_digits = [&](size_t max) {
      char32_t v = 0;
      size_t k = 0;
      for (; k < max && i_ < p_.size() && is_hex(p_[i_]); ++k, ++i_)
        v = v * 16 + static_cast<char32_t>(std::stoi(std::string(1, p_[i_]), nullptr, 16));
      if (k == 0) refuse(std::string("\\") + n + " without hexadecimal digits");
      return v;
    };
    switch (n) {
      case 'x': {
        if (!at(i_, '{')) {
          char32_t v = hex_digits(2);
          // Oniguruma reads \xHH as one byte of the UTF-8 string: above 0x7F it is no character.
          if (v > 0x7F) refuse("\\x escape of a single byte above 0x7F (use \\x{...})");
          return v;
        }
        ++i_;
        char32_t v = hex_digits(8);
        if (!at(i_, '}')) refuse("an unterminated \\x{...}");
        ++i_;
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) refuse("\\x{...} outside Unicode scalar values");
        return v;
      }
      case 'u': {
        size_t start = i_;
        char32_t v = hex_digits(4);
        if (i_ - start != 4) refuse("\\u without four hexadecimal digits");
        return v;
      }
      case 't': return U'\t';
      case 'n': return U'\n';
      case 'r': return U'\r';
      case 'f': return U'\f';
      case 'v': return U'\v';
      case 'a': return U'\a';
      case 'e': return 0x1B;
      case '0': {
        char32_t v = 0;
        for (size_t k = 0; k < 2 && i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '7'; ++k, ++i_) v = v * 8 + (p_[i_] - '0');
        return v;
      }
      default: break;
    }
    if ((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || is_digit(n))
      refuse(std::string("unsupported escape \\") + n + " in a character class");
    i_ -= 1;  // an escaped punctuation or non-ASCII character stands for itself
    return literal_char();
  }

  char32_t literal_char() {
    size_t len = 0;
    char32_t c = unicode::decode(p_, i_, &len);
    i_ += len;
    return c;
  }

  // Group openings: (?imx-imx) and (?imx-imx:...) take Oniguruma's option letters (Ruby
  // syntax: 'm' is dot-all, PCRE2's 's'); the other groups read alike.
  void translate_group_open() {
    if (!at(i_ + 1, '?') || i_ + 2 >= p_.size() || !(is_lower_ascii(p_[i_ + 2]) || p_[i_ + 2] == '-')) {
      enclosing_caseless_.push_back(caseless_);
      out_ += '(';
      ++i_;
      return;
    }
    std::string opts = "(?";
    bool on = true, caseless = caseless_;
    size_t k = i_ + 2;
    for (; k < p_.size() && p_[k] != ')' && p_[k] != ':'; ++k) {
      char o = p_[k];
      if (o == '-') on = false;
      if (o == 'i') caseless = on;
      if (o == 'i' || o == '-') opts += o;
      else if (o == 'm') opts += 's';
      else {
        i_ = k;
        refuse(std::string("unsupported group option '") + o + "'" +
               (o == 'x' ? " (extended syntax)" : o == 's' ? " (Oniguruma's Ruby syntax has none; (?m) is dot-all)" : ""));
      }
    }
    if (k >= p_.size()) refuse("an unterminated group option");
    if (p_[k] == ':') enclosing_caseless_.push_back(caseless_);  // a group: its ')' restores the options
    caseless_ = caseless;  // (?i) alone holds to the end of the enclosing group
    out_ += opts + p_[k];
    i_ = k + 1;
  }

  // {n,m} and friends. Oniguruma reads {,n} as {0,n} (PCRE2 10.42: literal text), and an
  // interval followed by '+' as a repetition of it (PCRE2: possessive).
  void translate_interval() {
    size_t k = i_ + 1;
    size_t lo_start = k;
    while (k < p_.size() && is_digit(p_[k])) ++k;
    bool has_lo = k > lo_start;
    bool comma = at(k, ',');
    if (comma) ++k;
    size_t hi_start = k;
    while (comma && k < p_.size() && is_digit(p_[k])) ++k;
    bool has_hi = k > hi_start;
    if (!at(k, '}') || (!has_lo && !has_hi)) {  // not an interval: a literal '{'
      out_ += "\\{";
      ++i_;
      return;
    }
    ++k;
    if (at(k, '+')) refuse("an interval followed by '+' (Oniguruma repeats the interval; PCRE2 makes it possessive)");
    out_ += has_lo ? p_.substr(i_, k - i_) : "{0" + p_.substr(i_ + 1, k - i_ - 1);
    i_ = k;
  }

  // ---- character classes -----------------------------------------------------------------

  // The class at p_[i_] == '[', with Oniguruma's grammar: members (characters, ranges,
  // escapes, POSIX brackets, nested classes) form unions; '&&' intersects them; a leading
  // '^' complements the whole. An empty operand ([a&&]) is the empty set.
  CharSet parse_class() {
    size_t open = i_;
    ++i_;
    bool negated = at(i_, '^');
    if (negated) ++i_;
    std::vector<CharSet> operands;
    ClassUnion current;
    bool first = true;
    while (true) {
      if (i_ >= p_.size()) {
        i_ = open;
        refuse("an unterminated character class");
      }
      if (p_[i_] == ']' && !first) {
        ++i_;
        break;
      }
      if (p_[i_] == '&' && at(i_ + 1, '&')) {
        operands.push_back(current.take());
        i_ += 2;
        first = false;
        continue;
      }
      parse_member(current, first);
      first = false;
    }
    operands.push_back(current.take());
    CharSet s = combine(CharSet::Op::Intersection, std::move(operands));
    return negated ? complement(std::move(s)) : s;
  }

  struct ClassUnion {
    std::string items;
    std::vector<CharSet> sets;
    CharSet take() {
      std::vector<CharSet> parts = std::move(sets);
      if (!items.empty() || parts.empty()) parts.push_back(items_set(std::move(items)));
      *this = {};
      return combine(CharSet::Op::Union, std::move(parts));
    }
  };

  void add_set(ClassUnion& u, CharSet s) {
    // A set cannot start a range: [\w-z] is an error in Oniguruma.
    if (at(i_, '-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') refuse("a range starting at a character set");
    u.sets.push_back(std::move(s));
  }

  void parse_member(ClassUnion& u, bool first) {
    char c = p_[i_];
    if (c == '[' && at(i_ + 1, ':')) {
      if (auto posix = parse_posix_bracket()) return add_set(u, std::move(*posix));
    }
    if (c == '[') return add_set(u, parse_class());
    if (c == '\\' && i_ + 1 < p_.size()) {
      char n = p_[i_ + 1];
      if (auto set = shorthand_set(n, true)) {
        i_ += 2;
        return add_set(u, std::move(*set));
      }
      if (n == 'p' || n == 'P') {
        if (caseless_) refuse("\\p{...} in a character class under (?i) (Oniguruma case-folds the class)");
        return add_set(u, parse_property(true));
      }
    }
    char32_t lo = class_char();
    if (at(i_, '-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']' && !(p_[i_ + 1] == '&' && at(i_ + 2, '&'))) {
      ++i_;
      if (p_[i_] == '[' || (p_[i_] == '\\' && i_ + 1 < p_.size() &&
                            (shorthand_set(p_[i_ + 1], true) || p_[i_ + 1] == 'p' || p_[i_ + 1] == 'P')))
        refuse("a range ending at a character set");
      char32_t hi = class_char();
      if (hi < lo) refuse("an empty range in a character class");
      u.items += hex_escape(lo) + "-" + hex_escape(hi);
      return;
    }
    (void)first;
    u.items += hex_escape(lo);
  }

  // One character of a class: a literal or a character escape (\b is a backspace here).
  char32_t class_char() {
    if (p_[i_] != '\\') return literal_char();
    if (i_ + 1 >= p_.size()) refuse("a pattern ending in '\\'");
    if (p_[i_ + 1] == 'b') {
      i_ += 2;
      return 0x08;
    }
    return parse_escaped_char();
  }

  // [:name:] or [:^name:] at p_[i_]; nullopt (nothing consumed) when the text is not one, as
  // for "[:a]" (a nested class). An unknown name is an error, as in Oniguruma.
  std::optional<CharSet> parse_posix_bracket() {
    size_t k = i_ + 2;
    bool negated = at(k, '^');
    if (negated) ++k;
    size_t name_start = k;
    while (k < p_.size() && is_lower_ascii(p_[k])) ++k;
    if (k == name_start || !at(k, ':') || !at(k + 1, ']')) return std::nullopt;
    std::string name = p_.substr(name_start, k - name_start);
    if (caseless_) refuse("POSIX bracket [:" + name + ":] under (?i) (Oniguruma case-folds the class)");
    const OnigCharSet* t = find_onig_char_set("posix:" + name);
    if (!t) refuse("invalid POSIX bracket type [:" + name + ":]");
    i_ = k + 2;
    CharSet s = from_table(*t);
    return negated ? complement(std::move(s)) : s;
  }
};

}  // namespace

std::string translate_oniguruma(const std::string& pattern) { return Translator(pattern).run(); }

}  // namespace hfpipe::text
