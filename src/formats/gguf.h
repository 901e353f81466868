// GGUF, llama.cpp's single-file model format: a header of typed key/value metadata
// (architecture, hyper-parameters, the tokenizer's vocabulary and merges), a table of
// tensor descriptions, then the aligned tensor data. The file is untrusted input: every
// count, length, dimension and offset is checked against the file before use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/byte_view.h"
#include "formats/gguf_quants.h"
#include "formats/weights.h"
#include "hfpipe/value.h"

namespace hfpipe::formats {

// Caps that stop a forged count from making the parser allocate without bound. Real files:
// ~40 metadata keys, a vocabulary of up to ~260k strings, a few thousand tensors.
inline constexpr uint64_t kMaxGgufKeys = 1u << 16;
inline constexpr uint64_t kMaxGgufTensors = 1u << 20;
inline constexpr uint64_t kMaxGgufArray = 1u << 26;
inline constexpr uint64_t kMaxGgufString = 1u << 26;
inline constexpr uint32_t kMaxGgufDims = 4;  // GGML_MAX_DIMS

struct GgufTensorInfo {
  std::string name;
  Shape shape;       // PyTorch order (outermost first); GGUF stores the innermost dimension first
  GgmlType type;
  uint64_t offset;   // from the start of the file
  uint64_t nbytes;
};

class GgufFile {
 public:
  // Parses the header of a whole GGUF file held in `bytes`; Error(CorruptFile) on any
  // violation (bad magic, unknown version or value type, a count or range outside the file,
  // overlapping tensors), Error(UnsupportedModel) for tensor types hfpipe cannot dequantise.
  static GgufFile parse(const ByteView& bytes);
  static GgufFile open(const std::filesystem::path& path);

  uint32_t version() const { return version_; }
  // Every metadata key → its value (numbers, booleans, strings, arrays as JSON arrays).
  const Value& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // One tensor as F32: a zero-copy view for aligned F32 data, dequantised otherwise.
  Tensor load(const GgufTensorInfo& info) const;
  // A tensor's bytes as stored, U8 [shape[0], bytes per row] (rows are whole blocks): a view of
  // the mapped file, or an owned copy that may be written.
  Tensor bytes(const GgufTensorInfo& info) const;
  Tensor owned_bytes(const GgufTensorInfo& info) const;
  // Every tensor by its GGUF name ("token_embd.weight", "blk.0.attn_q.weight", ...).
  WeightMap load_all() const;

 private:
  ByteView bytes_;
  uint64_t data_start_ = 0;  // where the tensor data begins: the header ends before it
  uint32_t version_ = 0;
  Value metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace hfpipe::formats
