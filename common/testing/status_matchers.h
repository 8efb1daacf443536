// gMock matchers for absl::Status and absl::StatusOr (Abseil 20220623 has none), and the
// two assertion macros tests use most.
//
//   EXPECT_THAT(core.CreateThing(in), StatusIs(absl::StatusCode::kAlreadyExists));
//   EXPECT_THAT(store.Get("x"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"x\"")));
//   ASSERT_OK(core.DeleteThing("x"));
//   ASSERT_OK_AND_ASSIGN(Thing t, core.DescribeThing("x"));
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) {
    *result_listener << "status is " << s;
  }
  return s.ok();
}

MATCHER_P(StatusIs, code,
          std::string("has status code ") + absl::StatusCodeToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has status code ") + absl::StatusCodeToString(code) +
               " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::Matches(message_matcher)(std::string(s.message()));
}

}  // namespace fleetcore::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::fleetcore::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::fleetcore::testing::IsOk())

#define FLEETCORE_TESTING_CONCAT_INNER_(a, b) a##b
#define FLEETCORE_TESTING_CONCAT_(a, b) FLEETCORE_TESTING_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                              \
  auto FLEETCORE_TESTING_CONCAT_(statusor_, __LINE__) = (rexpr);                      \
  ASSERT_TRUE(FLEETCORE_TESTING_CONCAT_(statusor_, __LINE__).ok())                    \
      << FLEETCORE_TESTING_CONCAT_(statusor_, __LINE__).status();                     \
  lhs = std::move(FLEETCORE_TESTING_CONCAT_(statusor_, __LINE__)).value()
