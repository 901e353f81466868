// A minimal reader for the zip archives torch.save() writes: central directory (with ZIP64
// for archives and members over 4 GiB), stored members read in place from the mapping and
// deflated members inflated with zlib. Every offset and size is checked against the file
// before use, since the archive is untrusted input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "formats/byte_view.h"

namespace hfpipe::formats {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;         // uncompressed
  uint64_t data_offset = 0;  // first byte of the member's (compressed) data in the archive
};

class ZipArchive {
 public:
  // Parses the central directory of `bytes`; throws Error(CorruptFile) when it is not a
  // well-formed zip archive and Error(UnsupportedModel) for encryption / multi-disk archives.
  explicit ZipArchive(ByteView bytes);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // The member's bytes: a view into the archive for stored members (zero copy), an owned
  // buffer for deflated ones (CRC-checked).
  ByteView read(const ZipEntry& entry) const;

 private:
  void read_central_directory(uint64_t cd_offset, uint64_t cd_size, uint64_t count);
  void locate_data(ZipEntry& entry, uint64_t local_header_offset) const;
  void check_no_overlap(std::vector<std::pair<uint64_t, uint64_t>> spans) const;
  ByteView inflate(const ZipEntry& entry) const;
  [[noreturn]] void corrupt(const std::string& what) const;

  ByteView bytes_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace hfpipe::formats
