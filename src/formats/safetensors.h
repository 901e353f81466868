// safetensors: an 8-byte little-endian header length N, N bytes of JSON describing each
// tensor (dtype, shape, [begin, end) offsets into the data that follows), then the data.
// The file is untrusted input: every field is validated before any byte is touched.
#pragma once

#include <cstddef>
#include <optional>

#include "formats/byte_view.h"
#include "formats/weights.h"

namespace hfpipe::formats {

// Largest header accepted. Real headers are a few hundred KB even for 100+ B parameter
// models; the cap stops a forged length from making us parse (or allocate for) gigabytes.
inline constexpr size_t kMaxSafetensorsHeader = 100u << 20;

// Parses a whole safetensors file held in `bytes`. F32 / integer tensors are views into
// `bytes` (kept alive through bytes.owner). Throws Error(CorruptFile) on any violation and
// Error(UnsupportedModel) for dtypes hfpipe does not load (F8_*, U16, ...). `precision`: see
// load_checkpoint (BFloat16 keeps 2-D BF16 tensors as views too).
WeightMap parse_safetensors(const ByteView& bytes, ops::Precision precision = ops::Precision::Float32);

// The dtype named by a safetensors dtype string, or nullopt when hfpipe does not load it.
std::optional<DType> safetensors_dtype(std::string_view name);

}  // namespace hfpipe::formats
