// `hfpipe logits --model M [--step N] IDS_JSON`: runs a decoder-only model (a folder, or a
// llama-architecture .gguf file) over token ids and prints the next-token logits of every
// position, {"logits": [[...], ...]}. The ids are fed N at a time through the key/value cache
// (default: all at once), so the same command checks the prefill and the incremental path.
// It exists for parity tests and debugging.
#pragma once

namespace hfpipe::cli {

// argv[0] is "logits". Returns 0 and prints the JSON; 1 on hfpipe::Error; 2 on bad usage.
int logits_main(int argc, char** argv);

}  // namespace hfpipe::cli
