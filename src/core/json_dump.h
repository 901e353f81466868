// Compact JSON text of a Value, as the CLI prints results.
//
// Same text as nlohmann's dump(-1, ' ', false, replace) (invalid UTF-8 in strings replaced by
// U+FFFD, non-finite floats as null) except for floats, which are printed as the shortest
// decimal that reads back as the same float32 when the value is one (every model output: numpy's
// repr of np.float32), else as the same double (Python's repr), always with a '.' or an exponent
// so they read back as floats. nlohmann's Grisu2 also round-trips but costs ~3x more per number:
// feature-extraction prints millions of them.
#pragma once

#include <string>

#include "hfpipe/value.h"

namespace hfpipe {

// Appends v's JSON text to out.
void append_json(const Value& v, std::string& out);

std::string to_json(const Value& v);

// Empties a result tree faster than its destructor would: nlohmann's destructor moves every
// element of an array onto a heap stack before destroying it (so that deep nesting cannot
// overflow the call stack), which for feature-extraction's millions of numbers cost as much
// as printing them. Arrays of leaves are cleared in place, bottom-up; containers nested deeper
// than a result ever is are left to the destructor.
void release(Value& v);

}  // namespace hfpipe
