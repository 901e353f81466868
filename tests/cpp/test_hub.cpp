// Model resolution: local folders and the Hugging Face cache layout.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "hfpipe/errors.h"
#include "hub/resolve.h"

namespace fs = std::filesystem;

namespace hfpipe::hub {
namespace {

class HubCache : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("hfpipe_hub_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    const fs::path repo = root_ / "models--org--tiny";
    fs::create_directories(repo / "refs");
    fs::create_directories(repo / "snapshots" / kCommit);
    std::ofstream(repo / "refs" / "main") << kCommit;
    setenv("HF_HUB_CACHE", root_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("HF_HUB_CACHE");
    fs::remove_all(root_);
  }
  static constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
  fs::path root_;
};

TEST_F(HubCache, ResolvesMainRefToItsSnapshot) {
  EXPECT_EQ(resolve_model("org/tiny"), root_ / "models--org--tiny" / "snapshots" / kCommit);
}

TEST_F(HubCache, ResolvesACommitHashDirectly) {
  EXPECT_EQ(resolve_model("org/tiny", kCommit), root_ / "models--org--tiny" / "snapshots" / kCommit);
}

TEST_F(HubCache, MissingModelNamesWhereItLooked) {
  try {
    resolve_model("org/absent");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    EXPECT_NE(std::string(e.what()).find("models--org--absent"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("does not download"), std::string::npos);
  }
}

TEST_F(HubCache, MissingRevisionIsNotFound) {
  EXPECT_THROW(resolve_model("org/tiny", "v2"), Error);
}

TEST_F(HubCache, LocalFolderWinsAndBadIdsAreRefused) {
  EXPECT_EQ(resolve_model(root_.string()), root_);
  EXPECT_THROW(resolve_model("../no-such-folder/x"), Error);
  EXPECT_THROW(resolve_model(""), Error);
}

TEST(HubCacheDir, FollowsHfHome) {
  unsetenv("HF_HUB_CACHE");
  setenv("HF_HOME", "/tmp/hf-home", 1);
  EXPECT_EQ(hub_cache_dir(), fs::path("/tmp/hf-home/hub"));
  unsetenv("HF_HOME");
}

}  // namespace
}  // namespace hfpipe::hub
