// cairn/cli/input.h — reading lines, or one column of a CSV, in one pass.
//
// Shell tools (`cairn sketch …`) read files of any size or stdin in constant
// memory. A FieldReader hands out one field per input line; lines that lack the
// column are reported with their line number. Progress goes to stderr for large
// inputs. Single-threaded.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cairn::cli {

struct FieldReaderOptions {
  std::string path = "-";         // "-" = stdin
  int column = 0;                 // 0 = the whole line; N >= 1 = the Nth CSV field
  char delimiter = ',';
  bool skip_header = false;       // skip the first line
  bool progress = true;           // show progress on stderr for large inputs
  std::string label = "reading";  // progress line prefix
};

class FieldReader {
 public:
  static absl::StatusOr<std::unique_ptr<FieldReader>> Open(const FieldReaderOptions& options);
  ~FieldReader();
  FieldReader(const FieldReader&) = delete;
  FieldReader& operator=(const FieldReader&) = delete;

  enum class Result { kField, kMissingColumn, kEnd, kError };
  // Next field; valid until the following call. On kMissingColumn the line is
  // skipped (line_number() tells which); on kError, error() says what happened.
  Result Next(std::string_view* field);

  uint64_t line_number() const { return line_number_; }
  uint64_t bytes_read() const { return bytes_consumed_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return options_.path; }
  // Clears the progress line, if one was drawn.
  void FinishProgress();

 private:
  explicit FieldReader(FieldReaderOptions options) : options_(std::move(options)) {}
  bool Fill();
  bool ReadLine(std::string_view* line);
  void MaybeShowProgress();

  FieldReaderOptions options_;
  std::FILE* file_ = nullptr;
  bool owns_file_ = false;
  uint64_t file_size_ = 0;  // 0 when unknown (stdin, pipes)
  std::unique_ptr<char[]> buf_;
  size_t buf_cap_ = 0, begin_ = 0, end_ = 0;
  bool eof_ = false;
  std::string carry_;  // a line longer than the buffer
  std::string field_;  // unquoted CSV field
  uint64_t line_number_ = 0;
  uint64_t bytes_consumed_ = 0;
  int64_t last_progress_ns_ = 0;
  int64_t start_ns_ = 0;
  bool progress_shown_ = false;
  std::string error_;
};

// Parses a decimal number (as strtod, surrounding spaces allowed); nullopt if
// the text is not entirely a finite number.
std::optional<double> ParseNumber(std::string_view text);

}  // namespace cairn::cli
