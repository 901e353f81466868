#include "ops/amx_bf16.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/quantized.h"

namespace hfpipe::ops {

namespace {

constexpr int64_t kTile = 16;           // rows of a tile, and f32 columns of a result tile
constexpr int64_t kStep = 32;           // bf16 input columns a tile product consumes
constexpr int64_t kTileValues = 512;    // bf16 values in a 16 x 32 tile
constexpr int64_t kBlock = 2 * kTile;   // rows and columns of the 2 x 2 tiles computed together
constexpr int kCacheLine = 64;

bool cpu_has_amx_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = edx & (1u << 22), amx_tile = edx & (1u << 24);
  if (!amx_bf16 || !amx_tile) return false;
  // Linux hands out the 8 KB of tile state only to processes that ask (since 5.16).
  constexpr long kReqXcompPerm = 0x1023, kXfeatureTileData = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureTileData) == 0;
}

// The tile register file's shape: every tile 16 rows of 64 bytes (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

}  // namespace

bool amx_bf16_available() {
  static const bool available = cpu_has_amx_bf16();
  return available;
}

namespace {
std::atomic<bool>& amx_switch() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("HFPIPE_AMX");
    return !(env && std::string(env) == "0");
  }()};
  return on;
}
}  // namespace

bool amx_bf16_enabled() { return amx_bf16_available() && amx_switch().load(std::memory_order_relaxed); }

void set_amx_bf16_enabled(bool enabled) { amx_switch().store(enabled, std::memory_order_relaxed); }

bool amx_bf16_fits(int64_t out, int64_t in) { return out > 0 && in > 0 && in % kStep == 0; }

int64_t amx_bf16_packed_values(int64_t out, int64_t in) { return (out + kBlock - 1) / kBlock * kBlock * in; }

Tensor amx_bf16_padded_bias(const float* bias, int64_t out) {
  Tensor padded = Tensor::empty(DType::F32, {(out + kBlock - 1) / kBlock * kBlock});
  std::fill_n(padded.f32(), padded.numel(), 0.f);
  std::copy_n(bias, out, padded.f32());
  return padded;
}

AmxWeight pack_amx_bf16(const float* weight, int64_t out, int64_t in) {
  check(amx_bf16_fits(out, in), ErrorKind::Internal, "pack_amx_bf16: the input width must be a multiple of 32");
  AmxWeight w{Tensor::empty(DType::U8, {amx_bf16_packed_values(out, in) * 2}), out, in};
  auto* packed = w.packed.data_as<uint16_t>();
  const int64_t blocks = amx_bf16_packed_values(out, in) / in / kTile;
#pragma omp parallel
  {
    std::vector<uint16_t> bits(static_cast<size_t>(kTile * in));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t rows = std::clamp<int64_t>(out - b * kTile, 0, kTile);
      if (rows == 0) {  // the second half of the last 32-row block
        std::memset(packed + b * kTile * in, 0, static_cast<size_t>(kTile * in) * 2);
        continue;
      }
      round_to_bf16_bits(weight + b * kTile * in, rows * in, bits.data());
      pack_amx_bf16_bits(bits.data(), rows, in, packed + b * kTile * in);
    }
  }
  return w;
}

#pragma GCC push_options
#pragma GCC target("amx-tile,amx-bf16,avx512f")
#ifdef __clang__  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("amx-tile,amx-bf16,avx512f"))), apply_to = function)
#endif
#ifndef __clang__  // GCC 12's AVX-512 unpack intrinsics start from _mm512_undefined: spurious warnings
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace {

// Rows r[0..15] of 16 32-bit values become columns: r[i] ends up holding element i of each.
void transpose_16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
  }
}

}  // namespace

void pack_amx_bf16_bits(const uint16_t* weight, int64_t rows, int64_t in, uint16_t* packed) {
  check(amx_bf16_fits(rows, in), ErrorKind::Internal, "pack_amx_bf16_bits: the input width must be a multiple of 32");
  // Column pairs move as one 32-bit value: pair j of weight row n goes to row j % 16 of the
  // tile of step j / 16, column n % 16 — a 16 x 16 transpose of pairs per tile.
  const int64_t steps = in / kStep;
  for (int64_t first = 0; first < rows; first += kTile) {
    uint16_t* block = packed + first * in;
    const int64_t count = std::min(kTile, rows - first);
    for (int64_t s = 0; s < steps; ++s) {
      __m512i r[16];
      for (int64_t n = 0; n < kTile; ++n)
        r[n] = n < count ? _mm512_loadu_si512(weight + (first + n) * in + s * kStep) : _mm512_setzero_si512();
      transpose_16x16(r);
      for (int64_t p = 0; p < kTile; ++p) _mm512_storeu_si512(block + s * kTileValues + p * 2 * kTile, r[p]);
    }
  }
}

namespace {

// Result tiles: 0 = (rows 0-15, columns 0-15), 1 = (0-15, 16-31), 2 = (16-31, 0-15),
// 3 = (16-31, 16-31); input tiles 4, 5 (rows 0-15, 16-31); weight tiles 6, 7 (columns 0-15, 16-31).
void load_tile_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kTile;
    config.bytes_per_row[t] = 64;
  }
  _tile_loadconfig(&config);
}

// A function of its own, as load_tile_config is: clang outlines an OpenMP parallel region into a
// function without this file's target attributes, where the tile intrinsics cannot be emitted.
void release_tiles() { _tile_release(); }

// The 32 x 32 results of tiles 0-3 into y (rows_left x columns_left valid), directly when the
// block is whole, through `scratch` when it overhangs y's last rows or columns.
void store_block(float* y, int64_t ld, int64_t rows_left, int64_t columns_left, float* scratch) {
  if (rows_left >= kBlock && columns_left >= kBlock) {
    _tile_stored(0, y, ld * 4);
    _tile_stored(1, y + kTile, ld * 4);
    _tile_stored(2, y + kTile * ld, ld * 4);
    _tile_stored(3, y + kTile * ld + kTile, ld * 4);
    return;
  }
  _tile_stored(0, scratch, kBlock * 4);
  _tile_stored(1, scratch + kTile, kBlock * 4);
  _tile_stored(2, scratch + kTile * kBlock, kBlock * 4);
  _tile_stored(3, scratch + kTile * kBlock + kTile, kBlock * 4);
  const int64_t rows = std::min(rows_left, kBlock), columns = std::min(columns_left, kBlock);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * ld, scratch + r * kBlock, static_cast<size_t>(columns) * 4);
}

// 32 plain rows of x (row stride in) times 32 packed rows of W (the tiles from `weights` on,
// as the right operand), plus the block's 32 bias values when `bias` is not null, left in tiles
// 0-3. Prefetches `lines_per_step` cache lines of the next block's weights from `prefetch` on
// at each step, so that they arrive while these tiles multiply. (matmul_plain_weights calls
// it with the roles swapped: W's plain rows left, x's packed tiles right.)
void multiply_block(const uint16_t* x, int64_t in, const uint16_t* weights, int64_t steps, const float* bias,
                    const char* prefetch, int64_t lines_per_step) {
  if (bias) {  // every row of a result tile starts as the bias (a row stride of 0 repeats it)
    _tile_loadd(0, bias, 0);
    _tile_loadd(1, bias + kTile, 0);
    _tile_loadd(2, bias, 0);
    _tile_loadd(3, bias + kTile, 0);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  const uint16_t* upper = x + kTile * in;
  const uint16_t* right = weights + steps * kTileValues;
  const int64_t stride = in * 2;
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t l = 0; l < lines_per_step; ++l) _mm_prefetch(prefetch + (s * lines_per_step + l) * kCacheLine, _MM_HINT_T0);
    _tile_loadd(4, x + s * kStep, stride);
    _tile_loadd(6, weights + s * kTileValues, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(5, upper + s * kStep, stride);
    _tile_dpbf16ps(2, 5, 6);
    _tile_loadd(7, right + s * kTileValues, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(3, 5, 7);
  }
}

// What both products share: 32-row weight blocks of block_values values each, the outer loop
// (split between OpenMP threads), and 32-row input blocks, the inner one. Calls
// block(c, b, next, lines_per_step, scratch) for weight block c and input block b, where
// `next` is where the lines to prefetch during that product start: the next weight block's,
// spread over this block's steps and input blocks (past the last block, its own cached lines:
// harmless, and no branch).
template <class Block>
void for_each_block(const uint16_t* weights, int64_t weight_blocks, int64_t row_blocks, int64_t in, bool threaded,
                    Block block) {
  const int64_t steps = in / kStep, block_values = kBlock * in;
  const int64_t lines_per_step = (block_values * 2 / kCacheLine + steps * row_blocks - 1) / (steps * row_blocks);
#pragma omp parallel if (threaded && weight_blocks > 1)
  {
    alignas(64) float scratch[kBlock * kBlock];
    load_tile_config();
#pragma omp for schedule(static)
    for (int64_t c = 0; c < weight_blocks; ++c) {
      const uint16_t* current = weights + c * block_values;
      const auto* next = reinterpret_cast<const char*>(c + 1 == weight_blocks ? current : current + block_values);
      for (int64_t b = 0; b < row_blocks; ++b)
        block(c, b, next + b * steps * lines_per_step * kCacheLine, lines_per_step, scratch);
    }
    release_tiles();
  }
}

// y's first `valid` rows from x's `rows` rows (a multiple of 32, valid <= rows), one 32-column
// block of the packed W per iteration.
void matmul_rows(const uint16_t* x, int64_t rows, int64_t valid, const uint16_t* packed, int64_t out, int64_t in,
                 const float* bias, float* y, int64_t ldy) {
  const int64_t steps = in / kStep;
  for_each_block(packed, (out + kBlock - 1) / kBlock, rows / kBlock, in, rows * in * out > (int64_t{1} << 20),
                 [&](int64_t c, int64_t b, const char* next, int64_t lines, float* scratch) {
                   multiply_block(x + b * kBlock * in, in, packed + c * kBlock * in, steps,
                                  bias ? bias + c * kBlock : nullptr, next, lines);
                   store_block(y + b * kBlock * ldy + c * kBlock, ldy, valid - b * kBlock, out - c * kBlock, scratch);
                 });
}

// The 32 x 32 results of tiles 0-3 as y^T: tile t holds weight rows 16 * (t / 2) on (its rows)
// against input rows 16 * (t % 2) on (its columns). Each 16 x 16 tile goes through `scratch`
// and a register transpose into y (rows_left x columns_left valid), plus the bias when not null.
void store_block_transposed(float* y, int64_t ld, int64_t rows_left, int64_t columns_left, const float* bias,
                            float* scratch) {
  _tile_stored(0, scratch, 64);
  _tile_stored(1, scratch + 256, 64);
  _tile_stored(2, scratch + 512, 64);
  _tile_stored(3, scratch + 768, 64);
  for (int t = 0; t < 4; ++t) {
    const int64_t column = kTile * (t / 2), row = kTile * (t % 2);
    const int64_t rows = std::min(kTile, rows_left - row), columns = std::min(kTile, columns_left - column);
    if (rows <= 0 || columns <= 0) continue;
    __m512i r[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(scratch + t * 256 + i * 16);
    transpose_16x16(r);
    const __mmask16 mask = columns == kTile ? __mmask16(0xFFFF) : __mmask16((1u << columns) - 1);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + column) : _mm512_setzero_ps();
    for (int64_t j = 0; j < rows; ++j)
      _mm512_mask_storeu_ps(y + (row + j) * ld + column, mask, _mm512_add_ps(_mm512_castsi512_ps(r[j]), b));
  }
}

// y's first `valid` rows from packed x's `rows` rows (a multiple of 32) against W in its plain
// [out, in] bf16 layout (rows readable up to a multiple of 32): the tile product with W's rows
// as the left operand, straight from memory, and x's packed tiles as the right one; results
// transposed on the way out. One 32-row block of W per iteration, the next one prefetched.
void matmul_plain_weights(const uint16_t* x_packed, int64_t rows, int64_t valid, const uint16_t* weight,
                          int64_t out, int64_t in, const float* bias, float* y, int64_t ldy) {
  const int64_t steps = in / kStep;
  for_each_block(weight, (out + kBlock - 1) / kBlock, rows / kBlock, in, rows * in * out > (int64_t{1} << 20),
                 [&](int64_t c, int64_t b, const char* next, int64_t lines, float* scratch) {
                   multiply_block(weight + c * kBlock * in, in, x_packed + b * kBlock * in, steps, nullptr, next, lines);
                   store_block_transposed(y + b * kBlock * ldy + c * kBlock, ldy, valid - b * kBlock, out - c * kBlock,
                                          bias ? bias + c * kBlock : nullptr, scratch);
                 });
}

}  // namespace

#ifndef __clang__
#pragma GCC diagnostic pop
#endif
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

void amx_bf16_matmul(const uint16_t* x, int64_t rows, const uint16_t* packed, int64_t out, int64_t in,
                     const float* bias, float* y, int64_t ldy) {
  check(amx_bf16_available(), ErrorKind::Internal, "amx_bf16_matmul called on a CPU without AMX-BF16");
  if (rows % kBlock == 0) return matmul_rows(x, rows, rows, packed, out, in, bias, y, ldy);
  // Tiles always read 32 rows: the input padded with zero rows (one pass over the weight for
  // all rows; the padding's results are not stored).
  const int64_t padded = (rows + kBlock - 1) / kBlock * kBlock;
  thread_local std::vector<uint16_t> buffer;
  buffer.assign(static_cast<size_t>(padded * in), 0);
  std::memcpy(buffer.data(), x, static_cast<size_t>(rows * in) * 2);
  matmul_rows(buffer.data(), padded, rows, packed, out, in, bias, y, ldy);
}

void amx_bf16_matmul_plain_weights(const uint16_t* x_packed, int64_t rows, const uint16_t* weight, int64_t out,
                                   int64_t in, const float* bias, float* y, int64_t ldy) {
  check(amx_bf16_available(), ErrorKind::Internal, "amx_bf16_matmul_plain_weights called on a CPU without AMX-BF16");
  matmul_plain_weights(x_packed, (rows + kBlock - 1) / kBlock * kBlock, rows, weight, out, in, bias, y, ldy);
}

}  // namespace hfpipe::ops
