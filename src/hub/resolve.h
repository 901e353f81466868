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

// The Hugging Face hub cache folder this process would search.
std::filesystem::path hub_cache_dir();

}  // namespace hfpipe::hub
