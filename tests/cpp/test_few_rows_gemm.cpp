// The few-rows GEMM kernel (ops/few_rows_gemm.h) and Linear::forward_few against a double
// precision reference: every row count it takes, sizes with vector and pair tails, bias and
// fused activation applied after the kernel, and the fallbacks (small weight, many rows).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/few_rows_gemm.h"
#include "ops/ops.h"

namespace hfpipe::ops {
namespace {

std::vector<float> random_values(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double reference(const std::vector<float>& x, const std::vector<float>& w, int64_t r, int64_t o, int64_t in) {
  double acc = 0;
  for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(x[r * in + i]) * w[o * in + i];
  return acc;
}

bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

TEST(FewRowsGemm, MatchesReferenceForEveryRowCountAndTails) {
  if (!has_avx2()) GTEST_SKIP() << "no AVX2+FMA: few_rows_gemm declines and Linear uses oneDNN";
  const int64_t in = 1027, out = 517;  // in % 8 = 3 (scalar tail), out odd (single-row tail)
  auto x = random_values(kFewRowsMax * in, 1), w = random_values(out * in, 2);
  for (int64_t rows = 1; rows <= kFewRowsMax; ++rows) {
    std::vector<float> y(rows * out, -7.f);
    ASSERT_TRUE(few_rows_gemm(x.data(), rows, w.data(), out, in, y.data()));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) ASSERT_NEAR(y[r * out + o], reference(x, w, r, o, in), 1e-3) << rows;
  }
}

TEST(FewRowsGemm, DeclinesWhatItDoesNotTake) {
  std::vector<float> x(16 * 64, 1.f), w(64 * 64, 1.f), y(16 * 64, 0.f);
  EXPECT_FALSE(few_rows_gemm(x.data(), 0, w.data(), 64, 64, y.data()));
  EXPECT_FALSE(few_rows_gemm(x.data(), kFewRowsMax + 1, w.data(), 64, 64, y.data()));
  EXPECT_FALSE(few_rows_gemm(x.data(), 2, w.data(), 64, 64, y.data()));  // small weight: oneDNN's
  for (float v : y) EXPECT_EQ(v, 0.f);
}

TEST(FewRowsGemm, LinearForwardFewMatchesForwardWithBiasAndActivation) {
  const int64_t in = 600, out = 901;  // over kFewRowsMinWeight floats
  auto w = random_values(out * in, 3), b = random_values(out, 4), x = random_values(12 * in, 5);
  Linear linear(Tensor::view(DType::F32, {out, in}, w.data(), nullptr),
                Tensor::view(DType::F32, {out}, b.data(), nullptr), Activation::GeluErf);
  for (int64_t rows : {1, 3, 4, 12}) {  // 12: more than kFewRowsMax, oneDNN either way
    std::vector<float> few(rows * out), plain(rows * out);
    linear.forward_few(x.data(), rows, few.data());
    linear.forward(x.data(), rows, plain.data());
    for (int64_t i = 0; i < rows * out; ++i) ASSERT_NEAR(few[i], plain[i], 1e-4) << rows << " rows, " << i;
  }
}

}  // namespace
}  // namespace hfpipe::ops
