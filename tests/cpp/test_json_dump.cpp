// The CLI's JSON printer against nlohmann's own dump: same text for everything but floats,
// and floats that read back as the very same double.
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

TEST(JsonDump, FloatsReadBackAsTheSameDouble) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::uniform_int_distribution<int> exponent(-40, 40);
  Value list = Value::array();
  for (int i = 0; i < 20000; ++i) {
    const float f = normal(rng) * std::pow(10.f, static_cast<float>(exponent(rng)) / 4.f);
    list.push_back(static_cast<double>(f));  // results hold floats widened to double
  }
  for (double d : {0.0, -0.0, 1.0, -3.0, 1e16, 1e-5, 0.1, 123456789.0, 5e-324, 1.7976931348623157e308})
    list.push_back(d);
  const Value back = Value::parse(to_json(list));
  ASSERT_EQ(back.size(), list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    ASSERT_TRUE(back[i].is_number_float()) << to_json(list[i]);
    EXPECT_EQ(bits_of(back[i].get<double>()), bits_of(list[i].get<double>())) << to_json(list[i]);
  }
}

TEST(JsonDump, FloatTextIsShortestAndKeepsAFraction) {
  EXPECT_EQ(to_json(Value(1.0)), "1.0");
  EXPECT_EQ(to_json(Value(-0.0)), "-0.0");
  EXPECT_EQ(to_json(Value(0.1)), "0.1");
  EXPECT_EQ(to_json(Value(static_cast<double>(0.1f))), "0.10000000149011612");  // Python's repr too
  EXPECT_EQ(to_json(Value(std::numeric_limits<double>::quiet_NaN())), "null");
  EXPECT_EQ(to_json(Value(-std::numeric_limits<double>::infinity())), "null");
  EXPECT_EQ(to_json(Value::parse(R"({"score":0.5,"x":[2.5e-7]})")), R"({"score":0.5,"x":[2.5e-07]})");
}

}  // namespace
}  // namespace hfpipe
