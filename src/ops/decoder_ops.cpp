#include "ops/decoder_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "ops/linear.h"
#include "ops/ops.h"
#include "ops/prefill_attention.h"

#define HFPIPE_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

namespace hfpipe::ops {

HFPIPE_CLONES
static void rms_norm_row(float* x, int64_t dim, const float* weight, float eps) {
  // The mean of squares in double: torch reduces f32 pairwise, close to exact; a plain f32
  // running sum would drift further from it on wide rows.
  // omp simd lets GCC split the sum into vector lanes (it may not reorder it otherwise).
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float variance = static_cast<float>(sum / static_cast<double>(dim));
  const float inv = 1.f / std::sqrt(variance + eps);
  // omp simd again: GCC cannot tell that x and weight never overlap, and the scalar loop was
  // two thirds of the norm's time (4% of Gemma-3's batch-8 prefill).
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) x[i] = weight[i] * (x[i] * inv);
}

void rms_norm(float* x, int64_t rows, int64_t dim, const float* weight, float eps) {
#pragma omp parallel for schedule(static) if (rows * dim > 32768)
  for (int64_t r = 0; r < rows; ++r) rms_norm_row(x + r * dim, dim, weight, eps);
}

std::vector<float> default_rope_inv_freq(double base, int64_t dim) {
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in f32.
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  const float fbase = static_cast<float>(base);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[static_cast<size_t>(i)] = 1.f / std::pow(fbase, exponent);
  }
  return inv;
}

Rope::Rope(std::vector<float> inv_freq, float attention_scaling, int64_t head_dim)
    : fixed_{std::move(inv_freq), attention_scaling},
      rotary_dim_(static_cast<int64_t>(fixed_.inv_freq.size()) * 2),
      head_dim_(head_dim ? head_dim : rotary_dim_) {
  check(rotary_dim_ <= head_dim_, ErrorKind::Internal, "rotary dimension wider than the head");
}

Rope::Rope(Schedule schedule, int64_t rotary_dim, int64_t head_dim)
    : schedule_(std::move(schedule)), rotary_dim_(rotary_dim), head_dim_(head_dim) {
  check(rotary_dim_ % 2 == 0 && rotary_dim_ <= head_dim_, ErrorKind::Internal, "bad rotary dimension");
}

// Rotates the first 2 * half floats of each of `heads` heads of one token.
static void rotate_token(float* x, int64_t heads, int64_t head_dim, int64_t half, const float* cos,
                         const float* sin) {
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * head_dim;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] + (-b) * sin[i];
      v[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

void Rope::apply(float* x, int64_t batch, int64_t tokens, int64_t heads, const int32_t* positions) const {
  const int64_t half = rotary_dim_ / 2;
  // The frequencies of each batch row (one shared table when they are fixed).
  std::vector<Frequencies> scheduled;
  if (schedule_) {
    for (int64_t b = 0; b < batch; ++b) {
      const int32_t* row = positions + b * tokens;
      const int64_t longest = tokens ? *std::max_element(row, row + tokens) : 0;
      scheduled.push_back(schedule_(longest + 1));
      check(static_cast<int64_t>(scheduled.back().inv_freq.size()) == half, ErrorKind::Internal,
            "rope schedule returned the wrong number of frequencies");
    }
  }
  const int64_t rows = batch * tokens;
#pragma omp parallel if (rows * heads * rotary_dim_ > 65536)
  {
    std::vector<float> cos(static_cast<size_t>(half)), sin(static_cast<size_t>(half));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const Frequencies& f = schedule_ ? scheduled[static_cast<size_t>(r / tokens)] : fixed_;
      const float pos = static_cast<float>(positions[r]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * f.inv_freq[i];
        cos[i] = std::cos(angle) * f.scaling;
        sin[i] = std::sin(angle) * f.scaling;
      }
      rotate_token(x + r * heads * head_dim_, heads, head_dim_, half, cos.data(), sin.data());
    }
  }
}

// Eight partial sums, one per lane: a single running float sum cannot be vectorised (the
// compiler may not reorder it), and q.k over head_dim is the inner loop of decoding attention.
// Inlined into the attention loop's clones (a call per key and head cost more than the sum).
static inline float dot(const float* a, const float* b, int64_t n) {
  float lanes[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lanes[j] += a[i + j] * b[i + j];
  float s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// omp simd: at -O2 GCC vectorises only loops it needs no run-time checks for, and it cannot
// tell that x and y never overlap; the scalar loop was half of decoding attention's time.
static inline void axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// Copies the new tokens' keys and values into their cache rows.
static void append_to_cache(const float* new_keys, const float* new_values, const CacheView& cache,
                            const CausalAttentionShape& s) {
  const int64_t kv_dim = s.kv_heads * s.head_dim;
  check(s.past + s.new_tokens <= cache.capacity, ErrorKind::Internal,
        "the key/value cache is full (" + std::to_string(cache.capacity) + " positions)");
  for (int64_t b = 0; b < s.batch; ++b) {
    const size_t bytes = sizeof(float) * static_cast<size_t>(s.new_tokens * kv_dim);
    const int64_t row = (b * cache.capacity + s.past) * kv_dim;
    std::memcpy(cache.keys + row, new_keys + b * s.new_tokens * kv_dim, bytes);
    std::memcpy(cache.values + row, new_values + b * s.new_tokens * kv_dim, bytes);
  }
}

// One query row (one token of batch row b, all its heads) and the cache positions it sees.
struct QueryRow {
  const float* q;   // heads * head_dim
  float* out;       // heads * head_dim
  const float* keys;    // batch row b's cache: [capacity, kv_heads * head_dim]
  const float* values;
  const int32_t* mask;  // batch row b's key mask
  int64_t first, last;  // visible positions first .. last (the window, up to the query's own)
};

// Gemma 2's attention soft-capping of one head's scores, over the whole row with the vector
// tanh (a libm tanh per score was scalar); transformers caps before masking, so the masked
// positions (-inf, capped to -cap) are set back to -inf.
static void soft_cap_scores(float* scores, const QueryRow& row, float cap) {
  soft_cap(scores, row.last - row.first + 1, cap);
  for (int64_t t = row.first; t <= row.last; ++t)
    if (!row.mask[t]) scores[t - row.first] = -std::numeric_limits<float>::infinity();
}

// The query heads of key/value heads [kv_begin, kv_end) attend over their visible positions.
// Positions are the outer loop: each cache row holds every head's key (value) contiguously,
// so the cache streams through once per query instead of once per head at a stride of a row
// (measured ~3x faster than head-by-head at batch 8). Scores: [heads of the range][positions].
// Per head the arithmetic and its order are those of a direct softmax(q.k * scale) . v.
HFPIPE_CLONES
static void attend_row(const QueryRow& row, int64_t kv_begin, int64_t kv_end, const CausalAttentionShape& s,
                       float* scores) {
  const int64_t group = s.heads / s.kv_heads, kv_dim = s.kv_heads * s.head_dim, d = s.head_dim;
  const int64_t h_begin = kv_begin * group, h_end = kv_end * group, span = row.last - row.first + 1;
  constexpr float kNone = -std::numeric_limits<float>::infinity();
  for (int64_t t = row.first; t <= row.last; ++t) {
    float* column = scores + (t - row.first);
    if (!row.mask[t]) {
      for (int64_t h = h_begin; h < h_end; ++h) column[(h - h_begin) * span] = kNone;
      continue;
    }
    const float* key = row.keys + t * kv_dim;
    for (int64_t h = h_begin; h < h_end; ++h) {
      column[(h - h_begin) * span] = dot(row.q + h * d, key + (h / group) * d, d) * s.scale;
    }
  }
  if (s.softcap > 0.f)
    for (int64_t h = h_begin; h < h_end; ++h) soft_cap_scores(scores + (h - h_begin) * span, row, s.softcap);
  // Softmax per head; the probabilities replace the scores, already divided by their sum.
  bool any_visible = false;
  for (int64_t h = h_begin; h < h_end; ++h) {
    float* p = scores + (h - h_begin) * span;
    std::fill(row.out + h * d, row.out + (h + 1) * d, 0.f);
    const float best = *std::max_element(p, p + span);
    if (best == kNone) continue;  // nothing visible: a padding row gets zeros
    any_visible = true;
    softmax_rows(p, 1, span);  // the vector kernel: std::exp per score cost ~2% of a step
  }
  if (!any_visible) return;
  for (int64_t t = row.first; t <= row.last; ++t) {
    if (!row.mask[t]) continue;
    const float* value = row.values + t * kv_dim;
    for (int64_t h = h_begin; h < h_end; ++h) {
      const float weight = scores[(h - h_begin) * span + (t - row.first)];
      if (weight != 0.f) axpy(weight, value + (h / group) * d, row.out + h * d, d);
    }
  }
}

void causal_attention(const float* q, const float* new_keys, const float* new_values, const CacheView& cache,
                      const int32_t* key_mask, float* out, const CausalAttentionShape& s) {
  check(s.kv_heads > 0 && s.heads % s.kv_heads == 0, ErrorKind::Internal,
        "attention heads must be a multiple of key/value heads");
  append_to_cache(new_keys, new_values, cache, s);
  // A prompt's tokens attend in tiles; a decoding step's one token per row as below. A prefill
  // takes the tiles even for a one-token prompt, so that a prompt gives the same bits alone as
  // left-padded in a batch.
  if (s.new_tokens > 1 || s.past == 0) return prefill_attention(q, cache, key_mask, out, s);
  const int64_t q_dim = s.heads * s.head_dim, kv_dim = s.kv_heads * s.head_dim, total = s.past + s.new_tokens;
  const int64_t rows = s.batch * s.new_tokens;
  // Threads take query rows; with fewer rows than threads (decoding one sequence) each row's
  // key/value heads are split between them too.
  const int64_t parts = rows >= num_threads() ? 1 : s.kv_heads;
  const int64_t work = rows * parts, group = s.heads / s.kv_heads;
#pragma omp parallel if (work * total * s.head_dim * group > 32768)
  {
    std::vector<float> scores(static_cast<size_t>(s.heads * total));
#pragma omp for schedule(static)
    for (int64_t w = 0; w < work; ++w) {
      const int64_t r = w / parts, part = w % parts, b = r / s.new_tokens, i = r % s.new_tokens;
      const int64_t position = s.past + i;
      const int64_t first = s.sliding_window > 0 ? std::max<int64_t>(0, position - s.sliding_window + 1) : 0;
      const QueryRow row{q + r * q_dim,
                         out + r * q_dim,
                         cache.keys + b * cache.capacity * kv_dim,
                         cache.values + b * cache.capacity * kv_dim,
                         key_mask + b * total,
                         first,
                         position};
      const int64_t kv_begin = part * s.kv_heads / parts, kv_end = (part + 1) * s.kv_heads / parts;
      attend_row(row, kv_begin, kv_end, s, scores.data());
    }
  }
}

HFPIPE_CLONES
void multiply(const float* a, const float* b, float* out, int64_t n) {
  // omp simd: out may be a (in place), which keeps GCC's -O2 vectoriser away otherwise.
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

}  // namespace hfpipe::ops
