// config.json reading.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "formats/config.h"
#include "hfpipe/errors.h"
#include "test_formats_helpers.h"

namespace hfpipe::formats {
namespace {

TEST(ModelConfig, LabelsFromId2Label) {
  auto c = ModelConfig::from_json(Value::parse(R"({"model_type":"bert","id2label":{"0":"NEG","1":"POS"}})"));
  EXPECT_EQ(c.num_labels(), 2);
  EXPECT_EQ(c.id2label().at(1), "POS");
}

TEST(ModelConfig, GenericLabelsFromNumLabels) {
  auto c = ModelConfig::from_json(Value::parse(R"({"model_type":"bert","num_labels":3})"));
  EXPECT_EQ(c.id2label().at(2), "LABEL_2");
}

// Found by reviewing the parsers for fuzzing: nlohmann copies and dumps values recursively,
// so a config.json nested a million levels deep overflowed the stack when the config kept a
// copy of it; and num_labels without id2label made one name per label, however many.
TEST(ModelConfig, HostileFilesGiveErrorsNotCrashes) {
  testing::TempDir dir;
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  testing::write_file(dir / "config.json", R"({"model_type":"bert","id2label":{"0":)" + deep + "}}");
  testing::expect_error([&] { ModelConfig::load(dir.path()); }, ErrorKind::CorruptFile, "nested more than 512");
  testing::write_file(dir / "config.json", R"({"model_type":"bert","x":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})");
  EXPECT_EQ(ModelConfig::load(dir.path()).model_type(), "bert");  // brackets in strings do not nest
  testing::write_file(dir / "config.json", R"({"model_type":"bert","num_labels":1000000000000})");
  testing::expect_error([&] { ModelConfig::load(dir.path()); }, ErrorKind::CorruptFile, "implausibly large");
}

TEST(ModelConfig, MissingModelTypeIsUnsupported) {
  try {
    ModelConfig::from_json(Value::parse(R"({"hidden_size":3})"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::UnsupportedModel);
  }
}

TEST(ModelConfig, WrongFieldTypeIsCorrupt) {
  auto c = ModelConfig::from_json(Value::parse(R"({"model_type":"bert","num_hidden_layers":"two"})"));
  EXPECT_THROW(c.get_int("num_hidden_layers"), Error);
  EXPECT_EQ(c.get_int("absent", 7), 7);
}

TEST(ModelConfig, MissingFolderIsNotFound) {
  try {
    ModelConfig::load("/nonexistent/folder");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
  }
}

}  // namespace
}  // namespace hfpipe::formats
