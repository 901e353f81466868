// Translation of Oniguruma patterns (as `tokenizers` compiles them: Ruby syntax, UTF-8) to PCRE2.
#pragma once

#include <string>

namespace hfpipe::text {

// A PCRE2 pattern (for PCRE2_UTF | PCRE2_UCP) that matches exactly what Oniguruma matches with
// `pattern`: character classes (POSIX brackets, nested classes, && intersections, negated
// shorthands inside classes), \w \s \d \h \p{..} with Oniguruma's Unicode tables, \b, ^ and $
// (line anchors), (?m) (dot-all), \v, \uHHHH and {,n}. Throws Error(CorruptFile) naming the
// construct for Oniguruma syntax that PCRE2 would read differently and that has no translation.
std::string translate_oniguruma(const std::string& pattern);

}  // namespace hfpipe::text
