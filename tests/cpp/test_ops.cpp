// Kernels against naive reference implementations.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "hfpipe/errors.h"
#include "ops/ops.h"
#include "random_vector.h"

namespace hfpipe::ops {
namespace {

using testing::random_vector;

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

// Every width from 1 to 40 (full 8-lane blocks and each tail length of the vector path), with
// a spread of magnitudes and -inf (a masked score), against exp in double.
TEST(Softmax, MatchesDoublePrecisionAtEveryWidth) {
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

TEST(LayerNorm, MatchesDefinitionAtEveryWidth) {
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

TEST(Attention, MatchesNaiveWithPaddingMaskAndBias) {
  const AttentionShape s{2, 5, 3, 4};
  const int64_t hidden = s.heads * s.head_dim, n = s.batch * s.seq * hidden;
  auto q = random_vector(n, 10), k = random_vector(n, 11), v = random_vector(n, 12);
  auto bias = random_vector(s.heads * s.seq * s.seq, 13);
  std::vector<int32_t> mask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  std::vector<float> out(n, 0.f);
  self_attention(q.data(), k.data(), v.data(), out.data(), s, mask.data(), bias.data());
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
          p[j] = dot / std::sqrt(static_cast<double>(s.head_dim)) + bias[(h * s.seq + i) * s.seq + j];
          m = std::max(m, p[j]);
        }
        for (int64_t j = 0; j < s.seq; ++j) sum += p[j] = mask[b * s.seq + j] ? std::exp(p[j] - m) : 0.0;
        for (int64_t d = 0; d < s.head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < s.seq; ++j) acc += p[j] / sum * v[(b * s.seq + j) * hidden + h * s.head_dim + d];
          EXPECT_NEAR(out[(b * s.seq + i) * hidden + h * s.head_dim + d], acc, 1e-4);
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
