#include "formats/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace hfpipe::formats {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndOfDirSig = 0x06054b50;
constexpr uint32_t kZip64EndOfDirSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndOfDirSize = 22;
constexpr size_t kZip64EndOfDirSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;
constexpr uint16_t kZip64ExtraId = 0x0001;
// Deflate cannot expand data by more than about 1032:1; a member claiming more is lying,
// and believing it would let a small file make us allocate terabytes.
constexpr uint64_t kMaxDeflateRatio = 1032;

struct EndOfDirectory {
  uint64_t count, cd_size, cd_offset;
  size_t position;  // of the (classic) end-of-central-directory record
};

}  // namespace

void ZipArchive::corrupt(const std::string& what) const {
  fail(ErrorKind::CorruptFile, "corrupt zip archive " + bytes_.name + ": " + what);
}

// The classic record is at the very end, after a comment of up to 64 KiB, so it is found by
// scanning backwards; the comment length must then reach exactly to the end of the file.
static bool find_end_of_directory(const ByteView& b, size_t& position) {
  if (b.size < kEndOfDirSize) return false;
  const size_t lowest = b.size > kEndOfDirSize + 0xffff ? b.size - kEndOfDirSize - 0xffff : 0;
  for (size_t p = b.size - kEndOfDirSize + 1; p-- > lowest;) {
    if (load_u32le(b.data + p) != kEndOfDirSig) continue;
    if (p + kEndOfDirSize + load_u16le(b.data + p + 20) == b.size) {
      position = p;
      return true;
    }
  }
  return false;
}

ZipArchive::ZipArchive(ByteView bytes) : bytes_(std::move(bytes)) {
  size_t p = 0;
  if (!find_end_of_directory(bytes_, p)) corrupt("no end-of-central-directory record (not a zip file, or truncated)");
  const uint8_t* eocd = bytes_.data + p;
  if (load_u16le(eocd + 4) != 0 || load_u16le(eocd + 6) != 0)
    fail(ErrorKind::UnsupportedModel, "zip archive " + bytes_.name + " spans several disks, which is not supported");
  uint64_t count = load_u16le(eocd + 10);
  uint64_t cd_size = load_u32le(eocd + 12);
  uint64_t cd_offset = load_u32le(eocd + 16);

  // ZIP64: a locator just before the classic record points at a record with 64-bit fields.
  if (p >= kZip64LocatorSize && load_u32le(bytes_.data + p - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint64_t record = load_u64le(bytes_.data + p - kZip64LocatorSize + 8);
    if (!range_fits(record, kZip64EndOfDirSize, p - kZip64LocatorSize) ||
        load_u32le(bytes_.data + record) != kZip64EndOfDirSig)
      corrupt("the ZIP64 locator points outside the file or at no ZIP64 record");
    const uint8_t* z = bytes_.data + record;
    count = load_u64le(z + 32);
    cd_size = load_u64le(z + 40);
    cd_offset = load_u64le(z + 48);
  }
  if (!range_fits(cd_offset, cd_size, p)) corrupt("the central directory lies outside the file");
  if (count > cd_size / kCentralHeaderSize) corrupt("the central directory is too small for its entry count");
  read_central_directory(cd_offset, cd_size, count);
}

// Fields that overflowed 32 bits are 0xFFFFFFFF in the header and stored, in this fixed
// order, in the ZIP64 extra field.
static bool apply_zip64_extra(const uint8_t* extra, size_t extra_len, uint64_t& size, uint64_t& compressed,
                              uint64_t& offset) {
  size_t pos = 0;
  while (pos + 4 <= extra_len) {
    const uint16_t id = load_u16le(extra + pos);
    const size_t len = load_u16le(extra + pos + 2);
    pos += 4;
    if (len > extra_len - pos) return false;
    if (id == kZip64ExtraId) {
      size_t field = 0;
      for (uint64_t* value : {&size, &compressed, &offset}) {
        if (*value != 0xffffffffu) continue;
        if (field + 8 > len) return false;
        *value = load_u64le(extra + pos + field);
        field += 8;
      }
      return true;
    }
    pos += len;
  }
  return true;
}

void ZipArchive::read_central_directory(uint64_t cd_offset, uint64_t cd_size, uint64_t count) {
  entries_.reserve(count);
  std::vector<std::pair<uint64_t, uint64_t>> spans;  // [local header, end of data) of each member
  spans.reserve(count);
  uint64_t pos = cd_offset;
  const uint64_t end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (!range_fits(pos, kCentralHeaderSize, end) || load_u32le(bytes_.data + pos) != kCentralHeaderSig)
      corrupt("central directory entry " + std::to_string(i) + " is missing or malformed");
    const uint8_t* h = bytes_.data + pos;
    const size_t name_len = load_u16le(h + 28), extra_len = load_u16le(h + 30), comment_len = load_u16le(h + 32);
    if (!range_fits(pos + kCentralHeaderSize, uint64_t{name_len} + extra_len + comment_len, end))
      corrupt("central directory entry " + std::to_string(i) + " runs past the directory");
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    if (load_u16le(h + 8) & 1)
      fail(ErrorKind::UnsupportedModel, "zip archive " + bytes_.name + " has an encrypted member " + entry.name);
    entry.method = load_u16le(h + 10);
    entry.crc32 = load_u32le(h + 16);
    entry.compressed_size = load_u32le(h + 20);
    entry.size = load_u32le(h + 24);
    uint64_t local_offset = load_u32le(h + 42);
    if (!apply_zip64_extra(h + kCentralHeaderSize + name_len, extra_len, entry.size, entry.compressed_size,
                           local_offset))
      corrupt("member " + entry.name + " has a malformed ZIP64 extra field");
    locate_data(entry, local_offset);
    spans.emplace_back(local_offset, entry.data_offset + entry.compressed_size);
    if (!by_name_.emplace(entry.name, entries_.size()).second) corrupt("member " + entry.name + " appears twice");
    entries_.push_back(std::move(entry));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
  check_no_overlap(std::move(spans));
}

// No zip tool writes members that share bytes. Overlap is how "overlapping" zip bombs get
// past a per-member expansion bound: thousands of directory entries naming one small deflate
// stream make a file of a few KB inflate to gigabytes. Without overlap, what all members
// inflate to is bounded by kMaxDeflateRatio times the file size.
void ZipArchive::check_no_overlap(std::vector<std::pair<uint64_t, uint64_t>> spans) const {
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second)
      corrupt("two members overlap at offset " + std::to_string(spans[i].first) + " (a zip bomb's trick)");
}

// The data follows the member's local header, whose name and extra field lengths may differ
// from the central directory's (torch pads the local extra field to align tensor data).
void ZipArchive::locate_data(ZipEntry& entry, uint64_t local_offset) const {
  if (!range_fits(local_offset, kLocalHeaderSize, bytes_.size) ||
      load_u32le(bytes_.data + local_offset) != kLocalHeaderSig)
    corrupt("member " + entry.name + " has no local header at offset " + std::to_string(local_offset));
  const uint8_t* h = bytes_.data + local_offset;
  entry.data_offset = local_offset + kLocalHeaderSize + load_u16le(h + 26) + load_u16le(h + 28);
  if (!range_fits(entry.data_offset, entry.compressed_size, bytes_.size))
    corrupt("the data of member " + entry.name + " runs past the end of the file");
  if (entry.method == 0 && entry.compressed_size != entry.size)
    corrupt("stored member " + entry.name + " has different compressed and uncompressed sizes");
  if (entry.method != 0 && entry.method != 8)
    fail(ErrorKind::UnsupportedModel, "member " + entry.name + " of " + bytes_.name + " uses compression method " +
                                          std::to_string(entry.method) + "; only stored and deflated are supported");
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

ByteView ZipArchive::read(const ZipEntry& entry) const {
  // Stored members are used in place. Their CRC is not checked: that would read every page
  // of a multi-gigabyte checkpoint at load time, defeating the lazy mmap; the bounds checks
  // above are what keeps reads inside the file.
  if (entry.method == 0) return bytes_.slice(entry.data_offset, entry.size, bytes_.name + ":" + entry.name);
  return inflate(entry);
}

ByteView ZipArchive::inflate(const ZipEntry& entry) const {
  if (entry.size / kMaxDeflateRatio > entry.compressed_size)
    corrupt("deflated member " + entry.name + " claims an impossible expansion to " + std::to_string(entry.size) +
            " bytes");
  std::shared_ptr<std::vector<uint8_t>> buffer;
  try {
    buffer = std::make_shared<std::vector<uint8_t>>(entry.size);
  } catch (const std::bad_alloc&) {
    fail(ErrorKind::OutOfMemory, "cannot allocate " + std::to_string(entry.size) + " bytes to inflate " + entry.name);
  }
  uint8_t empty_sink = 0;  // zlib rejects a null output pointer even when nothing is written
  uint8_t* out = buffer->empty() ? &empty_sink : buffer->data();
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail(ErrorKind::OutOfMemory, "zlib could not start inflating");
  const uint8_t* in = bytes_.data + entry.data_offset;
  uint64_t in_left = entry.compressed_size, out_done = 0;
  int status = Z_OK;
  // zlib counts in 32-bit units, so members over 4 GiB are fed in chunks; a round without
  // progress ends the loop, so corrupt data cannot make it spin.
  for (;;) {
    const uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, std::numeric_limits<uInt>::max()));
    const uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(entry.size - out_done, std::numeric_limits<uInt>::max()));
    stream.next_in = const_cast<Bytef*>(in);
    stream.avail_in = in_chunk;
    stream.next_out = out + out_done;
    stream.avail_out = out_chunk;
    status = ::inflate(&stream, Z_NO_FLUSH);
    const uInt consumed = in_chunk - stream.avail_in, produced = out_chunk - stream.avail_out;
    in += consumed;
    in_left -= consumed;
    out_done += produced;
    if (status != Z_OK || (consumed == 0 && produced == 0)) break;
  }
  inflateEnd(&stream);
  if (status != Z_STREAM_END || out_done != entry.size)
    corrupt("deflated member " + entry.name + " does not inflate to its declared " + std::to_string(entry.size) +
            " bytes");
  if (crc32_z(0, out, buffer->size()) != entry.crc32) corrupt("member " + entry.name + " fails its CRC check");
  return ByteView{buffer->data(), buffer->size(), buffer, bytes_.name + ":" + entry.name};
}

}  // namespace hfpipe::formats
