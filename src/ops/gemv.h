// Linear layers on a few rows (token-by-token decoding: batch 1 is a matrix-vector product,
// batch 8 a skinny matrix product; also an encoder's short input of up to 40 (AVX2) or 64 (AVX-512) tokens),
// y = x W^T + b, W in PyTorch's [out, in] layout. The kernel of ops/panels.h (panel_rows, below)
// is compiled here too, at the same levels.
//
// Why not oneDNN here: its f32 matmul on AVX2 treats 8 rows as a small GEMM and runs
// compute-bound at ~15 GFLOP/s a core (measured, bench/bench_generation.py), so a decoding
// step at batch 8 took ~5x the time of one pass over the weights. Decoding reads every weight
// once per step; this kernel makes that pass the whole cost: each tile of weight rows is loaded
// once and multiplied into all the input rows while it sits in registers / L1.
#pragma once

#include <cstdint>

#include "ops/linear.h"

namespace hfpipe::ops {

// The instruction sets skinny_linear has kernels for, narrowest first. Results differ between
// levels in the last bits (their sums split K into 1, 8 or 16 lanes), never between calls on one.
enum class SimdLevel { Plain, Avx2, Avx512 };
// The widest level this CPU (and OS) runs.
SimdLevel cpu_simd_level();
// The level skinny_linear runs: cpu_simd_level() unless set_skinny_simd_level lowered it, as
// the tests do to run every kernel the machine has. A level above the CPU's is lowered to it.
SimdLevel skinny_simd_level();
void set_skinny_simd_level(SimdLevel level);

// The most rows of decoding (one per sequence of a batch): what skinny_linear_bf16,
// skinny_linear_columns and the quantised kernels take, and what skinny_linear always runs.
inline constexpr int64_t kSkinnyMaxRows = 8;

// Whether Linear runs `rows` rows on skinny_linear rather than oneDNN: up to kSkinnyMaxRows
// always; up to 40 at the AVX2 level and 64 at the AVX-512 level too (an encoder's short input,
// a short prompt's prefill), where skinny_linear's many-row tiles beat oneDNN's matmul
// (build/hfpipe_bench_ops, docs/performance.md):
// - AVX2 (Zen 3, one thread): oneDNN's sgemm runs 16-32 rows at 32-64 GFLOP/s a core, the 4 x 3
//   tiles at 48-64 (BERT-base / MiniLM shapes). Whole CLI runs, one input at a time (CPU
//   seconds, oneDNN -> skinny): MiniLM ~16 tokens 2.03 -> 1.35, ~24 1.16 -> 0.94, ~40 1.63 ->
//   1.48, ~48 ~1.86 -> ~1.81; BERT-base ~16 12.4 -> 9.5, ~24 7.05 -> 6.34, ~40 10.28 -> 9.97, ~48
//   ~12.9 -> ~12.5, but NER's ~48-token sentences 4.0 -> 4.2: past 40 oneDNN keeps them.
// - AVX-512 (Zen 5, one thread, one run): oneDNN 42-87 GFLOP/s at 16 rows, 63-119 at 32, 94-137
//   at 48, 126-167 at 64; the 4 x 6 tiles 84-134, 108-146, 122-157, 144-172 (another run: 95-129
//   at 16); at 96 rows each wins half the shapes, at 128 oneDNN most. oneDNN's fixed-rows brgemm
//   on the plain weights (Linear's path for 65-256 rows since stop 24) at 16 / 32 / 48 / 64 rows:
//   79-107 / 120-137 / 138-160 / 158-174 vs the tiles' 96-144 / 130-151 / 131-164 / 151-185 in
//   the same run, so the limit stays at 64.
bool skinny_linear_preferred(int64_t rows);

// y[r, n] = act(sum_k x[r, k] * w[n, k] + bias[n]) for r < rows (any number); x is rows x in,
// y rows x out, w out x in, bias out floats or null. Each row's result depends on that row only
// (not on how many rows come with it). Threads split the output columns. Vectors run along K
// (w's rows are contiguous), so the weights are read in place, never copied. Past
// kSkinnyMaxRows rows each tile of weight rows is multiplied into all the rows, a few at a time.
void skinny_linear(const float* x, int64_t rows, const float* w, const float* bias, int64_t in, int64_t out,
                   Activation activation, float* y);

// skinny_linear (no activation) over a bf16 weight: w holds out x in bf16 bit patterns. Bit for
// bit skinny_linear's results over the weight widened to f32 (exact), reading half the bytes.
// At every level (skinny_simd_level()).
void skinny_linear_bf16(const float* x, int64_t rows, const uint16_t* w, const float* bias, int64_t in, int64_t out,
                        float* y);

// How many weight rows skinny_linear's kernel multiplies together for `rows` input rows (its
// tile width at the current level): slices of a multiple of it run without a narrower tail.
int64_t skinny_tile_columns(int64_t rows);

// skinny_linear's product (no activation; any number of rows) for `out` weight rows that are
// a slice of a wider layer: row r's results go to y[r * ldy ...]. One thread: the caller splits
// the slices. Bit for bit the results skinny_linear gives for those weight rows.
void skinny_linear_columns(const float* x, int64_t rows, const float* w, const float* bias, int64_t in, int64_t out,
                           float* y, int64_t ldy);

// panel_linear's kernel (ops/panels.h), at skinny_simd_level(): `rows` rows of x (ldx floats
// apart, from the block's first k) times one panel's kPanelColumns columns for `k_count` values
// of k (w: the panel's row for the block's first k) into y (ldy floats apart); starting from
// y's values when `accumulate`, from zero otherwise; + bias (kPanelColumns floats) when not null.
void panel_rows(const float* x, int64_t rows, int64_t ldx, const float* w, int64_t k_count, bool accumulate,
                const float* bias, float* y, int64_t ldy);

}  // namespace hfpipe::ops
