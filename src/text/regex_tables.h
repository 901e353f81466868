// Oniguruma's Unicode character sets, as PCRE2 class bodies (generated: regex_tables.cpp).
#pragma once

#include <string_view>

namespace hfpipe::text {

// One set: the code points PCRE2 matches with `[base]` (`[^base]` when base_negated), plus `add`,
// minus `remove` (PCRE2 class bodies of code point ranges; empty when nothing differs). The
// corrections are where PCRE2's Unicode tables (an older version) or its definitions disagree
// with Oniguruma's as `tokenizers` compiles it.
struct OnigCharSet {
  std::string_view key;
  const char* base;
  bool base_negated;
  const char* add;
  const char* remove;
};

// The set named `key`: "posix:<name>" ([[:name:]]), "escape:<w|s|d>" (the shorthand outside a
// character class) or "property:<name>" (\p{name}, with the name lower-cased and without spaces,
// '-' and '_', as Oniguruma compares them). nullptr when hfpipe has no measured table for it.
const OnigCharSet* find_onig_char_set(std::string_view key);

}  // namespace hfpipe::text
