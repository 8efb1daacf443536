#include "common/ids/id_generator.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore {
namespace {

TEST(RandomIdGeneratorTest, ProducesCanonicalVersion4Uuids) {
  RandomIdGenerator ids;
  const std::string id = ids.NewUuid();
  EXPECT_THAT(id, testing::MatchesRegex(
                      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
}

TEST(RandomIdGeneratorTest, DoesNotRepeat) {
  RandomIdGenerator ids;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(seen.insert(ids.NewUuid()).second);
  }
}

}  // namespace
}  // namespace fleetcore
