// Fuzz target for the restricted unpickler and tensor reconstruction: the input is used as
// data.pkl of a torch.save archive that also holds storages "0" (64 bytes) and "1"
// (6 bytes, odd-sized). Mutating a whole zip rarely yields a valid archive with a new pickle,
// so this target reaches the pickle code far more often than fuzz_pytorch_bin does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "formats/pytorch_bin.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hfpipe;
  std::string storage0(64, '\0');
  for (size_t i = 0; i < storage0.size(); ++i) storage0[i] = static_cast<char>(i * 37);
  const std::string archive = fuzz::stored_zip({{"archive/data.pkl", std::string(reinterpret_cast<const char*>(data), size)},
                                                {"archive/byteorder", "little"},
                                                {"archive/data/0", storage0},
                                                {"archive/data/1", "abcdef"}});
  try {
    const formats::WeightMap weights = formats::parse_pytorch_bin(
        formats::ByteView{reinterpret_cast<const uint8_t*>(archive.data()), archive.size(), nullptr, "fuzz"});
    fuzz::touch_all(weights);
  } catch (const Error&) {
  }
  return 0;
}
