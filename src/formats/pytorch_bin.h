// PyTorch checkpoints written by torch.save() (>= 1.6): a zip archive holding
// <prefix>/data.pkl (the pickled state dict, tensors as persistent ids), <prefix>/data/<key>
// (raw storage bytes) and small records such as <prefix>/byteorder.
#pragma once

#include "formats/byte_view.h"
#include "formats/weights.h"

namespace hfpipe::formats {

// Parses a torch.save() archive held in `bytes`. Stored (uncompressed) f32 / integer
// storages become views into `bytes`. Throws Error(CorruptFile) for malformed archives and
// for pickles referencing anything but tensor / state-dict types, Error(UnsupportedModel)
// for legacy (pre-zip) files, big-endian data and unsupported dtypes.
WeightMap parse_pytorch_bin(const ByteView& bytes);

}  // namespace hfpipe::formats
