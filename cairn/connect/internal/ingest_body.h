// Parsing of an HTTP ingest request body (see http_ingest.h): JSON lines, or one
// JSON array of objects. Private to cairn/connect; separate so it can be fuzzed.
//
// Thread-safety: a free function; safe to call from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/base/status.h"
#include "cairn/connect/payload.h"
#include "cairn/stream/record.h"

namespace cairn::connect::internal {

struct IngestRow {
  stream::Row row;
  stream::EventTime time = 0;  // set when the time field is enabled
};

struct IngestReject {
  size_t number = 0;  // line (JSON lines) or element (array), 1-based
  std::string raw;
  std::string error;
};

struct IngestBody {
  bool array = false;
  std::vector<IngestRow> rows;
  std::vector<IngestReject> rejects;
};

// Splits and parses `body`. Malformed records become rejects; an error only for
// a body that is empty or starts with '[' but is not a valid JSON array.
absl::StatusOr<IngestBody> ParseIngestBody(std::string_view body, const EventTimeField& time);

}  // namespace cairn::connect::internal
