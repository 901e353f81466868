// Linear layers on oneDNN: y = x W^T + b with an optional fused activation.
//
// The weight keeps PyTorch's [out, in] layout, except in the constructor from a PanelMatrix
// (ops/panels.h: a decoder's f32 weights on AVX-512 CPUs). By default (WeightPacking::Plain) oneDNN gets
// the checkpoint's own memory as the transposed ("ba") matrix, zero-copy from the mmapped file
// (peak RSS ≈ weights), with one primitive for every row count; few rows (decoding) go to
// ops/gemv.h instead. Encoders, which multiply whole sequences, ask for
// WeightPacking::BlockedWhenFaster: on CPUs where oneDNN has brgemm (AVX-512) the weight is
// reordered into brgemm's blocked layout after the layer's first few calls (so a one-input
// run does not pay for the copy) and the file's pages are given back (linear.cpp has the
// figures); elsewhere it stays plain.
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"
#include "ops/panels.h"
#include "ops/quantized.h"

namespace hfpipe::ops {

enum class Activation { None, GeluErf, GeluTanh, Relu, Tanh, Silu };

// Maps a transformers `hidden_act` / `activation` string ("gelu", "gelu_new", "relu", ...)
// to an Activation; throws Error(UnsupportedModel) for the ones not implemented.
Activation activation_from_name(const std::string& name);

// BlockedBf16: what pipeline(..., torch_dtype="bfloat16") asks for. The weight is rounded to
// bfloat16 and packed at construction, for hfpipe's AMX kernel (ops/amx_bf16.h) on AMX CPUs,
// for oneDNN's bf16 matmul (AVX-512-BF16) elsewhere; every call
// rounds its input rows to bfloat16 too, multiplies with f32 accumulation and writes f32, with
// the bias and activation in f32. Where oneDNN has no bf16 matmul (AVX2), the same products on
// f32 kernels over bf16-rounded weights and inputs (the sums' order aside, the same numbers).
enum class WeightPacking { Plain, BlockedWhenFaster, BlockedBf16 };

// The precision of a model's matrix products (pipeline's torch_dtype / dtype).
enum class Precision { Float32, BFloat16 };

// Whether oneDNN has a bf16 matrix product for this CPU (AVX-512 and up); without it, bf16
// Linears run their products on f32 kernels over bf16-rounded values.
bool bf16_products_supported();
// Tests: false makes bf16_products_supported() false, so that bf16 Linears built afterwards
// take the f32-kernel route an AVX2 CPU takes.
void set_bf16_products_enabled(bool enabled);

class Linear {
 public:
  Linear() = default;
  // weight: F32 [out, in]; bias: F32 [out] or an undefined Tensor.
  Linear(const Tensor& weight, const Tensor& bias, Activation activation = Activation::None,
         WeightPacking packing = WeightPacking::Plain);
  // A block-quantised weight [out, in] (ops/quantized.h), decoded inside the product: up to
  // kSkinnyMaxRows rows give the same bits as the f32 weight would, more rows go through
  // oneDNN on decoded chunks (plain_weight_product: the f32 GEMM's results up to rounding).
  // Precision::BFloat16 (a decoder under torch_dtype="bfloat16") rounds every call's input rows
  // to bf16 as well; more than kSkinnyMaxRows rows then run oneDNN's bf16 matmul (AMX where the
  // CPU has it) on slices of the weight in bf16 — a BF16 matrix's own bytes, other formats
  // decoded and rounded. Throws Error(UnsupportedModel) where oneDNN has no bf16 matmul.
  Linear(QuantizedMatrix weight, const Tensor& bias, Activation activation = Activation::None,
         Precision precision = Precision::Float32);

  // A weight in column panels (ops/panels.h): every row count runs panel_linear, then the
  // activation.
  Linear(PanelMatrix weight, const Tensor& bias, Activation activation = Activation::None);

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

// y = x . w^T for x rows x k and w [n, k] (both row-major), into y's rows ldy floats apart:
// oneDNN's product for plain f32 weights, on brgemm where oneDNN has it (AVX-512: 512 rows at a
// time, through a dense buffer when ldy > n), else sgemm.
void plain_weight_product(const float* x, int64_t rows, const float* w, int64_t n, int64_t k, float* y, int64_t ldy);

// Sets the size of the process's thread pool (OpenMP, shared with oneDNN). 0 = all cores.
void set_num_threads(int threads);
int num_threads();

}  // namespace hfpipe::ops
