#include "common/net/listen_address.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::net {
namespace {

TEST(ParseHostPortTest, ParsesV4V6AndRejectsJunk) {
  auto a = ParseHostPort("127.0.0.1:6051");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6051);
  auto b = ParseHostPort("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(ParseHostPort("6051").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHostPort("host:99999").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHostPort("host:http").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProbeListenTest, ReportsATakenPort) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  absl::Status s = ProbeListen("metrics listener", taken);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("already in use"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("metrics listener"));
  close(fd);
  EXPECT_TRUE(ProbeListen("metrics listener", "127.0.0.1:0").ok());
}

TEST(ProbeListenTest, ReportsAForeignAddress) {
  EXPECT_EQ(ProbeListen("x", "192.0.2.1:0").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fleetcore::net
