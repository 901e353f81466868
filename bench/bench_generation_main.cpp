// Greedy decoding speed of hfpipe's generation engine, for bench/bench_generation.py:
//   hfpipe_bench_generation MODEL NEW_TOKENS EOS_ID THREADS REPEATS BATCHES [DTYPE] < PROMPTS
// MODEL is a model folder or a .gguf file; PROMPTS has one prompt per line as space-separated
// token ids; BATCHES is a comma-separated list of batch sizes (batch b decodes the first b
// prompts). Exactly NEW_TOKENS tokens per row (min_new_tokens = max_new_tokens; EOS_ID is only
// suppressed, as transformers' MinNewTokensLengthLogitsProcessor does, so both sides choose the
// same ids). DTYPE is pipeline()'s torch_dtype: float32 (the default) or bfloat16. Prints one JSON line, a list with one entry per batch size: time to first token
// (prefill + the first token) and total time, best of REPEATS, in wall-clock seconds and in the
// process's CPU seconds (the figure to compare on a loaded machine), and the generated ids.
// Each batch size is warmed up first with a 4-token call, untimed, as bench_generation.py's
// transformers worker is.
//
// It times the engine (ids in, ids out) rather than the CLI because the CLI cannot tell when
// the first token was chosen: its streamer holds text back until a word is complete.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/config.h"
#include "formats/weights.h"
#include "generation/generate.h"
#include "models/decoder.h"
#include "ops/linear.h"

namespace {

using clock_type = std::chrono::steady_clock;

// CPU seconds used by the whole process so far (every thread, user + system).
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

std::unique_ptr<hfpipe::models::DecoderModel> load(const std::string& path, hfpipe::ops::Precision precision) {
  if (path.size() > 5 && path.substr(path.size() - 5) == ".gguf")
    return hfpipe::models::load_gguf_decoder(path, precision);
  return hfpipe::models::load_decoder(hfpipe::formats::ModelConfig::load(path),
                                      hfpipe::formats::load_checkpoint(path, precision));
}

std::vector<std::vector<int32_t>> read_prompts(std::istream& in) {
  std::vector<std::vector<int32_t>> prompts;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<int32_t> ids;
    for (int32_t id; words >> id;) ids.push_back(id);
    if (!ids.empty()) prompts.push_back(std::move(ids));
  }
  return prompts;
}

struct Timing {
  double first = 1e30, total = 1e30;          // wall-clock
  double first_cpu = 1e30, total_cpu = 1e30;  // process CPU time
  std::vector<std::vector<int32_t>> ids;
};

Timing run(const hfpipe::models::DecoderModel& model, const std::vector<hfpipe::generation::Row>& rows,
           const hfpipe::generation::GenerationConfig& config, int32_t pad, int repeats) {
  // One short warm-up call per batch size, as the transformers worker makes: the first call
  // also faults in the mmapped weights and grows the arenas (~80 ms more on GPT-2's 497 MB),
  // which neither side's timed runs should include (load time is reported apart).
  constexpr int64_t kWarmUpTokens = 4;
  auto warm_rows = rows;
  for (auto& row : warm_rows)
    row.limits.max_length = row.limits.min_length = row.limits.prompt_length + kWarmUpTokens;
  hfpipe::generation::generate(model, warm_rows, config, pad, [](size_t, int32_t) {});
  Timing best;
  for (int r = 0; r < repeats; ++r) {
    const auto start = clock_type::now();
    const double start_cpu = cpu_seconds();
    double first = -1.0, first_cpu = -1.0;
    auto on_token = [&](size_t, int32_t) {
      if (first >= 0) return;
      first = std::chrono::duration<double>(clock_type::now() - start).count();
      first_cpu = cpu_seconds() - start_cpu;
    };
    auto ids = hfpipe::generation::generate(model, rows, config, pad, on_token);
    const double total = std::chrono::duration<double>(clock_type::now() - start).count();
    const double total_cpu = cpu_seconds() - start_cpu;
    best.first = std::min(best.first, first);
    best.total = std::min(best.total, total);
    best.first_cpu = std::min(best.first_cpu, first_cpu);
    best.total_cpu = std::min(best.total_cpu, total_cpu);
    best.ids = std::move(ids);
  }
  return best;
}

std::string ids_json(const std::vector<std::vector<int32_t>>& rows) {
  std::string s = "[";
  for (size_t r = 0; r < rows.size(); ++r) {
    s += r ? ",[" : "[";
    for (size_t i = 0; i < rows[r].size(); ++i) s += (i ? "," : "") + std::to_string(rows[r][i]);
    s += "]";
  }
  return s + "]";
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string dtype = argc == 8 ? argv[7] : "float32";
  if ((argc != 7 && argc != 8) || (dtype != "float32" && dtype != "bfloat16")) {
    std::fprintf(stderr, "usage: %s MODEL NEW_TOKENS EOS_ID THREADS REPEATS BATCHES [float32|bfloat16] < PROMPTS\n",
                 argv[0]);
    return 2;
  }
  const int64_t new_tokens = std::stoll(argv[2]);
  const int32_t eos = std::stoi(argv[3]);
  hfpipe::ops::set_num_threads(std::stoi(argv[4]));
  const int repeats = std::stoi(argv[5]);
  const auto load_start = clock_type::now();
  const auto model =
      load(argv[1], dtype == "bfloat16" ? hfpipe::ops::Precision::BFloat16 : hfpipe::ops::Precision::Float32);
  const double load_s = std::chrono::duration<double>(clock_type::now() - load_start).count();
  const auto prompts = read_prompts(std::cin);

  hfpipe::generation::GenerationConfig config;
  config.max_new_tokens = config.min_new_tokens = new_tokens;
  config.eos_token_id = {eos};
  std::string out = "[";
  std::stringstream batches(argv[6]);
  for (std::string item; std::getline(batches, item, ',');) {
    const size_t batch = std::stoul(item);
    hfpipe::check(batch >= 1 && batch <= prompts.size(), hfpipe::ErrorKind::InvalidArgument,
                  "batch " + item + " needs that many prompt lines on stdin");
    std::vector<hfpipe::generation::Row> rows(batch);
    int64_t longest = 0;
    for (size_t b = 0; b < batch; ++b) {
      rows[b].prompt = prompts[b];
      rows[b].limits = hfpipe::generation::resolve_limits(config, static_cast<int64_t>(prompts[b].size()), false,
                                                          model->max_position_embeddings());
      longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[b].size()));
    }
    const Timing t = run(*model, rows, config, eos, repeats);
    char head[256];
    std::snprintf(head, sizeof head,
                  "{\"batch\": %zu, \"load_s\": %.4f, \"ttft_s\": %.6f, \"total_s\": %.6f, \"ttft_cpu_s\": %.6f, "
                  "\"total_cpu_s\": %.6f, ",
                  batch, load_s, t.first, t.total, t.first_cpu, t.total_cpu);
    out += (out.size() > 1 ? ", " : "") + std::string(head) + "\"ids\": " + ids_json(t.ids) + "}";
    std::fprintf(stderr, "batch %zu: %.3f s (CPU: first token %.3f s, total %.3f s)\n", batch, t.total, t.first_cpu,
                 t.total_cpu);
  }
  std::printf("%s]\n", out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "hfpipe_bench_generation: %s\n", e.what());
  return 1;
}
