// Fuzzes the HTTP ingest body parser (JSON lines or a JSON array): no input may
// crash, and every non-blank line or element is either a row or a reject.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/connect/internal/ingest_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  cairn::connect::EventTimeField none;
  (void)cairn::connect::internal::ParseIngestBody(body, none);
  cairn::connect::EventTimeField time;
  time.field = "ts";
  (void)cairn::connect::internal::ParseIngestBody(body, time);
  return 0;
}
