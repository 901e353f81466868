#pragma once
// Numeric conversions that untrusted input (JSON files, chat templates) reaches.

namespace hfpipe {

// A double that converts to int64_t without undefined behaviour: within [-2^63, 2^63), which
// also excludes inf and nan. Converting anything else (1e21, say) is undefined in C++.
inline bool fits_int64(double d) { return d >= -9223372036854775808.0 && d < 9223372036854775808.0; }

}  // namespace hfpipe
