#include "common/db/pg_pool.h"
#include "common/db/pg_rows.h"

#include "gtest/gtest.h"
#include "pqxx/except"

namespace fleetcore::db {
namespace {

TEST(RedactUrlTest, HidesPasswordsInBothForms) {
  EXPECT_EQ(RedactUrl("postgresql://fleet:s3cret@127.0.0.1:5432/fleetcore"),
            "postgresql://fleet:***@127.0.0.1:5432/fleetcore");
  EXPECT_EQ(RedactUrl("host=db user=fleet password=s3cret dbname=x"),
            "host=db user=fleet password=*** dbname=x");
  EXPECT_EQ(RedactUrl("postgresql://db/x?user=a&password=s3cret&sslmode=require"),
            "postgresql://db/x?user=a&password=***&sslmode=require");
  EXPECT_EQ(RedactUrl("postgresql://fleet@db/x"), "postgresql://fleet@db/x");
}

TEST(WithPasswordTest, PutsThePasswordIntoBothForms) {
  EXPECT_EQ(WithPassword("postgresql://fleet@db:5432/x?sslmode=require", "p@ss/w:rd"),
            "postgresql://fleet:p%40ss%2Fw%3Ard@db:5432/x?sslmode=require");
  EXPECT_EQ(WithPassword("postgresql://fleet:old@db/x", "new"), "postgresql://fleet:new@db/x");
  EXPECT_EQ(WithPassword("postgresql://db", "pw"), "postgresql://:pw@db");
  EXPECT_EQ(WithPassword("host=db user=fleet", "it's"), "host=db user=fleet password='it\\'s'");
  EXPECT_EQ(WithPassword("postgresql://fleet@db/x", ""), "postgresql://fleet@db/x");
}

TEST(TextArrayTest, QuotesAndEscapes) {
  EXPECT_EQ(TextArray({}), "{}");
  EXPECT_EQ(TextArray({"a", "b,c", "q\"uote", "back\\slash"}),
            "{\"a\",\"b,c\",\"q\\\"uote\",\"back\\\\slash\"}");
}

TEST(StatusFromPqxxTest, MapsTheImportantFailures) {
  EXPECT_EQ(StatusFromPqxx(pqxx::broken_connection("gone")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromPqxx(pqxx::unique_violation("dup", "INSERT", "23505")).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusFromPqxx(pqxx::foreign_key_violation("fk", "INSERT", "23503")).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromPqxx(pqxx::serialization_failure("ser")).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(StatusFromPqxx(pqxx::sql_error("timeout", "SELECT", "57014")).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(StatusFromPqxx(pqxx::sql_error("shutdown", "SELECT", "57P01")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromPqxx(pqxx::sql_error("syntax", "SELEC", "42601")).code(),
            absl::StatusCode::kInternal);
}

TEST(WaitForPostgresTest, GivesUpWithAClearRedactedError) {
  // Port 1 on loopback refuses at once.
  absl::Status s =
      WaitForPostgres("postgresql://u:pw@127.0.0.1:1/db?connect_timeout=1", absl::Milliseconds(300));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("cannot connect to Postgres"), std::string::npos);
  EXPECT_EQ(s.message().find("pw@"), std::string::npos);
}

}  // namespace
}  // namespace fleetcore::db
