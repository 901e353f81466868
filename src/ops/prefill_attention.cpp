#include "ops/prefill_attention.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/gemv.h"
#include "ops/ops.h"

// The tiles are written once over a vector type and compiled for each level (tiles_of below).
#define UNROLL _Pragma("GCC unroll 8")

// The vector helpers below are always inlined; their by-value vector arguments never cross a
// call whose ABI could differ (GCC warns about that anyway).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace hfpipe::ops {
namespace {

// Vectors of 16, 8 and 4 floats: each level's tiles use its register width (GCC splits a
// vector wider than the target through memory).
using Lanes16 = float __attribute__((vector_size(64)));
using Lanes8 = float __attribute__((vector_size(32)));
using Lanes4 = float __attribute__((vector_size(16)));
constexpr int64_t kTokensPerBlock = 16;  // query tokens a task takes
constexpr int kTileRows = 4;             // query rows a tile computes at once
// Positions and value floats a tile covers at once divide this (C vectors of each level).
constexpr int64_t kTileAlign = 32;
constexpr float kNone = -std::numeric_limits<float>::infinity();

template <class V>
__attribute__((always_inline)) inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
__attribute__((always_inline)) inline void store(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// A task's keys and values, one key/value head of one batch row over positions lo .. lo + span - 1:
// keys transposed ([head_dim][ld], ld = span rounded up to kTileAlign, zero past span) so that a
// vector holds several positions' products with one query float; values as rows of `width`
// floats (head_dim rounded up to kTileAlign, zero-padded).
struct BlockInputs {
  int64_t lo = 0, span = 0, ld = 0, width = 0;
  std::vector<float> keys_t, values;

  void gather(const float* keys, const float* values_in, int64_t stride, int64_t d) {
    ld = round_up(span, kTileAlign);
    width = round_up(d, kTileAlign);
    keys_t.assign(static_cast<size_t>(d * ld), 0.f);
    values.assign(static_cast<size_t>(span * width), 0.f);
    for (int64_t t = 0; t < span; ++t) {
      const float* k = keys + (lo + t) * stride;
      for (int64_t j = 0; j < d; ++j) keys_t[static_cast<size_t>(j * ld + t)] = k[j];
      std::memcpy(values.data() + t * width, values_in + (lo + t) * stride, sizeof(float) * static_cast<size_t>(d));
    }
  }
};

// Scores of kTileRows query rows (q[r]: head_dim floats) against positions [begin, end) of
// `in` (begin, end multiples of kTileAlign): scores[r * ld + t] = sum over j in order of
// q[r][j] k_t[j]. C vectors V of positions at a time: kTileRows * C accumulators in registers.
template <class V, int C>
__attribute__((always_inline)) inline void score_tile(const float* const* q, const BlockInputs& in, int64_t d,
                                                      int64_t begin, int64_t end, float* scores) {
  const float* qr[kTileRows];
  UNROLL for (int r = 0; r < kTileRows; ++r) qr[r] = q[r];
  constexpr int64_t kLanes = sizeof(V) / sizeof(float);
  for (int64_t t0 = begin; t0 < end; t0 += C * kLanes) {
    V acc[kTileRows][C] = {};
    const float* k = in.keys_t.data() + t0;
    for (int64_t j = 0; j < d; ++j, k += in.ld) {
      V kv[C];
      UNROLL for (int c = 0; c < C; ++c) kv[c] = load<V>(k + c * kLanes);
      UNROLL for (int r = 0; r < kTileRows; ++r) {
        const float x = qr[r][j];
        UNROLL for (int c = 0; c < C; ++c) acc[r][c] += x * kv[c];
      }
    }
    UNROLL for (int r = 0; r < kTileRows; ++r)
      UNROLL for (int c = 0; c < C; ++c) store(scores + r * in.ld + t0 + c * kLanes, acc[r][c]);
  }
}

// out[r] (in.width floats, a multiple of kTileAlign) = sum over t in [begin, end) in order of
// probs[r * ld + t] v_t.
template <class V, int C>
__attribute__((always_inline)) inline void value_tile(const float* probs, const BlockInputs& in, int64_t begin,
                                                      int64_t end, float* out) {
  constexpr int64_t kLanes = sizeof(V) / sizeof(float);
  for (int64_t c0 = 0; c0 < in.width; c0 += C * kLanes) {
    V acc[kTileRows][C] = {};
    const float* v = in.values.data() + begin * in.width + c0;
    for (int64_t t = begin; t < end; ++t, v += in.width) {
      V vv[C];
      UNROLL for (int c = 0; c < C; ++c) vv[c] = load<V>(v + c * kLanes);
      UNROLL for (int r = 0; r < kTileRows; ++r) {
        const float p = probs[r * in.ld + t];
        UNROLL for (int c = 0; c < C; ++c) acc[r][c] += p * vv[c];
      }
    }
    UNROLL for (int r = 0; r < kTileRows; ++r)
      UNROLL for (int c = 0; c < C; ++c) store(out + r * in.width + c0 + c * kLanes, acc[r][c]);
  }
}

// The tiles at each level: 4 x 2 vectors, 8 accumulators (enough to hide the FMA latency, few
// enough for AVX2's 16 registers).
struct Tiles {
  void (*scores)(const float* const* q, const BlockInputs& in, int64_t d, int64_t begin, int64_t end, float* scores);
  void (*values)(const float* probs, const BlockInputs& in, int64_t begin, int64_t end, float* out);
};

#define HFPIPE_TILES(level, target, V)                                                                    \
  target void level##_scores(const float* const* q, const BlockInputs& in, int64_t d, int64_t begin,      \
                             int64_t end, float* scores) {                                                \
    score_tile<V, 2>(q, in, d, begin, end, scores);                                                          \
  }                                                                                                       \
  target void level##_values(const float* probs, const BlockInputs& in, int64_t begin, int64_t end, float* out) { \
    value_tile<V, 2>(probs, in, begin, end, out);                                                            \
  }
HFPIPE_TILES(avx512, __attribute__((target("avx512f,fma"))), Lanes16)
HFPIPE_TILES(avx2, __attribute__((target("avx2,fma"))), Lanes8)
HFPIPE_TILES(plain, , Lanes4)
#undef HFPIPE_TILES

Tiles tiles_of(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512: return {avx512_scores, avx512_values};
    case SimdLevel::Avx2: return {avx2_scores, avx2_values};
    case SimdLevel::Plain: break;
  }
  return {plain_scores, plain_values};
}

// One query row of a task: where its q and output are, and the positions it sees relative to
// the task's lo (first > last: none, a padding query).
struct QueryRow {
  const float* q;
  float* out;
  int64_t first, last;
};

// Row p's scores over its positions become probabilities: scaled, soft-capped, masked, softmax
// (the order of the one-token path); zero elsewhere in [begin, end), and everywhere when the
// row sees no position (its output is then zero, as transformers gives a padding query).
void to_probabilities(float* p, const QueryRow& row, const int32_t* mask, const CausalAttentionShape& s,
                      int64_t begin, int64_t end) {
  if (row.first > row.last) {
    std::fill(p + begin, p + end, 0.f);
    return;
  }
  // [begin, end) covers the tile's rows' positions, this row's among them.
  std::fill(p + begin, p + row.first, 0.f);
  std::fill(p + row.last + 1, p + end, 0.f);
  const int64_t first = row.first, last = row.last;
  float* visible = p + first;
  const int64_t span = last - first + 1;
  for (int64_t t = 0; t < span; ++t) visible[t] *= s.scale;
  if (s.softcap > 0.f) soft_cap(visible, span, s.softcap);
  bool any = false;
  for (int64_t t = 0; t < span; ++t) {
    if (!mask[first + t]) visible[t] = kNone;
    else any = true;
  }
  if (any) softmax_rows(visible, 1, span);
  else std::fill(visible, visible + span, 0.f);
}

struct Task {
  int64_t b, g, i0, i1;  // batch row, key/value head, query tokens [i0, i1)
};

// Per-thread buffers, reused from task to task.
struct Scratch {
  BlockInputs in;
  std::vector<float> probs, out;
  std::vector<QueryRow> rows;
};

// Position of batch row b's first unmasked key (its left padding's length).
int64_t first_unmasked(const int32_t* mask, int64_t total) {
  int64_t t = 0;
  while (t < total && !mask[t]) ++t;
  return t;
}

void run_task(const Task& task, const float* q, const CacheView& cache, const int32_t* key_mask, float* out,
              const CausalAttentionShape& s, const Tiles& tiles, Scratch& scratch) {
  const int64_t group = s.heads / s.kv_heads, d = s.head_dim, kv_dim = s.kv_heads * d, q_dim = s.heads * d;
  const int64_t total = s.past + s.new_tokens;
  const int32_t* mask = key_mask + task.b * total;
  const int64_t unpadded = first_unmasked(mask, total);
  auto first_seen = [&](int64_t position) {
    const int64_t window_start = s.sliding_window > 0 ? position - s.sliding_window + 1 : 0;
    return std::max(window_start, unpadded);
  };
  // Positions the task's queries see: from its first token's first to its last token.
  const int64_t lo = std::min(first_seen(s.past + task.i0), s.past + task.i0);
  const int64_t hi = s.past + task.i1 - 1;
  BlockInputs& in = scratch.in;
  in.lo = lo;
  in.span = hi - lo + 1;
  const size_t cache_row = static_cast<size_t>(task.b * cache.capacity * kv_dim + task.g * d);
  in.gather(cache.keys + cache_row, cache.values + cache_row, kv_dim, d);

  std::vector<QueryRow>& rows = scratch.rows;
  rows.clear();
  for (int64_t i = task.i0; i < task.i1; ++i) {
    const int64_t position = s.past + i, r = task.b * s.new_tokens + i;
    for (int64_t h = task.g * group; h < (task.g + 1) * group; ++h)
      rows.push_back({q + r * q_dim + h * d, out + r * q_dim + h * d, first_seen(position) - lo, position - lo});
  }
  scratch.probs.resize(static_cast<size_t>(kTileRows * in.ld));
  scratch.out.resize(static_cast<size_t>(kTileRows * in.width));
  const int64_t n = static_cast<int64_t>(rows.size());
  for (int64_t r0 = 0; r0 < n; r0 += kTileRows) {
    // A tile past the last row repeats it (and drops the result).
    const QueryRow* tile[kTileRows];
    const float* tile_q[kTileRows];
    int64_t begin = in.ld, end = 0;
    for (int r = 0; r < kTileRows; ++r) {
      tile[r] = &rows[static_cast<size_t>(std::min(r0 + r, n - 1))];
      tile_q[r] = tile[r]->q;
      if (tile[r]->first <= tile[r]->last) {
        begin = std::min(begin, tile[r]->first);
        end = std::max(end, tile[r]->last + 1);
      }
    }
    if (begin >= end) {  // every row of the tile is a padding query
      for (int r = 0; r < kTileRows && r0 + r < n; ++r) std::fill(tile[r]->out, tile[r]->out + d, 0.f);
      continue;
    }
    const int64_t aligned_begin = begin / kTileAlign * kTileAlign, aligned_end = round_up(end, kTileAlign);
    tiles.scores(tile_q, in, d, aligned_begin, aligned_end, scratch.probs.data());
    for (int r = 0; r < kTileRows; ++r)
      to_probabilities(scratch.probs.data() + r * in.ld, *tile[r], mask + lo, s, begin, end);
    tiles.values(scratch.probs.data(), in, begin, end, scratch.out.data());
    for (int r = 0; r < kTileRows && r0 + r < n; ++r)
      std::memcpy(tile[r]->out, scratch.out.data() + r * in.width, sizeof(float) * static_cast<size_t>(d));
  }
}

}  // namespace

void prefill_attention(const float* q, const CacheView& cache, const int32_t* key_mask, float* out,
                       const CausalAttentionShape& s) {
  std::vector<Task> tasks;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t g = 0; g < s.kv_heads; ++g)
      for (int64_t i0 = 0; i0 < s.new_tokens; i0 += kTokensPerBlock)
        tasks.push_back({b, g, i0, std::min(i0 + kTokensPerBlock, s.new_tokens)});
  const int64_t count = static_cast<int64_t>(tasks.size());
  const Tiles tiles = tiles_of(row_simd_level());
  const int64_t work = s.batch * s.new_tokens * (s.past + s.new_tokens) * s.heads * s.head_dim;
  // Later tokens see more positions: dynamic scheduling evens the threads' shares.
#pragma omp parallel if (count > 1 && work > 262144)
  {
    Scratch scratch;
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < count; ++k) run_task(tasks[static_cast<size_t>(k)], q, cache, key_mask, out, s, tiles, scratch);
  }
}

}  // namespace hfpipe::ops
