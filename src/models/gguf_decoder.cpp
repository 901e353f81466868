// GGUF files as decoder models, the way transformers' GGUF loader (modeling_gguf_pytorch_utils.py,
// integrations/ggml.py) reads them: the config from the <arch>.* and tokenizer.ggml.*_token_id
// metadata keys (GGUF_CONFIG_MAPPING), tensors renamed to transformers' state-dict names, and
//   llama:  the query / key projections un-permuted (llama.cpp's converter interleaves each
//           head's rotary halves; LlamaTensorProcessor);
//   gemma3: every *norm.weight minus 1 (llama.cpp's converter stores Gemma's (1 + w) RMSNorm
//           scale; Gemma2TensorProcessor undoes it), as a "gemma3_text" model.
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <vector>

#include "core/error.h"
#include "formats/gguf.h"
#include "models/decoder.h"

namespace hfpipe::models {

namespace {

using KeyMap = std::map<std::string, std::string>;

// GGUF metadata key (after "<arch>.") → config.json key (GGUF_CONFIG_MAPPING[arch]).
const KeyMap& llama_config_keys() {
  static const KeyMap keys = {{"context_length", "max_position_embeddings"},
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

const KeyMap& gemma3_config_keys() {
  static const KeyMap keys = {{"context_length", "max_position_embeddings"},
                              {"block_count", "num_hidden_layers"},
                              {"feed_forward_length", "intermediate_size"},
                              {"embedding_length", "hidden_size"},
                              {"rope.freq_base", "rope_theta"},
                              {"attention.key_length", "head_dim"},  // key_length == value_length == head_dim
                              {"attention.head_count", "num_attention_heads"},
                              {"attention.head_count_kv", "num_key_value_heads"},
                              {"attention.layer_norm_rms_epsilon", "rms_norm_eps"},
                              {"attention.sliding_window", "sliding_window"},
                              {"vocab_size", "vocab_size"}};
  return keys;
}

// GGUF_CONFIG_MAPPING["tokenizer"]: the special token ids land in the model config too (and from
// there in its generation config: bos / eos / pad of generate()).
const KeyMap& tokenizer_config_keys() {
  static const KeyMap keys = {{"ggml.bos_token_id", "bos_token_id"},
                              {"ggml.eos_token_id", "eos_token_id"},
                              {"ggml.unknown_token_id", "unk_token_id"},
                              {"ggml.padding_token_id", "pad_token_id"}};
  return keys;
}

// The per-layer part of a GGUF tensor name → transformers' (gguf-py's tensor name map).
const KeyMap& llama_layer_names() {
  static const KeyMap parts = {
      {"attn_norm", "input_layernorm"},  {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},    {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},     {"ffn_up", "mlp.up_proj"},         {"ffn_down", "mlp.down_proj"}};
  return parts;
}

const KeyMap& gemma3_layer_names() {
  static const KeyMap parts = {{"attn_norm", "input_layernorm"},
                               {"attn_q", "self_attn.q_proj"},
                               {"attn_k", "self_attn.k_proj"},
                               {"attn_v", "self_attn.v_proj"},
                               {"attn_output", "self_attn.o_proj"},
                               {"attn_q_norm", "self_attn.q_norm"},
                               {"attn_k_norm", "self_attn.k_norm"},
                               {"post_attention_norm", "post_attention_layernorm"},
                               {"ffn_norm", "pre_feedforward_layernorm"},
                               {"post_ffw_norm", "post_feedforward_layernorm"},
                               {"ffn_gate", "mlp.gate_proj"},
                               {"ffn_up", "mlp.up_proj"},
                               {"ffn_down", "mlp.down_proj"}};
  return parts;
}

// GGUF tensor name → transformers' name; empty for tensors transformers does not load.
std::string hf_name(const std::string& gguf, const KeyMap& parts) {
  static const std::map<std::string, std::string> whole = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                           {"output_norm.weight", "model.norm.weight"},
                                                           {"output.weight", "lm_head.weight"}};
  if (auto it = whole.find(gguf); it != whole.end()) return it->second;
  if (gguf.rfind("blk.", 0) != 0) return "";
  const size_t dot = gguf.find('.', 4), last = gguf.rfind('.');
  if (dot == std::string::npos || last <= dot) return "";
  auto it = parts.find(gguf.substr(dot + 1, last - dot - 1));
  if (it == parts.end()) return "";
  return "model.layers." + gguf.substr(4, dot - 4) + "." + it->second + gguf.substr(last);
}

// An owned, writable copy of `w`.
Tensor copy_of(const Tensor& w) {
  Tensor out = Tensor::empty(DType::F32, w.shape());
  std::memcpy(out.f32(), w.f32(), w.nbytes());
  return out;
}

// Which architectures load, with their key and tensor-name maps.
struct Arch {
  const char* gguf;        // general.architecture
  const char* model_type;  // transformers' (gemma3 → gemma3_text: the GGUF holds the text model only)
  const char* hf_class;
  const KeyMap& (*config_keys)();
  const KeyMap& (*layer_names)();
};

const Arch& arch_of(const formats::GgufFile& file, const std::string& where) {
  static const Arch archs[] = {{"llama", "llama", "LlamaForCausalLM", llama_config_keys, llama_layer_names},
                               {"gemma3", "gemma3_text", "Gemma3ForCausalLM", gemma3_config_keys, gemma3_layer_names}};
  const Value& meta = file.metadata();
  const std::string arch = meta.contains("general.architecture") && meta["general.architecture"].is_string()
                               ? meta["general.architecture"].get<std::string>()
                               : std::string();
  for (const Arch& a : archs)
    if (arch == a.gguf) return a;
  fail(ErrorKind::UnsupportedModel, where + ": GGUF architecture '" + arch +
                                        "' is not supported for text generation; supported: llama, gemma3");
}

Value config_of(const formats::GgufFile& file, const Arch& arch) {
  const Value& meta = file.metadata();
  Value config = {{"model_type", arch.model_type}, {"architectures", {arch.hf_class}}};
  for (const auto& [key, hf_key] : arch.config_keys())
    if (meta.contains(std::string(arch.gguf) + "." + key)) config[hf_key] = meta[std::string(arch.gguf) + "." + key];
  for (const auto& [key, hf_key] : tokenizer_config_keys())
    if (meta.contains("tokenizer." + key)) config[hf_key] = meta["tokenizer." + key];
  bool has_output = false;
  for (const auto& t : file.tensors()) has_output = has_output || t.name == "output.weight";
  config["tie_word_embeddings"] = !has_output;  // transformers: tied when there is no output.weight
  // No <arch>.vocab_size: transformers takes the tokenizer's token count.
  if (!config.contains("vocab_size") && meta.contains("tokenizer.ggml.tokens") && meta["tokenizer.ggml.tokens"].is_array())
    config["vocab_size"] = meta["tokenizer.ggml.tokens"].size();
  for (const auto& t : file.tensors())
    if (t.name == "token_embd.weight" && !config.contains("vocab_size")) config["vocab_size"] = t.shape.at(0);
  for (const char* key : {"num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size"})
    check(config.contains(key), ErrorKind::CorruptFile,
          std::string("the GGUF file lacks ") + arch.gguf + ".* metadata for " + key);
  if (!config.contains("num_key_value_heads")) config["num_key_value_heads"] = config["num_attention_heads"];
  return config;
}

// Gemma2TensorProcessor: "norm.weight" in the name → w - 1 (into a new tensor: an F32 tensor
// from the file is a read-only view of it).
Tensor minus_one(const Tensor& w) {
  Tensor out = Tensor::empty(DType::F32, w.shape());
  for (int64_t i = 0; i < w.numel(); ++i) out.f32()[i] = w.f32()[i] - 1.0f;
  return out;
}

// Whether a tensor stays block-quantised, decoded inside the products (ops/quantized.h; the
// same results as dequantising here): a weight matrix in a format this CPU decodes, unless
// HFPIPE_GGUF_DEQUANTIZE=1 asks for f32 copies at load (the tests compare the two).
bool keep_quantized(const formats::GgufTensorInfo& info) {
  const char* dequantize = std::getenv("HFPIPE_GGUF_DEQUANTIZE");
  if (dequantize && std::string(dequantize) == "1") return false;
  return info.shape.size() == 2 && ops::can_keep_quantized(static_cast<uint32_t>(info.type));
}

}  // namespace

// LlamaTensorProcessor._reverse_permute_weights, in place: within each head's 2 x half rows,
// row a * half + b takes the old row b * 2 + a. Rows move along the permutation's cycles through
// one row of scratch instead of into a second matrix: a copy per q/k projection, freed at once,
// left ~30 MB of freed heap resident after loading SmolLM2 (glibc keeps such holes mapped).
// Rows are moved as bytes, so a block-quantised projection (whole blocks per row) permutes the same way.
void reverse_permute_in_place(Tensor& w, int64_t heads) {
  const int64_t rows = w.dim(0);
  check(heads > 0 && rows % (2 * heads) == 0, ErrorKind::CorruptFile,
        "a GGUF attention projection has a row count that is not a multiple of 2 x heads");
  const int64_t half = rows / heads / 2, block = 2 * half;
  const size_t row_bytes = w.nbytes() / static_cast<size_t>(rows);
  const auto source_of = [half](int64_t i) { return (i % half) * 2 + i / half; };
  std::vector<uint8_t> held(row_bytes);
  std::vector<char> done(static_cast<size_t>(block));
  for (int64_t h = 0; h < heads; ++h) {
    uint8_t* head = w.data_as<uint8_t>() + static_cast<size_t>(h * block) * row_bytes;
    std::fill(done.begin(), done.end(), 0);
    for (int64_t start = 0; start < block; ++start) {
      if (done[start] || source_of(start) == start) continue;
      std::memcpy(held.data(), head + start * row_bytes, row_bytes);
      int64_t i = start;
      for (int64_t from = source_of(i); from != start; i = from, from = source_of(i)) {
        std::memcpy(head + i * row_bytes, head + from * row_bytes, row_bytes);
        done[i] = 1;
      }
      std::memcpy(head + i * row_bytes, held.data(), row_bytes);
      done[i] = 1;
    }
  }
}

Value gguf_model_config(const std::filesystem::path& path) {
  const auto file = formats::GgufFile::open(path);
  return config_of(file, arch_of(file, path.string()));
}

std::unique_ptr<DecoderModel> load_gguf_decoder(const std::filesystem::path& path, ops::Precision precision) {
  const auto file = formats::GgufFile::open(path);
  const Arch& arch = arch_of(file, path.string());
  const Value json = config_of(file, arch);
  const auto config = formats::ModelConfig::from_json(json, path.string());
  const bool llama = std::string(arch.gguf) == "llama";
  const int64_t heads = json["num_attention_heads"].get<int64_t>(), kv_heads = json["num_key_value_heads"].get<int64_t>();
  formats::WeightMap weights;
  weights.set_precision(precision);
  for (const auto& info : file.tensors()) {
    const std::string name = hf_name(info.name, arch.layer_names());
    if (name.empty()) continue;
    const bool query = llama && info.name.find(".attn_q.") != std::string::npos;
    const bool key = llama && info.name.find(".attn_k.") != std::string::npos;
    if (keep_quantized(info)) {
      // Permuted in place, so the query / key rows are copied out of the read-only mapping.
      Tensor bytes = query || key ? file.owned_bytes(info) : file.bytes(info);
      if (query) reverse_permute_in_place(bytes, heads);
      if (key) reverse_permute_in_place(bytes, kv_heads);
      weights.insert_quantized(name, ops::make_quantized_matrix(static_cast<ops::QuantFormat>(info.type),
                                                                info.shape.at(0), info.shape.at(1), std::move(bytes)));
      continue;
    }
    // Permuted in place, so an F32 tensor (a read-only view of the file) is copied out first.
    Tensor t = (query || key) && info.type == formats::GgmlType::F32 ? copy_of(file.load(info)) : file.load(info);
    if (query) reverse_permute_in_place(t, heads);
    if (key) reverse_permute_in_place(t, kv_heads);
    if (!llama && info.name.find("norm.weight") != std::string::npos) t = minus_one(t);
    if (precision == ops::Precision::BFloat16 && t.ndim() == 2 && info.name.rfind("token_embd.", 0) != 0) {
      // Rounded to a BF16 matrix now, as the model would round it when built: holding every
      // dequantised f32 matrix until then took SmolLM2's peak RSS (AVX2) to 896 MB, 215 over
      // weights + KV cache + 100 MB. The token embeddings stay f32 (a lookup table; a tied
      // lm_head rounds its own copy), as they do where the blocks are kept as stored.
      weights.insert_quantized(name, ops::to_bf16_matrix(t));
      continue;
    }
    weights.insert(name, std::move(t));
  }
  // load_decoder picks the family by model_type: gemma3_text loads once that family exists
  // (until then Error(UnsupportedModel) naming the supported types).
  return llama ? make_llama(config, std::move(weights)) : load_decoder(config, std::move(weights));
}

}  // namespace hfpipe::models
