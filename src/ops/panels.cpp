#include "ops/panels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/gemv.h"
#include "ops/ops.h"

namespace hfpipe::ops {

namespace {

PanelMatrix empty_panels(int64_t out, int64_t in) {
  check(out > 0 && in > 0, ErrorKind::Internal, "a panel matrix needs rows and columns");
  PanelMatrix m;
  m.out = out;
  m.in = in;
  m.panels = Tensor::empty(DType::F32, {m.panel_count(), in, kPanelColumns});
  const int64_t width = out - (m.panel_count() - 1) * kPanelColumns;
  if (width < kPanelColumns) {  // the last panel's padding columns: zeros, so they add nothing
    float* last = const_cast<float*>(m.panel(m.panel_count() - 1));
    for (int64_t k = 0; k < in; ++k) std::fill(last + k * kPanelColumns + width, last + (k + 1) * kPanelColumns, 0.f);
  }
  return m;
}

// Rows of x per pass over the panels: a pass's rows (up to 256 x in floats, 3 MB at in = 3072)
// stay in L2 / L3 while every panel is multiplied into them.
constexpr int64_t kRowsPerPass = 256;
// Values of k per block: a block of a panel (512 x 64 floats, 128 KB) stays in L2 while all the
// pass's rows are multiplied by it.
constexpr int64_t kBlockK = 512;

// `rows` (at most kRowsPerPass) rows times panel p into y's columns of it.
void multiply_panel(const PanelMatrix& w, int64_t p, const float* x, int64_t rows, const float* bias, float* y) {
  const int64_t first = p * kPanelColumns, width = std::min(kPanelColumns, w.out - first);
  float* dest = y + first;
  int64_t ld = w.out;
  const float* panel_bias = bias ? bias + first : nullptr;
  // The last panel's padding columns go to a buffer (and its bias is padded), not past y's row.
  thread_local std::vector<float> partial, padded_bias;
  if (width < kPanelColumns) {
    partial.resize(static_cast<size_t>(rows * kPanelColumns));
    dest = partial.data();
    ld = kPanelColumns;
    if (bias) {
      padded_bias.assign(kPanelColumns, 0.f);
      std::copy_n(bias + first, width, padded_bias.begin());
      panel_bias = padded_bias.data();
    }
  }
  const float* panel = w.panel(p);
  for (int64_t k = 0; k < w.in; k += kBlockK) {
    const int64_t count = std::min(kBlockK, w.in - k);
    const bool last_block = k + count == w.in;
    panel_rows(x + k, rows, w.in, panel + k * kPanelColumns, count, k > 0, last_block ? panel_bias : nullptr, dest, ld);
  }
  if (width < kPanelColumns)
    for (int64_t r = 0; r < rows; ++r) std::copy_n(partial.data() + r * kPanelColumns, width, y + r * w.out + first);
}

}  // namespace

bool panels_preferred() { return cpu_simd_level() == SimdLevel::Avx512; }

PanelMatrix panels_from_columns(const float* w, int64_t in, int64_t ld, int64_t first, int64_t count) {
  check(first >= 0 && first + count <= ld, ErrorKind::Internal, "panel columns outside the matrix");
  PanelMatrix m = empty_panels(count, in);
  const int64_t panels = m.panel_count();
#pragma omp parallel for schedule(static) if (in * count > 262144)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t column = p * kPanelColumns, width = std::min(kPanelColumns, count - column);
    float* panel = const_cast<float*>(m.panel(p));
    for (int64_t k = 0; k < in; ++k)
      std::memcpy(panel + k * kPanelColumns, w + k * ld + first + column, sizeof(float) * static_cast<size_t>(width));
  }
  return m;
}

PanelMatrix panels_from_rows(const float* w, int64_t out, int64_t in) {
  PanelMatrix m = empty_panels(out, in);
  const int64_t panels = m.panel_count();
#pragma omp parallel for schedule(static) if (in * out > 262144)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t row = p * kPanelColumns, width = std::min(kPanelColumns, out - row);
    transpose(w + row * in, width, in, in, const_cast<float*>(m.panel(p)), kPanelColumns);
  }
  return m;
}

void panel_weight_row(const PanelMatrix& m, int64_t n, float* out) {
  check(n >= 0 && n < m.out, ErrorKind::Internal, "panel_weight_row: no such row");
  const float* column = m.panel(n / kPanelColumns) + n % kPanelColumns;
  for (int64_t k = 0; k < m.in; ++k) out[k] = column[k * kPanelColumns];
}

void panel_linear(const PanelMatrix& w, const float* x, int64_t rows, const float* bias, float* y) {
  const int64_t panels = w.panel_count();
  for (int64_t r = 0; r < rows; r += kRowsPerPass) {
    const int64_t count = std::min(kRowsPerPass, rows - r);
    const float* pass_x = x + r * w.in;
    float* pass_y = y + r * w.out;
    // Split as skinny_linear splits: by the layer's size (a 768 x 768 decoding product is), or by
    // the pass's work (a narrow k / v projection over a prompt).
#pragma omp parallel for schedule(static) if (w.in * w.out > 262144 || count * w.in * w.out > 262144 * kSkinnyMaxRows)
    for (int64_t p = 0; p < panels; ++p) multiply_panel(w, p, pass_x, count, bias, pass_y);
  }
}

}  // namespace hfpipe::ops
