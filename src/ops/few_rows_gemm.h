// y = x W^T for a handful of rows (a decoding step: one row per beam), with W in PyTorch's
// [out, in] layout. At 1-4 rows a matmul library's GEMM is bound by reading W, and oneDNN's
// small-M path reads it less efficiently than a kernel that streams each W row once and
// multiplies it into every x row while it is in registers (measured 1.4-1.9x faster CPU time
// at 4 rows on AVX2; see docs/performance.md, seq2seq section).
#pragma once

#include <cstdint>

namespace hfpipe::ops {

// The most rows few_rows_gemm takes. Measured against oneDNN (CPU time, 1 thread, AVX2):
// 1.3-2.3x faster at 4 rows, about even at 1 row, slower from 8-16 rows on, where oneDNN's
// blocked kernel reuses each loaded weight across more rows.
constexpr int64_t kFewRowsMax = 4;
// Weights of at most this many floats (1 MB: they stay in L2 between calls) are also left to
// oneDNN, which is faster on them (0.75x at 512 x 512).
constexpr int64_t kFewRowsMinWeight = int64_t{1} << 18;

// y[r, o] = sum_i x[r, i] * w[o, i] for rows <= kFewRowsMax. Returns false (and writes
// nothing) when the CPU lacks AVX2+FMA, rows is out of range or the weight is small
// (kFewRowsMinWeight): the caller then uses its GEMM.
// Each output is one AVX2 dot product whatever the thread count, so results do not depend on it.
bool few_rows_gemm(const float* x, int64_t rows, const float* w, int64_t out, int64_t in, float* y);

}  // namespace hfpipe::ops
