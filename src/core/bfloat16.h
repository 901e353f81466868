#pragma once
// bfloat16 is the upper half of an IEEE binary32: the weight readers (formats/) and the
// products over bf16 weights (ops/) widen it the same way.

#include <cstdint>

namespace hfpipe {

// A bfloat16 bit pattern as the float it is (exact: a shift).
inline float bf16_to_f32(uint16_t bf) {
  const uint32_t bits = static_cast<uint32_t>(bf) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace hfpipe
