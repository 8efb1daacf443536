// Early-return helpers for absl::Status and absl::StatusOr (Abseil 20220623, the version in
// Debian 12, has neither ABSL_RETURN_IF_ERROR nor ABSL_ASSIGN_OR_RETURN).
//
//   absl::Status Save(const Thing& t) {
//     FLEETCORE_RETURN_IF_ERROR(Validate(t));
//     FLEETCORE_ASSIGN_OR_RETURN(auto conn, pool.Acquire());
//     ...
//   }
//
// These are the only macros fleetcore defines besides include guards' replacements.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FLEETCORE_RETURN_IF_ERROR(expr)                   \
  do {                                                    \
    if (::absl::Status fleetcore_status_ = (expr);        \
        !fleetcore_status_.ok()) {                        \
      return fleetcore_status_;                           \
    }                                                     \
  } while (false)

#define FLEETCORE_STATUS_CONCAT_INNER_(a, b) a##b
#define FLEETCORE_STATUS_CONCAT_(a, b) FLEETCORE_STATUS_CONCAT_INNER_(a, b)

#define FLEETCORE_ASSIGN_OR_RETURN(lhs, rexpr) \
  FLEETCORE_ASSIGN_OR_RETURN_IMPL_(FLEETCORE_STATUS_CONCAT_(fleetcore_statusor_, __LINE__), lhs, rexpr)

#define FLEETCORE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                     \
  if (!statusor.ok()) {                                        \
    return std::move(statusor).status();                       \
  }                                                            \
  lhs = std::move(statusor).value()
