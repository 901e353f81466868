#include "hub/resolve.h"

#include <cstdlib>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace hfpipe::hub {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

bool looks_like_commit(const std::string& revision) {
  if (revision.size() != 40) return false;
  for (char c : revision)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// "org/name" → "models--org--name", as huggingface_hub names its cache folders.
std::string cache_folder_name(const std::string& repo_id) {
  std::string name = "models--";
  for (char c : repo_id) name += c == '/' ? std::string("--") : std::string(1, c);
  return name;
}

bool valid_repo_id(const std::string& id) {
  if (id.empty() || id.size() > 96 || id.find("..") != std::string::npos || id.front() == '/' || id.back() == '/')
    return false;
  int slashes = 0;
  for (char c : id) {
    if (c == '/') ++slashes;
    else if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return slashes <= 1;
}

std::string read_ref(const fs::path& file) {
  std::ifstream in(file);
  std::string commit;
  in >> commit;
  return commit;
}

}  // namespace

fs::path hub_cache_dir() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  return fs::path(env("HOME")) / ".cache" / "huggingface" / "hub";
}

fs::path resolve_model(const std::string& model, const std::string& revision) {
  if (model.empty()) fail(ErrorKind::InvalidArgument, "no model given: pass --model with a model folder or a Hub id");
  std::error_code ec;
  if (fs::is_directory(model, ec)) return fs::path(model);
  const fs::path cache = hub_cache_dir();
  const std::string how_to_get =
      " hfpipe does not download: put the model there with `huggingface-cli download " + model +
      "` (or `snapshot_download`) on a machine with network access, or pass a local folder.";
  if (!valid_repo_id(model))
    fail(ErrorKind::NotFound, "model folder '" + model + "' does not exist and is not a Hub id (org/name)");
  const fs::path repo = cache / cache_folder_name(model);
  if (!fs::is_directory(repo, ec))
    fail(ErrorKind::NotFound, "model '" + model + "' is neither a local folder nor in the Hugging Face cache (looked at ./" +
                                  model + " and " + repo.string() + ")." + how_to_get);
  std::string commit = revision.empty() ? "main" : revision;
  if (!looks_like_commit(commit)) {
    if (commit.find("..") != std::string::npos) fail(ErrorKind::InvalidArgument, "invalid revision '" + revision + "'");
    const fs::path ref = repo / "refs" / commit;
    if (!fs::is_regular_file(ref, ec))
      fail(ErrorKind::NotFound, "revision '" + commit + "' of '" + model + "' is not in the cache (no " + ref.string() +
                                    ")." + how_to_get);
    commit = read_ref(ref);
  }
  const fs::path snapshot = repo / "snapshots" / commit;
  if (!fs::is_directory(snapshot, ec))
    fail(ErrorKind::NotFound, "snapshot " + commit + " of '" + model + "' is missing from " + snapshot.string() + "." +
                                  how_to_get);
  return snapshot;
}

bool is_gguf_file(const std::string& model) {
  std::error_code ec;
  const fs::path p(model);
  return p.extension() == ".gguf" && fs::is_regular_file(p, ec);
}

fs::path resolve_gguf_file(const fs::path& dir, const std::string& gguf_file) {
  const fs::path rel(gguf_file);
  if (gguf_file.empty() || rel.is_absolute() || rel.lexically_normal().string().rfind("..", 0) == 0)
    fail(ErrorKind::InvalidArgument, "gguf_file '" + gguf_file + "' must name a file inside the model folder");
  std::error_code ec;
  const fs::path path = dir / rel;
  if (!fs::is_regular_file(path, ec))
    fail(ErrorKind::NotFound, "gguf_file '" + gguf_file + "' is not in the model folder " + dir.string());
  return path;
}

}  // namespace hfpipe::hub
