// Seeded random block-quantised weights, shared by the quantised-kernel tests and
// bench/bench_ops_main.cpp.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "ops/quantized.h"

namespace hfpipe::testing {

// An f16 bit pattern of a finite value of moderate size (sign random): random bytes would hold
// NaNs and infinities, which no real file's scales do.
inline uint16_t random_scale(std::mt19937& rng) {
  const uint16_t exponent = static_cast<uint16_t>(8 + rng() % 8);  // 2^-7 .. 2^0
  return static_cast<uint16_t>((rng() & 1u) << 15 | exponent << 10 | (rng() & 0x3FF));
}

// `rows` rows of random blocks: random bytes, with the f16 fields of each block replaced by
// finite scales (subnormal ones included, in the first block of each row).
inline Tensor random_blocks(ops::QuantFormat f, int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  const size_t block_bytes = ops::quant_block_bytes(f);
  const int64_t blocks = rows * (cols / ops::quant_block_size(f));
  Tensor t = Tensor::empty(DType::U8, {rows, static_cast<int64_t>(blocks / rows * block_bytes)});
  uint8_t* p = t.data_as<uint8_t>();
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
  if (f == ops::QuantFormat::BF16) {  // finite values of moderate size, every 7th subnormal
    for (size_t i = 0; i < t.nbytes() / 2; ++i) {
      const uint16_t exponent = i % 7 ? static_cast<uint16_t>(120 + rng() % 12) : 0;
      const uint16_t v = static_cast<uint16_t>((rng() & 1u) << 15 | exponent << 7 | (rng() & 0x7F));
      std::memcpy(p + 2 * i, &v, 2);
    }
    return t;
  }
  // Where each format keeps its f16 scales (d, and m / dmin).
  std::vector<size_t> halves;
  switch (f) {
    case ops::QuantFormat::Q4_0:
    case ops::QuantFormat::Q5_0:
    case ops::QuantFormat::Q8_0: halves = {0}; break;
    case ops::QuantFormat::Q4_1:
    case ops::QuantFormat::Q4_K: halves = {0, 2}; break;
    case ops::QuantFormat::Q6_K: halves = {208}; break;
    case ops::QuantFormat::BF16: break;
  }
  for (int64_t b = 0; b < blocks; ++b)
    for (size_t at : halves) {
      uint16_t h = random_scale(rng);
      if (b % (blocks / rows) == 0) h = static_cast<uint16_t>(h & 0x83FF);  // exponent 0: subnormal
      std::memcpy(p + b * block_bytes + at, &h, 2);
    }
  return t;
}

}  // namespace hfpipe::testing
