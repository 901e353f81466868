#include "ops/linear.h"

#include <omp.h>

#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>

#include "core/error.h"
#include "ops/gemv.h"

namespace hfpipe::ops {

using dnnl::memory;
using tag = memory::format_tag;

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::algorithm eltwise_algorithm(Activation a) {
  switch (a) {
    case Activation::GeluErf: return dnnl::algorithm::eltwise_gelu_erf;
    case Activation::GeluTanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case Activation::Relu: return dnnl::algorithm::eltwise_relu;
    case Activation::Tanh: return dnnl::algorithm::eltwise_tanh;
    case Activation::Silu: return dnnl::algorithm::eltwise_swish;
    case Activation::None: break;
  }
  fail(ErrorKind::Internal, "no oneDNN algorithm for activation");
}

}  // namespace

Activation activation_from_name(const std::string& name) {
  if (name == "gelu") return Activation::GeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
  if (name == "relu") return Activation::Relu;
  if (name == "tanh") return Activation::Tanh;
  if (name == "silu" || name == "swish") return Activation::Silu;
  fail(ErrorKind::UnsupportedModel,
       "activation '" + name + "' is not supported; supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, tanh, silu");
}

struct Linear::Impl {
  dnnl::matmul primitive;
  memory weights;  // in the layout the primitive wants (a view of the checkpoint when plain)
  memory bias;     // empty when there is no bias
  Tensor keep_weight, keep_bias, packed;
  int64_t in = 0, out = 0;
  Activation activation = Activation::None;
};

Linear::Linear(const Tensor& weight, const Tensor& bias, Activation activation) {
  check(weight.dtype() == DType::F32 && weight.ndim() == 2, ErrorKind::Internal, "Linear weight must be F32 [out, in]");
  auto impl = std::make_shared<Impl>();
  out_ = impl->out = weight.dim(0);
  in_ = impl->in = weight.dim(1);
  impl->keep_weight = weight;
  impl->activation = activation;
  const memory::dim K = in_, N = out_;
  auto src_md = memory::desc({DNNL_RUNTIME_DIM_VAL, K}, memory::data_type::f32, tag::ab);
  auto dst_md = memory::desc({DNNL_RUNTIME_DIM_VAL, N}, memory::data_type::f32, tag::ab);
  auto plain_md = memory::desc({K, N}, memory::data_type::f32, tag::ba);  // PyTorch's [out, in]
  auto any_md = memory::desc({K, N}, memory::data_type::f32, tag::any);
  memory::desc bias_md;
  if (bias.defined() && bias.numel() > 0) {
    check(bias.dtype() == DType::F32 && bias.numel() == out_, ErrorKind::Internal, "Linear bias must be F32 [out]");
    bias_md = memory::desc({1, N}, memory::data_type::f32, tag::ab);
    impl->keep_bias = bias;
  }
  dnnl::primitive_attr attr;
  if (activation != Activation::None) {
    dnnl::post_ops post;
    post.append_eltwise(1.f, eltwise_algorithm(activation), activation == Activation::Silu ? 1.f : 0.f, 0.f);
    attr.set_post_ops(post);
  }
  auto& eng = cpu_engine();
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_md, bias_md, dst_md), attr, eng);
  auto wanted = pd.weights_desc();
  bool plain_is_fine = wanted == memory::desc({K, N}, memory::data_type::f32, tag::ab) || wanted == plain_md;
  if (plain_is_fine) {
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, plain_md, bias_md, dst_md), attr, eng);
    impl->weights = memory(plain_md, eng, const_cast<void*>(weight.raw()));
  } else {
    impl->packed = Tensor::empty(DType::U8, {static_cast<int64_t>(wanted.get_size())});
    impl->weights = memory(wanted, eng, impl->packed.data_as<void>());
    memory source(plain_md, eng, const_cast<void*>(weight.raw()));
    dnnl::stream s(eng);
    dnnl::reorder(source, impl->weights).execute(s, source, impl->weights);
    s.wait();
  }
  if (impl->keep_bias.defined() && impl->keep_bias.numel() > 0)
    impl->bias = memory(bias_md, eng, const_cast<void*>(impl->keep_bias.raw()));
  impl->primitive = dnnl::matmul(pd);
  impl_ = std::move(impl);
}

void Linear::forward(const float* x, int64_t rows, float* y) const {
  check(impl_ != nullptr, ErrorKind::Internal, "Linear used before it was built");
  if (rows == 0) return;
  if (rows <= kSkinnyMaxRows) {  // decoding's few rows: ops/gemv.h says why not oneDNN
    const float* bias = impl_->keep_bias.defined() && impl_->keep_bias.numel() > 0 ? impl_->keep_bias.f32() : nullptr;
    return skinny_linear(x, rows, impl_->keep_weight.f32(), bias, in_, out_, impl_->activation, y);
  }
  auto& eng = cpu_engine();
  memory src({{rows, in_}, memory::data_type::f32, tag::ab}, eng, const_cast<float*>(x));
  memory dst({{rows, out_}, memory::data_type::f32, tag::ab}, eng, y);
  // Streams are cheap and not thread-safe: one per call keeps the pipeline callable from
  // several threads at once.
  dnnl::stream s(eng);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, impl_->weights}, {DNNL_ARG_DST, dst}};
  if (impl_->bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  impl_->primitive.execute(s, args);
  s.wait();
}

Tensor Linear::forward(const Tensor& x) const {
  check(x.dtype() == DType::F32 && x.ndim() >= 1 && x.dim(-1) == in_, ErrorKind::Internal,
        "Linear input has shape " + shape_to_string(x.shape()) + ", expected [..., " + std::to_string(in_) + "]");
  Shape shape = x.shape();
  shape.back() = out_;
  Tensor y = Tensor::empty(DType::F32, shape);
  forward(x.f32(), x.numel() / in_, y.f32());
  return y;
}

void set_num_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace hfpipe::ops
