// hfpipe's AMX bf16 kernel (ops/amx_bf16.h) against a double reference over the same bf16
// values, on the shapes where its blocks overhang: rows and columns that are not multiples of
// 16 or 32, results written into a wider matrix, with and without a bias, on one and two
// threads; both operand orders (packed weights, and plain weights against packed inputs).
// Skipped on CPUs without AMX (the Linear tests cover the oneDNN route there).
#include <gtest/gtest.h>
#include <omp.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/amx_bf16.h"
#include "random_vector.h"

namespace hfpipe::ops {
namespace {

using testing::random_vector;

uint16_t bf16_bits(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float value_of(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

std::vector<uint16_t> bf16_vector(size_t n, unsigned seed) {
  const auto floats = random_vector(n, seed);
  std::vector<uint16_t> bits(n);
  for (size_t i = 0; i < n; ++i) bits[i] = bf16_bits(floats[i]);
  return bits;
}

// y (rows x ldy, the product in columns [2, 2 + out)) against a double reference over the bf16
// values, with the columns outside the product still -7.
void expect_product(const std::vector<float>& y, int64_t ldy, const std::vector<uint16_t>& x,
                    const std::vector<uint16_t>& w, const float* bias, int64_t rows, int64_t out, int64_t in) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < ldy; ++c) {
      const float got = y[static_cast<size_t>(r * ldy + c)];
      if (c < 2 || c >= 2 + out) {
        ASSERT_EQ(got, -7.f) << "column " << c << " outside the product was written";
        continue;
      }
      const int64_t o = c - 2;
      double expected = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        expected += static_cast<double>(value_of(x[static_cast<size_t>(r * in + i)])) * value_of(w[static_cast<size_t>(o * in + i)]);
      ASSERT_NEAR(got, expected, 2e-7 * static_cast<double>(in) + 1e-6)
          << rows << " x " << out << " x " << in << " at " << r << "," << o;
    }
}

// y = x W^T (+ bias) through pack_amx_bf16_bits and amx_bf16_matmul into columns [2, 2 + out)
// of a matrix `out + 5` wide, whose other columns must stay as they were.
void check_product(int64_t rows, int64_t out, int64_t in, bool with_bias) {
  const auto x = bf16_vector(static_cast<size_t>(rows * in), 31), w = bf16_vector(static_cast<size_t>(out * in), 32);
  const auto bias_values = random_vector(static_cast<size_t>(out), 33);
  std::vector<uint16_t> packed(static_cast<size_t>(amx_bf16_packed_values(out, in)), 0xFFFF);  // NaN: must be overwritten
  for (int64_t b = 0; b * 16 < amx_bf16_packed_values(out, in) / in; ++b) {
    const int64_t block_rows = std::clamp<int64_t>(out - b * 16, 0, 16);
    if (block_rows == 0)
      std::fill_n(packed.begin() + b * 16 * in, 16 * in, uint16_t{0});
    else
      pack_amx_bf16_bits(w.data() + b * 16 * in, block_rows, in, packed.data() + b * 16 * in);
  }
  const Tensor bias = amx_bf16_padded_bias(bias_values.data(), out);
  const int64_t ldy = out + 5;
  std::vector<float> y(static_cast<size_t>(rows * ldy), -7.f);
  amx_bf16_matmul(x.data(), rows, packed.data(), out, in, with_bias ? bias.f32() : nullptr, y.data() + 2, ldy);
  expect_product(y, ldy, x, w, with_bias ? bias_values.data() : nullptr, rows, out, in);
}

// The same product through amx_bf16_matmul_plain_weights: W in its plain layout with NaN in
// the padding rows up to a multiple of 32 (their results must not reach y), x packed.
void check_plain_weights_product(int64_t rows, int64_t out, int64_t in, bool with_bias) {
  const auto x = bf16_vector(static_cast<size_t>(rows * in), 41), w = bf16_vector(static_cast<size_t>(out * in), 42);
  const auto bias_values = random_vector(static_cast<size_t>(out), 43);
  std::vector<uint16_t> plain(static_cast<size_t>(amx_bf16_packed_values(out, in)), 0x7FC0);  // NaN padding
  std::copy(w.begin(), w.end(), plain.begin());
  std::vector<uint16_t> x_packed(static_cast<size_t>(amx_bf16_packed_values(rows, in)), 0);
  pack_amx_bf16_bits(x.data(), rows, in, x_packed.data());
  const Tensor bias = amx_bf16_padded_bias(bias_values.data(), out);
  const int64_t ldy = out + 5;
  std::vector<float> y(static_cast<size_t>(rows * ldy), -7.f);
  amx_bf16_matmul_plain_weights(x_packed.data(), rows, plain.data(), out, in, with_bias ? bias.f32() : nullptr,
                                y.data() + 2, ldy);
  expect_product(y, ldy, x, w, with_bias ? bias_values.data() : nullptr, rows, out, in);
}

class AmxBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!amx_bf16_available()) GTEST_SKIP() << "this CPU has no AMX-BF16";
  }
};

TEST_F(AmxBf16, ProductsAtEveryOverhang) {
  for (int64_t rows : {1, 15, 16, 31, 32, 33, 64, 100})
    for (int64_t out : {16, 32, 47, 100})
      for (int64_t in : {32, 96}) check_product(rows, out, in, (rows + out) % 2 == 0);
}

TEST_F(AmxBf16, PlainWeightProductsAtEveryOverhang) {
  for (int64_t rows : {1, 15, 16, 31, 32, 33, 64, 100})
    for (int64_t out : {16, 32, 47, 100})
      for (int64_t in : {32, 96}) check_plain_weights_product(rows, out, in, (rows + out) % 2 == 1);
}

TEST_F(AmxBf16, ProductsOnTwoThreads) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  check_product(130, 600, 1024, true);  // past the size that splits the column blocks
  check_product(33, 70, 512, false);
  check_plain_weights_product(130, 600, 1024, true);
  omp_set_num_threads(threads);
}

TEST_F(AmxBf16, PackedWeightIsInTileOrder) {
  // Weight (n, k) at: 16-row block n / 16, step k / 32, tile row (k % 32) / 2, column n % 16,
  // pair half k % 2; rows past `out` up to a multiple of 32 are zero. 40 rows: two whole
  // blocks, one of 8 rows and a lone zero one.
  const int64_t out = 40, in = 96;
  const auto w = random_vector(static_cast<size_t>(out * in), 34);
  const AmxWeight packed = pack_amx_bf16(w.data(), out, in);
  ASSERT_EQ(packed.packed.nbytes(), static_cast<size_t>(64 * in * 2));
  std::vector<uint16_t> expected(static_cast<size_t>(64 * in), 0);
  for (int64_t n = 0; n < out; ++n)
    for (int64_t k = 0; k < in; ++k)
      expected[static_cast<size_t>((n / 16) * 16 * in + (k / 32) * 512 + ((k % 32) / 2) * 32 + (n % 16) * 2 + k % 2)] =
          bf16_bits(w[static_cast<size_t>(n * in + k)]);
  const auto* got = packed.packed.data_as<uint16_t>();
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(got[i], expected[i]) << i;
}

}  // namespace
}  // namespace hfpipe::ops
