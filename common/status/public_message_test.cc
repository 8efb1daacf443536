#include "common/status/public_message.h"

#include "gtest/gtest.h"

namespace fleetcore {
namespace {

TEST(PublicMessageTest, ClientErrorsKeepTheirWords) {
  EXPECT_EQ(PublicMessage(absl::AbortedError("Version conflict")), "Version conflict");
  EXPECT_EQ(PublicMessage(absl::NotFoundError("Thing not found")), "Thing not found");
  EXPECT_EQ(PublicMessage(absl::PermissionDeniedError("the certificate is revoked")),
            "the certificate is revoked");
  EXPECT_FALSE(IsServerError(absl::InvalidArgumentError("Invalid JSON")));
  EXPECT_FALSE(IsServerError(absl::OkStatus()));
}

TEST(PublicMessageTest, TheServicesOwnFailuresNameNothingBehindIt) {
  const absl::Status down = absl::UnavailableError(
      "database unavailable: connection to server at \"10.0.0.7\", port 5432 failed");
  EXPECT_TRUE(IsServerError(down));
  EXPECT_EQ(PublicMessage(down), "Service Unavailable");
  EXPECT_EQ(PublicMessage(absl::DeadlineExceededError("policy service at 10.0.0.8:7002")),
            "Service Unavailable");
  EXPECT_EQ(PublicMessage(absl::InternalError("SQL error 42P01 in query: SELECT ...")),
            "Internal service failure");
  EXPECT_EQ(PublicMessage(absl::UnknownError("?")), "Internal service failure");
  EXPECT_EQ(PublicMessage(absl::DataLossError("a sealed secret does not open")),
            "Internal service failure");
}

}  // namespace
}  // namespace fleetcore
