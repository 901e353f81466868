// Builders for the weight-file tests: they write safetensors files, zip archives and pickles
// byte by byte, so every malformed variant can be produced without Python.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/byte_view.h"

namespace hfpipe::formats::testing {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "hfpipe_formats_XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// An in-memory ByteView over a copy of `bytes`, owned by the view (as a MappedFile owns a
// file's mapping), so tensors viewing it stay valid after the caller's string is gone.
inline ByteView view_of(const std::string& bytes, std::string name = "test") {
  auto copy = std::make_shared<std::string>(bytes);
  return ByteView{reinterpret_cast<const uint8_t*>(copy->data()), copy->size(), copy, std::move(name)};
}

// True when `p` points into `view`'s bytes (the tensor is a zero-copy view).
inline bool points_into(const void* p, const ByteView& view) {
  const auto* q = static_cast<const uint8_t*>(p);
  return q >= view.data && q < view.data + view.size;
}

// The bytes of a string literal, embedded NULs included (the terminating NUL excluded).
template <size_t N>
std::string bytes_of(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

template <class T>
std::string raw_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

inline void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// ---- safetensors ----

// A safetensors file from a literal JSON header and data buffer (header padded with spaces
// to a multiple of 8, as the reference writer does).
inline std::string safetensors_file(std::string header, const std::string& data) {
  while (header.size() % 8) header.push_back(' ');
  std::string out;
  put_le(out, header.size(), 8);
  return out + header + data;
}

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A well-formed file with the tensors laid out back to back in the given order.
inline std::string safetensors_file(const std::vector<StTensor>& tensors, const std::string& metadata = "") {
  std::string header = "{", data;
  if (!metadata.empty()) header += "\"__metadata__\":" + metadata + ",";
  for (size_t i = 0; i < tensors.size(); ++i) {
    const StTensor& t = tensors[i];
    std::string shape;
    for (size_t d = 0; d < t.shape.size(); ++d) shape += (d ? "," : "") + std::to_string(t.shape[d]);
    header += (i ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(data.size()) + "," + std::to_string(data.size() + t.bytes.size()) +
              "]}";
    data += t.bytes;
  }
  return safetensors_file(header + "}", data);
}

// ---- zip ----

struct ZipMember {
  std::string name, data;
  bool deflate = false;
};

inline std::string raw_deflate(const std::string& data) {
  z_stream s{};
  deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&s, data.size()) + 16, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// A zip archive like torch.save's: member data aligned to 64 bytes through a padding extra
// field. With `zip64`, every size and offset goes through ZIP64 extra fields and records.
inline std::string zip_archive(const std::vector<ZipMember>& members, bool zip64 = false) {
  std::string out, central;
  for (const ZipMember& m : members) {
    const std::string stored = m.deflate ? raw_deflate(m.data) : m.data;
    const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(m.data.data()), static_cast<uInt>(m.data.size())));
    const uint64_t local_offset = out.size();
    std::string extra;
    if (zip64) {
      put_le(extra, 0x0001, 2), put_le(extra, 16, 2), put_le(extra, m.data.size(), 8), put_le(extra, stored.size(), 8);
    }
    const size_t unpadded = local_offset + 30 + m.name.size() + extra.size() + 4;
    const size_t pad = (64 - unpadded % 64) % 64;
    put_le(extra, 0xcafe, 2), put_le(extra, pad, 2), extra.append(pad, '\0');

    const uint64_t size32 = zip64 ? 0xffffffffu : m.data.size(), comp32 = zip64 ? 0xffffffffu : stored.size();
    put_le(out, 0x04034b50, 4), put_le(out, zip64 ? 45 : 20, 2), put_le(out, 0, 2), put_le(out, m.deflate ? 8 : 0, 2);
    put_le(out, 0, 4), put_le(out, crc, 4), put_le(out, comp32, 4), put_le(out, size32, 4);
    put_le(out, m.name.size(), 2), put_le(out, extra.size(), 2);
    out += m.name + extra + stored;

    std::string cextra;
    if (zip64) {
      put_le(cextra, 0x0001, 2), put_le(cextra, 24, 2), put_le(cextra, m.data.size(), 8);
      put_le(cextra, stored.size(), 8), put_le(cextra, local_offset, 8);
    }
    put_le(central, 0x02014b50, 4), put_le(central, zip64 ? 45 : 20, 2), put_le(central, zip64 ? 45 : 20, 2);
    put_le(central, 0, 2), put_le(central, m.deflate ? 8 : 0, 2), put_le(central, 0, 4), put_le(central, crc, 4);
    put_le(central, comp32, 4), put_le(central, size32, 4), put_le(central, m.name.size(), 2);
    put_le(central, cextra.size(), 2), put_le(central, 0, 2), put_le(central, 0, 2), put_le(central, 0, 2);
    put_le(central, 0, 4), put_le(central, zip64 ? 0xffffffffu : local_offset, 4);
    central += m.name + cextra;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    const uint64_t record = out.size();
    put_le(out, 0x06064b50, 4), put_le(out, 44, 8), put_le(out, 45, 2), put_le(out, 45, 2), put_le(out, 0, 4);
    put_le(out, 0, 4), put_le(out, members.size(), 8), put_le(out, members.size(), 8);
    put_le(out, central.size(), 8), put_le(out, cd_offset, 8);
    put_le(out, 0x07064b50, 4), put_le(out, 0, 4), put_le(out, record, 8), put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4), put_le(out, 0, 2), put_le(out, 0, 2);
  put_le(out, zip64 ? 0xffff : members.size(), 2), put_le(out, zip64 ? 0xffff : members.size(), 2);
  put_le(out, zip64 ? 0xffffffffu : central.size(), 4), put_le(out, zip64 ? 0xffffffffu : cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

// ---- pickle ----

class PickleWriter {
 public:
  PickleWriter() { op(0x80).op(2); }
  PickleWriter& op(uint8_t code) {
    out_.push_back(static_cast<char>(code));
    return *this;
  }
  PickleWriter& global(const std::string& module, const std::string& name) {
    op('c');
    out_ += module + "\n" + name + "\n";
    return *this;
  }
  PickleWriter& str(const std::string& s) {
    op('X');
    put_le(out_, s.size(), 4);
    out_ += s;
    return *this;
  }
  PickleWriter& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').op(static_cast<uint8_t>(v));
    op('J');
    put_le(out_, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    return *this;
  }
  PickleWriter& ints(const std::vector<int64_t>& values) {  // a tuple of ints
    op('(');
    for (int64_t v : values) integer(v);
    return op('t');
  }
  PickleWriter& raw(const std::string& bytes) {
    out_ += bytes;
    return *this;
  }
  PickleWriter& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  // _rebuild_tensor_v2(('storage', <storage>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
  PickleWriter& tensor_v2(const std::string& storage, const std::string& key, int64_t numel, int64_t offset,
                          const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", storage).str(key).str("cpu").integer(numel).op('t').op('Q');
    integer(offset).ints(size).ints(stride).op(0x89).ordered_dict();
    return op('t').op('R');
  }
  std::string finish() { return op('.').out_; }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// A torch.save-style archive around `pickle` and storages {key: bytes}.
inline std::string torch_archive(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                                 bool deflate = false, bool zip64 = false) {
  std::vector<ZipMember> members = {{"archive/data.pkl", pickle, deflate}, {"archive/byteorder", "little", false}};
  for (const auto& [key, bytes] : storages) members.push_back({"archive/data/" + key, bytes, deflate});
  members.push_back({"archive/version", "3\n", false});
  return zip_archive(members, zip64);
}

// Runs `fn`, expecting an hfpipe::Error of `kind` whose message contains `needle`.
template <class Fn>
void expect_error(Fn&& fn, ErrorKind kind, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(error_kind_name(e.kind()), std::string(error_kind_name(kind))) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

}  // namespace hfpipe::formats::testing
