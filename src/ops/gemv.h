// Linear layers on a few rows (token-by-token decoding: batch 1 is a matrix-vector product,
// batch 8 a skinny matrix product), y = x W^T + b, W in PyTorch's [out, in] layout.
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

// The most rows skinny_linear takes; Linear::forward sends at most this many rows here.
inline constexpr int64_t kSkinnyMaxRows = 8;

// y[r, n] = act(sum_k x[r, k] * w[n, k] + bias[n]) for r < rows (1 .. kSkinnyMaxRows); x is
// rows x in, y rows x out, w out x in, bias out floats or null. Each row's result depends on
// that row only (not on how many rows come with it). Threads split the output columns.
void skinny_linear(const float* x, int64_t rows, const float* w, const float* bias, int64_t in, int64_t out,
                   Activation activation, float* y);

}  // namespace hfpipe::ops
