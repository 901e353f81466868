#include "cli/inspect_command.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/weights.h"

namespace hfpipe::cli {
namespace {

constexpr const char* kUsage =
    "usage: hfpipe inspect-weights [--values] PATH\n"
    "  PATH is a model folder, a .safetensors file, a torch.save .bin/.pt/.pth file, a\n"
    "  *.index.json of a sharded checkpoint or a .gguf file. Prints every tensor's dtype,\n"
    "  shape, sum and first values as JSON (--values: all values), and a GGUF file's\n"
    "  metadata and stored tensor types.\n";

// Element i of a (loaded, so never F16/BF16/F64) tensor as a double.
double element(const Tensor& t, size_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data_as<float>()[i];
    case DType::I64: return static_cast<double>(t.data_as<int64_t>()[i]);
    case DType::I32: return t.data_as<int32_t>()[i];
    case DType::I16: return t.data_as<int16_t>()[i];
    case DType::I8: return t.data_as<int8_t>()[i];
    case DType::U8: return t.data_as<uint8_t>()[i];
    case DType::Bool: return t.data_as<uint8_t>()[i] != 0;
    case DType::F64: return t.data_as<double>()[i];
    case DType::F16:
    case DType::BF16: break;
  }
  fail(ErrorKind::Internal, std::string("inspect-weights cannot read a ") + dtype_name(t.dtype()) + " tensor");
}

nlohmann::json describe(const Tensor& t, bool all_values) {
  double sum = 0;
  nlohmann::json first = nlohmann::json::array();
  const size_t n = static_cast<size_t>(t.numel());
  for (size_t i = 0; i < n; ++i) {
    const double v = element(t, i);
    sum += v;
    if (i >= 4 && !all_values) continue;
    if (t.dtype() == DType::F32) first.push_back(v);
    else first.push_back(static_cast<int64_t>(v));  // integers print as integers
  }
  return {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"sum", sum}, {"first", first}};
}

// A GGUF file: metadata, each tensor's stored type, and the dequantised tensors.
nlohmann::json inspect_gguf(const std::filesystem::path& path, bool all_values) {
  const auto file = formats::GgufFile::open(path);
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& info : file.tensors()) {
    tensors[info.name] = describe(file.load(info), all_values);
    tensors[info.name]["ggml_type"] = formats::ggml_type_traits(static_cast<uint32_t>(info.type))->name;
  }
  return {{"gguf_version", file.version()}, {"metadata", file.metadata()}, {"tensors", tensors}};
}

formats::WeightMap load(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) return formats::load_checkpoint(path);
  const std::string name = path.filename().string();
  if (name.ends_with(".safetensors")) return formats::load_safetensors(path);
  if (name.ends_with(".json")) return formats::load_sharded_checkpoint(path);
  return formats::load_pytorch_bin(path);
}

}  // namespace

int inspect_weights_main(int argc, char** argv) {
  const bool all_values = argc == 3 && std::strcmp(argv[1], "--values") == 0;
  if (argc != 2 + all_values || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cerr << kUsage;
    return argc == 2 ? 0 : 2;
  }
  const std::filesystem::path path = argv[argc - 1];
  try {
    nlohmann::json result;
    if (path.extension() == ".gguf") {
      result = inspect_gguf(path, all_values);
    } else {
      const formats::WeightMap weights = load(path);
      nlohmann::json tensors = nlohmann::json::object();
      for (const std::string& name : weights.names()) tensors[name] = describe(weights.at(name), all_values);
      result = {{"tensors", tensors}};
    }
    // Tensor names from a pickle need not be valid UTF-8; replace rather than fail.
    std::cout << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "hfpipe: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace hfpipe::cli
