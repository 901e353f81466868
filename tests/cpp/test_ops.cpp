// Kernels against naive reference implementations.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "hfpipe/errors.h"
#include "ops/amx_bf16.h"
#include "ops/ops.h"
#include "random_vector.h"
#include "simd_levels.h"

namespace hfpipe::ops {
namespace {

using testing::level_name;
using testing::random_vector;

// Runs the test body with softmax, LayerNorm and the activations at one SIMD level, restoring
// the CPU's own afterwards.
class RowKernels : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (GetParam() > cpu_simd_level()) GTEST_SKIP() << "this CPU has no " << level_name(GetParam());
    set_row_simd_level(GetParam());
    ASSERT_EQ(row_simd_level(), GetParam());
  }
  void TearDown() override { set_row_simd_level(cpu_simd_level()); }
};
INSTANTIATE_TEST_SUITE_P(Levels, RowKernels, testing::all_simd_levels(), testing::simd_level_test_name);

Tensor tensor_of(std::vector<float>& data, Shape shape) { return Tensor::view(DType::F32, shape, data.data(), nullptr); }

TEST(Linear, MatchesNaiveWithBiasAndGelu) {
  const int64_t rows = 7, in = 33, out = 19;
  auto x = random_vector(rows * in, 1), w = random_vector(out * in, 2), b = random_vector(out, 3);
  Linear linear(tensor_of(w, {out, in}), tensor_of(b, {out}), Activation::GeluErf);
  std::vector<float> y(rows * out);
  linear.forward(x.data(), rows, y.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b[o];
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(x[r * in + i]) * w[o * in + i];
      const double gelu = 0.5 * acc * (1 + std::erf(acc / std::sqrt(2.0)));
      EXPECT_NEAR(y[r * out + o], gelu, 1e-4) << r << "," << o;
    }
}

TEST(Linear, SameRowResultsWhateverTheRowCount) {
  const int64_t in = 64, out = 48;
  auto x = random_vector(40 * in, 4), w = random_vector(out * in, 5);
  Linear linear(tensor_of(w, {out, in}), Tensor());
  std::vector<float> all(40 * out), one(out);
  linear.forward(x.data(), 40, all.data());
  linear.forward(x.data() + 3 * in, 1, one.data());
  for (int64_t o = 0; o < out; ++o) EXPECT_NEAR(all[3 * out + o], one[o], 1e-5);
}

// BlockedWhenFaster runs brgemm over a packed copy on AVX-512 once the layer has had a few
// calls (one primitive per row count, big inputs in 512-row chunks) and the plain path elsewhere (ctest runs this file again with
// DNNL_MAX_CPU_ISA=AVX2): either way the same products as the plain layer, for row counts on
// both sides of the few-rows kernel's limit and of a chunk boundary.
TEST(Linear, BlockedPackingMatchesPlain) {
  const int64_t in = 72, out = 40, max_rows = 1100;
  auto x = random_vector(max_rows * in, 11), w = random_vector(out * in, 12), b = random_vector(out, 13);
  Linear plain(tensor_of(w, {out, in}), tensor_of(b, {out}), Activation::GeluTanh);
  Linear blocked(tensor_of(w, {out, in}), tensor_of(b, {out}), Activation::GeluTanh, WeightPacking::BlockedWhenFaster);
  std::vector<float> warm_up(9 * out);
  for (int call = 0; call < 5; ++call) blocked.forward(x.data(), 9, warm_up.data());  // packs
  for (int64_t rows : {int64_t{1}, int64_t{8}, int64_t{9}, int64_t{37}, int64_t{512}, int64_t{513}, max_rows}) {
    std::vector<float> expected(rows * out), got(rows * out);
    plain.forward(x.data(), rows, expected.data());
    blocked.forward(x.data(), rows, got.data());
    for (int64_t i = 0; i < rows * out; ++i) ASSERT_NEAR(got[i], expected[i], 1e-5) << rows << " rows, element " << i;
  }
}

// bf16 to the nearest even, as torch's .to(torch.bfloat16): what BlockedBf16 multiplies.
float bf16_of(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  return std::bit_cast<float>(u);
}

// The two bf16 Linears: an f32 weight packed for the encoders (WeightPacking::BlockedBf16), or
// kept as a BF16 matrix for the decoders (Precision::BFloat16 on to_bf16_matrix).
enum class Bf16Kind { Packed, Bf16Matrix };
Linear bf16_linear(Bf16Kind kind, std::vector<float>& w, std::vector<float>& b, int64_t out, int64_t in) {
  if (kind == Bf16Kind::Packed)
    return Linear(tensor_of(w, {out, in}), tensor_of(b, {out}), Activation::Relu, WeightPacking::BlockedBf16);
  return Linear(to_bf16_matrix(tensor_of(w, {out, in})), tensor_of(b, {out}), Activation::Relu, Precision::BFloat16);
}

// BlockedBf16 (torch_dtype="bfloat16") multiplies input and weight rounded to bf16 with f32
// accumulation: products of two bf16 values are exact in f32, so the result equals a double
// reference over the rounded values up to f32 summation error, for row counts around the
// 64-row chunks and the few-rows limit, on a narrow weight and on a wide one (1024 x 600: two
// chunks and a tail of rows, columns not a multiple of oneDNN's 64-column blocks). Where
// oneDNN has no bf16 product (AVX2 CPUs) f32 kernels multiply the rounded values: the same
// check holds.
void check_bf16_linear(int64_t in, int64_t out, Bf16Kind kind = Bf16Kind::Packed, int64_t max_rows = 130) {
  auto x = random_vector(max_rows * in, 21), w = random_vector(out * in, 22), b = random_vector(out, 23);
  const Linear linear = bf16_linear(kind, w, b, out, in);
  std::vector<float> xr(x.size()), wr(w.size());
  std::transform(x.begin(), x.end(), xr.begin(), bf16_of);
  std::transform(w.begin(), w.end(), wr.begin(), bf16_of);
  const double tolerance = 2e-7 * static_cast<double>(in);  // f32 summation over `in` terms of size ~1
  double worst_unrounded = 0;
  for (int64_t rows : {int64_t{1}, int64_t{8}, int64_t{9}, int64_t{64}, int64_t{65}, max_rows}) {
    std::vector<float> y(rows * out);
    linear.forward(x.data(), rows, y.data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) {
        double rounded = b[o], exact = b[o];
        for (int64_t i = 0; i < in; ++i) {
          rounded += static_cast<double>(xr[r * in + i]) * wr[o * in + i];
          exact += static_cast<double>(x[r * in + i]) * w[o * in + i];
        }
        ASSERT_NEAR(y[r * out + o], std::max(rounded, 0.0), tolerance) << rows << " rows, " << r << "," << o;
        worst_unrounded = std::max(worst_unrounded, std::abs(y[r * out + o] - std::max(exact, 0.0)));
      }
  }
  // And the rounding is really there (the f32 product would be within `tolerance` of `exact`).
  EXPECT_GT(worst_unrounded, 1e-3);
}

TEST(Linear, Bf16ProductsOfRoundedValues) { check_bf16_linear(96, 40); }
TEST(Linear, Bf16ProductsOfAWideWeight) { check_bf16_linear(1024, 600); }
// On AMX CPUs BlockedBf16 and the BF16 matrices' prefill run hfpipe's own kernel where the
// input width is a multiple of 32, oneDNN's otherwise: both routes, on one thread and on two.
TEST(Linear, Bf16ProductsOnEitherKernel) {
  const int threads = num_threads();
  for (bool amx : {true, false})
    for (int t : {1, 2}) {
      SCOPED_TRACE(std::string(amx ? "AMX kernel" : "oneDNN") + ", threads " + std::to_string(t));
      set_amx_bf16_enabled(amx);
      set_num_threads(t);
      check_bf16_linear(1024, 600);
      check_bf16_linear(40, 33);  // a width AMX does not take: oneDNN either way
      // The decoders' BF16 matrices, prefill past 8 rows.
      check_bf16_linear(1024, 600, Bf16Kind::Bf16Matrix);  // two slices, the last padded to 96 rows
      check_bf16_linear(96, 40, Bf16Kind::Bf16Matrix);
    }
  set_amx_bf16_enabled(true);
  set_num_threads(threads);
}
// Where oneDNN has no bf16 product (AVX2 CPUs; forced off here so that every CPU runs this
// route): f32 kernels over the rounded weight and inputs, at every SIMD level of the
// decoding kernel.
TEST(Linear, Bf16ProductsOnF32Kernels) {
  const int threads = num_threads();
  set_bf16_products_enabled(false);
  for (SimdLevel level : {SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Plain})
    for (int t : {1, 2}) {
      SCOPED_TRACE(std::string(level_name(level)) + ", threads " + std::to_string(t));
      set_skinny_simd_level(level);
      set_num_threads(t);
      check_bf16_linear(96, 40, Bf16Kind::Packed, 1100);  // past the 1024 rows rounded at a time
      check_bf16_linear(1024, 600);
      check_bf16_linear(96, 40, Bf16Kind::Bf16Matrix);
      check_bf16_linear(37, 70, Bf16Kind::Bf16Matrix);
    }
  set_skinny_simd_level(cpu_simd_level());
  set_bf16_products_enabled(true);
  set_num_threads(threads);
}
// The decoders' bf16 weights: up to 8 rows through the decoded-slices kernel, more through
// the AMX kernel (AMX CPUs) or oneDNN on the plain bf16 bytes; an odd row length (the
// decoder's scalar tail, and oneDNN for the prefill) too.
TEST(Linear, Bf16MatrixProductsOfRoundedValues) {
  check_bf16_linear(96, 40, Bf16Kind::Bf16Matrix);
  check_bf16_linear(1024, 600, Bf16Kind::Bf16Matrix);
  check_bf16_linear(37, 70, Bf16Kind::Bf16Matrix);
}

TEST(LayerNorm, MatchesDefinitionWithResidual) {
  const int64_t rows = 3, dim = 10;
  auto x = random_vector(rows * dim, 6), res = random_vector(rows * dim, 7);
  auto gamma = random_vector(dim, 8), beta = random_vector(dim, 9);
  auto expected = x;
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += expected[r * dim + i] += res[r * dim + i];
    mean /= dim;
    for (int64_t i = 0; i < dim; ++i) var += std::pow(expected[r * dim + i] - mean, 2);
    var /= dim;
    for (int64_t i = 0; i < dim; ++i)
      expected[r * dim + i] = static_cast<float>((expected[r * dim + i] - mean) / std::sqrt(var + 1e-5) * gamma[i] + beta[i]);
  }
  add_layer_norm(x.data(), res.data(), rows, dim, gamma.data(), beta.data(), 1e-5f);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], expected[i], 1e-5);
}

TEST(Softmax, RowsSumToOneAndKeepOrder) {
  std::vector<float> x = {1.f, 2.f, 3.f, 1000.f, 1000.f, -1000.f};
  softmax_rows(x.data(), 2, 3);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.f, 1e-6);
  EXPECT_LT(x[0], x[1]);
  EXPECT_NEAR(x[3], 0.5f, 1e-6);
  EXPECT_NEAR(x[5], 0.f, 1e-6);
}

// Every width from 1 to 40 (full 8- and 16-lane blocks and each tail length of the vector paths), with
// a spread of magnitudes and -inf (a masked score), against exp in double.
TEST_P(RowKernels, SoftmaxMatchesDoublePrecisionAtEveryWidth) {
  for (int64_t dim = 1; dim <= 40; ++dim) {
    auto x = random_vector(static_cast<size_t>(dim), static_cast<unsigned>(100 + dim));
    for (int64_t i = 0; i < dim; ++i) x[i] *= 1.f + static_cast<float>(i % 5) * 10.f;
    if (dim > 2) x[1] = -std::numeric_limits<float>::infinity();
    std::vector<double> expected(x.begin(), x.end());
    double m = -INFINITY, sum = 0;
    for (double v : expected) m = std::max(m, v);
    for (double& v : expected) sum += v = std::exp(v - m);
    softmax_rows(x.data(), 1, dim);
    for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(x[i], expected[i] / sum, 1e-6) << "dim " << dim << " i " << i;
  }
}

TEST_P(RowKernels, LayerNormMatchesDefinitionAtEveryWidth) {
  for (int64_t dim = 1; dim <= 40; ++dim) {
    auto x = random_vector(static_cast<size_t>(dim), static_cast<unsigned>(200 + dim));
    auto gamma = random_vector(static_cast<size_t>(dim), 3), beta = random_vector(static_cast<size_t>(dim), 4);
    for (float& v : x) v = v * 3.f + 5.f;  // an offset mean, as real hidden states have
    double mean = 0, var = 0;
    for (float v : x) mean += v;
    mean /= static_cast<double>(dim);
    for (float v : x) var += (v - mean) * (v - mean);
    var /= static_cast<double>(dim);
    std::vector<float> expected(x.size());
    for (int64_t i = 0; i < dim; ++i)
      expected[i] = static_cast<float>((x[i] - mean) / std::sqrt(var + 1e-12) * gamma[i] + beta[i]);
    add_layer_norm(x.data(), nullptr, 1, dim, gamma.data(), beta.data(), 1e-12f);
    for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(x[i], expected[i], 1e-4) << "dim " << dim << " i " << i;
  }
}

// The activations' scalar definitions (the plain level's loops), the reference for the
// vector kernels.
float scalar_activation(Activation a, float v) {
  switch (a) {
    case Activation::GeluErf: return 0.5f * v * (1.f + std::erf(v * static_cast<float>(M_SQRT1_2)));
    case Activation::GeluTanh: return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case Activation::Tanh: return std::tanh(v);
    case Activation::Silu: return v / (1.f + std::exp(-v));
    default: return v;
  }
}

// A dense sweep of [-12, 12], every 2^k from 2^-149 (the smallest denormal) up, a stride
// through every float's bit pattern (both signs), and the edges.
std::vector<float> activation_inputs() {
  std::vector<float> v;
  for (int i = -120000; i <= 120000; ++i) v.push_back(static_cast<float>(i) * 1e-4f);
  for (int k = -149; k <= 127; ++k)
    for (float sign : {1.f, -1.f}) v.push_back(sign * std::ldexp(1.f, k));
  for (uint32_t bits = 0; bits < 0x7f800000u; bits += 4099)
    for (uint32_t sign : {0u, 0x80000000u}) v.push_back(std::bit_cast<float>(bits | sign));
  const float inf = std::numeric_limits<float>::infinity();
  for (float e : {0.f, -0.f, 1e-30f, -1e-30f, 0.625f, -0.625f, 1.f, -1.f, 4.f, -4.f, 9.f, -9.f, 10.f, -10.f,
                  20.f, -20.f, 88.f, -88.f, 90.f, -90.f, inf, -inf, std::numeric_limits<float>::quiet_NaN()})
    v.push_back(e);
  return v;
}

// Each value's activation against the scalar definition: within `rel` relative, or `abs_per_x`
// times |x| where 1 + tanh / 1 + erf cancel (GELU of a negative x; torch's formula has the same
// cancellation, so only a rounding of 1 is at stake there), or `abs`. NaN in, NaN out; zeros
// keep their sign.
void expect_activation_close(Activation a, double rel, double abs_per_x, double abs = 0) {
  const std::vector<float> in = activation_inputs();
  std::vector<float> out = in;
  apply_activation(out.data(), static_cast<int64_t>(out.size()), a);
  int failures = 0;
  for (size_t i = 0; i < in.size() && failures < 10; ++i) {
    const float want = scalar_activation(a, in[i]), got = out[i];
    if (std::isnan(want) || std::isnan(got)) {
      failures += std::isnan(want) != std::isnan(got);
      EXPECT_EQ(std::isnan(want), std::isnan(got)) << "x = " << in[i] << " want " << want << " got " << got;
      continue;
    }
    const double error = std::fabs(static_cast<double>(got) - want);
    const bool close = want == 0.f ? got == 0.f && std::signbit(want) == std::signbit(got)
                       : got == want || error <= rel * std::fabs(want) + abs_per_x * std::fabs(in[i]) + abs;
    failures += !close;
    EXPECT_TRUE(close) << "x = " << in[i] << " want " << want << " got " << got << " (error " << error << ")";
  }
}

TEST_P(RowKernels, TanhWithinAMillionthOfLibm) { expect_activation_close(Activation::Tanh, 1e-6, 0); }
TEST_P(RowKernels, GeluTanhMatchesItsDefinition) { expect_activation_close(Activation::GeluTanh, 1e-6, 1e-7); }
TEST_P(RowKernels, GeluErfMatchesItsDefinition) { expect_activation_close(Activation::GeluErf, 1e-6, 1e-7); }
// SiLU of x in [-88.7, -88.4] is ~1e-37, where the vector exp stops short of libm's range.
TEST_P(RowKernels, SiluMatchesItsDefinition) { expect_activation_close(Activation::Silu, 1e-6, 0, 1e-36); }

// Soft-capping (Gemma 2) at every level against tanh(x / cap) * cap in libm: within a millionth
// relative, exact at the plain level; NaN passes through, +-inf give +-cap.
TEST_P(RowKernels, SoftCapWithinAMillionthOfLibm) {
  const std::vector<float> in = activation_inputs();
  for (float cap : {50.f, 30.f, 1.5f}) {
    std::vector<float> out = in;
    soft_cap(out.data(), static_cast<int64_t>(out.size()), cap);
    for (size_t i = 0; i < in.size(); ++i) {
      const float want = std::tanh(in[i] / cap) * cap;
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(out[i])) << "x = " << in[i];
        continue;
      }
      const double tolerance = GetParam() == SimdLevel::Plain ? 0.0 : 1e-6 * std::fabs(want);
      ASSERT_LE(std::fabs(static_cast<double>(out[i]) - want), tolerance) << "x = " << in[i] << ", cap " << cap;
    }
  }
}

// At the plain level the activations are the scalar definitions themselves.
TEST(Activation, PlainLevelIsTheScalarDefinition) {
  set_row_simd_level(SimdLevel::Plain);
  const std::vector<float> in = activation_inputs();
  for (Activation a : {Activation::GeluErf, Activation::GeluTanh, Activation::Tanh, Activation::Silu}) {
    std::vector<float> out = in;
    apply_activation(out.data(), static_cast<int64_t>(out.size()), a);
    for (size_t i = 0; i < in.size(); ++i)
      if (!std::isnan(out[i])) ASSERT_EQ(out[i], scalar_activation(a, in[i])) << "x = " << in[i];
  }
  set_row_simd_level(cpu_simd_level());
}

// A value's activation does not depend on where it sits (a full vector or the masked tail),
// so a row's result does not depend on how many rows come with it.
TEST_P(RowKernels, ActivationSameInTheTailAsInFullVectors) {
  const auto base = random_vector(40, 9);
  for (Activation a : {Activation::GeluErf, Activation::GeluTanh, Activation::Tanh, Activation::Silu}) {
    std::vector<float> all = base;
    apply_activation(all.data(), 40, a);
    for (int64_t n = 1; n < 40; ++n) {
      std::vector<float> part(base.begin(), base.begin() + n);
      apply_activation(part.data(), n, a);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(part[i], all[i]) << "n " << n << " i " << i;
    }
  }
}

TEST(RowSimdLevel, IsClampedToTheCpu) {
  set_row_simd_level(SimdLevel::Avx512);
  EXPECT_EQ(row_simd_level(), cpu_simd_level());
  set_row_simd_level(SimdLevel::Plain);
  EXPECT_EQ(row_simd_level(), SimdLevel::Plain);
  set_row_simd_level(cpu_simd_level());
}

// softmax(q k^T / sqrt(d) + bias) v in double, over the sequence's unpadded keys.
void expect_attention_matches_naive(const AttentionShape& s, const std::vector<int32_t>& mask, bool with_bias) {
  const int64_t hidden = s.heads * s.head_dim, n = s.batch * s.seq * hidden;
  auto q = random_vector(n, 10), k = random_vector(n, 11), v = random_vector(n, 12);
  auto bias = random_vector(s.heads * s.seq * s.seq, 13);
  std::vector<float> out(n, 0.f);
  self_attention(q.data(), k.data(), v.data(), out.data(), s, mask.data(), with_bias ? bias.data() : nullptr);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq; ++i) {
        if (!mask[b * s.seq + i]) continue;  // padding rows are not computed
        std::vector<double> p(s.seq);
        double m = -1e300, sum = 0;
        for (int64_t j = 0; j < s.seq; ++j) {
          if (!mask[b * s.seq + j]) { p[j] = -1e300; continue; }
          double dot = 0;
          for (int64_t d = 0; d < s.head_dim; ++d)
            dot += q[(b * s.seq + i) * hidden + h * s.head_dim + d] * k[(b * s.seq + j) * hidden + h * s.head_dim + d];
          p[j] = dot / std::sqrt(static_cast<double>(s.head_dim)) + (with_bias ? bias[(h * s.seq + i) * s.seq + j] : 0.0);
          m = std::max(m, p[j]);
        }
        for (int64_t j = 0; j < s.seq; ++j) sum += p[j] = mask[b * s.seq + j] ? std::exp(p[j] - m) : 0.0;
        for (int64_t d = 0; d < s.head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < s.seq; ++j) acc += p[j] / sum * v[(b * s.seq + j) * hidden + h * s.head_dim + d];
          ASSERT_NEAR(out[(b * s.seq + i) * hidden + h * s.head_dim + d], acc, 1e-4)
              << "seq " << s.seq << " head_dim " << s.head_dim << " b " << b << " h " << h << " i " << i << " d " << d;
        }
      }
}

// The vector kernels tile rows by kAttentionTileRows (6 on AVX2, 8 on AVX-512), 4 and 1, key columns by one or two vectors and head
// dims by one or two vectors with a masked tail: these shapes reach every combination.
TEST_P(RowKernels, AttentionMatchesNaiveWithPaddingMaskAndBias) {
  expect_attention_matches_naive({2, 5, 3, 4}, {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, true);
  for (int64_t head_dim : {1, 8, 20, 32, 40, 64}) {
    for (int64_t seq : {1, 3, 13, 16, 37}) {
      std::vector<int32_t> mask(static_cast<size_t>(2 * seq), 1);
      for (int64_t j = seq / 2 + 1; j < seq; ++j) mask[static_cast<size_t>(seq + j)] = 0;  // second one shorter
      expect_attention_matches_naive({2, seq, 2, head_dim}, mask, head_dim % 2 == 0);
    }
  }
}

// A sequence's rows come out bit-identical alone and padded into a batch with a longer one.
TEST_P(RowKernels, AttentionRowDoesNotDependOnItsBatch) {
  const int64_t heads = 2, head_dim = 24, hidden = heads * head_dim, short_len = 11, seq = 29;
  auto q = random_vector(2 * seq * hidden, 20), k = random_vector(2 * seq * hidden, 21),
       v = random_vector(2 * seq * hidden, 22);
  std::vector<int32_t> mask(2 * seq, 1);
  for (int64_t j = short_len; j < seq; ++j) mask[static_cast<size_t>(j)] = 0;  // first sequence short
  std::vector<float> batched(q.size());
  self_attention(q.data(), k.data(), v.data(), batched.data(), {2, seq, heads, head_dim}, mask.data(), nullptr);
  std::vector<float> alone(static_cast<size_t>(short_len * hidden));
  self_attention(q.data(), k.data(), v.data(), alone.data(), {1, short_len, heads, head_dim}, nullptr, nullptr);
  for (size_t i = 0; i < alone.size(); ++i) ASSERT_EQ(alone[i], batched[i]) << i;
}

TEST_P(RowKernels, TransposeMatchesNaive) {
  // Whole 8 x 8 blocks, ragged edges on either side, one row or column, leading dimensions
  // wider than the copied block, and more than one 32 x 32 tile (and enough to run threaded).
  struct Case {
    int64_t rows, cols, ld_src, ld_dst;
  };
  for (const Case c : {Case{8, 8, 8, 8}, Case{37, 45, 50, 40}, Case{1, 100, 100, 1}, Case{100, 1, 3, 100},
                       Case{64, 96, 96, 64}, Case{768, 1000, 2304, 768}}) {
    const auto src = random_vector(static_cast<size_t>(c.rows * c.ld_src), 7);
    std::vector<float> dst(static_cast<size_t>(c.cols * c.ld_dst), -1.f);
    transpose(src.data(), c.rows, c.cols, c.ld_src, dst.data(), c.ld_dst);
    for (int64_t col = 0; col < c.cols; ++col)
      for (int64_t r = 0; r < c.ld_dst; ++r) {
        const float expected = r < c.rows ? src[r * c.ld_src + col] : -1.f;  // the rest untouched
        ASSERT_EQ(dst[col * c.ld_dst + r], expected) << c.rows << "x" << c.cols << " at " << r << ", " << col;
      }
  }
}

TEST(Attention, LeftPaddingIsRefused) {
  const AttentionShape s{1, 3, 1, 2};
  std::vector<float> x(6, 1.f), out(6);
  std::vector<int32_t> mask = {0, 1, 1};
  EXPECT_THROW(self_attention(x.data(), x.data(), x.data(), out.data(), s, mask.data(), nullptr), Error);
}

TEST(Activation, UnknownNameIsAClearError) {
  EXPECT_THROW(activation_from_name("swiglu_9000"), Error);
  EXPECT_EQ(activation_from_name("gelu"), Activation::GeluErf);
}

}  // namespace
}  // namespace hfpipe::ops
