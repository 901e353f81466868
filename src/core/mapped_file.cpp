#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/error.h"

namespace hfpipe {

namespace {

// Live maps (start -> size), so release_pages can check a range really is file-backed: madvise
// on heap memory would zero it.
std::mutex live_maps_mutex;
std::map<uintptr_t, size_t>& live_maps() {
  static std::map<uintptr_t, size_t> maps;
  return maps;
}

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ErrorKind kind = errno == ENOENT ? ErrorKind::NotFound : ErrorKind::Io;
    fail(kind, "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorKind::Io, "not a regular file: " + path.string());
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(ErrorKind::Io, "cannot map " + path.string() + ": " + std::strerror(err));
    }
    file->data_ = static_cast<const unsigned char*>(p);
    std::lock_guard<std::mutex> lock(live_maps_mutex);
    live_maps()[reinterpret_cast<uintptr_t>(p)] = file->size_;
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (!data_) return;
  {
    std::lock_guard<std::mutex> lock(live_maps_mutex);
    live_maps().erase(reinterpret_cast<uintptr_t>(data_));
  }
  munmap(const_cast<unsigned char*>(data_), size_);
}

namespace {

// Whether [begin, end) lies inside a live map; the caller holds live_maps_mutex.
bool inside_live_map(uintptr_t begin, uintptr_t end) {
  auto it = live_maps().upper_bound(begin);
  if (it == live_maps().begin()) return false;
  --it;
  return begin >= it->first && end <= it->first + it->second;
}

}  // namespace

bool MappedFile::is_mapped(const void* p, size_t n) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(live_maps_mutex);
  return n > 0 && inside_live_map(begin, begin + n);
}

void MappedFile::release_pages(const void* p, size_t n) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (n == 0 || first >= last) return;
  std::lock_guard<std::mutex> lock(live_maps_mutex);
  if (inside_live_map(begin, end)) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::string read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(ErrorKind::NotFound, "file not found: " + path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Io, "cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace hfpipe
