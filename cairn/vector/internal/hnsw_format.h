// Internal entry points of the HNSW file decoder (for the fuzz target and tests).
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "cairn/vector/hnsw.h"

namespace cairn::vector {

// Decodes the bytes of a file written by HnswIndex::Save (the same checks as
// HnswIndex::Open, without a file). InvalidArgument for any corrupt input.
absl::StatusOr<std::unique_ptr<HnswIndex>> HnswDecodeForTesting(std::string_view bytes);

}  // namespace cairn::vector
