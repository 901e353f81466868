// Compact JSON text of a Value, as the CLI prints results.
//
// Same text as nlohmann's dump(-1, ' ', false, replace) (invalid UTF-8 in strings replaced by
// U+FFFD, non-finite floats as null) except for floats, which are printed as the shortest
// decimal that reads back as the same double (std::to_chars, as Python's repr), always with a
// '.' or an exponent so they read back as floats. nlohmann's Grisu2 also round-trips but costs
// ~3x more per number: feature-extraction prints millions of them (~12% of its CPU time).
#pragma once

#include <string>

#include "hfpipe/value.h"

namespace hfpipe {

// Appends v's JSON text to out.
void append_json(const Value& v, std::string& out);

std::string to_json(const Value& v);

}  // namespace hfpipe
