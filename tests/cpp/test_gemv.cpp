// ops::skinny_linear (decoding's few-row linear layers, short inputs on AVX2 / AVX-512) against a naive
// double-precision reference, and against oneDNN's path through Linear (more rows), on every kernel
// (AVX-512, AVX2, plain) this machine can run.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/gemv.h"
#include "ops/linear.h"
#include "random_vector.h"
#include "simd_levels.h"

namespace hfpipe::ops {
namespace {

using testing::level_name;
using testing::random_vector;

// Runs the test body on one kernel level, restoring the widest afterwards.
class SkinnyLevels : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (GetParam() > cpu_simd_level()) GTEST_SKIP() << "this CPU has no " << level_name(GetParam());
    set_skinny_simd_level(GetParam());
    ASSERT_EQ(skinny_simd_level(), GetParam());
  }
  void TearDown() override { set_skinny_simd_level(cpu_simd_level()); }
};

double activate(Activation a, double x) {
  switch (a) {
    case Activation::None: return x;
    case Activation::GeluErf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Activation::GeluTanh: return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::Relu: return x > 0 ? x : 0;
    case Activation::Tanh: return std::tanh(x);
    case Activation::Silu: return x / (1.0 + std::exp(-x));
  }
  return x;
}

// Every row count 1..8 and some past it (groups of 4 rows with 0-3 left over), widths with and
// without a K % 8 / K % 16 tail and a remainder after the tiles of 1..8 weight rows, with and
// without bias, every activation.
TEST_P(SkinnyLevels, MatchesNaiveReference) {
  const Activation acts[] = {Activation::None, Activation::GeluErf, Activation::GeluTanh,
                             Activation::Relu, Activation::Tanh,    Activation::Silu};
  for (int64_t in : {5, 8, 16, 37, 64})
    for (int64_t out : {1, 3, 4, 13, 50})
      for (int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 19, 32, 43})
        for (bool with_bias : {false, true})
          for (Activation a : acts) {
            auto x = random_vector(rows * in, 1), w = random_vector(out * in, 2), b = random_vector(out, 3);
            std::vector<float> y(rows * out);
            skinny_linear(x.data(), rows, w.data(), with_bias ? b.data() : nullptr, in, out, a, y.data());
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t n = 0; n < out; ++n) {
                double s = with_bias ? b[n] : 0.0;
                for (int64_t k = 0; k < in; ++k) s += double(x[r * in + k]) * w[n * in + k];
                ASSERT_NEAR(y[r * out + n], activate(a, s), 1e-4 * (1.0 + std::fabs(s)))
                    << "in " << in << " out " << out << " rows " << rows << " row " << r << " col " << n;
              }
          }
}

// A row's result does not depend on the rows decoded with it (batching changes speed only),
// whichever tile shape each row count takes. out = 121 leaves a remainder after every tile
// width; in = 77 a K tail for every vector width.
// Past 8 rows too, where each weight tile passes over the rows 4 at a time.
TEST_P(SkinnyLevels, RowResultIndependentOfRowCount) {
  const int64_t in = 77, out = 121, max_rows = 43;
  auto x = random_vector(max_rows * in, 4), w = random_vector(out * in, 5), b = random_vector(out, 6);
  std::vector<float> alone(out), together(max_rows * out);
  for (int64_t rows = 2; rows <= max_rows; ++rows) {
    skinny_linear(x.data(), rows, w.data(), b.data(), in, out, Activation::None, together.data());
    for (int64_t r = 0; r < rows; ++r) {
      skinny_linear(x.data() + r * in, 1, w.data(), b.data(), in, out, Activation::None, alone.data());
      for (int64_t n = 0; n < out; ++n) ASSERT_EQ(alone[n], together[r * out + n]) << rows << " rows, row " << r;
    }
  }
}

// A large layer (threads split it; every tile prefetches the next) matches the reference, at
// a decoding step's few rows and at a short input's 20.
TEST_P(SkinnyLevels, WideLayerMatchesReference) {
  const int64_t in = 771, out = 1030;
  for (int64_t rows : {3, 20}) {
    auto x = random_vector(rows * in, 9), w = random_vector(out * in, 10);
    std::vector<float> y(rows * out);
    skinny_linear(x.data(), rows, w.data(), nullptr, in, out, Activation::None, y.data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < out; ++n) {
        double s = 0.0;
        for (int64_t k = 0; k < in; ++k) s += double(x[r * in + k]) * w[n * in + k];
        ASSERT_NEAR(y[r * out + n], s, 1e-3) << "rows " << rows << " row " << r << " col " << n;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, SkinnyLevels, testing::all_simd_levels(), testing::simd_level_test_name);

TEST(SkinnyLinear, LevelIsClampedToTheCpu) {
  set_skinny_simd_level(SimdLevel::Avx512);
  EXPECT_EQ(skinny_simd_level(), cpu_simd_level());
  set_skinny_simd_level(SimdLevel::Plain);
  EXPECT_EQ(skinny_simd_level(), SimdLevel::Plain);
  set_skinny_simd_level(cpu_simd_level());
}

// Linear sends few rows to skinny_linear (up to 8; 40 on AVX2, 64 on AVX-512) and more to
// oneDNN: both agree.
TEST(SkinnyLinear, AgreesWithOneDnnThroughLinear) {
  const int64_t in = 96, out = 40, rows = 70;
  ASSERT_FALSE(skinny_linear_preferred(rows));
  auto x = random_vector(rows * in, 6), w = random_vector(out * in, 7), b = random_vector(out, 8);
  Linear linear(Tensor::view(DType::F32, {out, in}, w.data(), nullptr), Tensor::view(DType::F32, {out}, b.data(), nullptr),
                Activation::Silu);
  std::vector<float> all(rows * out), few(2 * out);
  linear.forward(x.data(), rows, all.data());      // oneDNN
  linear.forward(x.data() + 7 * in, 2, few.data());  // skinny: rows 7 and 8
  for (int64_t i = 0; i < 2 * out; ++i) EXPECT_NEAR(few[i], all[7 * out + i], 1e-4);
}

// A Linear of 9-40 rows (AVX2) or 9-64 (AVX-512) (an encoder's short input, a short prefill) runs
// skinny_linear's tiles: each row gets the bits it gets alone, and agrees with oneDNN's product of
// more rows.
TEST_P(SkinnyLevels, PreferredUpTo40RowsOnAvx2And64OnAvx512) {
  const SimdLevel level = GetParam();
  EXPECT_TRUE(skinny_linear_preferred(8));
  EXPECT_EQ(skinny_linear_preferred(9), level != SimdLevel::Plain);
  EXPECT_EQ(skinny_linear_preferred(40), level != SimdLevel::Plain);
  EXPECT_EQ(skinny_linear_preferred(41), level == SimdLevel::Avx512);
  EXPECT_EQ(skinny_linear_preferred(64), level == SimdLevel::Avx512);
  EXPECT_FALSE(skinny_linear_preferred(65));
}

TEST_P(SkinnyLevels, LinearOfShortInputsRunsTheSkinnyTiles) {
  for (const int64_t rows : {21, 60}) {
    const int64_t in = 200, out = 70, more = 80;
    auto x = random_vector(more * in, 11), w = random_vector(out * in, 12), b = random_vector(out, 13);
    Linear linear(Tensor::view(DType::F32, {out, in}, w.data(), nullptr), Tensor::view(DType::F32, {out}, b.data(), nullptr),
                  Activation::GeluErf);
    EXPECT_EQ(skinny_linear_preferred(rows), GetParam() == SimdLevel::Avx512 || (GetParam() == SimdLevel::Avx2 && rows <= 40));
    ASSERT_FALSE(skinny_linear_preferred(more));
    std::vector<float> short_input(rows * out), alone(out), many(more * out);
    linear.forward(x.data(), rows, short_input.data());
    linear.forward(x.data(), more, many.data());  // oneDNN
    for (int64_t r = 0; r < rows; ++r) {
      linear.forward(x.data() + r * in, 1, alone.data());
      for (int64_t n = 0; n < out; ++n) {
        if (skinny_linear_preferred(rows)) ASSERT_EQ(short_input[r * out + n], alone[n]) << "row " << r;
        ASSERT_NEAR(short_input[r * out + n], many[r * out + n], 1e-4) << "row " << r;
      }
    }
  }
}

}  // namespace
}  // namespace hfpipe::ops
