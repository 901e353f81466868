// Llama-architecture GGUF files as Llama models, the way transformers' GGUF loader
// (modeling_gguf_pytorch_utils.py, integrations/ggml.py) reads them: the config from the
// llama.* metadata keys, tensors renamed to transformers' state-dict names, and the query /
// key projections un-permuted (llama.cpp's converter interleaves each head's rotary halves).
#include <cstring>
#include <map>

#include "core/error.h"
#include "formats/gguf.h"
#include "models/decoder.h"

namespace hfpipe::models {

namespace {

// GGUF metadata key (after "llama.") → config.json key (GGUF_CONFIG_MAPPING["llama"]).
const std::map<std::string, std::string>& llama_config_keys() {
  static const std::map<std::string, std::string> keys = {
      {"context_length", "max_position_embeddings"},
      {"block_count", "num_hidden_layers"},
      {"feed_forward_length", "intermediate_size"},
      {"embedding_length", "hidden_size"},
      {"rope.dimension_count", "head_dim"},
      {"rope.freq_base", "rope_theta"},
      {"attention.head_count", "num_attention_heads"},
      {"attention.head_count_kv", "num_key_value_heads"},
      {"attention.layer_norm_rms_epsilon", "rms_norm_eps"},
      {"vocab_size", "vocab_size"}};
  return keys;
}

// GGUF tensor name → transformers' name; empty for tensors transformers does not load.
std::string hf_name(const std::string& gguf) {
  static const std::map<std::string, std::string> whole = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                           {"output_norm.weight", "model.norm.weight"},
                                                           {"output.weight", "lm_head.weight"}};
  if (auto it = whole.find(gguf); it != whole.end()) return it->second;
  static const std::map<std::string, std::string> parts = {
      {"attn_norm", "input_layernorm"},  {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},    {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},     {"ffn_up", "mlp.up_proj"},         {"ffn_down", "mlp.down_proj"}};
  if (gguf.rfind("blk.", 0) != 0) return "";
  const size_t dot = gguf.find('.', 4), last = gguf.rfind('.');
  if (dot == std::string::npos || last <= dot) return "";
  auto it = parts.find(gguf.substr(dot + 1, last - dot - 1));
  if (it == parts.end()) return "";
  return "model.layers." + gguf.substr(4, dot - 4) + "." + it->second + gguf.substr(last);
}

// LlamaTensorProcessor._reverse_permute_weights: rows (head, dim, 2) → (head, 2, dim).
Tensor reverse_permute(const Tensor& w, int64_t heads) {
  const int64_t rows = w.dim(0), cols = w.numel() / rows, half = rows / heads / 2;
  check(heads > 0 && rows % (2 * heads) == 0, ErrorKind::CorruptFile,
        "a GGUF attention projection has a row count that is not a multiple of 2 x heads");
  Tensor out = Tensor::empty(DType::F32, w.shape());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < half; ++b)
        std::memcpy(out.f32() + ((h * 2 + a) * half + b) * cols, w.f32() + ((h * half + b) * 2 + a) * cols,
                    sizeof(float) * cols);
  return out;
}

Value llama_config(const formats::GgufFile& file) {
  const Value& meta = file.metadata();
  Value config = {{"model_type", "llama"}, {"architectures", {"LlamaForCausalLM"}}};
  for (const auto& [key, hf_key] : llama_config_keys())
    if (meta.contains("llama." + key)) config[hf_key] = meta["llama." + key];
  bool has_output = false;
  for (const auto& t : file.tensors()) {
    has_output = has_output || t.name == "output.weight";
    if (t.name == "token_embd.weight" && !config.contains("vocab_size")) config["vocab_size"] = t.shape.at(0);
  }
  config["tie_word_embeddings"] = !has_output;  // transformers: tied when there is no output.weight
  for (const char* key : {"num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size"})
    check(config.contains(key), ErrorKind::CorruptFile, std::string("the GGUF file lacks llama.* metadata for ") + key);
  if (!config.contains("num_key_value_heads")) config["num_key_value_heads"] = config["num_attention_heads"];
  return config;
}

}  // namespace

std::unique_ptr<DecoderModel> load_gguf_decoder(const std::filesystem::path& path) {
  const auto file = formats::GgufFile::open(path);
  const std::string arch = file.metadata().value("general.architecture", std::string());
  if (arch != "llama")
    fail(ErrorKind::UnsupportedModel,
         "GGUF architecture '" + arch + "' is not supported for text generation; supported: llama");
  const Value json = llama_config(file);
  const auto config = formats::ModelConfig::from_json(json, path.string());
  const int64_t heads = json["num_attention_heads"].get<int64_t>(), kv_heads = json["num_key_value_heads"].get<int64_t>();
  formats::WeightMap weights;
  for (const auto& info : file.tensors()) {
    const std::string name = hf_name(info.name);
    if (name.empty()) continue;
    Tensor t = file.load(info);
    if (info.name.find(".attn_q.") != std::string::npos) t = reverse_permute(t, heads);
    if (info.name.find(".attn_k.") != std::string::npos) t = reverse_permute(t, kv_heads);
    weights.insert(name, std::move(t));
  }
  return make_llama(config, std::move(weights));
}

}  // namespace hfpipe::models
