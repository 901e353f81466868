// Linear weights in column panels, for a product that is fast at every row count.
//
// A PanelMatrix holds an [out, in] weight as panels of kPanelColumns output columns: panel p
// stores, for k = 0 .. in - 1 in turn, the kPanelColumns weights w[64p .. 64p + 63][k]
// (the last panel padded with zeros). panel_linear multiplies it the way a GEMM's
// micro-kernel does: each input value x[r, k] is broadcast and multiplied into a panel's row k
// of weights, a vector of columns at a time, so no sum is ever reduced across vector lanes and
// every weight loaded serves all the rows of a tile.
//
// Why: skinny_linear (ops/gemv.h) runs along K on the checkpoint's [out, in] rows and reduces
// lanes at the end of each tile; on a Zen 5 (one thread) it multiplies a 64-row prompt at
// 151-185 GFLOP/s, oneDNN's brgemm on plain weights at 158-174. Panels run the same prompt at
// 207-217 with the weights streamed from memory, 257-270 from cache (4 rows x 64 columns a
// tile; hfpipe_bench_ops panels, docs/performance.md), and one row reads a panel matrix as a single
// sequential stream (the prefetcher's best case). The layout costs a copy at load (the file's
// pages are given back after it): models::decoder_linear makes it for a decoder's f32 weights
// read from the file, GPT-2 for its Conv1D weights (stored [in, out], transposed before), on
// AVX-512 CPUs (panels_preferred). At 8 rows skinny_linear is still ahead on some shapes
// (docs/performance.md: GPT-2's 768 x 768 113 vs 151 GFLOP/s; its wider shapes 104-116 vs 69-93).
//
// Every output is sum_k x[r, k] * w[n, k] accumulated in k order, one fused multiply-add per
// term, from 0 (then + bias): the same bits whatever the number of rows, the tile a row falls
// in, the SIMD level (skinny_simd_level()) or the thread count.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace hfpipe::ops {

inline constexpr int64_t kPanelColumns = 64;

struct PanelMatrix {
  Tensor panels;  // F32: panel_count() panels of in x kPanelColumns floats
  int64_t out = 0, in = 0;

  int64_t panel_count() const { return (out + kPanelColumns - 1) / kPanelColumns; }
  // Panel p's first float.
  const float* panel(int64_t p) const { return panels.f32() + p * in * kPanelColumns; }
};

// Whether a decoder's f32 weights go into panels on this CPU: where it has AVX-512 (measured
// above). At the AVX2 level (Zen 5, gemv.cpp has the figures) the panel tiles ran behind
// skinny_linear's at 8-64 rows, so AVX2 CPUs keep the [out, in] layout.
bool panels_preferred();

// The panels of columns [first, first + count) of a row-major [in, ld] matrix w (x . w, as
// GPT-2's Conv1D stores its weight: the result's column n is w's column first + n).
PanelMatrix panels_from_columns(const float* w, int64_t in, int64_t ld, int64_t first, int64_t count);

// The panels of a PyTorch-layout [out, in] weight.
PanelMatrix panels_from_rows(const float* w, int64_t out, int64_t in);

// Weight row n ([out, in]'s row n: `in` floats, column n of every panel row) into out.
void panel_weight_row(const PanelMatrix& m, int64_t n, float* out);

// y[r, n] = sum_k x[r, k] * w[n, k] (+ bias[n]) for r < rows; x rows x in, y rows x out
// (row-major), bias out floats or null. Threads split the panels.
void panel_linear(const PanelMatrix& w, const float* x, int64_t rows, const float* bias, float* y);

}  // namespace hfpipe::ops
