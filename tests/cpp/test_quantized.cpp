// ops/quantized.h: block-quantised weights decoded inside the product. The promise is bit
// identity with dequantising at load (formats::dequantize, gguf-py's arithmetic): the vector
// decoders give the same floats, and up to 8 rows the product gives skinny_linear's bits on
// those floats at every kernel level. Needs an AVX2 CPU (elsewhere weights are dequantised
// at load and these tests skip); the AVX-512 and AVX2 decoders both run on an AVX-512 CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "formats/gguf_quants.h"
#include "formats/weights.h"
#include "ops/gemv.h"
#include "ops/linear.h"
#include "ops/quantized.h"
#include "random_blocks.h"
#include "random_vector.h"
#include "simd_levels.h"

namespace hfpipe::ops {
namespace {

using testing::level_name;
using testing::random_blocks;
using testing::random_vector;

const QuantFormat kFormats[] = {QuantFormat::Q4_0, QuantFormat::Q4_1, QuantFormat::Q5_0, QuantFormat::Q8_0,
                                QuantFormat::Q4_K, QuantFormat::Q6_K, QuantFormat::BF16};

const char* format_name(QuantFormat f) {
  return formats::ggml_type_traits(static_cast<uint32_t>(f))->name;
}

// A row-length unit for the tests: the block size, or for BF16 (one weight a block) 37, so
// that rows have whole vectors and a tail.
float bf16_decoded(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, 4);
  return f;
}

int64_t unit(QuantFormat f) { return f == QuantFormat::BF16 ? 37 : quant_block_size(f); }

std::vector<float> dequantized_at_load(QuantFormat f, const Tensor& bytes, int64_t rows, int64_t cols) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  formats::dequantize(static_cast<formats::GgmlType>(f), bytes.data_as<uint8_t>(), out.data(), rows * cols);
  return out;
}

class Quantized : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cpu_simd_level() < SimdLevel::Avx2) GTEST_SKIP() << "quantised weights need an AVX2 CPU";
  }
};

// Runs the body on one kernel level (the decoders follow it), restoring the widest afterwards.
class QuantizedLevels : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (cpu_simd_level() < SimdLevel::Avx2) GTEST_SKIP() << "quantised weights need an AVX2 CPU";
    if (GetParam() > cpu_simd_level()) GTEST_SKIP() << level_name(GetParam()) << " is not on this CPU";
    set_skinny_simd_level(GetParam());
  }
  void TearDown() override { set_skinny_simd_level(cpu_simd_level()); }
};

TEST_P(QuantizedLevels, DecodersGiveTheLoadTimeFloats) {
  for (QuantFormat f : kFormats) {
    const int64_t rows = 7, cols = 2 * unit(f) * 3;
    const Tensor bytes = random_blocks(f, rows, cols, 11);
    const QuantizedMatrix m = make_quantized_matrix(f, rows, cols, bytes);
    const auto expected = dequantized_at_load(f, bytes, rows, cols);
    std::vector<float> got(expected.size());
    dequantize_rows(m, 0, rows, got.data());
    ASSERT_EQ(std::memcmp(got.data(), expected.data(), sizeof(float) * got.size()), 0) << format_name(f);
    dequantize_rows(m, 3, 2, got.data());  // a slice of rows
    ASSERT_EQ(std::memcmp(got.data(), expected.data() + 3 * cols, sizeof(float) * 2 * cols), 0) << format_name(f);
  }
}

TEST_F(Quantized, CanKeepOnlyTheDecodedFormats) {
  for (QuantFormat f : kFormats) EXPECT_TRUE(can_keep_quantized(static_cast<uint32_t>(f))) << format_name(f);
  for (formats::GgmlType t : {formats::GgmlType::F32, formats::GgmlType::F16, formats::GgmlType::Q5_1,
                              formats::GgmlType::Q2_K, formats::GgmlType::Q3_K, formats::GgmlType::Q5_K})
    EXPECT_FALSE(can_keep_quantized(static_cast<uint32_t>(t)));
}

TEST_F(Quantized, ShapeAndSizeAreChecked) {
  const Tensor bytes = random_blocks(QuantFormat::Q8_0, 4, 64, 1);
  EXPECT_NO_THROW(make_quantized_matrix(QuantFormat::Q8_0, 4, 64, bytes));
  EXPECT_THROW(make_quantized_matrix(QuantFormat::Q8_0, 4, 48, bytes), Error);  // not whole blocks
  EXPECT_THROW(make_quantized_matrix(QuantFormat::Q8_0, 5, 64, bytes), Error);  // too few bytes
  EXPECT_THROW(make_quantized_matrix(QuantFormat::Q4_K, 4, 64, bytes), Error);
}

// Up to 8 rows: the same bits as skinny_linear over the load-time floats, for layers of one
// task and of several (fused tasks of 64 weight rows, or at the plain level decoded slices, split
// between threads once a layer has more than 262,144 weights: the 1000 x 320 case of the 32-weight
// formats and every 1000-row case of the 256-weight ones), with and without bias.
TEST_P(QuantizedLevels, FewRowsAreBitIdenticalToTheF32Kernel) {
  for (QuantFormat f : kFormats)
    for (int64_t out : {3, 130, 1000})
      for (bool with_bias : {false, true}) {
        const int64_t in = (unit(f) == 32 && out == 1000 ? 10 : 2) * unit(f);
        const Tensor bytes = random_blocks(f, out, in, 5);
        const QuantizedMatrix m = make_quantized_matrix(f, out, in, bytes);
        const auto w = dequantized_at_load(f, bytes, out, in);
        const auto b = random_vector(out, 6);
        for (int64_t rows = 1; rows <= kSkinnyMaxRows; ++rows) {
          const auto x = random_vector(rows * in, 7);
          std::vector<float> expected(rows * out), got(rows * out);
          skinny_linear(x.data(), rows, w.data(), with_bias ? b.data() : nullptr, in, out, Activation::None,
                        expected.data());
          quantized_linear(m, x.data(), rows, with_bias ? b.data() : nullptr, got.data());
          ASSERT_EQ(std::memcmp(got.data(), expected.data(), sizeof(float) * got.size()), 0)
              << format_name(f) << " out " << out << " rows " << rows;
        }
      }
}

INSTANTIATE_TEST_SUITE_P(Levels, QuantizedLevels, testing::all_simd_levels(), testing::simd_level_test_name);

// More rows (prefill) go through oneDNN on decoded slices: the f32 product up to rounding, for a
// layer wider than one slice and with a bias and an activation through Linear.
TEST_F(Quantized, ManyRowsMatchTheF32Product) {
  for (QuantFormat f : {QuantFormat::Q4_1, QuantFormat::Q6_K, QuantFormat::BF16}) {
    const int64_t in = unit(f) * (f == QuantFormat::Q6_K ? 4 : 32), out = 4500, rows = 19;
    const Tensor bytes = random_blocks(f, out, in, 8);
    const auto w = dequantized_at_load(f, bytes, out, in);
    const auto x = random_vector(rows * in, 9), b = random_vector(out, 10);
    Tensor bias = Tensor::empty(DType::F32, {out});
    std::memcpy(bias.f32(), b.data(), sizeof(float) * out);
    const Linear quantized(make_quantized_matrix(f, out, in, bytes), bias, Activation::Silu);
    std::vector<float> got(rows * out);
    quantized.forward(x.data(), rows, got.data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < out; ++n) {
        double s = b[n], magnitude = std::abs(b[n]);  // float32 sums err relative to the terms' size
        for (int64_t k = 0; k < in; ++k) {
          s += double(x[r * in + k]) * w[n * in + k];
          magnitude += std::abs(double(x[r * in + k]) * w[n * in + k]);
        }
        const double expected = s / (1.0 + std::exp(-s));
        ASSERT_NEAR(got[r * out + n], expected, 1e-4 + 1e-6 * magnitude) << format_name(f);
      }
  }
}

// Precision::BFloat16 on a block-quantised weight: the input rows are rounded to bf16; up to 8
// rows the decoded weights are used as they are (the decoding kernel), more rows (prefill) run
// oneDNN's bf16 matmul on decoded slices rounded to bf16 — three slices here, with a bias and
// an activation fused, rows across the 64-row chunks. Without oneDNN's bf16 matmul (forced
// off here as on an AVX2 CPU) every row count multiplies the decoded weights by rounded inputs.
void check_bf16_precision_on_q4_1(bool bf16_products) {
  SCOPED_TRACE(bf16_products ? "oneDNN bf16 products" : "f32 kernels");
  const QuantFormat f = QuantFormat::Q4_1;
  const int64_t in = 1024, out = 1100;
  const Tensor bytes = random_blocks(f, out, in, 12);
  const auto w = dequantized_at_load(f, bytes, out, in);
  const auto b = random_vector(out, 13);
  Tensor bias = Tensor::empty(DType::F32, {out});
  std::memcpy(bias.f32(), b.data(), sizeof(float) * out);
  const Linear linear(make_quantized_matrix(f, out, in, bytes), bias, Activation::Relu, Precision::BFloat16);
  auto x = random_vector(130 * in, 14);
  std::vector<float> xr(x.size()), wr(w.size());
  round_to_bf16(x.data(), x.size(), xr.data());
  round_to_bf16(w.data(), w.size(), wr.data());
  double worst_unrounded = 0;
  for (int64_t rows : {int64_t{1}, int64_t{8}, int64_t{9}, int64_t{64}, int64_t{130}}) {
    std::vector<float> y(rows * out);
    linear.forward(x.data(), rows, y.data());
    const std::vector<float>& weights = rows <= kSkinnyMaxRows || !bf16_products ? w : wr;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < out; ++n) {
        double s = b[n], exact = b[n], magnitude = std::abs(b[n]);
        for (int64_t k = 0; k < in; ++k) {
          s += double(xr[r * in + k]) * weights[n * in + k];
          exact += double(x[r * in + k]) * w[n * in + k];
          magnitude += std::abs(double(xr[r * in + k]) * weights[n * in + k]);
        }
        ASSERT_NEAR(y[r * out + n], std::max(s, 0.0), 1e-5 + 1e-6 * magnitude) << rows << " rows, " << r << "," << n;
        worst_unrounded = std::max(worst_unrounded, std::abs(y[r * out + n] - std::max(exact, 0.0)));
      }
  }
  EXPECT_GT(worst_unrounded, 1e-4);  // the rounding is really there
}

TEST_F(Quantized, Bf16PrecisionRoundsTheProductsInputs) {
  if (bf16_products_supported()) check_bf16_precision_on_q4_1(true);
  set_bf16_products_enabled(false);
  check_bf16_precision_on_q4_1(false);
  set_bf16_products_enabled(true);
}

// BF16 matrices are kept on every CPU (the decoding kernel widens them at every SIMD level);
// the block formats only where their AVX-512 or AVX2 decoders run.
TEST(QuantizedOnThisCpu, Bf16EverywhereBlockFormatsFromAvx2) {
  EXPECT_TRUE(can_keep_quantized(static_cast<uint32_t>(QuantFormat::BF16)));
  for (QuantFormat f : kFormats)
    EXPECT_EQ(can_keep_quantized(static_cast<uint32_t>(f)), f == QuantFormat::BF16 || cpu_simd_level() >= SimdLevel::Avx2)
        << format_name(f);
  const int64_t rows = 3, cols = 37;
  const Tensor bytes = random_blocks(QuantFormat::BF16, rows, cols, 5);
  const QuantizedMatrix m = make_quantized_matrix(QuantFormat::BF16, rows, cols, bytes);
  const auto expected = dequantized_at_load(QuantFormat::BF16, bytes, rows, cols);
  std::vector<float> got(expected.size());
  dequantize_rows(m, 0, rows, got.data());
  EXPECT_EQ(std::memcmp(got.data(), expected.data(), sizeof(float) * got.size()), 0);
}

// torch_dtype="bfloat16" rounds to nearest even, as torch's .to(torch.bfloat16); NaN stays NaN.
TEST(QuantizedOnThisCpu, Bf16RoundsToNearestEven) {
  std::vector<float> w = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f, 1e-40f, std::nanf(""), 3.0e38f};
  const Tensor t = Tensor::view(DType::F32, {2, 3}, w.data(), nullptr);
  const QuantizedMatrix m = to_bf16_matrix(t);
  const auto* bits = m.bytes.data_as<uint16_t>();
  EXPECT_EQ(bits[0], 0x3F80);  // a tie, to the even (lower) neighbour
  EXPECT_EQ(bits[1], 0x3F82);  // a tie, to the even (upper) neighbour
  EXPECT_EQ(bits[2], 0xC020);  // exact
  EXPECT_TRUE(std::isnan(bf16_decoded(bits[4])));
  std::vector<float> decoded(6), rounded(6);
  dequantize_rows(m, 0, 2, decoded.data());
  round_to_bf16(w.data(), w.size(), rounded.data());
  for (size_t i = 0; i < w.size(); ++i)
    if (!std::isnan(w[i])) EXPECT_EQ(decoded[i], rounded[i]) << i;
  EXPECT_TRUE(std::isnan(rounded[4]));
}

TEST_F(Quantized, WeightMapKeepsBothKinds) {
  formats::WeightMap weights;
  weights.insert("norm.weight", Tensor::zeros(DType::F32, {4}));
  weights.insert_quantized("proj.weight",
                           make_quantized_matrix(QuantFormat::Q8_0, 2, 32, random_blocks(QuantFormat::Q8_0, 2, 32, 1)));
  EXPECT_TRUE(weights.contains("proj.weight"));
  EXPECT_EQ(weights.size(), 2u);
  EXPECT_EQ(weights.names(), (std::vector<std::string>{"norm.weight", "proj.weight"}));
  ASSERT_NE(weights.quantized("proj.weight"), nullptr);
  EXPECT_EQ(weights.quantized("norm.weight"), nullptr);
  try {
    weights.at("proj.weight");
    FAIL() << "a quantised weight read as a Tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block-quantised"), std::string::npos);
  }
  weights.insert("proj.weight", Tensor::zeros(DType::F32, {2, 32}));  // replaces the quantised one
  EXPECT_EQ(weights.quantized("proj.weight"), nullptr);
  EXPECT_EQ(weights.size(), 2u);
}

}  // namespace
}  // namespace hfpipe::ops
