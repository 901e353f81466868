// Tests of the GGUF reader on hostile headers: the inputs the fuzz targets and the review of
// gguf.cpp found, built byte by byte (magic, version 3, counts, tensor infos, padding).
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "formats/gguf.h"
#include "hfpipe/errors.h"
#include "models/decoder.h"
#include "test_formats_helpers.h"

namespace hfpipe::formats {
namespace {

using testing::expect_error;
using testing::put_le;
using testing::view_of;

// A GGUF file with no metadata and one tensor "w" of ggml type `type` whose ggml dimensions
// (innermost first) are `dims`, at offset 0 of a 64-byte data section.
std::string one_tensor_gguf(const std::vector<uint64_t>& dims, uint32_t type) {
  std::string out = "GGUF";
  put_le(out, 3, 4), put_le(out, 1, 8), put_le(out, 0, 8);
  put_le(out, 1, 8), out += "w";
  put_le(out, dims.size(), 4);
  for (uint64_t d : dims) put_le(out, d, 8);
  put_le(out, type, 4), put_le(out, 0, 8);
  out.append((32 - out.size() % 32) % 32, '\0');
  return out + std::string(64, '\0');
}

constexpr uint32_t kF32 = 0;

TEST(FormatsGguf, ReadsASmallTensor) {
  const GgufFile file = GgufFile::parse(view_of(one_tensor_gguf({4, 2}, kF32)));
  ASSERT_EQ(file.tensors().size(), 1u);
  EXPECT_EQ(file.tensors()[0].shape, (Shape{2, 4}));
  EXPECT_EQ(file.tensors()[0].nbytes, 32u);
}

// 2^40 x 2^22 F32 elements need 2^64 bytes: the byte count wrapped to 0, passed the range
// check, and the tensor viewed 2^62 floats of a 64-byte buffer.
TEST(FormatsGguf, RejectsAByteCountThatWraps) {
  expect_error([] { GgufFile::parse(view_of(one_tensor_gguf({uint64_t{1} << 40, uint64_t{1} << 22}, kF32))); },
               ErrorKind::CorruptFile, "more bytes than 64 bits");
}

TEST(FormatsGguf, RejectsAnElementCountThatOverflows) {
  const uint64_t big = uint64_t{1} << 40;
  expect_error([&] { GgufFile::parse(view_of(one_tensor_gguf({big, big, big, big}, kF32))); },
               ErrorKind::CorruptFile, "more elements than 64 bits");
}

TEST(FormatsGguf, RejectsATensorPastTheEnd) {
  expect_error([] { GgufFile::parse(view_of(one_tensor_gguf({64, 2}, kF32))); }, ErrorKind::CorruptFile,
               "past the end");
}

}  // namespace
}  // namespace hfpipe::formats

namespace hfpipe::formats {
namespace {

// Resident KiB of the process's mappings of `path` (/proc/self/smaps).
int64_t resident_kib_of(const std::string& path) {
  std::ifstream smaps("/proc/self/smaps");
  int64_t kib = 0;
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < line.find(' '))
      inside = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
    else if (inside && line.rfind("Rss:", 0) == 0)
      kib += std::stoll(line.substr(4));
  }
  return kib;
}

// The header (a real file's tokenizer vocabulary and merges: megabytes) is parsed into the
// metadata and never read again, so open() gives its pages back instead of keeping them
// resident for the model's lifetime.
TEST(FormatsGguf, OpenGivesTheParsedHeaderPagesBack) {
  const std::string big(2 << 20, 'x');
  std::string out = "GGUF";
  put_le(out, 3, 4), put_le(out, 1, 8), put_le(out, 1, 8);
  put_le(out, 4, 8), out += "big.";
  put_le(out, 8, 4), put_le(out, big.size(), 8), out += big;  // type 8: string
  put_le(out, 1, 8), out += "w";
  put_le(out, 1, 4), put_le(out, 8, 8), put_le(out, kF32, 4), put_le(out, 0, 8);
  out.append((32 - out.size() % 32) % 32, '\0');
  out += std::string(32, '\0');
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "hfpipe_gguf_header_pages.gguf").string();
  std::ofstream(path, std::ios::binary) << out;
  const GgufFile file = GgufFile::open(path);
  ASSERT_EQ(file.metadata()["big."].get<std::string>().size(), big.size());
  EXPECT_LT(resident_kib_of(path), 256);  // the 2 MiB string was read through the mapping
  std::remove(path.c_str());
}

}  // namespace
}  // namespace hfpipe::formats

namespace hfpipe::models {
namespace {

// The GGUF llama query / key un-permutation, done in place along the permutation's cycles,
// against the direct definition (a second matrix, as transformers' LlamaTensorProcessor builds
// it): out row (h, a, b) = in row (h, b, a) for rotary half a, index b < half.
TEST(GgufLlamaPermutation, InPlaceMatchesTheDirectDefinition) {
  for (const auto& [heads, half, cols] : {std::tuple{1, 1, 3}, {3, 4, 5}, {2, 32, 7}, {4, 5, 1}}) {
    const int64_t rows = heads * 2 * half;
    Tensor w = Tensor::empty(DType::F32, {rows, cols});
    for (int64_t i = 0; i < rows * cols; ++i) w.f32()[i] = static_cast<float>(i);
    std::vector<float> want(static_cast<size_t>(rows * cols));
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t b = 0; b < half; ++b)
          for (int64_t c = 0; c < cols; ++c)
            want[((h * 2 + a) * half + b) * cols + c] = w.f32()[((h * half + b) * 2 + a) * cols + c];
    reverse_permute_in_place(w, heads);
    for (int64_t i = 0; i < rows * cols; ++i)
      ASSERT_EQ(w.f32()[i], want[i]) << heads << " heads, half " << half << ", element " << i;
  }
}

TEST(GgufLlamaPermutation, RowsNotAMultipleOfTwoHeadsAreAnError) {
  Tensor w = Tensor::zeros(DType::F32, {6, 2});
  EXPECT_THROW(reverse_permute_in_place(w, 4), Error);
}

}  // namespace
}  // namespace hfpipe::models
