#include "formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/error.h"
#include "core/mapped_file.h"

namespace hfpipe::formats {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;

// gguf_type: the value types of metadata.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};

// A bounds-checked cursor over the header.
class Reader {
 public:
  explicit Reader(const ByteView& bytes) : bytes_(bytes) {}

  const uint8_t* take(uint64_t n, const char* what) {
    if (!range_fits(pos_, n, bytes_.size))
      fail(ErrorKind::CorruptFile, bytes_.name + ": GGUF header truncated while reading " + what);
    const uint8_t* p = bytes_.data + pos_;
    pos_ += n;
    return p;
  }
  uint32_t u32(const char* what) { return load_u32le(take(4, what)); }
  uint64_t u64(const char* what) { return load_u64le(take(8, what)); }
  std::string string(const char* what) {
    const uint64_t n = u64(what);
    if (n > kMaxGgufString) fail(ErrorKind::CorruptFile, bytes_.name + ": GGUF " + what + " is too long");
    const uint8_t* p = take(n, what);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  uint64_t position() const { return pos_; }
  const std::string& name() const { return bytes_.name; }

 private:
  const ByteView& bytes_;
  uint64_t pos_ = 0;
};

template <class T>
T load_as(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof value);  // GGUF is little-endian, as every supported host
  return value;
}

Value read_scalar(Reader& r, ValueType type) {
  switch (type) {
    case ValueType::U8: return *r.take(1, "a u8 value");
    case ValueType::I8: return load_as<int8_t>(r.take(1, "an i8 value"));
    case ValueType::U16: return load_as<uint16_t>(r.take(2, "a u16 value"));
    case ValueType::I16: return load_as<int16_t>(r.take(2, "an i16 value"));
    case ValueType::U32: return load_as<uint32_t>(r.take(4, "a u32 value"));
    case ValueType::I32: return load_as<int32_t>(r.take(4, "an i32 value"));
    case ValueType::F32: return load_as<float>(r.take(4, "an f32 value"));
    case ValueType::U64: return load_as<uint64_t>(r.take(8, "a u64 value"));
    case ValueType::I64: return load_as<int64_t>(r.take(8, "an i64 value"));
    case ValueType::F64: return load_as<double>(r.take(8, "an f64 value"));
    case ValueType::Bool: {
      const uint8_t b = *r.take(1, "a bool value");
      if (b > 1) fail(ErrorKind::CorruptFile, r.name() + ": GGUF bool value is neither 0 nor 1");
      return b == 1;
    }
    case ValueType::String: return r.string("a string value");
    case ValueType::Array: break;
  }
  fail(ErrorKind::CorruptFile, r.name() + ": unknown GGUF value type " + std::to_string(static_cast<uint32_t>(type)));
}

ValueType read_type(Reader& r) {
  const uint32_t t = r.u32("a value type");
  if (t > static_cast<uint32_t>(ValueType::F64))
    fail(ErrorKind::CorruptFile, r.name() + ": unknown GGUF value type " + std::to_string(t));
  return static_cast<ValueType>(t);
}

Value read_value(Reader& r, ValueType type, int depth) {
  if (type != ValueType::Array) return read_scalar(r, type);
  if (depth > 4) fail(ErrorKind::CorruptFile, r.name() + ": GGUF arrays nested too deeply");
  const ValueType element = read_type(r);
  const uint64_t count = r.u64("an array length");
  if (count > kMaxGgufArray) fail(ErrorKind::CorruptFile, r.name() + ": GGUF array too long");
  Value array = Value::array();
  for (uint64_t i = 0; i < count; ++i) array.push_back(read_value(r, element, depth + 1));
  return array;
}

GgufTensorInfo read_tensor_info(Reader& r) {
  GgufTensorInfo info;
  info.name = r.string("a tensor name");
  const uint32_t dims = r.u32("a tensor's dimension count");
  if (dims == 0 || dims > kMaxGgufDims)
    fail(ErrorKind::CorruptFile, r.name() + ": tensor '" + info.name + "' has " + std::to_string(dims) + " dimensions");
  std::vector<int64_t> ggml_dims(dims);
  for (auto& d : ggml_dims) {
    const uint64_t v = r.u64("a tensor dimension");
    if (v > (1ull << 40)) fail(ErrorKind::CorruptFile, r.name() + ": tensor '" + info.name + "' has a huge dimension");
    d = static_cast<int64_t>(v);
  }
  info.shape.assign(ggml_dims.rbegin(), ggml_dims.rend());
  const uint32_t type = r.u32("a tensor type");
  const auto traits = ggml_type_traits(type);
  if (!traits) fail(ErrorKind::CorruptFile, r.name() + ": tensor '" + info.name + "' has unknown type " + std::to_string(type));
  if (!traits->supported)
    fail(ErrorKind::UnsupportedModel, r.name() + ": tensor '" + info.name + "' is " + traits->name +
                                          ", a type hfpipe does not dequantise");
  info.type = static_cast<GgmlType>(type);
  info.offset = r.u64("a tensor offset");
  // Each dimension is below 2^40, but four of them can still overflow 64 bits.
  int64_t numel = 1;
  for (int64_t d : ggml_dims)
    if (__builtin_mul_overflow(numel, d, &numel))
      fail(ErrorKind::CorruptFile, r.name() + ": tensor '" + info.name + "' has more elements than 64 bits count");
  if (ggml_dims[0] % traits->block_size != 0)
    fail(ErrorKind::CorruptFile, r.name() + ": tensor '" + info.name + "' rows are not a whole number of " +
                                     traits->name + " blocks");
  // numel below 2^63 times up to 4 bytes (F32) or 210 bytes a block can wrap around too, and a
  // wrapped size would pass the range check below while the tensor addresses far more.
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel / traits->block_size), uint64_t{traits->block_bytes},
                             &info.nbytes))
    fail(ErrorKind::CorruptFile, r.name() + ": tensor '" + info.name + "' has more bytes than 64 bits count");
  return info;
}

uint64_t alignment_of(const Value& metadata, const std::string& file) {
  auto it = metadata.find("general.alignment");
  if (it == metadata.end()) return kDefaultAlignment;
  if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || (it->get<uint64_t>() & (it->get<uint64_t>() - 1)))
    fail(ErrorKind::CorruptFile, file + ": general.alignment must be a power of two");
  return it->get<uint64_t>();
}

// Tensor ranges must lie in the data section, aligned, without overlapping.
void check_tensor_ranges(std::vector<GgufTensorInfo>& tensors, uint64_t data_start, uint64_t alignment,
                         uint64_t file_size, const std::string& file) {
  std::vector<const GgufTensorInfo*> by_offset;
  for (auto& t : tensors) {
    if (t.offset % alignment != 0)
      fail(ErrorKind::CorruptFile, file + ": tensor '" + t.name + "' is not aligned to " + std::to_string(alignment));
    // offset <= file size and data_start <= 2^63 (alignment is a power of two), so the sum cannot wrap
    if (t.offset > file_size || !range_fits(data_start + t.offset, t.nbytes, file_size))
      fail(ErrorKind::CorruptFile, file + ": tensor '" + t.name + "' extends past the end of the file");
    t.offset += data_start;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset)
      fail(ErrorKind::CorruptFile, file + ": tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
}

}  // namespace

GgufFile GgufFile::parse(const ByteView& bytes) {
  GgufFile file;
  file.bytes_ = bytes;
  Reader r(file.bytes_);
  if (bytes.size < 4 || r.u32("the magic") != kGgufMagic)
    fail(ErrorKind::CorruptFile, bytes.name + " is not a GGUF file (bad magic)");
  file.version_ = r.u32("the version");
  if (file.version_ < 2 || file.version_ > 3)
    fail(ErrorKind::CorruptFile, bytes.name + ": GGUF version " + std::to_string(file.version_) +
                                     " is not supported (2 and 3 are)");
  const uint64_t tensor_count = r.u64("the tensor count");
  const uint64_t key_count = r.u64("the metadata count");
  if (tensor_count > kMaxGgufTensors || key_count > kMaxGgufKeys)
    fail(ErrorKind::CorruptFile, bytes.name + ": GGUF header claims too many tensors or keys");

  file.metadata_ = Value::object();
  for (uint64_t i = 0; i < key_count; ++i) {
    std::string key = r.string("a metadata key");
    const ValueType type = read_type(r);
    if (file.metadata_.contains(key)) fail(ErrorKind::CorruptFile, bytes.name + ": duplicate GGUF key '" + key + "'");
    file.metadata_[key] = read_value(r, type, 0);
  }
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    file.tensors_.push_back(read_tensor_info(r));
    if (!names.insert(file.tensors_.back().name).second)
      fail(ErrorKind::CorruptFile, bytes.name + ": duplicate tensor '" + file.tensors_.back().name + "'");
  }
  const uint64_t alignment = alignment_of(file.metadata_, bytes.name);
  const uint64_t data_start = (r.position() + alignment - 1) / alignment * alignment;
  check_tensor_ranges(file.tensors_, data_start, alignment, bytes.size, bytes.name);
  file.data_start_ = data_start;
  return file;
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
  std::shared_ptr<const MappedFile> mapped = MappedFile::open(path);
  GgufFile file = parse(ByteView{mapped->data(), mapped->size(), mapped, path.string()});
  // Everything in the header is in metadata_ and tensors_ now and is never read again: its
  // pages (mostly the tokenizer's vocabulary and merges, ~2.5 MB for SmolLM2) are given back
  // rather than kept resident for as long as the model lives.
  MappedFile::release_pages(mapped->data(), std::min<uint64_t>(file.data_start_, mapped->size()));
  return file;
}

Tensor GgufFile::load(const GgufTensorInfo& info) const {
  const uint8_t* data = bytes_.data + info.offset;
  if (info.type == GgmlType::F32 && reinterpret_cast<uintptr_t>(data) % alignof(float) == 0)
    return Tensor::view(DType::F32, info.shape, data, bytes_.owner);
  Tensor out = Tensor::empty(DType::F32, info.shape);
  dequantize(info.type, data, out.f32(), out.numel());
  MappedFile::release_pages(data, info.nbytes);  // only the f32 copy is used from here on
  return out;
}

namespace {
Shape byte_rows(const GgufTensorInfo& info) {
  const int64_t rows = info.shape.empty() ? 1 : info.shape.front();
  return {rows, rows > 0 ? static_cast<int64_t>(info.nbytes) / rows : 0};
}
}  // namespace

Tensor GgufFile::bytes(const GgufTensorInfo& info) const {
  return Tensor::view(DType::U8, byte_rows(info), bytes_.data + info.offset, bytes_.owner);
}

Tensor GgufFile::owned_bytes(const GgufTensorInfo& info) const {
  Tensor out = Tensor::empty(DType::U8, byte_rows(info));
  std::memcpy(out.data_as<uint8_t>(), bytes_.data + info.offset, info.nbytes);
  MappedFile::release_pages(bytes_.data + info.offset, info.nbytes);  // only the copy is read from here on
  return out;
}

WeightMap GgufFile::load_all() const {
  WeightMap weights;
  for (const auto& info : tensors_) weights.insert(info.name, load(info));
  return weights;
}

}  // namespace hfpipe::formats
