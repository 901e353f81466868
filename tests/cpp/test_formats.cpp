// Tests of the weight-file layer: float conversions, safetensors validation, WeightMap and
// checkpoint discovery (single file and sharded). PyTorch .bin tests: test_formats_pytorch.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/mapped_file.h"
#include "formats/safetensors.h"
#include "formats/tensor_import.h"
#include "formats/weights.h"
#include "test_formats_helpers.h"

namespace hfpipe::formats {
namespace {

using testing::expect_error;
using testing::raw_bytes;
using testing::safetensors_file;
using testing::StTensor;
using testing::TempDir;
using testing::view_of;
using testing::write_file;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// ---- conversions ----

// binary16 by its definition, computed with ldexp rather than bit manipulation.
float f16_reference(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31) return mantissa ? NAN : sign * INFINITY;
  return sign * std::ldexp(static_cast<float>(1024 + mantissa), exponent - 25);
}

TEST(FormatsConvert, F16MatchesDefinitionForAllBitPatterns) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> fast(65536), portable(65536);
  convert_f16_to_f32(reinterpret_cast<const uint8_t*>(all.data()), fast.data(), all.size());
  convert_f16_to_f32_portable(reinterpret_cast<const uint8_t*>(all.data()), portable.data(), all.size());
  for (uint32_t i = 0; i < 65536; ++i) {
    const float reference = f16_reference(static_cast<uint16_t>(i));
    // The SIMD (F16C) and portable paths agree bit for bit, NaN payloads included.
    ASSERT_EQ(bits_of(fast[i]), bits_of(portable[i])) << "half bits 0x" << std::hex << i;
    if (std::isnan(reference)) {
      ASSERT_TRUE(std::isnan(portable[i])) << std::hex << i;
      ASSERT_EQ(bits_of(portable[i]) & 0x003fe000u, (i & 0x1ffu) << 13) << "NaN payload of 0x" << std::hex << i;
      ASSERT_EQ(bits_of(portable[i]) >> 31, i >> 15) << "NaN sign of 0x" << std::hex << i;
    } else {
      ASSERT_EQ(bits_of(portable[i]), bits_of(reference)) << "half bits 0x" << std::hex << i;
    }
  }
}

TEST(FormatsConvert, F16SpecialValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), 1023 * 0x1p-24f);  // largest subnormal
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)) && f16_to_f32(0x7c00) > 0);
  EXPECT_TRUE(std::isinf(f16_to_f32(0xfc00)) && f16_to_f32(0xfc00) < 0);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
}

TEST(FormatsConvert, Bf16IsTheUpperHalfOfF32) {
  for (float f : {1.0f, -3.5f, 0x1p-130f, INFINITY, -0.0f}) {
    const uint16_t upper = static_cast<uint16_t>(bits_of(f) >> 16);
    EXPECT_EQ(bits_of(bf16_to_f32(upper)), bits_of(f) & 0xffff0000u);
  }
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
}

// ---- safetensors ----

TEST(FormatsSafetensors, LoadsEveryDtypeAndViewsF32InPlace) {
  const std::vector<float> f32 = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> i64 = {-1, 0, 1ll << 40};
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x0001};  // 1, -2, 2^-24
  const std::vector<uint16_t> bf16 = {0x3f80, 0xc040};          // 1, -3
  const std::vector<double> f64 = {0.25, -1e300};
  const std::vector<uint8_t> flags = {1, 0, 1};
  const std::string file = safetensors_file({{"w", "F32", {2, 3}, raw_bytes(f32)},
                                             {"ids", "I64", {3}, raw_bytes(i64)},
                                             {"h", "F16", {3}, raw_bytes(f16)},
                                             {"b", "BF16", {2}, raw_bytes(bf16)},
                                             {"d", "F64", {2}, raw_bytes(f64)},
                                             {"mask", "BOOL", {3}, raw_bytes(flags)},
                                             {"scalar", "F32", {}, raw_bytes(std::vector<float>{7})},
                                             {"empty", "F32", {0, 4}, ""}},
                                            R"({"format":"pt"})");
  const ByteView bytes = view_of(file);
  const WeightMap w = parse_safetensors(bytes);
  ASSERT_EQ(w.size(), 8u);
  EXPECT_EQ(w.names().front(), "b");  // sorted

  const Tensor& t = w.at("w");
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.f32()[5], 6.0f);
  EXPECT_TRUE(testing::points_into(t.raw(), bytes));  // zero copy
  EXPECT_TRUE(testing::points_into(w.at("ids").raw(), bytes));
  EXPECT_FALSE(testing::points_into(w.at("h").raw(), bytes));  // converted

  EXPECT_EQ(w.at("ids").dtype(), DType::I64);
  EXPECT_EQ(w.at("ids").data_as<int64_t>()[2], 1ll << 40);
  EXPECT_EQ(w.at("h").dtype(), DType::F32);
  EXPECT_EQ(w.at("h").f32()[1], -2.0f);
  EXPECT_EQ(w.at("h").f32()[2], 0x1p-24f);
  EXPECT_EQ(w.at("b").f32()[1], -3.0f);
  EXPECT_EQ(w.at("d").f32()[0], 0.25f);
  EXPECT_TRUE(std::isinf(w.at("d").f32()[1]));
  EXPECT_EQ(w.at("mask").dtype(), DType::Bool);
  EXPECT_EQ(w.at("scalar").numel(), 1);
  EXPECT_EQ(w.at("scalar").f32()[0], 7.0f);
  EXPECT_EQ(w.at("empty").numel(), 0);
}

TEST(FormatsSafetensors, UnalignedF32IsCopied) {
  const std::vector<float> f32 = {1.5f, -2.5f};
  const std::string file = safetensors_file({{"pad", "U8", {1}, "x"}, {"w", "F32", {2}, raw_bytes(f32)}});
  const ByteView bytes = view_of(file);
  const WeightMap w = parse_safetensors(bytes);
  const Tensor& t = w.at("w");
  EXPECT_FALSE(testing::points_into(t.raw(), bytes));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 4, 0u);
  EXPECT_EQ(t.f32()[0], 1.5f);
  EXPECT_EQ(t.f32()[1], -2.5f);
}

TEST(FormatsSafetensors, LoadsFromDiskAndOutlivesTheMapping) {
  TempDir dir;
  write_file(dir / "m.safetensors", safetensors_file({{"w", "F32", {2}, raw_bytes(std::vector<float>{3, 4})}}));
  Tensor kept;
  {
    const WeightMap w = load_safetensors(dir / "m.safetensors");
    kept = w.at("w");
  }
  EXPECT_EQ(kept.f32()[1], 4.0f);  // the view keeps the mapping alive
}

// What decoder_linear asks before packing a weight into panels: inside a live map or not.
TEST(MappedFileTest, IsMappedOnlyInsideALiveMap) {
  TempDir dir;
  write_file(dir / "f.bin", std::string(10000, 'x'));
  std::vector<char> heap(100);
  const unsigned char* data = nullptr;
  size_t size = 0;
  {
    const auto file = MappedFile::open(dir / "f.bin");
    data = file->data();
    size = file->size();
    EXPECT_TRUE(MappedFile::is_mapped(file->data(), file->size()));
    EXPECT_TRUE(MappedFile::is_mapped(file->data() + 100, 50));
    EXPECT_FALSE(MappedFile::is_mapped(file->data(), file->size() + 1));  // runs past the end
    EXPECT_FALSE(MappedFile::is_mapped(file->data(), 0));
    EXPECT_FALSE(MappedFile::is_mapped(heap.data(), heap.size()));
  }
  // Unmapped with the last reference: the range is not live any more.
  EXPECT_FALSE(MappedFile::is_mapped(data, size));
}

std::string two_floats_header(const std::string& offsets, const std::string& shape = "[2]",
                              const std::string& dtype = "F32") {
  return R"({"w":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
}

TEST(FormatsSafetensors, RejectsOffsetsOutsideTheFile) {
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[0,1000]", "[250]"), "12345678"))); },
               ErrorKind::CorruptFile, "outside the data buffer");
}

TEST(FormatsSafetensors, RejectsSizeMismatch) {
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[0,4]"), "12345678"))); },
               ErrorKind::CorruptFile, "needs 8");
}

TEST(FormatsSafetensors, RejectsBeginAfterEnd) {
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[8,0]"), "12345678"))); },
               ErrorKind::CorruptFile, "outside");
}

TEST(FormatsSafetensors, RejectsOverlappingTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_error([&] { parse_safetensors(view_of(safetensors_file(header, std::string(12, 'x')))); },
               ErrorKind::CorruptFile, "overlap");
}

TEST(FormatsSafetensors, RejectsTruncatedFiles) {
  const std::string good = safetensors_file({{"w", "F32", {4}, raw_bytes(std::vector<float>{1, 2, 3, 4})}});
  expect_error([&] { parse_safetensors(view_of(good.substr(0, good.size() - 3))); }, ErrorKind::CorruptFile, "outside");
  expect_error([&] { parse_safetensors(view_of(good.substr(0, 20))); }, ErrorKind::CorruptFile, "truncated");
  for (size_t n = 0; n < 8; ++n)
    expect_error([&] { parse_safetensors(view_of(good.substr(0, n))); }, ErrorKind::CorruptFile, "too small");
}

TEST(FormatsSafetensors, RejectsBadJson) {
  expect_error([] { parse_safetensors(view_of(safetensors_file(R"({"w": {"dtype": )", ""))); }, ErrorKind::CorruptFile,
               "not valid JSON");
  expect_error([] { parse_safetensors(view_of(safetensors_file("[1, 2]", ""))); }, ErrorKind::CorruptFile,
               "not a JSON object");
  expect_error([] { parse_safetensors(view_of(safetensors_file(R"({"w": 3})", ""))); }, ErrorKind::CorruptFile,
               "not an object");
  expect_error([] { parse_safetensors(view_of(safetensors_file(R"({"w": {"dtype": "F32"}})", ""))); },
               ErrorKind::CorruptFile, "lacks");
  // Deep nesting must fail cleanly, not exhaust the stack.
  expect_error([] { parse_safetensors(view_of(safetensors_file(std::string(100000, '['), ""))); },
               ErrorKind::CorruptFile, "JSON");
}

TEST(FormatsSafetensors, RejectsHugeHeaderLength) {
  for (uint64_t len : {uint64_t{1} << 63, uint64_t{kMaxSafetensorsHeader} + 1, ~uint64_t{0}}) {
    std::string file;
    testing::put_le(file, len, 8);
    file += "{}";
    expect_error([&] { parse_safetensors(view_of(file)); }, ErrorKind::CorruptFile, "header length");
  }
}

TEST(FormatsSafetensors, RejectsBadShapes) {
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[0,8]", "[-2]"), "12345678"))); },
               ErrorKind::CorruptFile, "shape entry");
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[0,8]", "[2.0]"), "12345678"))); },
               ErrorKind::CorruptFile, "shape entry");
  expect_error(
      [] {
        parse_safetensors(
            view_of(safetensors_file(two_floats_header("[0,8]", "[4611686018427387904,4611686018427387904]"), "12345678")));
      },
      ErrorKind::CorruptFile, "impossibly large");
}

TEST(FormatsSafetensors, DtypesUnsupportedOrUnknown) {
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[0,2]", "[2]", "F8_E4M3"), "12"))); },
               ErrorKind::UnsupportedModel, "tensor 'w'");
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[0,2]", "[2]", "F8_E4M3"), "12"))); },
               ErrorKind::UnsupportedModel, "F8_E4M3");
  expect_error([] { parse_safetensors(view_of(safetensors_file(two_floats_header("[0,8]", "[2]", "Q4"), "12345678"))); },
               ErrorKind::CorruptFile, "unknown dtype 'Q4'");
}

TEST(FormatsSafetensors, MetadataAndDuplicates) {
  const std::string data = raw_bytes(std::vector<float>{1, 2});
  EXPECT_EQ(parse_safetensors(view_of(safetensors_file({{"w", "F32", {2}, data}}, R"({"a":"b"})"))).size(), 1u);
  expect_error([&] { parse_safetensors(view_of(safetensors_file({{"w", "F32", {2}, data}}, R"({"a":1})"))); },
               ErrorKind::CorruptFile, "__metadata__");
  const std::string dup = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_error([&] { parse_safetensors(view_of(safetensors_file(dup, data))); }, ErrorKind::CorruptFile, "twice");
}

// ---- WeightMap and checkpoints ----

TEST(FormatsWeightMap, AtNamesMerge) {
  WeightMap a, b;
  a.insert("x", Tensor::zeros(DType::F32, {1}));
  a.insert("a", Tensor::zeros(DType::F32, {1}));
  b.insert("y", Tensor::zeros(DType::F32, {1}));
  expect_error([&] { a.at("nope"); }, ErrorKind::NotFound, "'nope'");
  a.merge(std::move(b));
  EXPECT_EQ(a.names(), (std::vector<std::string>{"a", "x", "y"}));
  WeightMap c;
  c.insert("x", Tensor::zeros(DType::F32, {1}));
  expect_error([&] { a.merge(std::move(c)); }, ErrorKind::CorruptFile, "'x'");
}

std::string one_tensor(const std::string& name, float value) {
  return safetensors_file({{name, "F32", {1}, raw_bytes(std::vector<float>{value})}});
}

TEST(FormatsCheckpoint, NotFoundListsWhatWasLookedFor) {
  TempDir dir;
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::NotFound, "pytorch_model.bin.index.json");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::NotFound, dir.path().string());
  expect_error([&] { load_checkpoint(dir / "missing"); }, ErrorKind::NotFound, "does not exist");
}

TEST(FormatsCheckpoint, PrefersSingleSafetensors) {
  TempDir dir;
  write_file(dir / "model.safetensors", one_tensor("single", 1));
  write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"other": "x.safetensors"}})");
  write_file(dir / "pytorch_model.bin", "not even a zip");
  EXPECT_TRUE(load_checkpoint(dir.path()).contains("single"));
}

TEST(FormatsCheckpoint, LoadsShardedSafetensors) {
  TempDir dir;
  write_file(dir / "a.safetensors", safetensors_file({{"x", "F32", {1}, raw_bytes(std::vector<float>{1})},
                                                     {"y", "F32", {1}, raw_bytes(std::vector<float>{2})}}));
  write_file(dir / "b.safetensors", one_tensor("z", 3));
  write_file(dir / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 12}, "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}})");
  write_file(dir / "pytorch_model.bin", "ignored: safetensors shards come first");
  const WeightMap w = load_checkpoint(dir.path());
  EXPECT_EQ(w.names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(w.at("z").f32()[0], 3.0f);
}

TEST(FormatsCheckpoint, ShardErrors) {
  TempDir dir;
  write_file(dir / "a.safetensors", one_tensor("x", 1));
  const auto index = dir / "model.safetensors.index.json";
  write_file(index, R"({"weight_map": {"x": "a.safetensors", "y": "gone.safetensors"}})");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::NotFound, "'gone.safetensors'");
  write_file(index, R"({"weight_map": {"x": "../a.safetensors"}})");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::CorruptFile, "not a plain file name");
  write_file(index, R"({"weight_map": {"x": "/etc/passwd"}})");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::CorruptFile, "not a plain file name");
  write_file(index, R"({"weight_map": {"x": "a.safetensors", "w": "a.safetensors"}})");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::CorruptFile, "'w'");
  write_file(index, R"({"weight_map": {"x": 3}})");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::CorruptFile, "not a file name");
  write_file(index, R"({"no_map": {}})");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::CorruptFile, "weight_map");
  write_file(dir / "b.safetensors", one_tensor("x", 2));
  write_file(index, R"({"weight_map": {"x": "a.safetensors", "x2": "b.safetensors"}})");
  expect_error([&] { load_checkpoint(dir.path()); }, ErrorKind::CorruptFile, "more than one weight file");
}

}  // namespace
}  // namespace hfpipe::formats
