// Tokenizer encode throughput of hfpipe's engine, for bench/bench_tokenizers.py:
//   hfpipe_bench_tokenizers FOLDER CORPUS REPEATS
// prints one JSON line: load seconds, one-thread MB/s (encode() per line) and batch MB/s
// (encode_batch over all lines on every OpenMP thread), best of REPEATS.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s FOLDER CORPUS REPEATS\n", argv[0]);
    return 2;
  }
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  auto tok = hfpipe::text::Tokenizer::from_folder(argv[1]);
  double load = std::chrono::duration<double>(clock::now() - t0).count();
  std::ifstream f(argv[2], std::ios::binary);
  std::vector<std::string> lines;
  size_t bytes = 0;
  for (std::string l; std::getline(f, l);) {
    bytes += l.size();
    lines.push_back(std::move(l));
  }
  int repeats = std::stoi(argv[3]);
  hfpipe::text::EncodeOptions opts;
  double best_single = 1e30, best_batch = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    auto a = clock::now();
    tokens = 0;
    for (const auto& l : lines) tokens += tok.encode(l, opts).ids.size();
    best_single = std::min(best_single, std::chrono::duration<double>(clock::now() - a).count());
    auto b = clock::now();
    auto encs = tok.encode_batch(lines, {}, opts);
    best_batch = std::min(best_batch, std::chrono::duration<double>(clock::now() - b).count());
  }
  std::printf("{\"load_s\": %.4f, \"single_mb_s\": %.3f, \"batch_mb_s\": %.3f, \"tokens\": %zu, \"threads\": %d}\n", load,
              bytes / best_single / 1e6, bytes / best_batch / 1e6, tokens, omp_get_max_threads());
  return 0;
}
