// Fuzzes the text formats: JSON rows, CSV lines (with and without a header,
// typed and untyped) and event-time parsing. No input may crash, and what the
// formatters write must read back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/stream/format.h"

namespace {

using cairn::stream::CsvOptions;
using cairn::stream::CsvRowParser;
using cairn::stream::Row;
using cairn::stream::Value;

void Check(bool ok) {
  if (!ok) std::abort();
}

void TimeFromEveryFormat(const Value& v) {
  for (const char* format : {"auto", "epoch_ms", "epoch_s", "iso8601"}) (void)cairn::stream::ParseEventTime(v, format);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  absl::StatusOr<Row> json = cairn::stream::ParseJsonRow(text);
  if (json.ok()) {
    absl::StatusOr<Row> again = cairn::stream::ParseJsonRow(cairn::stream::FormatJsonRow(*json));
    Check(again.ok() && *again == *json);
    for (const auto& f : json->fields()) TimeFromEveryFormat(f.value);
  }

  CsvOptions options;
  options.delimiter = "\t,;|"[selector & 3];
  options.header = (selector & 4) != 0;
  options.infer_types = (selector & 8) != 0;
  CsvRowParser parser(options);
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    bool is_header = false;
    absl::StatusOr<Row> row = parser.Parse(text.substr(start, end - start), &is_header);
    if (row.ok() && !is_header) {
      for (const auto& f : row->fields()) TimeFromEveryFormat(f.value);
      std::string line = cairn::stream::FormatCsvRow(*row, options.delimiter);
      if (line.find_first_of("\r\n") == std::string::npos && options.infer_types) {
        // A typed row written as CSV reads back as the same row.
        CsvOptions plain = options;
        plain.header = false;
        plain.columns = parser.columns();
        plain.columns.resize(row->size());
        CsvRowParser reader(plain);
        absl::StatusOr<Row> back = reader.Parse(line);
        Check(back.ok() && *back == *row);
      }
    }
    start = end + 1;
  }

  TimeFromEveryFormat(Value(std::string(text)));
  return 0;
}
