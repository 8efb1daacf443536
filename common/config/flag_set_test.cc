#include "common/config/flag_set.h"

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fleetcore::config {
namespace {

using ::testing::HasSubstr;

struct Config {
  std::string db_url = "postgresql://localhost/fleetcore";
  int pool_size = 8;
  bool verbose = false;
  absl::Duration grace = absl::Seconds(10);
  std::string format = "auto";
  std::string token;
};

class FlagSetTest : public ::testing::Test {
 protected:
  FlagSetTest() : flags_("prog", "A test program.") {
    flags_.AddString("db-url", &cfg_.db_url, "Postgres URL.");
    flags_.AddInt("db-pool-size", &cfg_.pool_size, "Connections.", 1, 64);
    flags_.AddBool("verbose", &cfg_.verbose, "Chatty.");
    flags_.AddDuration("shutdown-grace", &cfg_.grace, "Drain deadline.");
    flags_.AddChoice("log-format", &cfg_.format, "Log format.", {"auto", "json", "text"});
    flags_.AddSecret("admin-token", &cfg_.token, "Bearer token.");
  }

  absl::Status Parse(std::vector<const char*> args, const Environment& env = {}) {
    args.insert(args.begin(), "prog");
    return flags_.Parse(static_cast<int>(args.size()), args.data(), env);
  }

  Config cfg_;
  FlagSet flags_;
};

TEST_F(FlagSetTest, DefaultsStayWhenNothingIsGiven) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(cfg_.db_url, "postgresql://localhost/fleetcore");
  EXPECT_EQ(cfg_.pool_size, 8);
  EXPECT_EQ(cfg_.grace, absl::Seconds(10));
}

TEST_F(FlagSetTest, ParsesBothFlagForms) {
  ASSERT_TRUE(Parse({"--db-url=postgresql://db/x", "--db-pool-size", "16", "--verbose",
                     "--shutdown-grace=250ms", "--log-format=json"})
                  .ok());
  EXPECT_EQ(cfg_.db_url, "postgresql://db/x");
  EXPECT_EQ(cfg_.pool_size, 16);
  EXPECT_TRUE(cfg_.verbose);
  EXPECT_EQ(cfg_.grace, absl::Milliseconds(250));
  EXPECT_EQ(cfg_.format, "json");
}

TEST_F(FlagSetTest, EnvironmentAppliesButFlagWins) {
  Environment env{{"FLEETCORE_DB_POOL_SIZE", "4"}, {"FLEETCORE_DB_URL", "postgresql://env/x"}};
  ASSERT_TRUE(Parse({"--db-url=postgresql://flag/x"}, env).ok());
  EXPECT_EQ(cfg_.pool_size, 4);
  EXPECT_EQ(cfg_.db_url, "postgresql://flag/x");
}

TEST_F(FlagSetTest, ErrorsNameTheSourceAndTheExpectation) {
  absl::Status s = Parse({"--db-pool-size=lots"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--db-pool-size"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("from 1 to 64"));

  s = Parse({}, {{"FLEETCORE_SHUTDOWN_GRACE", "10"}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("FLEETCORE_SHUTDOWN_GRACE"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("like 30s"));

  s = Parse({"--log-format=xml"});
  EXPECT_THAT(std::string(s.message()), HasSubstr("one of auto, json, text"));
}

TEST_F(FlagSetTest, RefusesUnknownOptionsAndStrayArguments) {
  EXPECT_THAT(std::string(Parse({"--db-urll=x"}).message()), HasSubstr("unknown option --db-urll"));
  EXPECT_EQ(Parse({"positional"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Parse({"--db-url"}).message()), HasSubstr("needs a value"));
}

TEST_F(FlagSetTest, HelpAndCheckConfigAreRecognised) {
  ASSERT_TRUE(Parse({"--help", "--check-config"}).ok());
  EXPECT_TRUE(flags_.help_requested());
  EXPECT_TRUE(flags_.check_config_requested());
  EXPECT_THAT(flags_.Usage(), HasSubstr("FLEETCORE_DB_POOL_SIZE"));
}

TEST_F(FlagSetTest, SecretsComeFromFilesAndAreNeverDescribed) {
  const std::string path = ::testing::TempDir() + "/token";
  std::ofstream(path) << "s3cret\n";
  ASSERT_TRUE(Parse({}, {{"FLEETCORE_ADMIN_TOKEN_FILE", path}}).ok());
  EXPECT_EQ(cfg_.token, "s3cret");
  EXPECT_THAT(flags_.Describe(), HasSubstr("admin-token=(set)"));
  EXPECT_THAT(flags_.Describe(), ::testing::Not(HasSubstr("s3cret")));

  cfg_.token.clear();
  ASSERT_TRUE(Parse({"--admin-token-file", path.c_str()}).ok());
  EXPECT_EQ(cfg_.token, "s3cret");

  EXPECT_THAT(std::string(Parse({"--admin-token-file=/nonexistent/x"}).message()),
              HasSubstr("cannot read secret file"));
}

TEST(EnvNameTest, UpperSnakeWithPrefix) {
  EXPECT_EQ(EnvName("db-pool-size"), "FLEETCORE_DB_POOL_SIZE");
}

}  // namespace
}  // namespace fleetcore::config
