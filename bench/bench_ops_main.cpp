// CPU time of hfpipe's own row and element-wise kernels at each SIMD level this CPU runs:
//   hfpipe_bench_ops
// Shapes: softmax over MiniLM's attention scores at 32 x 128 tokens (32 x 12 heads x 128 rows
// of 128), LayerNorm with residual over 32 x 128 rows of 384, the activations over a batch-8
// decoding step's 8 x 3072 MLP, RmsNorm over a SmolLM2-135M batch-8 step (61 x [8, 576]). Each
// figure is the best of many repeats in process CPU time (one thread: run with
// OMP_NUM_THREADS=1), minus the time of restoring the input, in microseconds.
// Then Linear's products of 16-64 rows (one short input of an encoder) over a model's worth of
// distinct weights (so they stream from memory or L3 as in a forward), in GFLOP/s: oneDNN's
// sgemm against skinny_linear's tiles, which Linear takes for 9-40 rows on AVX2.
// Last (alone with the argument "quantized"), quantized_linear on the products of a
// Gemma-3-270M Q4_K_M decoding step at 1, 2 and 8 rows (random blocks, every group read from
// memory), in ms and GB/s of blocks read. With the argument "f32", skinny_linear on a GPT-2-small
// decoding step's f32 products at 1, 2 and 8 rows (ms and GB/s of weights read). With
// "panels", panel_linear on GPT-2-small's shapes at 1-512 rows against the other f32 paths.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/decoder_ops.h"
#include "ops/gemv.h"
#include "ops/linear.h"
#include "ops/ops.h"
#include "ops/panels.h"
#include "ops/quantized.h"
#include "random_blocks.h"  // tests/cpp

namespace {

using namespace hfpipe::ops;

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Best-of-`repeats` CPU microseconds of reset(); body(), minus those of reset() alone.
template <class Reset, class Body>
double best_us(int repeats, Reset reset, Body body) {
  double with = 1e30, without = 1e30;
  for (int r = 0; r < repeats; ++r) {
    double t0 = cpu_seconds();
    reset();
    body();
    with = std::min(with, cpu_seconds() - t0);
    t0 = cpu_seconds();
    reset();
    without = std::min(without, cpu_seconds() - t0);
  }
  return (with - without) * 1e6;
}

std::vector<float> normal_floats(size_t n, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

const char* level_name(SimdLevel l) {
  return l == SimdLevel::Avx512 ? "avx512" : l == SimdLevel::Avx2 ? "avx2" : "plain";
}

// GFLOP/s of `rows` rows through `layers` distinct [out, in] weights, best of 5 passes, on
// oneDNN (Linear with the skinny kernels lowered to plain C++, where Linear sends every row
// count past 8 to oneDNN), on oneDNN over weights packed as encoders' layers pack them (brgemm
// where oneDNN has it, else as the first) and on skinny_linear at this CPU's level.
void bench_linear(const char* name, int64_t rows, int64_t in, int64_t out, int layers) {
  std::vector<std::vector<float>> weights;
  std::vector<Linear> linears;
  for (int l = 0; l < layers; ++l) {
    weights.push_back(normal_floats(static_cast<size_t>(in * out), 0.05f, 10 + l));
    linears.emplace_back(hfpipe::Tensor::view(hfpipe::DType::F32, {out, in}, weights.back().data(), nullptr),
                         hfpipe::Tensor());
  }
  const auto x = normal_floats(static_cast<size_t>(rows * in), 1.f, 9);
  std::vector<float> y(static_cast<size_t>(rows * out));
  const double flop = 2.0 * rows * in * out * layers;
  auto gflops = [&](auto pass) {
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      const double t0 = cpu_seconds();
      pass();
      best = std::min(best, cpu_seconds() - t0);
    }
    return flop / best * 1e-9;
  };
  set_skinny_simd_level(SimdLevel::Plain);
  const double onednn = gflops([&] {
    for (const Linear& linear : linears) linear.forward(x.data(), rows, y.data());
  });
  std::vector<Linear> blocked;  // packed for brgemm where oneDNN has it (AVX-512), as encoders' layers
  for (int l = 0; l < layers; ++l)
    blocked.emplace_back(hfpipe::Tensor::view(hfpipe::DType::F32, {out, in}, weights[l].data(), nullptr),
                         hfpipe::Tensor(), Activation::None, WeightPacking::BlockedWhenFaster);
  for (int warm = 0; warm < 5; ++warm)  // past the layers' plain calls before packing
    for (const Linear& linear : blocked) linear.forward(x.data(), rows, y.data());
  const double packed = gflops([&] {
    for (const Linear& linear : blocked) linear.forward(x.data(), rows, y.data());
  });
  set_skinny_simd_level(cpu_simd_level());
  const double skinny = gflops([&] {
    for (int l = 0; l < layers; ++l)
      skinny_linear(x.data(), rows, weights[l].data(), nullptr, in, out, Activation::None, y.data());
  });
  std::printf("%-22s %3lld rows  oneDNN %5.1f  packed %5.1f  skinny %5.1f GFLOP/s\n", name,
              static_cast<long long>(rows), onednn, packed, skinny);
}

// One decoding step's products, group by group (each group: `name`, `in`, `out`), at 1, 2 and
// 8 rows: best of 5 passes of multiply(group, x, rows, y), with L3 flushed before each (a
// group's weights come from memory as in a model), in ms and GB/s of bytes_of(group).
template <class Group, class Multiply, class Bytes>
void time_step_groups(const std::vector<Group>& groups, Multiply multiply, Bytes bytes_of) {
  std::vector<float> flush(16 << 20);  // 64 MB: evicts L3 between timed passes
  for (int64_t rows : {1, 2, 8}) {
    double total = 0.0;
    std::printf("%lld rows:\n", static_cast<long long>(rows));
    for (const auto& g : groups) {
      const auto x = normal_floats(static_cast<size_t>(rows * g.in), 1.f, 9);
      std::vector<float> y(static_cast<size_t>(rows * g.out));
      double best = 1e30;
      for (int r = 0; r < 5; ++r) {
        for (float& f : flush) f += 1.f;
        const double t0 = cpu_seconds();
        multiply(g, x.data(), rows, y.data());
        best = std::min(best, cpu_seconds() - t0);
      }
      const double bytes = bytes_of(g);
      std::printf("  %-26s %6.2f ms %5.1f GB/s\n", g.name, best * 1e3, bytes / best * 1e-9);
      total += best;
    }
    std::printf("  %-26s %6.2f ms\n", "step", total * 1e3);
  }
}

// The products of one Gemma-3-270M decoding step (its Q4_K_M file: 18 layers; [out, in]
// shapes and counts as stored), random blocks of the same formats: 243 MB, so that each
// group's blocks come from memory as in the model, not from L3.
struct QuantizedGroup {
  const char* name;
  QuantFormat format;
  int64_t out, in;
  int count;
  std::vector<QuantizedMatrix> weights;
};

void bench_quantized() {
  std::vector<QuantizedGroup> groups = {
      {"Q5_0 2048x640 (gate, up)", QuantFormat::Q5_0, 2048, 640, 36, {}},
      {"Q5_0 1024x640 (q)", QuantFormat::Q5_0, 1024, 640, 18, {}},
      {"Q5_0 256x640 (k, v)", QuantFormat::Q5_0, 256, 640, 27, {}},
      {"Q8_0 256x640 (v)", QuantFormat::Q8_0, 256, 640, 9, {}},
      {"Q4_K 640x1024 (o)", QuantFormat::Q4_K, 640, 1024, 18, {}},
      {"Q4_K 640x2048 (down)", QuantFormat::Q4_K, 640, 2048, 9, {}},
      {"Q6_K 640x2048 (down)", QuantFormat::Q6_K, 640, 2048, 9, {}},
      {"Q8_0 262144x640 (lm_head)", QuantFormat::Q8_0, 262144, 640, 1, {}}};
  unsigned seed = 20;
  for (auto& g : groups)
    for (int l = 0; l < g.count; ++l) g.weights.push_back(make_quantized_matrix(g.format, g.out, g.in, hfpipe::testing::random_blocks(g.format, g.out, g.in, seed++)));
  time_step_groups(groups, [](const QuantizedGroup& g, const float* x, int64_t rows, float* y) {
    for (const QuantizedMatrix& w : g.weights) quantized_linear(w, x, rows, nullptr, y);
  }, [](const QuantizedGroup& g) { return static_cast<double>(g.weights[0].bytes.nbytes()) * g.count; });
}

// The products of one GPT-2-small decoding step in f32 (12 layers' [out, in] weights as hfpipe
// holds them: c_attn split into q, k and v; and the tied lm_head: 497 MB), each group streamed from memory, at 1, 2 and 8 rows.
void bench_f32_step() {
  struct Group {
    const char* name;
    int64_t out, in;
    int count;
    std::vector<std::vector<float>> weights;
  };
  std::vector<Group> groups = {{"768x768 (q, k, v)", 768, 768, 36, {}},
                               {"768x768 (proj)", 768, 768, 12, {}},
                               {"3072x768 (fc)", 3072, 768, 12, {}},
                               {"768x3072 (fc proj)", 768, 3072, 12, {}},
                               {"50257x768 (lm_head)", 50257, 768, 1, {}}};
  unsigned seed = 20;
  for (auto& g : groups)
    for (int l = 0; l < g.count; ++l) g.weights.push_back(normal_floats(static_cast<size_t>(g.out * g.in), 0.05f, seed++));
  time_step_groups(groups, [](const Group& g, const float* x, int64_t rows, float* y) {
    for (const auto& w : g.weights) skinny_linear(x, rows, w.data(), nullptr, g.in, g.out, Activation::None, y);
  }, [](const Group& g) { return 4.0 * static_cast<double>(g.out * g.in) * g.count; });
}

// GPT-2-small's f32 products (12 layers of each shape, so they stream from memory as in a
// model) at a prompt's row counts: panel_linear (ops/panels.h, what GPT-2 and f32 decoders
// run) against skinny_linear's tiles (up to 64 rows), both at every level this CPU has, and oneDNN on
// the plain weights (plain_weight_product: brgemm on AVX-512, else sgemm), in GFLOP/s.
void bench_panels() {
  struct Shape {
    const char* name;
    int64_t out, in;
  };
  const Shape shapes[] = {{"768x768 (q, k, v, proj)", 768, 768},
                          {"2304x768 (c_attn)", 2304, 768},
                          {"3072x768 (fc)", 3072, 768},
                          {"768x3072 (fc proj)", 768, 3072}};
  constexpr int kLayers = 12;
  for (const Shape& s : shapes) {
    std::vector<std::vector<float>> weights;
    std::vector<PanelMatrix> panels;
    for (int l = 0; l < kLayers; ++l) {
      weights.push_back(normal_floats(static_cast<size_t>(s.out * s.in), 0.05f, 30 + l));
      panels.push_back(panels_from_rows(weights.back().data(), s.out, s.in));
    }
    for (int64_t rows : {1, 8, 16, 64, 512}) {
      const auto x = normal_floats(static_cast<size_t>(rows * s.in), 1.f, 9);
      std::vector<float> y(static_cast<size_t>(rows * s.out));
      auto gflops = [&](auto layer) {
        double best = 1e30;
        for (int r = 0; r < 5; ++r) {
          const double t0 = cpu_seconds();
          for (int l = 0; l < kLayers; ++l) layer(l);
          best = std::min(best, cpu_seconds() - t0);
        }
        return 2.0 * rows * s.in * s.out * kLayers / best * 1e-9;
      };
      std::printf("%-24s %3lld rows  panels", s.name, static_cast<long long>(rows));
      for (SimdLevel level : {SimdLevel::Avx512, SimdLevel::Avx2}) {
        if (level > cpu_simd_level()) continue;
        set_skinny_simd_level(level);
        std::printf(" %s %5.1f", level_name(level),
                    gflops([&](int l) { panel_linear(panels[l], x.data(), rows, nullptr, y.data()); }));
      }
      std::printf("  skinny");
      for (SimdLevel level : {SimdLevel::Avx512, SimdLevel::Avx2}) {
        if (level > cpu_simd_level() || rows > 64) continue;
        set_skinny_simd_level(level);
        std::printf(" %s %5.1f", level_name(level), gflops([&](int l) {
                      skinny_linear(x.data(), rows, weights[l].data(), nullptr, s.in, s.out, Activation::None, y.data());
                    }));
      }
      set_skinny_simd_level(cpu_simd_level());
      std::printf("  oneDNN %5.1f GFLOP/s\n", gflops([&](int l) {
                    plain_weight_product(x.data(), rows, weights[l].data(), s.out, s.in, y.data(), s.out);
                  }));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // `quantized [avx2|plain]`: the kernels of a level below the CPU's too, to compare them on one machine.
  if (argc >= 2 && std::string(argv[1]) == "quantized") {  // only the block formats' products
    if (argc == 3) {
      const std::string level = argv[2];
      if (level != "avx2" && level != "plain") {
        std::fprintf(stderr, "usage: %s quantized [avx2|plain]\n", argv[0]);
        return 2;
      }
      set_skinny_simd_level(level == "avx2" ? SimdLevel::Avx2 : SimdLevel::Plain);
    }
    bench_quantized();
    return 0;
  }
  if (argc == 2 && std::string(argv[1]) == "f32") {  // only a GPT-2-small step's f32 products
    bench_f32_step();
    return 0;
  }
  if (argc == 2 && std::string(argv[1]) == "panels") {  // only panel_linear against the others
    bench_panels();
    return 0;
  }
  const auto scores = normal_floats(32 * 12 * 128 * 128, 3.f, 1);
  const auto hidden = normal_floats(32 * 128 * 384, 3.f, 2), residual = normal_floats(hidden.size(), 1.f, 3);
  const std::vector<float> gamma(384, 1.1f), beta(384, 0.1f), rms_weight(576, 1.01f);
  const auto mlp = normal_floats(8 * 3072, 3.f, 4), rms_rows = normal_floats(8 * 576, 3.f, 5);
  std::vector<float> buffer;
  const auto reset_to = [&buffer](const std::vector<float>& source) {
    return [&buffer, from = &source] { buffer = *from; };
  };
  for (SimdLevel level : {SimdLevel::Plain, SimdLevel::Avx2, SimdLevel::Avx512}) {
    if (level > cpu_simd_level()) continue;
    set_row_simd_level(level);
    std::printf("%-6s softmax %.0f  add_layer_norm %.0f", level_name(level),
                best_us(20, reset_to(scores), [&] { softmax_rows(buffer.data(), 32 * 12 * 128, 128); }),
                best_us(20, reset_to(hidden), [&] {
                  add_layer_norm(buffer.data(), residual.data(), 32 * 128, 384, gamma.data(), beta.data(), 1e-12f);
                }));
    const std::pair<const char*, Activation> activations[] = {{"gelu_tanh", Activation::GeluTanh},
                                                              {"gelu_erf", Activation::GeluErf},
                                                              {"silu", Activation::Silu},
                                                              {"tanh", Activation::Tanh}};
    for (const auto& [name, activation] : activations)
      std::printf("  %s %.1f", name, best_us(300, reset_to(mlp), [&] {
                    apply_activation(buffer.data(), static_cast<int64_t>(buffer.size()), activation);
                  }));
    std::printf(" us\n");
  }
  set_row_simd_level(cpu_simd_level());
  std::printf("rms_norm (target_clones, any level) %.0f us\n", best_us(50, reset_to(rms_rows), [&] {
                for (int layer = 0; layer < 61; ++layer) rms_norm(buffer.data(), 8, 576, rms_weight.data(), 1e-5f);
              }));
  std::printf("linear (%s):\n", level_name(cpu_simd_level()));
  for (int64_t rows : {16, 32, 48, 64, 96, 128}) {
    bench_linear("MiniLM 384x384 x24", rows, 384, 384, 24);
    bench_linear("MiniLM 384x1536 x6", rows, 384, 1536, 6);
    bench_linear("MiniLM 1536x384 x6", rows, 1536, 384, 6);
    bench_linear("BERT-base 768x768 x48", rows, 768, 768, 48);
    bench_linear("BERT-base 768x3072 x12", rows, 768, 3072, 12);
    bench_linear("BERT-base 3072x768 x12", rows, 3072, 768, 12);
  }
  std::printf("quantized_linear (Gemma-3-270M's formats):\n");
  bench_quantized();
}
