#include "formats/gguf_quants.h"

#include <cstring>

#include "core/error.h"
#include "formats/byte_view.h"
#include "formats/tensor_import.h"
#include "ops/quantized.h"

namespace hfpipe::formats {

namespace {

constexpr int64_t kQK = 32;    // weights per block of the legacy quants (Q4_0 ... Q8_0)
constexpr int64_t kQKK = 256;  // weights per super-block of the k-quants

float half_at(const uint8_t* p) { return f16_to_f32(load_u16le(p)); }

// Q4_0: f16 d, 16 bytes of nibbles; low nibbles are weights 0..15, high nibbles 16..31.
void dequantize_q4_0(const uint8_t* block, float* y) {
  const float d = half_at(block);
  const uint8_t* qs = block + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + kQK / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0 without the offset: y = d q + m.
void dequantize_q4_1(const uint8_t* block, float* y) {
  const float d = half_at(block), m = half_at(block + 2);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + kQK / 2] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Q5_0 / Q5_1: the fifth bit of weight j is bit j of a 32-bit little-endian word.
void dequantize_q5(const uint8_t* block, float* y, bool with_min) {
  const float d = half_at(block);
  const float m = with_min ? half_at(block + 2) : 0.f;
  const uint8_t* rest = block + (with_min ? 4 : 2);
  const uint32_t qh = load_u32le(rest);
  const uint8_t* qs = rest + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    if (with_min) {
      y[j] = d * static_cast<float>(lo) + m;
      y[j + kQK / 2] = d * static_cast<float>(hi) + m;
    } else {
      y[j] = d * static_cast<float>(lo - 16);
      y[j + kQK / 2] = d * static_cast<float>(hi - 16);
    }
  }
}

// Q8_0: f16 d, 32 signed bytes.
void dequantize_q8_0(const uint8_t* block, float* y) {
  const float d = half_at(block);
  for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(block[2 + j]));
}

// The 6-bit scales and mins of Q4_K / Q5_K's eight sub-blocks, packed into 12 bytes:
// bytes 0-3 hold scales 0-3 (low 6 bits) and the top bits of scales 4-7, bytes 4-7 the same
// for the mins, bytes 8-11 the low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high).
void k_scale_min(const uint8_t* packed, int sub, uint8_t* scale, uint8_t* min) {
  if (sub < 4) {
    *scale = packed[sub] & 0x3F;
    *min = packed[sub + 4] & 0x3F;
  } else {
    *scale = static_cast<uint8_t>((packed[sub + 4] & 0x0F) | ((packed[sub - 4] >> 2) & 0x30));
    *min = static_cast<uint8_t>((packed[sub + 4] >> 4) | ((packed[sub] >> 2) & 0x30));
  }
}

// Q4_K / Q5_K: f16 d, f16 dmin, 12 bytes of scales, [32 bytes of fifth bits,] 128 bytes of
// nibbles. Sub-block s (32 weights) takes the low nibbles of qs[32 (s/2) ...] for even s and
// the high nibbles for odd s; y = (d scale) q - (dmin min).
void dequantize_q45_k(const uint8_t* block, float* y, bool five_bits) {
  const float d = half_at(block), dmin = half_at(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qh = block + 16;
  const uint8_t* qs = block + (five_bits ? 48 : 16);
  for (int sub = 0; sub < 8; ++sub) {
    uint8_t sc, m;
    k_scale_min(scales, sub, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    const uint8_t* q = qs + 32 * (sub / 2);
    const int shift = 4 * (sub % 2);
    for (int l = 0; l < 32; ++l) {
      int value = (q[l] >> shift) & 0x0F;
      if (five_bits) value |= ((qh[l] >> sub) & 1) << 4;
      y[sub * 32 + l] = d1 * static_cast<float>(value) - m1;
    }
  }
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 signed 8-bit scales, f16 d.
// Weight i of the 128-weight half h: low nibble from ql[64 h + (i % 64)] (low nibble for
// i < 64, high above), high bits from qh[32 h + (i % 32)] at shift 2 (i / 32).
void dequantize_q6_k(const uint8_t* block, float* y) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = half_at(block + 208);
  for (int i = 0; i < kQKK; ++i) {
    const int half = i / 128, r = i % 128;
    const int low = (ql[64 * half + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (qh[32 * half + r % 32] >> (2 * (r / 32))) & 0x03;
    const float scale = d * static_cast<float>(scales[i / 16]);
    y[i] = scale * static_cast<float>(static_cast<int8_t>(low | (high << 4)) - 32);
  }
}

// Q2_K: 16 bytes of scales (low nibble scale, high nibble min), 64 bytes of 2-bit weights,
// f16 d, f16 dmin. Weight i of the 128-weight half h comes from qs[32 h + (i % 32)] at shift
// 2 ((i % 128) / 32); group i / 16 selects the scale.
void dequantize_q2_k(const uint8_t* block, float* y) {
  const uint8_t* scales = block;
  const uint8_t* qs = block + 16;
  const float d = half_at(block + 80), dmin = half_at(block + 82);
  for (int i = 0; i < kQKK; ++i) {
    const int half = i / 128, r = i % 128;
    const int q = (qs[32 * half + r % 32] >> (2 * (r / 32))) & 0x03;
    const uint8_t sc = scales[i / 16];
    const float dl = d * static_cast<float>(sc & 0x0F), ml = dmin * static_cast<float>(sc >> 4);
    y[i] = dl * static_cast<float>(q) - ml;
  }
}

// Q3_K: 32 bytes of high-bit masks, 64 bytes of 2-bit weights, 12 bytes of 6-bit scales
// (biased by 32), f16 d. A weight's value is its 2 bits minus 4 when its mask bit is clear.
void dequantize_q3_k(const uint8_t* block, float* y) {
  const uint8_t* hmask = block;
  const uint8_t* qs = block + 32;
  const uint8_t* packed = block + 96;
  const float d = half_at(block + 108);
  int scales[16];
  for (int s = 0; s < 16; ++s) {
    const int low = (packed[s % 8] >> (4 * (s / 8))) & 0x0F;
    const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 0x03;
    scales[s] = static_cast<int8_t>(static_cast<uint8_t>(low | (high << 4))) - 32;
  }
  for (int i = 0; i < kQKK; ++i) {
    const int half = i / 128, r = i % 128;
    const int low = (qs[32 * half + r % 32] >> (2 * (r / 32))) & 0x03;
    const int mask_bit = (hmask[i % 32] >> (i / 32)) & 1;
    const int q = low - (mask_bit ? 0 : 4);
    y[i] = (d * static_cast<float>(scales[i / 16])) * static_cast<float>(q);
  }
}

using BlockDecoder = void (*)(const uint8_t*, float*);

void for_each_block(const uint8_t* src, float* dst, int64_t count, int64_t block_size, size_t block_bytes,
                    BlockDecoder decode) {
  const int64_t blocks = count / block_size;
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b) decode(src + b * block_bytes, dst + b * block_size);
}

// The formats ops/quantized.h also decodes inside products: their block layout from there.
GgmlTypeTraits decodable(const char* name, ops::QuantFormat format) {
  return GgmlTypeTraits{name, ops::quant_block_size(format), ops::quant_block_bytes(format), true};
}

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32: return GgmlTypeTraits{"F32", 1, 4, true};
    case GgmlType::F16: return GgmlTypeTraits{"F16", 1, 2, true};
    case GgmlType::BF16: return decodable("BF16", ops::QuantFormat::BF16);
    case GgmlType::Q4_0: return decodable("Q4_0", ops::QuantFormat::Q4_0);
    case GgmlType::Q4_1: return decodable("Q4_1", ops::QuantFormat::Q4_1);
    case GgmlType::Q5_0: return decodable("Q5_0", ops::QuantFormat::Q5_0);
    case GgmlType::Q5_1: return GgmlTypeTraits{"Q5_1", kQK, 24, true};
    case GgmlType::Q8_0: return decodable("Q8_0", ops::QuantFormat::Q8_0);
    case GgmlType::Q8_1: return GgmlTypeTraits{"Q8_1", kQK, 36, false};
    case GgmlType::Q2_K: return GgmlTypeTraits{"Q2_K", kQKK, 84, true};
    case GgmlType::Q3_K: return GgmlTypeTraits{"Q3_K", kQKK, 110, true};
    case GgmlType::Q4_K: return decodable("Q4_K", ops::QuantFormat::Q4_K);
    case GgmlType::Q5_K: return GgmlTypeTraits{"Q5_K", kQKK, 176, true};
    case GgmlType::Q6_K: return decodable("Q6_K", ops::QuantFormat::Q6_K);
    case GgmlType::Q8_K: return GgmlTypeTraits{"Q8_K", kQKK, 292, false};
  }
  return std::nullopt;
}

void dequantize(GgmlType type, const uint8_t* src, float* dst, int64_t count) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  check(traits && traits->supported, ErrorKind::UnsupportedModel,
        std::string("GGUF tensor type ") + (traits ? traits->name : "?") + " cannot be dequantised");
  check(count % traits->block_size == 0, ErrorKind::CorruptFile,
        std::string("a ") + traits->name + " tensor's size is not a multiple of its block size");
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, sizeof(float) * count); return;
    case GgmlType::F16: convert_f16_to_f32(src, dst, static_cast<size_t>(count)); return;
    case GgmlType::BF16: convert_bf16_to_f32(src, dst, static_cast<size_t>(count)); return;
    case GgmlType::Q4_0: return for_each_block(src, dst, count, kQK, traits->block_bytes, dequantize_q4_0);
    case GgmlType::Q4_1: return for_each_block(src, dst, count, kQK, traits->block_bytes, dequantize_q4_1);
    case GgmlType::Q5_0:
      return for_each_block(src, dst, count, kQK, traits->block_bytes,
                            [](const uint8_t* b, float* y) { dequantize_q5(b, y, false); });
    case GgmlType::Q5_1:
      return for_each_block(src, dst, count, kQK, traits->block_bytes,
                            [](const uint8_t* b, float* y) { dequantize_q5(b, y, true); });
    case GgmlType::Q8_0: return for_each_block(src, dst, count, kQK, traits->block_bytes, dequantize_q8_0);
    case GgmlType::Q2_K: return for_each_block(src, dst, count, kQKK, traits->block_bytes, dequantize_q2_k);
    case GgmlType::Q3_K: return for_each_block(src, dst, count, kQKK, traits->block_bytes, dequantize_q3_k);
    case GgmlType::Q4_K:
      return for_each_block(src, dst, count, kQKK, traits->block_bytes,
                            [](const uint8_t* b, float* y) { dequantize_q45_k(b, y, false); });
    case GgmlType::Q5_K:
      return for_each_block(src, dst, count, kQKK, traits->block_bytes,
                            [](const uint8_t* b, float* y) { dequantize_q45_k(b, y, true); });
    case GgmlType::Q6_K: return for_each_block(src, dst, count, kQKK, traits->block_bytes, dequantize_q6_k);
    default: break;
  }
  fail(ErrorKind::Internal, "dequantize: unhandled GGUF type");
}

}  // namespace hfpipe::formats
