// Checkpoint loading: every tensor of a Hugging Face model folder by its state-dict name.
// Floating-point tensors are exposed as F32: f32 data is a zero-copy view into the mmapped
// file, f16/bf16 (and f64) are converted once at load. Integer tensors keep their dtype.
#pragma once

#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "ops/linear.h"
#include "ops/quantized.h"

namespace hfpipe::formats {

class WeightMap {
 public:
  // Whether `name` is stored, as a Tensor or block-quantised.
  bool contains(const std::string& name) const { return tensors_.count(name) != 0 || quantized_.count(name) != 0; }
  // The tensor `name`. A BF16 matrix (kept for torch_dtype="bfloat16") comes back as a new F32
  // copy, for the layers that read float weights; other block-quantised weights are
  // Error(UnsupportedModel), an absent one Error(NotFound) naming it.
  Tensor at(const std::string& name) const;
  // Adds `tensor`, replacing any tensor already stored under `name`.
  void insert(std::string name, Tensor tensor);
  // A weight matrix kept in its GGUF block format (ops/quantized.h), for the layers that read it
  // that way (Linear, token embeddings); replaces what was stored under `name`.
  void insert_quantized(std::string name, ops::QuantizedMatrix matrix);
  // The block-quantised weight `name`, or null when it is stored as a Tensor or not at all.
  const ops::QuantizedMatrix* quantized(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted, both kinds
  size_t size() const { return tensors_.size() + quantized_.size(); }
  // Moves every tensor of `other` into this map; a name present in both is a CorruptFile error.
  void merge(WeightMap&& other);
  // The precision the products of a model built from these weights run in: the pipeline's
  // torch_dtype (Float32 unless asked).
  void set_precision(ops::Precision precision) { precision_ = precision; }
  ops::Precision precision() const { return precision_; }

 private:
  ops::Precision precision_ = ops::Precision::Float32;
  std::unordered_map<std::string, Tensor> tensors_;
  std::unordered_map<std::string, ops::QuantizedMatrix> quantized_;
};

// Loads the checkpoint of `model_dir`, preferring model.safetensors, then
// model.safetensors.index.json (shards), then pytorch_model.bin.index.json, then
// pytorch_model.bin. Throws Error(NotFound) listing the names it looked for. `precision` is the
// pipeline's torch_dtype, set on the map; under BFloat16 a safetensors file's 2-D bfloat16
// tensors stay zero-copy BF16 matrices (ops/quantized.h) where this CPU keeps them, instead of
// F32 copies that the model would round back to bf16 (a bf16 checkpoint took 3x its size).
WeightMap load_checkpoint(const std::filesystem::path& model_dir, ops::Precision precision = ops::Precision::Float32);

// A sharded checkpoint: the index file (model.safetensors.index.json or
// pytorch_model.bin.index.json) maps each tensor to a shard file in the same folder. Each
// shard is loaded once; a missing shard is Error(NotFound), a tensor listed in the index but
// absent from its shard is Error(CorruptFile).
WeightMap load_sharded_checkpoint(const std::filesystem::path& index_file,
                                  ops::Precision precision = ops::Precision::Float32);

// One safetensors file (header validated: offsets inside the file, no overlaps, sizes
// matching dtype x shape). Throws Error(CorruptFile) on any violation.
WeightMap load_safetensors(const std::filesystem::path& file, ops::Precision precision = ops::Precision::Float32);

// One torch.save() zip archive holding a state dict, read with a restricted unpickler that
// understands only the opcodes and globals torch.save writes for tensors and refuses
// anything else with Error(CorruptFile). Nothing in the pickle is ever executed.
WeightMap load_pytorch_bin(const std::filesystem::path& file);

}  // namespace hfpipe::formats
