#include "formats/tensor_import.h"

#include <cpuid.h>
#include <immintrin.h>

#include <cstring>


namespace hfpipe::formats {

void convert_f16_to_f32_portable(const uint8_t* src, float* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = f16_to_f32(h);
  }
}

// The F16C instruction converts 8 halves per cycle, exactly; it is not in baseline x86-64,
// so it is compiled for that target only and picked at run time.
__attribute__((target("avx,f16c"))) static void convert_f16_to_f32_f16c(const uint8_t* src, float* dst,
                                                                          size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(halves));
  }
  convert_f16_to_f32_portable(src + 2 * i, dst + i, count - i);
}

// __builtin_cpu_supports("avx") also checks that the OS saves YMM registers; F16C is read
// from CPUID directly because not every compiler's builtin knows its name.
static bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __builtin_cpu_supports("avx") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
}

void convert_f16_to_f32(const uint8_t* src, float* dst, size_t count) {
  static const bool has_f16c = cpu_has_f16c();
  if (has_f16c)
    convert_f16_to_f32_f16c(src, dst, count);
  else
    convert_f16_to_f32_portable(src, dst, count);
}

void convert_bf16_to_f32(const uint8_t* src, float* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    uint16_t b;
    std::memcpy(&b, src + 2 * i, 2);
    dst[i] = bf16_to_f32(b);
  }
}

void convert_f64_to_f32(const uint8_t* src, float* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    double d;
    std::memcpy(&d, src + 8 * i, 8);
    dst[i] = static_cast<float>(d);
  }
}

DType loaded_dtype(DType stored) {
  switch (stored) {
    case DType::F16:
    case DType::BF16:
    case DType::F64: return DType::F32;
    default: return stored;
  }
}

Tensor import_contiguous(DType stored, Shape shape, const uint8_t* data, const std::shared_ptr<const void>& owner) {
  const size_t elem = dtype_size(stored);
  if (loaded_dtype(stored) != stored) {
    Tensor out = Tensor::empty(DType::F32, std::move(shape));
    const size_t n = static_cast<size_t>(out.numel());
    if (stored == DType::F16) convert_f16_to_f32(data, out.f32(), n);
    if (stored == DType::BF16) convert_bf16_to_f32(data, out.f32(), n);
    if (stored == DType::F64) convert_f64_to_f32(data, out.f32(), n);
    return out;
  }
  // A view must be aligned for typed access; files normally align tensors, but nothing forces
  // them to, so an unaligned tensor costs one copy instead of undefined behaviour.
  if (reinterpret_cast<uintptr_t>(data) % elem == 0) return Tensor::view(stored, std::move(shape), data, owner);
  Tensor out = Tensor::empty(stored, std::move(shape));
  if (out.nbytes() != 0) std::memcpy(out.data_as<uint8_t>(), data, out.nbytes());
  return out;
}

bool is_contiguous(const Shape& shape, const std::vector<int64_t>& strides) {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

bool imports_as_view(DType stored, const Shape& shape, const std::vector<int64_t>& strides, const uint8_t* data) {
  return loaded_dtype(stored) == stored && is_contiguous(shape, strides) &&
         reinterpret_cast<uintptr_t>(data) % dtype_size(stored) == 0;
}

// Copies the elements of a strided view into `out` in row-major order, walking the
// multi-index like an odometer so no recursion depends on the (untrusted) rank.
static void gather_strided(const uint8_t* base, size_t elem, const Shape& shape, const std::vector<int64_t>& strides,
                           uint8_t* out) {
  const size_t rank = shape.size();
  if (rank == 0) {
    std::memcpy(out, base, elem);
    return;
  }
  const int64_t inner = shape[rank - 1];
  const int64_t inner_stride = strides[rank - 1];
  std::vector<int64_t> index(rank, 0);
  for (;;) {
    int64_t offset = 0;
    for (size_t d = 0; d + 1 < rank; ++d) offset += index[d] * strides[d];
    const uint8_t* row = base + static_cast<size_t>(offset) * elem;
    for (int64_t i = 0; i < inner; ++i) {
      std::memcpy(out, row + static_cast<size_t>(i * inner_stride) * elem, elem);
      out += elem;
    }
    size_t d = rank - 1;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

Tensor import_strided(DType stored, Shape shape, const std::vector<int64_t>& strides, const uint8_t* data,
                      const std::shared_ptr<const void>& owner) {
  if (is_contiguous(shape, strides)) return import_contiguous(stored, std::move(shape), data, owner);
  Tensor packed = Tensor::empty(stored, shape);
  if (packed.numel() == 0) return import_contiguous(stored, std::move(shape), data, owner);
  gather_strided(data, dtype_size(stored), shape, strides, packed.data_as<uint8_t>());
  if (loaded_dtype(stored) == stored) return packed;
  // The packed copy is owned by `packed`, which dies after conversion.
  return import_contiguous(stored, std::move(shape), packed.data_as<uint8_t>(), nullptr);
}

}  // namespace hfpipe::formats
