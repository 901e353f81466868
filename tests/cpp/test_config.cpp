// config.json reading.
#include <gtest/gtest.h>

#include "formats/config.h"
#include "hfpipe/errors.h"

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
