// The Oniguruma -> PCRE2 translation (src/text/onig_syntax.cpp) through text::Regex. Expected
// matches are those of `tokenizers` 0.22 (Oniguruma), measured with
// pre_tokenizers.Split(Regex(p), "removed", invert=True); tests/python/test_tokenizer_regex.py
// checks every pattern family against the library itself on the corpus and all code points.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "text/onig_syntax.h"
#include "text/regex.h"

using namespace hfpipe;
using namespace hfpipe::text;

namespace {
using Strs = std::vector<std::string>;

Strs onig_matches(const std::string& pattern, std::string_view s) {
  Regex rx(pattern, "test");
  Strs out;
  for (auto [st, en] : rx.find_all(s)) out.emplace_back(s.substr(st, en - st));
  return out;
}

// The message of the error translate_oniguruma raises, or "" when it translates.
std::string refusal(const std::string& pattern) {
  try {
    translate_oniguruma(pattern);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::CorruptFile);
    return e.what();
  }
  return "";
}
}  // namespace

TEST(OnigSyntax, NestedClassesAndIntersections) {
  EXPECT_EQ(onig_matches("[a-z&&[^aeiou]]+", "hello world"), (Strs{"h", "ll", "w", "rld"}));
  EXPECT_EQ(onig_matches("[a-c[x-z]]+", "abcdxyz"), (Strs{"abc", "xyz"}));
  // A leading '^' complements the whole intersection.
  EXPECT_EQ(onig_matches("[^a-z&&b-y]+", "abz"), (Strs{"a", "z"}));
  // An empty operand is the empty set.
  EXPECT_EQ(onig_matches("[a&&]|b", "ab"), (Strs{"b"}));
  EXPECT_EQ(onig_matches(R"([\w&&[^\d_]]+)", "ab_12c"), (Strs{"ab", "c"}));
  EXPECT_EQ(onig_matches("[[:alpha:]&&[:^lower:]]+", "aBCd"), (Strs{"BC"}));
  EXPECT_EQ(onig_matches("[]a]+", "]ab"), (Strs{"]a"}));
  EXPECT_EQ(onig_matches(R"([\b])", "a\x08"), (Strs{"\x08"}));
}

TEST(OnigSyntax, PosixBracketsWithOnigurumasTables) {
  EXPECT_EQ(onig_matches("[[:^alpha:]]+", "ab 12"), (Strs{" 12"}));
  // [[:punct:]] takes the symbols too; \p{Punct} does not.
  EXPECT_EQ(onig_matches("[[:punct:]]+", "a$+b!"), (Strs{"$+", "!"}));
  EXPECT_EQ(onig_matches(R"(\p{Punct}+)", "a$+b!"), (Strs{"!"}));
  // U+10D40 GARAY DIGIT ZERO (Unicode 16): a digit for Oniguruma, unassigned in PCRE2 10.42.
  EXPECT_EQ(onig_matches("[[:digit:]]+", "1\U00010D40x"), (Strs{"1\U00010D40"}));
  EXPECT_EQ(onig_matches(R"(\d+)", "1\U00010D40x"), (Strs{"1\U00010D40"}));
}

TEST(OnigSyntax, AnchorsBoundariesAndOptions) {
  // \b and \B by Oniguruma's word characters, which include marks (PCRE2 10.42's do not).
  EXPECT_EQ(onig_matches(R"(\B.)", "a\u0301b"), (Strs{"\u0301", "b"}));
  // ^ and $ are line anchors in Ruby syntax; (?m) is dot-all.
  EXPECT_EQ(onig_matches("^q", "x\nq q"), (Strs{"q"}));
  EXPECT_EQ(onig_matches(R"(\w+$)", "ab\ncd"), (Strs{"ab", "cd"}));
  EXPECT_EQ(onig_matches("(?m).+", "a\nb"), (Strs{"a\nb"}));
  // \v is a vertical tab only; {,n} is {0,n}.
  EXPECT_EQ(onig_matches(R"(\v)", "\x0b\n"), (Strs{"\x0b"}));
  EXPECT_EQ(onig_matches("a{,2}", "aaa"), (Strs{"aa", "a"}));
}

TEST(OnigSyntax, RefusesWhatPcre2WouldReadDifferently) {
  EXPECT_NE(refusal("(?i)ss").find("multi-character case folding"), std::string::npos);
  EXPECT_NE(refusal("(?i)gro\u00dfe").find("non-ASCII literal"), std::string::npos);
  EXPECT_NE(refusal("(?i)[[:upper:]]").find("[:upper:]"), std::string::npos);
  EXPECT_NE(refusal("a{1,2}+").find("interval followed by '+'"), std::string::npos);
  EXPECT_NE(refusal(R"(\X)").find("\\X"), std::string::npos);
  EXPECT_NE(refusal(R"(\QQ\E)").find("\\Q"), std::string::npos);
  EXPECT_NE(refusal("(?x) a").find("extended syntax"), std::string::npos);
  EXPECT_NE(refusal("(?s).").find("'s'"), std::string::npos);
  EXPECT_NE(refusal(R"(\xe9)").find("above 0x7F"), std::string::npos);
  EXPECT_NE(refusal(R"(\p{In_Basic_Latin})").find("\\p{In_Basic_Latin}"), std::string::npos);
  EXPECT_NE(refusal("[[:foo:]]").find("[:foo:]"), std::string::npos);
  EXPECT_NE(refusal("[[:alpha:]-z]").find("range"), std::string::npos);
  EXPECT_NE(refusal("[ab").find("unterminated character class"), std::string::npos);
  // (?i) ends with its group: the Llama 3 pattern, with \p in a class after it, translates.
  EXPECT_EQ(refusal(R"((?i:'s|'ll)|[^\r\n\p{L}\p{N}]?\p{L}+)"), "");
  EXPECT_EQ(onig_matches(R"((?i:'s|'ll)|[^\r\n\p{L}\p{N}]?\p{L}+)", "IT'S 'LL"), (Strs{"IT", "'S", "'LL"}));
}
