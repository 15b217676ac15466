// Text formats of Rows: JSON objects (one per line or per message) and CSV lines.
//
// JSON: a flat object becomes one field per member, in document order; numbers
// without fraction or exponent that fit int64 become int64, other numbers
// double; true/false bool; null null; strings string. A nested object or array
// is kept as its JSON text (a string field). Anything that is not one JSON
// object is an error naming what is wrong and where.
//
// CSV: RFC 4180 quoting (quoted fields may hold the delimiter, doubled quotes;
// a line never holds a record break here: one line = one record). Field values
// are typed like JSON scalars when `infer_types` (integers, then doubles, then
// true/false, an empty field is null); otherwise strings. A quoted field is
// always a string ("" is the empty string, an empty unquoted field null), and a
// number written with a leading zero ("007") stays a string, so FormatCsvRow's
// output reads back as the same typed row. A trailing '\r' (CRLF files) is
// dropped; a UTF-8 byte order mark before the header is skipped.
//
// Thread-safety: the free functions are thread-safe; a parser object is used by
// one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/base/status.h"
#include "cairn/stream/record.h"

namespace cairn::stream {

// Parses one JSON object. Reuses an internal parser per thread (simdjson).
absl::StatusOr<Row> ParseJsonRow(std::string_view text);
// One line of JSON (no trailing newline); field order kept. A double always has
// a '.' or an exponent (1.0, not 1) so it reads back as a double; NaN and
// infinities, which JSON cannot hold, become null.
std::string FormatJsonRow(const Row& row);
// Appends `s` as a JSON string literal (quotes included). Invalid UTF-8 bytes
// become U+FFFD, so the output is always valid JSON.
void AppendJsonString(std::string& out, std::string_view s);

struct CsvOptions {
  char delimiter = ',';
  bool header = true;                // the first line names the columns
  std::vector<std::string> columns;  // names when there is no header (else col0, col1, ...)
  bool infer_types = true;
};

class CsvRowParser {
 public:
  explicit CsvRowParser(CsvOptions options);
  // With options.header, the first line given to Parse is taken as the header
  // and Parse returns an empty Row with `*is_header` = true.
  absl::StatusOr<Row> Parse(std::string_view line, bool* is_header = nullptr);
  const std::vector<std::string>& columns() const { return columns_; }
  // Whether the next line given to Parse will be taken as the header.
  bool expecting_header() const { return options_.header && !header_seen_; }

 private:
  // One field of the line being parsed: a view into the line, or a range of
  // scratch_ when doubled quotes had to be undone.
  struct Cell {
    std::string_view text;
    size_t scratch_begin = 0;
    size_t scratch_size = 0;
    bool in_scratch = false;
    bool quoted = false;
  };
  absl::Status Split(std::string_view line);
  std::string_view CellText(const Cell& c) const;

  CsvOptions options_;
  std::vector<std::string> columns_;
  bool header_seen_ = false;
  std::vector<Cell> cells_;
  std::string scratch_;
};

// CSV line of the row's values (no newline), quoting where needed. A value that
// holds a line break is quoted as RFC 4180 says, which a line-based reader
// (CsvRowParser, FileSource) cannot read back. NaN and infinities are written
// as NaN, inf, -inf (they read back as strings).
std::string FormatCsvRow(const Row& row, char delimiter = ',');
// CSV line of the row's field names.
std::string FormatCsvHeader(const Row& row, char delimiter = ',');

// Event time from a field value. `format`: "epoch_ms", "epoch_s" (may have a
// fraction), "iso8601" ("2013-12-02 21:15:00", "2013-12-02T21:15:00.250Z",
// "+hh:mm" offsets; no zone = UTC), or "auto" (numbers: epoch seconds when below
// 1e11, else milliseconds; strings: ISO 8601). Errors name the value and format.
// Details: a string holding a number is read as that number under epoch_ms,
// epoch_s and auto; ISO 8601 also takes a date alone (midnight UTC), "+hhmm" and
// "+hh" offsets, and a fraction of any length (cut to milliseconds).
absl::StatusOr<EventTime> ParseEventTime(const Value& v, std::string_view format = "auto");
// OK when `format` is one of ParseEventTime's formats, else the error it would give.
absl::Status CheckEventTimeFormat(std::string_view format);

// A log-safe excerpt of outside text: control bytes escaped as \xNN, cut to
// `max` bytes with "..." after.
std::string PrintableExcerpt(std::string_view s, size_t max);

}  // namespace cairn::stream
