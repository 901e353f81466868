#include "formats/safetensors.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/tensor_import.h"

namespace hfpipe::formats {
namespace {

using simdjson::dom::element;

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

[[noreturn]] void corrupt(const ByteView& file, const std::string& what) {
  fail(ErrorKind::CorruptFile, "corrupt safetensors file " + file.name + ": " + what);
}

// dtypes defined by the safetensors format that hfpipe does not load. They get
// UnsupportedModel (the file is fine, hfpipe is not); any other string is corruption.
bool is_known_unsupported_dtype(std::string_view name) {
  static constexpr std::array<std::string_view, 11> kNames = {
      "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64", "C128"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

DType parse_dtype(const ByteView& file, const std::string& tensor, element value) {
  std::string_view name;
  if (value.get_string().get(name)) corrupt(file, "tensor '" + tensor + "' has a non-string dtype");
  if (auto dtype = safetensors_dtype(name)) return *dtype;
  if (is_known_unsupported_dtype(name))
    fail(ErrorKind::UnsupportedModel, "tensor '" + tensor + "' in " + file.name + " has dtype " + std::string(name) +
                                          ", which hfpipe does not load (supported: F32, F16, BF16, F64, I64, I32, "
                                          "I16, I8, U8, BOOL)");
  corrupt(file, "tensor '" + tensor + "' has unknown dtype '" + std::string(name) + "'");
}

Shape parse_shape(const ByteView& file, const std::string& tensor, element value) {
  simdjson::dom::array dims;
  if (value.get_array().get(dims)) corrupt(file, "tensor '" + tensor + "' has a shape that is not an array");
  Shape shape;
  for (element dim : dims) {
    uint64_t d;
    if (dim.get_uint64().get(d) || d > static_cast<uint64_t>(INT64_MAX))
      corrupt(file, "tensor '" + tensor + "' has a shape entry that is not a non-negative integer");
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

// Byte size of a tensor, or an error when shape x dtype overflows 64 bits.
uint64_t checked_nbytes(const ByteView& file, const std::string& tensor, const Shape& shape, DType dtype) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    uint64_t ud = static_cast<uint64_t>(d);
    if (ud != 0 && n > UINT64_MAX / ud) corrupt(file, "tensor '" + tensor + "' has an impossibly large shape");
    n *= ud;
  }
  return n;
}

Entry parse_entry(const ByteView& file, std::string name, element value, uint64_t data_size) {
  simdjson::dom::object info;
  if (value.get_object().get(info)) corrupt(file, "entry '" + name + "' is not an object");
  element dtype_value, shape_value, offsets_value;
  if (info["dtype"].get(dtype_value) || info["shape"].get(shape_value) || info["data_offsets"].get(offsets_value))
    corrupt(file, "tensor '" + name + "' lacks one of dtype, shape, data_offsets");
  Entry entry{std::move(name), DType::F32, {}, 0, 0};
  entry.dtype = parse_dtype(file, entry.name, dtype_value);
  entry.shape = parse_shape(file, entry.name, shape_value);

  simdjson::dom::array offsets;
  if (offsets_value.get_array().get(offsets) || offsets.size() != 2 || offsets.at(0).get_uint64().get(entry.begin) ||
      offsets.at(1).get_uint64().get(entry.end))
    corrupt(file, "tensor '" + entry.name + "' has data_offsets that are not two non-negative integers");
  if (entry.begin > entry.end || entry.end > data_size)
    corrupt(file, "tensor '" + entry.name + "' has data_offsets [" + std::to_string(entry.begin) + ", " +
                      std::to_string(entry.end) + "] outside the data buffer of " + std::to_string(data_size) + " bytes");
  const uint64_t expected = checked_nbytes(file, entry.name, entry.shape, entry.dtype);
  if (entry.end - entry.begin != expected)
    corrupt(file, "tensor '" + entry.name + "' spans " + std::to_string(entry.end - entry.begin) + " bytes but " +
                      dtype_name(entry.dtype) + " " + shape_to_string(entry.shape) + " needs " +
                      std::to_string(expected));
  return entry;
}

void check_metadata(const ByteView& file, element value) {
  simdjson::dom::object metadata;
  if (value.get_object().get(metadata)) corrupt(file, "__metadata__ is not an object");
  for (auto field : metadata)
    if (!field.value.is_string()) corrupt(file, "__metadata__ value '" + std::string(field.key) + "' is not a string");
}

// Two tensors sharing bytes would alias silently; the format forbids it.
void check_no_overlap(const ByteView& file, std::vector<const Entry*> entries) {
  std::erase_if(entries, [](const Entry* e) { return e->begin == e->end; });
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i]->begin < entries[i - 1]->end)
      corrupt(file, "tensors '" + entries[i - 1]->name + "' and '" + entries[i]->name + "' overlap");
}

std::vector<Entry> parse_header(const ByteView& file, std::string_view header, uint64_t data_size) {
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(header.data(), header.size()).get(root))
    corrupt(file, std::string("header is not valid JSON (") + simdjson::error_message(err) + ")");
  simdjson::dom::object tensors;
  if (root.get_object().get(tensors)) corrupt(file, "header is not a JSON object");

  std::vector<Entry> entries;
  bool seen_metadata = false;
  for (auto field : tensors) {
    if (field.key == "__metadata__") {
      if (seen_metadata) corrupt(file, "__metadata__ appears twice");
      seen_metadata = true;
      check_metadata(file, field.value);
      continue;
    }
    entries.push_back(parse_entry(file, std::string(field.key), field.value, data_size));
  }
  std::vector<const Entry*> sorted;
  for (const Entry& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) { return a->name < b->name; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->name == sorted[i - 1]->name) corrupt(file, "tensor '" + sorted[i]->name + "' appears twice");
  check_no_overlap(file, std::move(sorted));
  return entries;
}

}  // namespace

std::optional<DType> safetensors_dtype(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, DType>, 10> kDtypes = {{
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8}, {"U8", DType::U8}, {"BOOL", DType::Bool},
  }};
  for (const auto& [n, dtype] : kDtypes)
    if (n == name) return dtype;
  return std::nullopt;
}

namespace {

// Under torch_dtype="bfloat16", a 2-D BF16 tensor becomes a zero-copy BF16 matrix (the layers
// multiply it as stored) where this CPU keeps such matrices; 2-byte aligned only (else a copy
// through the F32 path, as for any unaligned tensor).
bool keep_as_bf16_matrix(const Entry& e, const uint8_t* data, ops::Precision precision) {
  return precision == ops::Precision::BFloat16 && e.dtype == DType::BF16 && e.shape.size() == 2 &&
         e.shape[0] > 0 && e.shape[1] > 0 && reinterpret_cast<uintptr_t>(data + e.begin) % 2 == 0 &&
         ops::can_keep_quantized(static_cast<uint32_t>(ops::QuantFormat::BF16));
}

}  // namespace

WeightMap parse_safetensors(const ByteView& bytes, ops::Precision precision) {
  if (bytes.size < 8) corrupt(bytes, "the file is " + std::to_string(bytes.size) + " bytes, too small for a header");
  const uint64_t header_len = load_u64le(bytes.data);
  if (header_len > kMaxSafetensorsHeader)
    corrupt(bytes, "header length " + std::to_string(header_len) + " exceeds the " +
                       std::to_string(kMaxSafetensorsHeader) + "-byte limit");
  if (!range_fits(8, header_len, bytes.size))
    corrupt(bytes, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                       std::to_string(bytes.size) + " bytes); the file is probably truncated");
  const uint8_t* data = bytes.data + 8 + header_len;
  const uint64_t data_size = bytes.size - 8 - header_len;
  std::string_view header(reinterpret_cast<const char*>(bytes.data + 8), header_len);

  // Validate everything before converting anything: a bad last entry must not cost a
  // conversion of every tensor before it.
  std::vector<Entry> entries = parse_header(bytes, header, data_size);
  WeightMap weights;
  weights.set_precision(precision);
  for (Entry& e : entries) {
    if (keep_as_bf16_matrix(e, data, precision)) {
      const int64_t rows = e.shape[0], cols = e.shape[1];
      Tensor view = Tensor::view(DType::U8, {rows * cols * 2}, data + e.begin, bytes.owner);
      weights.insert_quantized(e.name, ops::make_quantized_matrix(ops::QuantFormat::BF16, rows, cols, std::move(view)));
      continue;
    }
    weights.insert(e.name, import_contiguous(e.dtype, std::move(e.shape), data + e.begin, bytes.owner));
  }
  return weights;
}

WeightMap load_safetensors(const std::filesystem::path& file, ops::Precision precision) {
  std::shared_ptr<const MappedFile> mapped = MappedFile::open(file);
  return parse_safetensors(ByteView{mapped->data(), mapped->size(), mapped, file.string()}, precision);
}

}  // namespace hfpipe::formats
