// A read-only span of bytes from a weight file plus the owner that keeps it alive.
// The parsers work on this instead of on a path so that the same code serves mmapped files
// (owner = the MappedFile) and in-memory buffers (fuzz targets, inflated zip entries).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hfpipe::formats {

struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> owner;  // may be null when the caller guarantees the lifetime
  std::string name;                   // shown in error messages, usually the file path

  std::string_view chars() const { return {reinterpret_cast<const char*>(data), size}; }

  // The bytes [offset, offset + length); the caller has checked the range.
  ByteView slice(size_t offset, size_t length, std::string sub_name) const {
    return ByteView{data + offset, length, owner, std::move(sub_name)};
  }
};

// True when [offset, offset + length) lies inside a buffer of `size` bytes, without overflow.
inline bool range_fits(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

// Little-endian loads that do not care about alignment; every format here is little-endian.
inline uint16_t load_u16le(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t load_u32le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t load_u64le(const uint8_t* p) {
  return static_cast<uint64_t>(load_u32le(p)) | (static_cast<uint64_t>(load_u32le(p + 4)) << 32);
}

}  // namespace hfpipe::formats
