// Small state files of checkpoints (positions, operator and sink state, keyed
// state snapshots): a payload sealed in the base codec's envelope (magic,
// version 1, size, checksum). Private to cairn/stream. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/base/status.h"

namespace cairn::stream::internal {

absl::Status WriteSealedFile(const std::string& path, uint32_t magic, std::string_view payload);
// Reads and checks a file written by WriteSealedFile; `what` names it in errors.
absl::StatusOr<std::string> ReadSealedFile(const std::string& path, uint32_t magic, std::string_view what);

}  // namespace cairn::stream::internal
