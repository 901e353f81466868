#include "text/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <vector>

#include "core/error.h"
#include "text/onig_syntax.h"

namespace hfpipe::text {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern, const std::string& what) : pattern_(pattern), impl_(std::make_unique<Impl>()) {
  std::string p;
  try {
    p = translate_oniguruma(pattern);
  } catch (const Error& e) {
    fail(ErrorKind::CorruptFile, what + ": regular expression '" + pattern + "' is not supported: " + e.what());
  }
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
