// A read-only memory map of a whole file. Weight files are mapped rather than read so that
// f32 tensors can be used in place (zero copy) and pages are loaded only when touched.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>

namespace hfpipe {

class MappedFile {
 public:
  // Maps `path`; throws Error(NotFound) if it does not exist, Error(Io) if it cannot be mapped.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view bytes() const { return {reinterpret_cast<const char*>(data_), size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

// Reads a whole (small) file into a string; throws Error(NotFound) / Error(Io).
std::string read_text_file(const std::filesystem::path& path);

}  // namespace hfpipe
