// ggml's tensor types as GGUF files store them: plain floats and the block-quantised
// formats llama.cpp writes. Each quantised type packs a fixed number of weights (the block
// size: 32, or 256 for the k-quants) into a fixed number of bytes, with f16 scales inside the
// block. hfpipe dequantises to f32 once at load (DESIGN: weights in the compute type).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace hfpipe::formats {

// Values are ggml's enum ggml_type, as written in the file.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct GgmlTypeTraits {
  const char* name;
  int64_t block_size;  // weights per block
  size_t block_bytes;  // bytes per block
  bool supported;      // hfpipe can dequantise it
};

// The traits of a type id read from a file; nullopt for ids ggml does not define (or that
// hfpipe does not know at all — those are reported by number).
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type);

// Dequantises `count` weights (a multiple of the type's block size) from `src` (unaligned,
// `count / block_size * block_bytes` bytes) into `dst`. Arithmetic follows gguf-py's
// dequantize (the reference transformers loads GGUF with) so the results are bit-identical.
void dequantize(GgmlType type, const uint8_t* src, float* dst, int64_t count);

}  // namespace hfpipe::formats
