// cairn/base/status.h — error handling conventions for all of cairn.
//
// Every fallible function returns absl::Status or absl::StatusOr<T>. Messages say
// what was wrong and, where it helps, what to do. Exceptions thrown by third-party
// libraries are caught at the subsystem boundary and turned into a Status.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CAIRN_STATUS_CONCAT_INNER_(a, b) a##b
#define CAIRN_STATUS_CONCAT_(a, b) CAIRN_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define CAIRN_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    ::absl::Status cairn_status_ = (expr);          \
    if (!cairn_status_.ok()) return cairn_status_;  \
  } while (0)

// `CAIRN_ASSIGN_OR_RETURN(auto x, MakeX());` declares/assigns x from a StatusOr,
// or returns its error from the current function.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL_(CAIRN_STATUS_CONCAT_(cairn_statusor_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                 \
  if (!var.ok()) return std::move(var).status();     \
  lhs = std::move(var).value()
