// Phi-3 (modeling_phi3.py): the Llama network with fused projections (qkv_proj holds
// [q; k; v], gate_up_proj holds [gate; up]), optionally partial rotary embeddings
// (partial_rotary_factor), a sliding window on every layer when sliding_window is set, and
// longrope scaling. The fused matrices are split at load and the network runs as Llama
// (llama.cpp); this file adds what generation with longrope needs.
//
// Longrope uses short_factor until a sequence passes original_max_position_embeddings and
// long_factor after. Phi3ForCausalLM.prepare_inputs_for_generation drops the cache at that
// crossing so that the whole sequence is recomputed with the long factors; the model here
// does the same from the ids and positions the cache has recorded, so generating through the
// switch gives what transformers gives (including its quirk: that one recompute ignores the
// sliding window). A batch behaves as its rows one by one: each row switches at its own
// length and only that row is recomputed.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "models/decoder.h"

namespace hfpipe::models {

namespace {

// The checkpoint with every fused projection split into the Llama names.
formats::WeightMap split_fused(const formats::ModelConfig& c, const formats::WeightMap& fused) {
  const int64_t heads = c.get_int("num_attention_heads"), kv_heads = c.get_int("num_key_value_heads", heads);
  const int64_t head_dim = c.get_int("head_dim", c.get_int("hidden_size") / heads);
  const int64_t intermediate = c.get_int("intermediate_size");
  const int64_t q_rows = heads * head_dim, kv_rows = kv_heads * head_dim;
  formats::WeightMap out;
  out.set_precision(fused.precision());
  auto renamed = [](const std::string& name, const std::string& from, const std::string& to) {
    return name.substr(0, name.size() - from.size()) + to;
  };
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const std::string& name : fused.names()) {
    const Tensor& t = fused.at(name);
    if (ends_with(name, "self_attn.qkv_proj.weight")) {
      const std::string from = "qkv_proj.weight";
      out.insert(renamed(name, from, "q_proj.weight"), fused_rows(t, 0, q_rows));
      out.insert(renamed(name, from, "k_proj.weight"), fused_rows(t, q_rows, kv_rows));
      out.insert(renamed(name, from, "v_proj.weight"), fused_rows(t, q_rows + kv_rows, kv_rows));
      MappedFile::release_pages(t.raw(), t.nbytes());  // only the copies are read from here on
    } else if (ends_with(name, "mlp.gate_up_proj.weight")) {
      const std::string from = "gate_up_proj.weight";
      out.insert(renamed(name, from, "gate_proj.weight"), fused_rows(t, 0, intermediate));
      out.insert(renamed(name, from, "up_proj.weight"), fused_rows(t, intermediate, intermediate));
      MappedFile::release_pages(t.raw(), t.nbytes());
    } else {
      out.insert(name, t);
    }
  }
  return out;
}

bool uses_longrope(const formats::ModelConfig& c) {
  if (!c.has("rope_scaling") || !c.json()["rope_scaling"].is_object()) return false;
  const Value& s = c.json()["rope_scaling"];
  const std::string type = s.value("rope_type", s.value("type", std::string()));
  return type == "longrope" || type == "su" || type == "yarn";  // Phi3Config renames su and yarn
}

class Phi3 : public DecoderModel {
 public:
  Phi3(const formats::ModelConfig& config, formats::WeightMap weights)
      : llama_(make_llama(config, split_fused(config, weights))), longrope_(uses_longrope(config)) {
    // Phi3Config always has original_max_position_embeddings (default 4096).
    original_ = config.get_int("original_max_position_embeddings", 4096);
  }

  Tensor forward(const DecoderStep& step, KvCache& cache, bool all_positions) const override {
    if (!longrope_) return llama_->forward(step, cache, all_positions);
    const std::vector<int64_t> switching = rows_switching_to_long_factors(step, cache);
    cache.record(step.ids, step.positions, step.new_tokens);
    Tensor logits = llama_->forward(step, cache, all_positions);
    for (int64_t b : switching) recompute_row(b, step, cache, all_positions, logits);
    return logits;
  }

  KvCache new_cache(int64_t batch, int64_t capacity) const override { return llama_->new_cache(batch, capacity); }
  int64_t vocab_size() const override { return llama_->vocab_size(); }
  int64_t max_position_embeddings() const override { return llama_->max_position_embeddings(); }
  bool positions_are_bounded() const override { return false; }

 private:
  // The rows that reach position original_max_position_embeddings in this step after their
  // cache was filled with the short factors.
  std::vector<int64_t> rows_switching_to_long_factors(const DecoderStep& step, const KvCache& cache) const {
    std::vector<int64_t> rows;
    if (cache.length() == 0) return rows;
    for (int64_t b = 0; b < step.batch; ++b) {
      const int32_t* now = step.positions + b * step.new_tokens;
      const int32_t* before = cache.recorded_positions(b);
      const int32_t newest = *std::max_element(now, now + step.new_tokens);
      const int32_t cached = *std::max_element(before, before + cache.length());
      if (newest >= original_ && cached < original_) rows.push_back(b);
    }
    return rows;
  }

  // Runs row b's whole recorded sequence (this step included) again on its own, as
  // transformers does for a batch of one, and puts its keys, values and logits in place of
  // those the batched step computed for it. transformers passes that recompute the step's
  // cache_position (one position) with no cache, so its mask is skipped and SDPA runs plain
  // causal attention: no sliding window for this one forward.
  void recompute_row(int64_t b, const DecoderStep& step, KvCache& cache, bool all_positions, Tensor& logits) const {
    const int64_t total = cache.length();  // the step is already in the cache
    const int32_t* mask = step.key_mask + b * total;
    const DecoderStep row{1, total, cache.recorded_ids(b), cache.recorded_positions(b), mask, true};
    KvCache alone = llama_->new_cache(1, total);
    const Tensor row_logits = llama_->forward(row, alone, all_positions);
    cache.copy_row(b, alone, 0, total);
    const int64_t vocab = vocab_size(), n = all_positions ? step.new_tokens : 1;
    const float* from = row_logits.f32() + (all_positions ? (total - step.new_tokens) * vocab : 0);
    std::memcpy(logits.f32() + b * n * vocab, from, sizeof(float) * static_cast<size_t>(n * vocab));
  }

  std::unique_ptr<DecoderModel> llama_;
  bool longrope_ = false;
  int64_t original_ = 0;
};

}  // namespace

std::unique_ptr<DecoderModel> make_phi3(const formats::ModelConfig& config, formats::WeightMap weights) {
  return std::make_unique<Phi3>(config, std::move(weights));
}

}  // namespace hfpipe::models
