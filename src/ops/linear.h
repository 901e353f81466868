// Linear layers on oneDNN: y = x W^T + b with an optional fused activation.
//
// The weight keeps PyTorch's [out, in] layout. At construction we ask oneDNN which weight
// layout its matmul wants for a runtime number of rows (format_tag::any); when that is a
// blocked layout (AVX-512 machines with brgemm) the weight is reordered once into it, and
// when it is the plain layout we hand oneDNN the checkpoint's own memory as the transposed
// ("ba") matrix: measured equal or faster on AVX2 and it keeps the weights zero-copy from the
// mmapped file (peak RSS ≈ weights). One primitive serves every batch size.
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace hfpipe::ops {

enum class Activation { None, GeluErf, GeluTanh, Relu, Tanh, Silu };

// Maps a transformers `hidden_act` / `activation` string ("gelu", "gelu_new", "relu", ...)
// to an Activation; throws Error(UnsupportedModel) for the ones not implemented.
Activation activation_from_name(const std::string& name);

class Linear {
 public:
  Linear() = default;
  // weight: F32 [out, in]; bias: F32 [out] or an undefined Tensor.
  Linear(const Tensor& weight, const Tensor& bias, Activation activation = Activation::None);

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  // x: `rows` rows of in_features floats; y: rows x out_features floats.
  void forward(const float* x, int64_t rows, float* y) const;
  // x: [..., in] -> [..., out]
  Tensor forward(const Tensor& x) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
  int64_t in_ = 0, out_ = 0;
};

// Sets the size of the process's thread pool (OpenMP, shared with oneDNN). 0 = all cores.
void set_num_threads(int threads);
int num_threads();

}  // namespace hfpipe::ops
