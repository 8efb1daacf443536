#include "common/nesting/nesting.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fleetcore::nesting {
namespace {

using json = nlohmann::json;

std::string Cbor(const json& j) {
  const std::vector<uint8_t> v = json::to_cbor(j);
  return std::string(v.begin(), v.end());
}

TEST(JsonNestingTest, CountsBracketsOutsideStrings) {
  EXPECT_TRUE(JsonNestingWithin(R"({"a": [1, {"b": 2}]})", 3));
  EXPECT_FALSE(JsonNestingWithin(R"({"a": [1, {"b": 2}]})", 2));
  EXPECT_TRUE(JsonNestingWithin(R"({"a": "[[[[{{{{", "b": "\"[[[["})", 1));
  EXPECT_TRUE(JsonNestingWithin("[][][][]", 1));
  EXPECT_TRUE(JsonNestingWithin("", 0));
  EXPECT_TRUE(JsonNestingWithin("not json at all", 0));
  const std::string deep = std::string(64000, '[') + std::string(64000, ']');
  EXPECT_FALSE(JsonNestingWithin(deep, 64));
  EXPECT_TRUE(JsonNestingWithin(deep, 64000));
}

TEST(CborNestingTest, AgreesWithTheDepthOfTheDocument) {
  const json doc = {{"certificateOwnershipToken", "t"},
                    {"parameters", {{"SerialNumber", "1"}, {"list", {1, 2, {{"x", nullptr}}}}}},
                    {"n", -5}, {"f", 1.5}, {"b", true}, {"bin", json::binary({1, 2, 3})}};
  EXPECT_TRUE(CborNestingWithin(Cbor(doc), 4));
  EXPECT_FALSE(CborNestingWithin(Cbor(doc), 3));
  EXPECT_TRUE(CborNestingWithin(Cbor(json::object()), 1));
  EXPECT_FALSE(CborNestingWithin(Cbor(json::object()), 0));
  EXPECT_FALSE(CborNestingWithin(Cbor(json::array({json::array()})), 1));
  EXPECT_TRUE(CborNestingWithin(Cbor(json::array()), 1));
  EXPECT_TRUE(CborNestingWithin(Cbor({json::array(), json::array(), json::array()}), 2));
  EXPECT_TRUE(CborNestingWithin("", 0));
}

TEST(CborNestingTest, DeepOrBrokenInputIsRefused) {
  const std::string deep = std::string(100000, '\x81') + "\xa0";
  EXPECT_FALSE(CborNestingWithin(deep, 64));
  // Indefinite arrays, and tags, nest too.
  EXPECT_FALSE(CborNestingWithin(std::string(100, '\x9f'), 64));
  EXPECT_FALSE(CborNestingWithin(std::string(100, '\xc1'), 64));
  EXPECT_TRUE(CborNestingWithin(std::string("\x9f\x01\x02\xff", 4), 1));
  EXPECT_FALSE(CborNestingWithin("\xff", 4));                    // a break outside
  EXPECT_FALSE(CborNestingWithin("\x1c", 4));                    // reserved
  EXPECT_FALSE(CborNestingWithin("\x19\x01", 4));                // argument cut short
  EXPECT_FALSE(CborNestingWithin("\x62" "a", 4));                // string past the end
  EXPECT_FALSE(CborNestingWithin("\x9b\xff\xff\xff\xff\xff\xff\xff\xff", 4));  // huge array
}

}  // namespace
}  // namespace fleetcore::nesting
