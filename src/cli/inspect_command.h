// `hfpipe inspect-weights PATH`: loads a model folder or a single weight file
// (.safetensors, or a torch.save .bin / .pt / .pth, or a *.index.json of a sharded
// checkpoint) and prints one JSON object describing every tensor:
//   {"tensors": {name: {"dtype": "F32", "shape": [...], "sum": s, "first": [up to 4 values]}}}
// It exists to check hfpipe's loaders against torch / safetensors from tests and scripts.
#pragma once

namespace hfpipe::cli {

// argv[0] is the subcommand name ("inspect-weights"), argv[1] the path. Prints the JSON to
// stdout and returns 0; on an hfpipe::Error prints "hfpipe: error: <message>" to stderr and
// returns 1; on bad usage prints the usage to stderr and returns 2.
int inspect_weights_main(int argc, char** argv);

}  // namespace hfpipe::cli
