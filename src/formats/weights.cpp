#include "formats/weights.h"

#include <simdjson.h>

#include <algorithm>
#include <array>

#include "core/error.h"
#include "core/mapped_file.h"

namespace hfpipe::formats {

Tensor WeightMap::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    if (const ops::QuantizedMatrix* m = quantized(name); m && m->format == ops::QuantFormat::BF16) {
      Tensor f32 = Tensor::empty(DType::F32, {m->rows, m->cols});
      ops::dequantize_rows(*m, 0, m->rows, f32.f32());
      // The caller keeps (or re-rounds) the floats: the file's pages are given back (they fault
      // in again should anything read the matrix itself).
      MappedFile::release_pages(m->bytes.raw(), m->bytes.nbytes());
      return f32;
    }
    check(!quantized_.count(name), ErrorKind::UnsupportedModel,
          "tensor '" + name + "' is block-quantised and this layer reads only float weights");
    fail(ErrorKind::NotFound, "tensor '" + name + "' is not in the checkpoint");
  }
  return it->second;
}

void WeightMap::insert(std::string name, Tensor tensor) {
  quantized_.erase(name);
  tensors_.insert_or_assign(std::move(name), std::move(tensor));
}

void WeightMap::insert_quantized(std::string name, ops::QuantizedMatrix matrix) {
  tensors_.erase(name);
  quantized_.insert_or_assign(std::move(name), std::move(matrix));
}

const ops::QuantizedMatrix* WeightMap::quantized(const std::string& name) const {
  auto it = quantized_.find(name);
  return it == quantized_.end() ? nullptr : &it->second;
}

std::vector<std::string> WeightMap::names() const {
  std::vector<std::string> out;
  out.reserve(size());
  for (const auto& [name, tensor] : tensors_) out.push_back(name);
  for (const auto& [name, matrix] : quantized_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

void WeightMap::merge(WeightMap&& other) {
  for (const std::string& name : other.names())
    if (contains(name)) fail(ErrorKind::CorruptFile, "tensor '" + name + "' appears in more than one weight file");
  for (auto& [name, tensor] : other.tensors_) tensors_.emplace(name, std::move(tensor));
  for (auto& [name, matrix] : other.quantized_) quantized_.emplace(name, std::move(matrix));
  other.tensors_.clear();
  other.quantized_.clear();
}

namespace {

// A shard is named by the index file, which is as untrusted as the weights: only a plain
// file name in the index's own folder is accepted, so "../../etc/x" cannot be reached.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// tensor name -> shard file name, in the index's order.
std::vector<std::pair<std::string, std::string>> read_weight_map(const std::filesystem::path& index_file) {
  const std::string text = read_text_file(index_file);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object weight_map;
  if (auto err = parser.parse(text).get(root))
    fail(ErrorKind::CorruptFile,
         "index file " + index_file.string() + " is not valid JSON (" + simdjson::error_message(err) + ")");
  if (root["weight_map"].get_object().get(weight_map))
    fail(ErrorKind::CorruptFile, "index file " + index_file.string() + " has no \"weight_map\" object");
  std::vector<std::pair<std::string, std::string>> entries;
  for (auto field : weight_map) {
    std::string_view shard;
    if (field.value.get_string().get(shard))
      fail(ErrorKind::CorruptFile, "index file " + index_file.string() + " maps tensor '" + std::string(field.key) +
                                       "' to something that is not a file name");
    entries.emplace_back(std::string(field.key), std::string(shard));
  }
  return entries;
}

WeightMap load_shard(const std::filesystem::path& index_file, const std::string& shard, ops::Precision precision) {
  if (!is_plain_file_name(shard))
    fail(ErrorKind::CorruptFile, "index file " + index_file.string() + " names shard '" + shard +
                                     "', which is not a plain file name in the same folder");
  const std::filesystem::path path = index_file.parent_path() / shard;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    fail(ErrorKind::NotFound, "shard '" + shard + "' listed in " + index_file.string() + " is missing from " +
                                  index_file.parent_path().string());
  return ends_with(shard, ".safetensors") ? load_safetensors(path, precision) : load_pytorch_bin(path);
}

}  // namespace

WeightMap load_sharded_checkpoint(const std::filesystem::path& index_file, ops::Precision precision) {
  const auto entries = read_weight_map(index_file);
  std::vector<std::string> shards;  // distinct, in order of first mention
  for (const auto& [tensor, shard] : entries)
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);

  WeightMap weights;
  weights.set_precision(precision);
  for (const std::string& shard : shards) weights.merge(load_shard(index_file, shard, precision));
  for (const auto& [tensor, shard] : entries)
    if (!weights.contains(tensor))
      fail(ErrorKind::CorruptFile, "index file " + index_file.string() + " lists tensor '" + tensor + "' in shard '" +
                                       shard + "', but the shard does not contain it");
  return weights;
}

WeightMap load_checkpoint(const std::filesystem::path& model_dir, ops::Precision precision) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec))
    fail(ErrorKind::NotFound, "model folder " + model_dir.string() + " does not exist or is not a folder");
  static constexpr std::array<const char*, 4> kCandidates = {
      "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin.index.json", "pytorch_model.bin"};
  for (const char* name : kCandidates) {
    const std::filesystem::path path = model_dir / name;
    if (!std::filesystem::exists(path, ec)) continue;
    const std::string n = name;
    if (n == "model.safetensors") return load_safetensors(path, precision);
    if (ends_with(n, ".index.json")) return load_sharded_checkpoint(path, precision);
    WeightMap weights = load_pytorch_bin(path);
    weights.set_precision(precision);
    return weights;
  }
  fail(ErrorKind::NotFound, "no weights found in " + model_dir.string() +
                                ": looked for model.safetensors, model.safetensors.index.json, "
                                "pytorch_model.bin.index.json and pytorch_model.bin");
}

}  // namespace hfpipe::formats
