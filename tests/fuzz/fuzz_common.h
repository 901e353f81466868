// Shared by the fuzz targets: reading every byte of every loaded tensor (so a view that
// escapes its buffer is caught by AddressSanitizer) and wrapping bytes in a zip archive.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/weights.h"

namespace hfpipe::fuzz {

// Sums every byte of every tensor; the result is only there so the reads are not elided.
// A tensor whose byte count wraps around 64 bits is a bug too: its nbytes() looks small, so
// the reads below stay in bounds, while the model would address numel() elements.
inline uint8_t touch_all(const formats::WeightMap& weights) {
  uint8_t acc = 0;
  for (const std::string& name : weights.names()) {
    const Tensor& t = weights.at(name);
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(t.numel()), uint64_t{dtype_size(t.dtype())}, &bytes))
      __builtin_trap();
    const auto* p = static_cast<const uint8_t*>(t.raw());
    for (size_t i = 0; i < t.nbytes(); ++i) acc ^= p[i];
  }
  return acc;
}

inline void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// A zip archive of stored members (no compression, no alignment): enough to carry a fuzzed
// pickle to the unpickler through the real archive code.
inline std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out, central;
  for (const auto& [name, data] : members) {
    const uint64_t offset = out.size();
    put_le(out, 0x04034b50, 4), put_le(out, 20, 2), put_le(out, 0, 2), put_le(out, 0, 2), put_le(out, 0, 4);
    put_le(out, 0, 4), put_le(out, data.size(), 4), put_le(out, data.size(), 4);
    put_le(out, name.size(), 2), put_le(out, 0, 2);
    out += name + data;
    put_le(central, 0x02014b50, 4), put_le(central, 20, 2), put_le(central, 20, 2), put_le(central, 0, 2);
    put_le(central, 0, 2), put_le(central, 0, 4), put_le(central, 0, 4), put_le(central, data.size(), 4);
    put_le(central, data.size(), 4), put_le(central, name.size(), 2), put_le(central, 0, 2), put_le(central, 0, 2);
    put_le(central, 0, 2), put_le(central, 0, 2), put_le(central, 0, 4), put_le(central, offset, 4);
    central += name;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  put_le(out, 0x06054b50, 4), put_le(out, 0, 2), put_le(out, 0, 2), put_le(out, members.size(), 2);
  put_le(out, members.size(), 2), put_le(out, central.size(), 4), put_le(out, cd_offset, 4), put_le(out, 0, 2);
  return out;
}

}  // namespace hfpipe::fuzz
