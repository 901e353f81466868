#pragma once
// The 16-bit floats weight files hold, widened to the binary32 values they are (both exact):
// the weight readers (formats/) and the products over 16-bit weights (ops/) widen them the
// same way.

#include <cstdint>

namespace hfpipe {

// A bfloat16 bit pattern as the float it is: the upper half of an IEEE binary32 (a shift).
inline float bf16_to_f32(uint16_t bf) {
  const uint32_t bits = static_cast<uint32_t>(bf) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// An IEEE binary16 bit pattern as the float it is (subnormals, infinities and NaN payloads
// included), without F16C: the reference the vector conversions are tested against.
inline float f16_to_f32(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    // inf, or NaN with its payload kept and, as IEEE conversion (and F16C) does, made quiet
    bits = sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0u);
  } else if (exponent != 0) {
    bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);  // rebias the exponent
  } else {
    // Zero or subnormal: the value is mantissa * 2^-24, exactly representable in f32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    __builtin_memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
  }
  float out;
  __builtin_memcpy(&out, &bits, sizeof out);
  return out;
}

}  // namespace hfpipe
