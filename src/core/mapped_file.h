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

  // Tells the kernel it may drop the resident pages of [p, p + n) when that range lies inside a
  // live MappedFile (otherwise: nothing). For a tensor that was converted into a copy at load
  // (transposed, dequantised), so the file's pages do not stay resident beside the copy and
  // double peak RSS. Safe because the maps are read-only: a later read of the range faults the
  // file's bytes back in unchanged. Only whole pages strictly inside the range are dropped.
  static void release_pages(const void* p, size_t n);
  // Whether [p, p + n) lies inside a live MappedFile (release_pages would give its pages back).
  static bool is_mapped(const void* p, size_t n);

 private:
  MappedFile() = default;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

// Reads a whole (small) file into a string; throws Error(NotFound) / Error(Io).
std::string read_text_file(const std::filesystem::path& path);

}  // namespace hfpipe
