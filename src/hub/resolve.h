// Model resolution: turns what a user passes as --model into a local folder.
// Accepted: a path to a model folder; or a Hub id "org/name" (or "name") found in the local
// Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) at
// models--org--name/snapshots/<commit>/, with the revision a branch or tag name looked up in
// refs/, or a commit hash. Nothing is downloaded: a missing model is Error(NotFound) naming
// every place that was searched and how to get the model there.
#pragma once

#include <filesystem>
#include <string>

namespace hfpipe::hub {

std::filesystem::path resolve_model(const std::string& model, const std::string& revision = "main");

// Whether `model` names an existing regular file with the .gguf extension (a GGUF model given
// directly instead of a folder plus transformers' gguf_file).
bool is_gguf_file(const std::string& model);

// transformers' gguf_file: the file `gguf_file` inside the resolved model folder `dir`;
// Error(NotFound) when it is not there, Error(InvalidArgument) when it leaves the folder.
std::filesystem::path resolve_gguf_file(const std::filesystem::path& dir, const std::string& gguf_file);

// The Hugging Face hub cache folder this process would search.
std::filesystem::path hub_cache_dir();

}  // namespace hfpipe::hub
