#include "formats/pytorch_bin.h"

#include <algorithm>
#include <array>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/pickle.h"
#include "formats/tensor_import.h"
#include "formats/zip_reader.h"

namespace hfpipe::formats {
namespace {

using pickle::Arena;
using pickle::Kind;
using pickle::Object;

constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildTensorV3 = "torch._utils._rebuild_tensor_v3";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr const char* kStorageTag = "storage";
constexpr const char* kTensorTag = "tensor";
constexpr size_t kMaxRank = 64;

// Typed storages name their element type; torch 2.x writes UntypedStorage (bytes) together
// with an explicit dtype for types that have no typed storage class (_rebuild_tensor_v3).
std::optional<DType> storage_dtype(const std::string& global) {
  static const std::array<std::pair<const char*, DType>, 10> kStorages = {{
      {"torch.FloatStorage", DType::F32}, {"torch.HalfStorage", DType::F16}, {"torch.BFloat16Storage", DType::BF16},
      {"torch.DoubleStorage", DType::F64}, {"torch.LongStorage", DType::I64}, {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16}, {"torch.CharStorage", DType::I8}, {"torch.ByteStorage", DType::U8},
      {"torch.BoolStorage", DType::Bool},
  }};
  for (const auto& [name, dtype] : kStorages)
    if (global == name) return dtype;
  if (global == "torch.storage.UntypedStorage") return DType::U8;
  return std::nullopt;
}

// torch dtype objects pickle as the global torch.<name>.
std::optional<DType> torch_dtype(const std::string& global) {
  static const std::array<std::pair<const char*, DType>, 10> kDtypes = {{
      {"torch.float32", DType::F32}, {"torch.float16", DType::F16}, {"torch.bfloat16", DType::BF16},
      {"torch.float64", DType::F64}, {"torch.int64", DType::I64}, {"torch.int32", DType::I32},
      {"torch.int16", DType::I16}, {"torch.int8", DType::I8}, {"torch.uint8", DType::U8}, {"torch.bool", DType::Bool},
  }};
  for (const auto& [name, dtype] : kDtypes)
    if (global == name) return dtype;
  return std::nullopt;
}

// Real torch dtypes hfpipe does not load: named so the error can say "unsupported dtype"
// instead of "refusing a foreign global".
bool is_unsupported_torch_dtype(const std::string& global) {
  static const std::array<const char*, 12> kNames = {
      "torch.uint16",      "torch.uint32",        "torch.uint64",         "torch.complex32",
      "torch.complex64",   "torch.complex128",    "torch.float8_e4m3fn",  "torch.float8_e5m2",
      "torch.float8_e4m3fnuz", "torch.float8_e5m2fnuz", "torch.float8_e8m0fnu", "torch.float4_e2m1fn_x2"};
  return std::find(kNames.begin(), kNames.end(), global) != kNames.end();
}

struct Storage {
  ByteView bytes;
  DType dtype;
  std::string key;
};

class TorchResolver : public pickle::Resolver {
 public:
  TorchResolver(const ZipArchive& zip, std::string prefix, std::string file)
      : zip_(zip), prefix_(std::move(prefix)), file_(std::move(file)) {}

  void check_global(const std::string& module, const std::string& name) override {
    const std::string global = module + "." + name;
    if (global == kOrderedDict || global == kRebuildTensorV2 || global == kRebuildTensorV3 ||
        global == kRebuildParameter || storage_dtype(global) || torch_dtype(global) || is_unsupported_torch_dtype(global))
      return;
    if (module == "torch" && name.size() > 7 && name.ends_with("Storage"))
      fail(ErrorKind::UnsupportedModel, file_ + " holds tensors of type " + global + ", which hfpipe does not load");
    fail(ErrorKind::CorruptFile, "refusing to load " + file_ + ": its pickle references " + global +
                                     ", which is not a tensor or state dict type; pickles are never executed");
  }

  Object* call(Arena& arena, const Object& callable, const Object& args) override {
    const std::string& f = callable.text;
    if (f == kOrderedDict) {
      if (!args.items.empty()) corrupt("OrderedDict is called with arguments");
      return arena.make(Kind::Dict);
    }
    if (f == kRebuildTensorV2) {
      if (args.items.size() != 6 && args.items.size() != 7) corrupt(f + " takes 6 or 7 arguments");
      return rebuild_tensor(arena, args, std::nullopt);
    }
    if (f == kRebuildTensorV3) {
      if (args.items.size() != 7 && args.items.size() != 8) corrupt(f + " takes 7 or 8 arguments");
      return rebuild_tensor(arena, args, dtype_argument(*args.items[6]));
    }
    if (f == kRebuildParameter) {
      if (args.items.size() != 3 || !is_tensor(*args.items[0])) corrupt(f + " expects (tensor, requires_grad, hooks)");
      return args.items[0];  // a Parameter is just its tensor for inference
    }
    corrupt("the pickle calls " + f + ", which is not a function");
  }

  // torch's persistent ids: ('storage', storage_type, key, location, numel).
  Object* persistent_load(Arena& arena, const Object& pid) override {
    const auto& t = pid.items;
    if (pid.kind != Kind::Tuple || t.size() != 5 || t[0]->kind != Kind::Str || t[0]->text != "storage" ||
        t[1]->kind != Kind::Global || t[2]->kind != Kind::Str || t[4]->kind != Kind::Int)
      corrupt("a persistent id is not a ('storage', type, key, location, numel) tuple");
    const std::optional<DType> dtype = storage_dtype(t[1]->text);
    if (!dtype) corrupt("persistent id names " + t[1]->text + ", which is not a storage type");
    const ByteView& record = storage_record(t[2]->text);
    const int64_t numel = t[4]->integer;
    if (numel < 0 || static_cast<uint64_t>(numel) > record.size / dtype_size(*dtype))
      corrupt("storage '" + t[2]->text + "' claims " + std::to_string(numel) + " elements but its record has " +
              std::to_string(record.size) + " bytes");
    storages_.push_back(Storage{record.slice(0, static_cast<size_t>(numel) * dtype_size(*dtype), record.name),
                                *dtype, t[2]->text});
    Object* o = arena.make(Kind::Opaque);
    o->text = kStorageTag;
    o->integer = static_cast<int64_t>(storages_.size() - 1);
    return o;
  }

  bool is_tensor(const Object& o) const { return o.kind == Kind::Opaque && o.text == kTensorTag; }
  Tensor& tensor(const Object& o) { return tensors_[static_cast<size_t>(o.integer)]; }
  [[noreturn]] void corrupt(const std::string& what) const {
    fail(ErrorKind::CorruptFile, "corrupt PyTorch checkpoint " + file_ + ": " + what);
  }

 private:
  // Each data/<key> record is read (or inflated) once, however many tensors share it.
  const ByteView& storage_record(const std::string& key) {
    auto it = records_.find(key);
    if (it != records_.end()) return it->second;
    const ZipEntry* entry = zip_.find(prefix_ + "data/" + key);
    if (!entry) corrupt("storage '" + key + "' is missing from the archive");
    const ByteView& record = records_.emplace(key, zip_.read(*entry)).first->second;
    record_bytes_ += record.size;
    return record;
  }

  DType dtype_argument(const Object& o) const {
    if (o.kind != Kind::Global) corrupt("_rebuild_tensor_v3 expects a dtype");
    if (auto dtype = torch_dtype(o.text)) return *dtype;
    fail(ErrorKind::UnsupportedModel, file_ + " holds tensors of dtype " + o.text + ", which hfpipe does not load");
  }

  std::vector<int64_t> int_tuple(const Object& o, const char* what) const {
    if (o.kind != Kind::Tuple || o.items.size() > kMaxRank) corrupt(std::string(what) + " is not a tuple of ints");
    std::vector<int64_t> out;
    for (const Object* item : o.items) {
      if (item->kind != Kind::Int || item->integer < 0) corrupt(std::string(what) + " holds a non-integer or negative entry");
      out.push_back(item->integer);
    }
    return out;
  }

  // _rebuild_tensor_v2/v3(storage, storage_offset, size, stride, requires_grad, hooks, ...).
  Object* rebuild_tensor(Arena& arena, const Object& args, std::optional<DType> explicit_dtype) {
    const Object& storage_obj = *args.items[0];
    if (storage_obj.kind != Kind::Opaque || storage_obj.text != kStorageTag) corrupt("a tensor is rebuilt from a non-storage");
    const Storage& storage = storages_[static_cast<size_t>(storage_obj.integer)];
    if (args.items[1]->kind != Kind::Int || args.items[1]->integer < 0) corrupt("a tensor has a bad storage offset");
    const int64_t offset = args.items[1]->integer;
    Shape shape = int_tuple(*args.items[2], "a tensor size");
    const std::vector<int64_t> stride = int_tuple(*args.items[3], "a tensor stride");
    if (shape.size() != stride.size()) corrupt("a tensor's size and stride differ in length");
    const DType dtype = explicit_dtype.value_or(storage.dtype);
    const uint64_t numel = check_inside_storage(storage, dtype, offset, shape, stride);

    Object* o = arena.make(Kind::Opaque);
    o->text = kTensorTag;
    // Tied weights (an embedding and an LM head) are one storage viewed twice; the second
    // view reuses the first tensor so an f16 storage is not converted, and held, twice.
    std::string layout = storage.key + "|" + dtype_name(dtype) + "|" + std::to_string(offset) + "|" +
                         shape_to_string(shape) + "|" + shape_to_string(stride);
    auto cached = tensor_by_layout_.find(layout);
    if (cached != tensor_by_layout_.end()) {
      o->integer = static_cast<int64_t>(cached->second);
      return o;
    }
    // An empty tensor addresses nothing, so its offset may point anywhere.
    const uint8_t* base = storage.bytes.data + (numel == 0 ? 0 : static_cast<size_t>(offset) * dtype_size(dtype));
    if (!imports_as_view(dtype, shape, stride, base)) charge_allocation(numel, dtype);
    o->integer = static_cast<int64_t>(tensors_.size());
    tensors_.push_back(import_strided(dtype, std::move(shape), stride, base, storage.bytes.owner));
    tensor_by_layout_.emplace(std::move(layout), tensors_.size() - 1);
    return o;
  }

  // Every element the view addresses, offset + sum((size_d - 1) * stride_d) at most, must lie
  // in the storage. The sum is built in 128 bits and stops at the first excess, so hostile
  // sizes and strides cannot wrap around. Returns the element count.
  uint64_t check_inside_storage(const Storage& storage, DType dtype, int64_t offset, const Shape& shape,
                                const std::vector<int64_t>& stride) const {
    const uint64_t elements = storage.bytes.size / dtype_size(dtype);
    uint64_t numel = 1;
    for (int64_t d : shape) {
      if (d != 0 && numel > (UINT64_MAX >> 8) / static_cast<uint64_t>(d)) corrupt("a tensor's size is impossibly large");
      numel *= static_cast<uint64_t>(d);
    }
    if (numel == 0) return 0;
    unsigned __int128 last = static_cast<uint64_t>(offset);
    if (last >= elements) corrupt(out_of_storage(storage, shape));
    for (size_t d = 0; d < shape.size(); ++d) {
      last += static_cast<unsigned __int128>(shape[d] - 1) * static_cast<uint64_t>(stride[d]);
      if (last >= elements) corrupt(out_of_storage(storage, shape));
    }
    return numel;
  }

  // Views cost nothing, but converted (f16 -> f32) or gathered (strided) tensors are new
  // buffers, and a pickle may view one small storage any number of times, with stride 0
  // even. Without a budget a file of a few KB could demand terabytes. Real checkpoints need
  // at most about twice their storage bytes (f16 -> f32), so 4x plus a margin is generous.
  void charge_allocation(uint64_t numel, DType dtype) {
    const uint64_t cost = numel * (dtype_size(dtype) + dtype_size(loaded_dtype(dtype)));  // incl. a gather buffer
    const uint64_t budget = (64u << 20) + 4 * record_bytes_;
    if (cost > budget - std::min(budget, allocated_))
      corrupt("its tensors would need more than " + std::to_string(budget) +
              " bytes of copies; the pickle views its storages implausibly often or widely");
    allocated_ += cost;
  }

  std::string out_of_storage(const Storage& storage, const Shape& shape) const {
    return "a tensor of shape " + shape_to_string(shape) + " reaches past the end of storage '" + storage.key + "' (" +
           std::to_string(storage.bytes.size) + " bytes)";
  }

  const ZipArchive& zip_;
  std::string prefix_;
  std::string file_;
  std::unordered_map<std::string, ByteView> records_;
  std::vector<Storage> storages_;
  std::vector<Tensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_by_layout_;
  uint64_t record_bytes_ = 0;  // storage bytes read from the archive
  uint64_t allocated_ = 0;     // bytes of converted / gathered tensors so far
};

// The archive's single top-level folder (named after the file torch.save wrote) holds
// data.pkl; everything else is found relative to it.
std::string find_prefix(const ZipArchive& zip, const std::string& file) {
  std::optional<std::string> prefix;
  for (const ZipEntry& e : zip.entries()) {
    if (!e.name.ends_with("data.pkl")) continue;
    std::string p = e.name.substr(0, e.name.size() - 8);
    if (!(p.empty() || (p.back() == '/' && p.find('/') == p.size() - 1))) continue;
    if (prefix) fail(ErrorKind::CorruptFile, file + " holds more than one data.pkl");
    prefix = p;
  }
  if (!prefix) fail(ErrorKind::CorruptFile, file + " is a zip archive but not a torch.save checkpoint (no data.pkl)");
  return *prefix;
}

void check_byteorder(const ZipArchive& zip, const std::string& prefix, const std::string& file) {
  const ZipEntry* entry = zip.find(prefix + "byteorder");
  if (!entry) return;  // torch before 1.11 wrote none; those files are little-endian
  const ByteView order = zip.read(*entry);
  if (order.chars() != "little")
    fail(ErrorKind::UnsupportedModel, file + " was saved on a big-endian machine (byteorder '" +
                                          std::string(order.chars().substr(0, 16)) + "'); only little-endian is supported");
}

const Object* find_state_dict(const Object& root, TorchResolver& torch, const std::string& file, int depth);

bool has_tensor_value(const Object& dict, const TorchResolver& torch) {
  for (size_t i = 1; i < dict.items.size(); i += 2)
    if (torch.is_tensor(*dict.items[i])) return true;
  return false;
}

// A state dict is a dict of name -> tensor. Training scripts sometimes wrap it as
// {"state_dict": ...} or {"model": ...}; one or two such levels are looked through.
const Object* find_state_dict(const Object& root, TorchResolver& torch, const std::string& file, int depth) {
  if (root.kind != Kind::Dict)
    fail(ErrorKind::UnsupportedModel, file + " holds a pickled " + pickle::kind_name(root.kind) +
                                          ", not a state dict (a dict of tensors)");
  if (root.items.empty() || has_tensor_value(root, torch)) return &root;
  std::string keys;
  for (size_t i = 0; i < root.items.size(); i += 2) {
    const Object& key = *root.items[i];
    const Object& value = *root.items[i + 1];
    if (key.kind != Kind::Str) continue;
    if (keys.size() < 200) keys += (keys.empty() ? "" : ", ") + key.text;
    const bool wrapper = key.text == "state_dict" || key.text == "model" || key.text == "module" ||
                         key.text == "model_state_dict";
    if (wrapper && value.kind == Kind::Dict && depth < 2) return find_state_dict(value, torch, file, depth + 1);
  }
  fail(ErrorKind::UnsupportedModel,
       file + " holds a dict without tensors (keys: " + keys + "); expected a state dict of tensors");
}

WeightMap to_weight_map(const Object& state, TorchResolver& torch, const std::string& file) {
  WeightMap weights;
  for (size_t i = 0; i < state.items.size(); i += 2) {
    const Object& key = *state.items[i];
    const Object& value = *state.items[i + 1];
    if (key.kind != Kind::Str)
      fail(ErrorKind::UnsupportedModel, file + " has a state dict key that is a " + pickle::kind_name(key.kind) +
                                            ", not a string");
    if (!torch.is_tensor(value))
      fail(ErrorKind::UnsupportedModel, "entry '" + key.text + "' of the state dict in " + file + " is a " +
                                            pickle::kind_name(value.kind) + ", not a tensor");
    weights.insert(key.text, torch.tensor(value));  // a repeated key replaces, as in Python
  }
  return weights;
}

// torch.save before 1.6 (and with _use_new_zipfile_serialization=False) wrote a bare
// sequence of pickles starting with a magic number, not a zip archive.
bool is_legacy_torch_file(const ByteView& bytes) {
  return bytes.size >= 2 && bytes.data[0] == 0x80 && bytes.data[1] >= 2 && bytes.data[1] <= 5;
}

}  // namespace

WeightMap parse_pytorch_bin(const ByteView& bytes) {
  if (is_legacy_torch_file(bytes))
    fail(ErrorKind::UnsupportedModel, bytes.name + " uses PyTorch's legacy (pre-1.6, non-zip) format, which hfpipe "
                                                   "does not read; re-save it with a current torch.save() or convert "
                                                   "it to safetensors");
  const ZipArchive zip(bytes);
  const std::string prefix = find_prefix(zip, bytes.name);
  check_byteorder(zip, prefix, bytes.name);
  const ByteView pkl = zip.read(*zip.find(prefix + "data.pkl"));

  TorchResolver torch(zip, prefix, bytes.name);
  Arena arena;
  const Object* root = pickle::unpickle(pkl.chars(), arena, torch, pkl.name);
  return to_weight_map(*find_state_dict(*root, torch, bytes.name, 0), torch, bytes.name);
}

WeightMap load_pytorch_bin(const std::filesystem::path& file) {
  std::shared_ptr<const MappedFile> mapped = MappedFile::open(file);
  return parse_pytorch_bin(ByteView{mapped->data(), mapped->size(), mapped, file.string()});
}

}  // namespace hfpipe::formats
