// ops::panel_linear (weights in column panels, ops/panels.h) on every kernel (AVX-512, AVX2,
// plain) this machine can run: bit for bit the scalar sum the header promises (fused
// multiply-adds in k order from zero, then the bias), whatever the rows, the level or the
// threads; panels made from [out, in] rows and from [in, out] columns hold the same weights.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/gemv.h"
#include "ops/linear.h"
#include "ops/panels.h"
#include "random_vector.h"
#include "simd_levels.h"

namespace hfpipe::ops {
namespace {

using testing::random_vector;

class PanelLevels : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (GetParam() > cpu_simd_level()) GTEST_SKIP() << "this CPU has no " << testing::level_name(GetParam());
    set_skinny_simd_level(GetParam());
  }
  void TearDown() override { set_skinny_simd_level(cpu_simd_level()); }
};

// The header's definition of each output, in scalar code: w is [out, in].
std::vector<float> scalar_product(const std::vector<float>& x, int64_t rows, const std::vector<float>& w, int64_t out,
                                  int64_t in, const float* bias) {
  std::vector<float> y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < out; ++n) {
      float acc = 0.f;
      for (int64_t k = 0; k < in; ++k) acc = std::fma(x[r * in + k], w[n * in + k], acc);
      y[r * out + n] = bias ? acc + bias[n] : acc;
    }
  return y;
}

std::vector<float> transposed(const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<float> t(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = w[r * cols + c];
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// Widths with a partial last panel or none, K within one block (512) or over several with a
// partial one, row counts around the tiles (1-4 at AVX-512, 2 at AVX2) and past one pass of
// 256 rows, with and without bias.
TEST_P(PanelLevels, BitsOfTheScalarSum) {
  for (int64_t out : {1, 63, 64, 65, 200})
    for (int64_t in : {1, 7, 512, 1100})
      for (int64_t rows : {1, 2, 3, 4, 5, 9, 300}) {
        if (in * out * rows > 20000000) continue;
        const auto x = random_vector(rows * in, 1), w = random_vector(out * in, 2), bias = random_vector(out, 3);
        const PanelMatrix panels = panels_from_rows(w.data(), out, in);
        for (bool with_bias : {false, true}) {
          const float* b = with_bias ? bias.data() : nullptr;
          std::vector<float> y(static_cast<size_t>(rows * out), -1.f);
          panel_linear(panels, x.data(), rows, b, y.data());
          EXPECT_TRUE(same_bits(y, scalar_product(x, rows, w, out, in, b)))
              << "out " << out << " in " << in << " rows " << rows << " bias " << with_bias;
        }
      }
}

// GPT-2's case: the panels of a column range of an [in, out] matrix are those of the matching
// [out, in] rows.
TEST_P(PanelLevels, ColumnsOfAnInOutMatrixAreRowsOfItsTranspose) {
  const int64_t in = 70, total = 300, first = 100, count = 130, rows = 6;
  const auto w_in_out = random_vector(in * total, 4), x = random_vector(rows * in, 5);
  const auto w_out_in = transposed(w_in_out, in, total);  // [total, in]
  const std::vector<float> slice(w_out_in.begin() + first * in, w_out_in.begin() + (first + count) * in);
  std::vector<float> from_columns(static_cast<size_t>(rows * count)), from_rows(from_columns.size());
  panel_linear(panels_from_columns(w_in_out.data(), in, total, first, count), x.data(), rows, nullptr, from_columns.data());
  panel_linear(panels_from_rows(slice.data(), count, in), x.data(), rows, nullptr, from_rows.data());
  EXPECT_TRUE(same_bits(from_columns, from_rows));
  EXPECT_TRUE(same_bits(from_columns, scalar_product(x, rows, slice, count, in, nullptr)));
}

// Threads split the panels (a layer of over 262144 weights, or a pass of enough rows): on one
// thread and on two, several passes of rows, several blocks of K and a partial last panel at
// once, the scalar sum's bits.
TEST_P(PanelLevels, ScalarBitsOnOneAndTwoThreads) {
  const int64_t out = 650, in = 1100, rows = 300;
  const auto x = random_vector(rows * in, 6), w = random_vector(out * in, 7), bias = random_vector(out, 8);
  const PanelMatrix panels = panels_from_rows(w.data(), out, in);
  const std::vector<float> expected = scalar_product(x, rows, w, out, in, bias.data());
  const int threads = omp_get_max_threads();
  for (int t : {1, 2}) {
    omp_set_num_threads(t);
    std::vector<float> y(expected.size());
    panel_linear(panels, x.data(), rows, bias.data(), y.data());
    EXPECT_TRUE(same_bits(y, expected)) << t << " threads";
  }
  omp_set_num_threads(threads);
}

INSTANTIATE_TEST_SUITE_P(Levels, PanelLevels, testing::all_simd_levels(), testing::simd_level_test_name);

// A tied embedding table in panels: each lookup gathers its row back exactly, in the last
// (partial) panel too.
TEST(PanelLinear, WeightRowsComeBackExactly) {
  const int64_t out = 130, in = 37;
  const auto w = random_vector(out * in, 12);
  const PanelMatrix panels = panels_from_rows(w.data(), out, in);
  std::vector<float> row(static_cast<size_t>(in));
  for (int64_t n : {0, 1, 63, 64, 127, 128, 129}) {
    panel_weight_row(panels, n, row.data());
    EXPECT_EQ(std::memcmp(row.data(), w.data() + n * in, sizeof(float) * in), 0) << "row " << n;
  }
  EXPECT_THROW(panel_weight_row(panels, out, row.data()), Error);
}

// Linear over panels: bias, then the activation, as the other weight layouts.
TEST(PanelLinear, LinearAppliesBiasThenActivation) {
  const int64_t out = 100, in = 40, rows = 3;
  const auto x = random_vector(rows * in, 9), w = random_vector(out * in, 10), bias = random_vector(out, 11);
  Tensor b = Tensor::empty(DType::F32, {out});
  std::memcpy(b.f32(), bias.data(), sizeof(float) * out);
  const Linear linear(panels_from_rows(w.data(), out, in), b, Activation::Relu);
  EXPECT_EQ(linear.in_features(), in);
  EXPECT_EQ(linear.out_features(), out);
  std::vector<float> y(static_cast<size_t>(rows * out));
  linear.forward(x.data(), rows, y.data());
  std::vector<float> expected = scalar_product(x, rows, w, out, in, bias.data());
  for (float& v : expected) v = v > 0.f ? v : 0.f;
  EXPECT_TRUE(same_bits(y, expected));
}

}  // namespace
}  // namespace hfpipe::ops
