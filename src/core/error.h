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

}  // namespace hfpipe
