// cairn/base/log.h — logging through spdlog, to stderr.
//
// Call InitLogging once from main; afterwards use spdlog::info(...) etc. anywhere.
// spdlog's default logger is thread-safe.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

#include "absl/status/statusor.h"

namespace cairn {

// "trace", "debug", "info", "warn", "error", "off".
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view name);

// Sends the default logger to stderr with a compact pattern at `level`.
void InitLogging(spdlog::level::level_enum level = spdlog::level::info);

}  // namespace cairn
