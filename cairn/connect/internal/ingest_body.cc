#include "cairn/connect/internal/ingest_body.h"

#include <simdjson.h>

#include "fmt/format.h"
#include "cairn/stream/format.h"

namespace cairn::connect::internal {
namespace {

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

void ParseRecord(std::string_view text, size_t number, const EventTimeField& time, IngestBody& out) {
  absl::StatusOr<stream::Row> row = stream::ParseJsonRow(text);
  if (!row.ok()) {
    out.rejects.push_back({number, std::string(text), std::string(row.status().message())});
    return;
  }
  IngestRow item;
  if (time.enabled()) {
    absl::StatusOr<stream::EventTime> t = time.Extract(*row);
    if (!t.ok()) {
      out.rejects.push_back({number, std::string(text), std::string(t.status().message())});
      return;
    }
    item.time = *t;
  }
  item.row = *std::move(row);
  out.rows.push_back(std::move(item));
}

}  // namespace

absl::StatusOr<IngestBody> ParseIngestBody(std::string_view body, const EventTimeField& time) {
  std::string_view trimmed = Trim(body);
  if (trimmed.empty()) return absl::InvalidArgumentError("the body is empty: send JSON lines or a JSON array of objects");
  IngestBody out;
  out.array = trimmed.front() == '[';
  if (out.array) {
    simdjson::dom::parser parser;
    simdjson::dom::array elements;
    simdjson::error_code err = parser.parse(trimmed.data(), trimmed.size()).get_array().get(elements);
    if (err)
      return absl::InvalidArgumentError(
          fmt::format("the body starts with '[' but is not a JSON array: {}", simdjson::error_message(err)));
    size_t index = 0;
    for (simdjson::dom::element e : elements) {
      ++index;
      std::string text = simdjson::minify(e);
      if (!e.is_object()) {
        out.rejects.push_back({index, std::move(text), "the element is not a JSON object"});
        continue;
      }
      ParseRecord(text, index, time, out);
    }
    return out;
  }
  size_t line = 0, pos = 0;
  while (pos <= body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    ++line;
    std::string_view text = Trim(body.substr(pos, end - pos));
    if (!text.empty()) ParseRecord(text, line, time, out);
    pos = end + 1;
  }
  return out;
}

}  // namespace cairn::connect::internal
