// The small HTTP server: answers through its handler, refuses a taken port clearly.
#include "common/http/http_server.h"

#include "common/testing/http.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::http {
namespace {

using ::fleetcore::testing::StatusIs;
using ::testing::HasSubstr;

TEST(HttpServerTest, AnswersThroughItsHandler) {
  ASSERT_OK_AND_ASSIGN(auto server, HttpServer::Start("127.0.0.1:0", [](const ServerRequest& r) {
                         if (r.target != "/hello") return ServerResponse{404, "text/plain", "no\n"};
                         return ServerResponse{200, "text/plain", "hi " + r.method + "\n"};
                       }));
  ASSERT_GT(server->port(), 0);
  EXPECT_EQ(fleetcore::testing::HttpGet(server->port(), "/hello"), "hi GET\n");
  EXPECT_EQ(fleetcore::testing::HttpGet(server->port(), "/other"), "no\n");

  EXPECT_THAT(HttpServer::Start(absl::StrCat("127.0.0.1:", server->port()),
                                [](const ServerRequest&) { return ServerResponse{}; }),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot listen")));
  EXPECT_THAT(HttpServer::Start("nowhere", [](const ServerRequest&) { return ServerResponse{}; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fleetcore::http
