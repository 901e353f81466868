// Internal access to hfpipe::Error plus small helpers for raising it.
#pragma once

#include <string>

#include "hfpipe/errors.h"

namespace hfpipe {

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

// Checks an invariant and raises `kind` with `message` when it does not hold.
inline void check(bool condition, ErrorKind kind, const std::string& message) {
  if (!condition) throw Error(kind, message);
}

// A warning where transformers logs one (logger.warning / warnings.warn): one line on
// stderr, so that stdout keeps only results.
void warn(const std::string& message);

}  // namespace hfpipe
