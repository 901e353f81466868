// Tensor: a dtype, a shape and contiguous row-major storage. The storage is either owned
// (allocated here, 64-byte aligned) or a view into memory someone else keeps alive, such as
// an mmapped safetensors file; `keep_alive` holds that owner so a view never dangles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hfpipe {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

using Shape = std::vector<int64_t>;

// Number of elements of a shape; throws on negative dimensions or overflow.
int64_t shape_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;

  // Owned, uninitialised storage.
  static Tensor empty(DType dtype, Shape shape);
  // Owned storage filled with zeros.
  static Tensor zeros(DType dtype, Shape shape);
  // A view of `data`; `keep_alive` owns the memory behind it (may be null for static data).
  static Tensor view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keep_alive);

  bool defined() const { return data_ != nullptr || numel_ == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  // Size of dimension i; negative i counts from the end as in PyTorch.
  int64_t dim(int64_t i) const;
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  // Typed access; throws hfpipe::Error(Internal) on a dtype mismatch.
  float* f32();
  const float* f32() const;
  template <class T>
  T* data_as() { return static_cast<T*>(data_); }
  template <class T>
  const T* data_as() const { return static_cast<const T*>(data_); }
  const void* raw() const { return data_; }

  // Same storage, another shape of the same element count.
  Tensor reshaped(Shape shape) const;

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<const void> owner_;
  void* data_ = nullptr;
};

}  // namespace hfpipe
