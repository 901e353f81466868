#include "ops/ops.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <oneapi/dnnl/dnnl.h>
#include <vector>

#include "core/error.h"
#include "ops/avx2_math.h"
#include "ops/avx512_math.h"

#define HFPIPE_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

namespace hfpipe::ops {

// ---------------------------------------------------------------- kernel choice
// GCC does not vectorise float reductions without -ffast-math (it may not reorder the sums)
// nor std::exp / tanh / erf (no vector libm at -O2), so softmax, LayerNorm and the
// transcendental activations have vector kernels (ops/row_kernels.inc) compiled for AVX-512
// and AVX2+FMA and chosen at run time; the plain loops below serve other CPUs.

namespace {

std::atomic<SimdLevel>& chosen_level() {
  static std::atomic<SimdLevel> level{cpu_simd_level()};
  return level;
}

}  // namespace

SimdLevel row_simd_level() { return chosen_level().load(std::memory_order_relaxed); }

void set_row_simd_level(SimdLevel level) {
  chosen_level().store(std::min(level, cpu_simd_level()), std::memory_order_relaxed);
}

// ---------------------------------------------------------------- portable kernels

static void layer_norm_row_plain(float* x, const float* residual, int64_t dim, const float* gamma, const float* beta,
                                 float eps) {
  if (residual)
    for (int64_t i = 0; i < dim; ++i) x[i] += residual[i];
  float sum = 0.f;
  for (int64_t i = 0; i < dim; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(dim);
  float sq = 0.f;
  for (int64_t i = 0; i < dim; ++i) {
    float d = x[i] - mean;
    sq += d * d;
  }
  const float inv = 1.f / std::sqrt(sq / static_cast<float>(dim) + eps);
  for (int64_t i = 0; i < dim; ++i) x[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
}

static void softmax_row_plain(float* x, int64_t dim) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < dim; ++i) m = std::max(m, x[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < dim; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = 1.f / sum;
  for (int64_t i = 0; i < dim; ++i) x[i] *= inv;
}

static void layer_norm_row(float* x, const float* residual, int64_t dim, const float* gamma, const float* beta,
                           float eps) {
  switch (row_simd_level()) {
    case SimdLevel::Avx512: return avx512::layer_norm_row(x, residual, dim, gamma, beta, eps);
    case SimdLevel::Avx2: return avx2::layer_norm_row(x, residual, dim, gamma, beta, eps);
    case SimdLevel::Plain: return layer_norm_row_plain(x, residual, dim, gamma, beta, eps);
  }
}

static void softmax_row(float* x, int64_t dim) {
  switch (row_simd_level()) {
    case SimdLevel::Avx512: return avx512::softmax_row(x, dim);
    case SimdLevel::Avx2: return avx2::softmax_row(x, dim);
    case SimdLevel::Plain: return softmax_row_plain(x, dim);
  }
}

void add_layer_norm(float* x, const float* residual, int64_t rows, int64_t dim, const float* gamma,
                    const float* beta, float eps) {
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
  for (int64_t r = 0; r < rows; ++r)
    layer_norm_row(x + r * dim, residual ? residual + r * dim : nullptr, dim, gamma, beta, eps);
}

void softmax_rows(float* x, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * dim, dim);
}

HFPIPE_CLONES
void add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// The scalar definitions: the reference the vector kernels are tested against.
static void apply_activation_plain(float* x, int64_t n, Activation activation) {
  switch (activation) {
    case Activation::None: return;
    case Activation::GeluErf:
      for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * static_cast<float>(M_SQRT1_2)));
      return;
    case Activation::GeluTanh:
      for (int64_t i = 0; i < n; ++i) {
        float v = x[i];
        x[i] = 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
      }
      return;
    case Activation::Relu:
      for (int64_t i = 0; i < n; ++i) x[i] = std::max(x[i], 0.f);
      return;
    case Activation::Tanh:
      for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
      return;
    case Activation::Silu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.f + std::exp(-x[i]));
      return;
  }
}

void apply_activation(float* x, int64_t n, Activation activation) {
  switch (row_simd_level()) {
    case SimdLevel::Avx512:
      if (avx512::apply_activation(x, n, activation)) return;
      break;
    case SimdLevel::Avx2:
      if (avx2::apply_activation(x, n, activation)) return;
      break;
    case SimdLevel::Plain: break;
  }
  apply_activation_plain(x, n, activation);
}

void soft_cap(float* x, int64_t n, float cap) {
  switch (row_simd_level()) {
    case SimdLevel::Avx512: return avx512::soft_cap(x, n, cap);
    case SimdLevel::Avx2: return avx2::soft_cap(x, n, cap);
    case SimdLevel::Plain:
      for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] / cap) * cap;
      return;
  }
}

// One (sequence, head) pair over the sequence's own `len` tokens (padding is at the end and
// never attended to, so it is left out of the products entirely: less work, and a row's
// result does not depend on how much padding its batch carries). The vector kernels of
// ops/attention_kernels.inc on AVX-512 and AVX2 (attention_kernels.inc says why not
// dnnl_sgemm there); sgemm on other CPUs.
static void attend_one_head_sgemm(const float* q, const float* k, const float* v, float* out, int64_t len, int64_t seq,
                                  int64_t head_dim, int64_t row_stride, const float* bias, float scale,
                                  float* scores) {
  dnnl_sgemm('N', 'T', len, len, head_dim, scale, q, row_stride, k, row_stride, 0.f, scores, len);
  for (int64_t i = 0; i < len; ++i) {
    float* row = scores + i * len;
    if (bias)
      for (int64_t j = 0; j < len; ++j) row[j] += bias[i * seq + j];
    softmax_row(row, len);
  }
  dnnl_sgemm('N', 'N', len, head_dim, len, 1.f, scores, len, v, row_stride, 0.f, out, row_stride);
}

static int64_t attention_scratch_floats(int64_t seq, int64_t head_dim) {
  switch (row_simd_level()) {
    case SimdLevel::Avx512: return avx512::attention_scratch_floats(seq, head_dim);
    case SimdLevel::Avx2: return avx2::attention_scratch_floats(seq, head_dim);
    case SimdLevel::Plain: break;
  }
  return seq * seq;
}

static void attend_one_head(const float* q, const float* k, const float* v, float* out, int64_t len, int64_t seq,
                            int64_t head_dim, int64_t row_stride, const float* bias, float* scratch) {
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  switch (row_simd_level()) {
    case SimdLevel::Avx512:
      return avx512::attend_one_head(q, k, v, out, len, seq, head_dim, row_stride, bias, scale, scratch);
    case SimdLevel::Avx2:
      return avx2::attend_one_head(q, k, v, out, len, seq, head_dim, row_stride, bias, scale, scratch);
    case SimdLevel::Plain: break;
  }
  attend_one_head_sgemm(q, k, v, out, len, seq, head_dim, row_stride, bias, scale, scratch);
}

// Tokens of a sequence up to its last real one; hfpipe pads on the right.
static int64_t attended_length(const int32_t* mask, int64_t seq) {
  if (!mask) return seq;
  int64_t len = seq;
  while (len > 0 && !mask[len - 1]) --len;
  for (int64_t j = 0; j < len; ++j)
    check(mask[j] != 0, ErrorKind::Internal, "attention masks must pad on the right only");
  return len;
}

void self_attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s,
                    const int32_t* key_mask, const float* position_bias) {
  const int64_t hidden = s.heads * s.head_dim;
  const int64_t pairs = s.batch * s.heads;
  std::vector<int64_t> lengths(static_cast<size_t>(s.batch));
  for (int64_t b = 0; b < s.batch; ++b) lengths[b] = attended_length(key_mask ? key_mask + b * s.seq : nullptr, s.seq);
  // Padding rows' outputs are never read, but keep them defined.
  for (int64_t b = 0; b < s.batch; ++b)
    std::fill(out + (b * s.seq + lengths[b]) * hidden, out + (b + 1) * s.seq * hidden, 0.f);
#pragma omp parallel
  {
    std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(s.seq, s.head_dim)));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < pairs; ++p) {
      const int64_t b = p / s.heads, h = p % s.heads;
      if (lengths[b] == 0) continue;
      const int64_t offset = b * s.seq * hidden + h * s.head_dim;
      attend_one_head(q + offset, k + offset, v + offset, out + offset, lengths[b], s.seq, s.head_dim, hidden,
                      position_bias ? position_bias + h * s.seq * s.seq : nullptr, scratch.data());
    }
  }
}

// ---------------------------------------------------------------- transpose

namespace {

// One 32 x 32 tile (fewer at the matrix's edges) of transpose(). Scalar, element by element:
// the edges, and CPUs without AVX2.
void transpose_tile_plain(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float* dst, int64_t ld_dst) {
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) dst[c * ld_dst + r] = src[r * ld_src + c];
}

// The whole 8 x 8 blocks of a tile in registers: 8 row loads, three rounds of shuffles, 8
// column stores (the scalar loop ran ~2 GB/s on GPT-2's 340 MB of Conv1D weights, a third of
// its load time); the ragged rest element by element.
__attribute__((target("avx2"))) void transpose_tile_avx2(const float* src, int64_t rows, int64_t cols, int64_t ld_src,
                                                         float* dst, int64_t ld_dst) {
  const int64_t whole_rows = rows / 8 * 8, whole_cols = cols / 8 * 8;
  for (int64_t r = 0; r < whole_rows; r += 8)
    for (int64_t c = 0; c < whole_cols; c += 8) {
      __m256 v[8], t[8];
      for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src + (r + i) * ld_src + c);
      for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
      }
      for (int i = 0; i < 8; i += 4)  // quads: 2 x 2 blocks of pairs
        for (int j = 0; j < 2; ++j) {
          v[i + j] = _mm256_shuffle_ps(t[i + j], t[i + j + 2], _MM_SHUFFLE(1, 0, 1, 0));
          v[i + j + 2] = _mm256_shuffle_ps(t[i + j], t[i + j + 2], _MM_SHUFFLE(3, 2, 3, 2));
        }
      // v[0..3] hold columns {0,4}, {2,6}, {1,5}, {3,7} of rows 0-3 (low / high 128 bits), v[4..7]
      // the same of rows 4-7: one 128-bit permute joins each column's two halves.
      constexpr int kColumnOf[4] = {0, 2, 1, 3};
      for (int i = 0; i < 4; ++i) {
        const int col = kColumnOf[i];
        _mm256_storeu_ps(dst + (c + col) * ld_dst + r, _mm256_permute2f128_ps(v[i], v[i + 4], 0x20));
        _mm256_storeu_ps(dst + (c + col + 4) * ld_dst + r, _mm256_permute2f128_ps(v[i], v[i + 4], 0x31));
      }
    }
  transpose_tile_plain(src + whole_cols, rows, cols - whole_cols, ld_src, dst + whole_cols * ld_dst, ld_dst);
  transpose_tile_plain(src + whole_rows * ld_src, rows - whole_rows, whole_cols, ld_src, dst + whole_rows, ld_dst);
}

}  // namespace

void transpose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float* dst, int64_t ld_dst) {
  // 32 x 32 tiles: a tile's 32 source rows and 32 destination rows stay in L1 while it is
  // copied (a row-by-row transpose missed the cache on every read of the source's columns).
  check(ld_src >= cols && ld_dst >= rows, ErrorKind::Internal, "transpose: a leading dimension is too small");
  constexpr int64_t kTile = 32;
  const bool avx2 = row_simd_level() >= SimdLevel::Avx2;
  const int64_t column_tiles = (cols + kTile - 1) / kTile;
#pragma omp parallel for schedule(static) if (rows * cols > 262144)
  for (int64_t ct = 0; ct < column_tiles; ++ct) {
    const int64_t c = ct * kTile, tile_cols = std::min(kTile, cols - c);
    for (int64_t r = 0; r < rows; r += kTile) {
      const int64_t tile_rows = std::min(kTile, rows - r);
      const float* from = src + r * ld_src + c;
      float* to = dst + c * ld_dst + r;
      if (avx2)
        transpose_tile_avx2(from, tile_rows, tile_cols, ld_src, to, ld_dst);
      else
        transpose_tile_plain(from, tile_rows, tile_cols, ld_src, to, ld_dst);
    }
  }
}

}  // namespace hfpipe::ops
