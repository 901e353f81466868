// A compiled regular expression (PCRE2 with Unicode properties and JIT) with the
// find-iteration semantics of the `onig` crate that `tokenizers` uses.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/normalized_string.h"

namespace hfpipe::text {

class Regex {
 public:
  // Throws Error(CorruptFile) naming `what` when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches, left to right; an empty match right after the previous
  // match is skipped (as onig's find_iter does).
  std::vector<Offsets> find_all(std::string_view s) const;
  // (range, is_match) pieces covering all of `s`.
  Matches find_matches(std::string_view s) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

// Literal (non-regex) occurrences of `needle`, as (range, is_match) pieces.
Matches find_literal_matches(std::string_view s, std::string_view needle);

}  // namespace hfpipe::text
