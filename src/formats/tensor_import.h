// Turning raw tensor bytes from a weight file into hfpipe Tensors. Shared by the safetensors
// and PyTorch readers so both follow one rule: f32 is a zero-copy view when aligned,
// f16 / bf16 / f64 become owned f32, integers and bools keep their dtype.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/half_floats.h"
#include "core/tensor.h"

namespace hfpipe::formats {

// f16_to_f32, bf16_to_f32: core/half_floats.h.

// Bulk conversions; `src` may be unaligned (it points into a file).
void convert_f16_to_f32(const uint8_t* src, float* dst, size_t count);
void convert_f16_to_f32_portable(const uint8_t* src, float* dst, size_t count);  // for tests
void convert_bf16_to_f32(const uint8_t* src, float* dst, size_t count);
void convert_f64_to_f32(const uint8_t* src, float* dst, size_t count);

// The dtype a tensor of `stored` dtype has once loaded (F16/BF16/F64 -> F32).
DType loaded_dtype(DType stored);

// A tensor from contiguous row-major bytes of dtype `stored` at `data`, kept alive by
// `owner` when the result is a view.
Tensor import_contiguous(DType stored, Shape shape, const uint8_t* data, const std::shared_ptr<const void>& owner);

// A tensor from a strided view: element i (multi-index) lives at
// data + sum(index[d] * strides[d]) * dtype_size(stored). Strides are in elements, >= 0,
// and the caller has checked that every addressed element is inside the buffer.
Tensor import_strided(DType stored, Shape shape, const std::vector<int64_t>& strides, const uint8_t* data,
                      const std::shared_ptr<const void>& owner);

// True when import_strided() with these arguments returns a view rather than a new buffer.
bool imports_as_view(DType stored, const Shape& shape, const std::vector<int64_t>& strides, const uint8_t* data);

// True when `strides` describe the row-major contiguous layout of `shape` (size-1 dims ignored).
bool is_contiguous(const Shape& shape, const std::vector<int64_t>& strides);

}  // namespace hfpipe::formats
