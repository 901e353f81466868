// The CLI's JSON printer against nlohmann's own dump: same text for everything but floats;
// float32 values read back as the very same float32, other doubles as the very same double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/json_dump.h"

namespace hfpipe {
namespace {

std::string nlohmann_text(const Value& v) { return v.dump(-1, ' ', false, Value::error_handler_t::replace); }

uint64_t bits_of(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

TEST(JsonDump, NonFloatValuesAreNlohmannsText) {
  Value v = Value::parse(R"({"label":"caf\u00e9 \"q\" \n\u0001","ids":[1,-2,3000000000],"ok":true,"none":null,
                             "nested":[{"a":[]},{}],"big":18446744073709551615})");
  EXPECT_EQ(to_json(v), nlohmann_text(v));
  Value invalid_utf8 = Value::object();
  invalid_utf8["word"] = std::string("a\xff" "b");
  EXPECT_EQ(to_json(invalid_utf8), nlohmann_text(invalid_utf8));
}

TEST(JsonDump, Float32ValuesReadBackAsTheSameFloat32) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::uniform_int_distribution<int> exponent(-40, 40);
  Value list = Value::array();
  for (int i = 0; i < 20000; ++i) {
    const float f = normal(rng) * std::pow(10.f, static_cast<float>(exponent(rng)) / 4.f);
    list.push_back(static_cast<double>(f));  // results hold floats widened to double
  }
  for (float f : {0.f, -0.f, 1.f, -3.f, 1e16f, 1e-5f, 0.1f, 1e-45f, std::numeric_limits<float>::max()})
    list.push_back(static_cast<double>(f));
  const Value back = Value::parse(to_json(list));
  ASSERT_EQ(back.size(), list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    ASSERT_TRUE(back[i].is_number_float()) << to_json(list[i]);
    const float printed = static_cast<float>(back[i].get<double>()), held = static_cast<float>(list[i].get<double>());
    EXPECT_EQ(std::memcmp(&printed, &held, sizeof(float)), 0) << to_json(list[i]);
  }
}

TEST(JsonDump, OtherDoublesReadBackAsTheSameDouble) {
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<double> uniform(-1e6, 1e6);
  Value list = Value::array();
  for (int i = 0; i < 20000; ++i) list.push_back(uniform(rng));
  for (double d : {0.1, 123456789.123, 5e-324, 1.7976931348623157e308, 3.4028235677973366e38, 1e39})
    list.push_back(d);
  const Value back = Value::parse(to_json(list));
  ASSERT_EQ(back.size(), list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    ASSERT_TRUE(back[i].is_number_float()) << to_json(list[i]);
    EXPECT_EQ(bits_of(back[i].get<double>()), bits_of(list[i].get<double>())) << to_json(list[i]);
  }
}

TEST(JsonDump, ReleaseEmptiesAResultTree) {
  Value v = Value::parse(R"({"a":[[1.5,2.5],[3.5]],"b":{"c":[1,2]},"d":"x"})");
  release(v);
  EXPECT_EQ(to_json(v), R"({"a":[],"b":{"c":[]},"d":"x"})");
  Value deep = Value::array();  // deeper than release descends: left to the destructor, no crash
  for (int i = 0; i < 200; ++i) deep = Value::array({std::move(deep)});
  release(deep);
}

TEST(JsonDump, FloatTextIsShortestAndKeepsAFraction) {
  EXPECT_EQ(to_json(Value(1.0)), "1.0");
  EXPECT_EQ(to_json(Value(-0.0)), "-0.0");
  EXPECT_EQ(to_json(Value(0.1)), "0.1");
  EXPECT_EQ(to_json(Value(static_cast<double>(0.1f))), "0.1");  // numpy's repr of np.float32(0.1)
  EXPECT_EQ(to_json(Value(static_cast<double>(0.9998f))), "0.9998");  // not 0.9997999668121338
  EXPECT_EQ(to_json(Value(16777216.0)), "16777216.0");
  EXPECT_EQ(to_json(Value(std::numeric_limits<double>::quiet_NaN())), "null");
  EXPECT_EQ(to_json(Value(-std::numeric_limits<double>::infinity())), "null");
  EXPECT_EQ(to_json(Value::parse(R"({"score":0.5,"x":[2.5e-7]})")), R"({"score":0.5,"x":[2.5e-07]})");
}

}  // namespace
}  // namespace hfpipe
