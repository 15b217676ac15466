#include "cairn/base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <fmt/format.h>

namespace cairn {

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view name) {
  for (auto level : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                     spdlog::level::warn, spdlog::level::err, spdlog::level::off}) {
    auto sv = spdlog::level::to_string_view(level);
    if (std::string_view(sv.data(), sv.size()) == name) return level;
  }
  if (name == "error") return spdlog::level::err;
  return absl::InvalidArgumentError(
      fmt::format("unknown log level '{}'; use trace, debug, info, warn, error or off", name));
}

void InitLogging(spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_color_mt("cairn");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace cairn
