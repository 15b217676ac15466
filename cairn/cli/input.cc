#include "cairn/cli/input.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "cairn/base/clock.h"
#include "cairn/cli/format.h"

namespace cairn::cli {
namespace {
constexpr size_t kBufferSize = 1 << 20;
constexpr uint64_t kProgressMinBytes = 64ull << 20;  // show progress for inputs over 64 MiB
constexpr int64_t kProgressIntervalNs = 500'000'000;
}  // namespace

absl::StatusOr<std::unique_ptr<FieldReader>> FieldReader::Open(const FieldReaderOptions& options) {
  if (options.column < 0) {
    return absl::InvalidArgumentError(fmt::format("--column must be >= 1 (got {})", options.column));
  }
  std::unique_ptr<FieldReader> r(new FieldReader(options));
  if (options.path == "-" || options.path.empty()) {
    r->file_ = stdin;
  } else {
    r->file_ = std::fopen(options.path.c_str(), "rb");
    if (r->file_ == nullptr) {
      return absl::NotFoundError(
          fmt::format("cannot open '{}': {}", options.path, std::strerror(errno)));
    }
    r->owns_file_ = true;
    struct stat st;
    if (fstat(fileno(r->file_), &st) == 0 && S_ISREG(st.st_mode)) r->file_size_ = st.st_size;
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(fmt::format("'{}' is a directory, not a file", options.path));
    }
  }
  r->buf_ = std::make_unique<char[]>(kBufferSize);
  r->buf_cap_ = kBufferSize;
  r->start_ns_ = SystemClock::Get().MonotonicNanos();
  return r;
}

FieldReader::~FieldReader() {
  FinishProgress();
  if (owns_file_ && file_ != nullptr) std::fclose(file_);
}

bool FieldReader::Fill() {
  if (eof_) return false;
  size_t n = std::fread(buf_.get(), 1, buf_cap_, file_);
  begin_ = 0;
  end_ = n;
  if (n == 0) {
    eof_ = true;
    if (std::ferror(file_)) error_ = fmt::format("error reading '{}': {}", options_.path, std::strerror(errno));
    return false;
  }
  return true;
}

bool FieldReader::ReadLine(std::string_view* line) {
  carry_.clear();
  for (;;) {
    if (begin_ == end_ && !Fill()) {
      if (carry_.empty()) return false;
      *line = carry_;  // last line without a newline
      bytes_consumed_ += carry_.size();
      return true;
    }
    const char* start = buf_.get() + begin_;
    const void* nl = std::memchr(start, '\n', end_ - begin_);
    if (nl != nullptr) {
      size_t len = static_cast<const char*>(nl) - start;
      begin_ += len + 1;
      bytes_consumed_ += len + 1;
      if (carry_.empty()) {
        *line = std::string_view(start, len);
      } else {
        carry_.append(start, len);
        *line = carry_;
      }
      return true;
    }
    bytes_consumed_ += end_ - begin_;
    carry_.append(start, end_ - begin_);
    begin_ = end_;
  }
}

FieldReader::Result FieldReader::Next(std::string_view* field) {
  std::string_view line;
  for (;;) {
    if (!ReadLine(&line)) return error_.empty() ? Result::kEnd : Result::kError;
    ++line_number_;
    if ((line_number_ & 0xffff) == 0) MaybeShowProgress();
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_number_ == 1 && options_.skip_header) continue;
    break;
  }
  if (options_.column == 0) {
    *field = line;
    return Result::kField;
  }
  // Walk to the Nth field, honouring double-quoted fields ("a,b" and "" escapes).
  int col = 1;
  size_t i = 0;
  while (i <= line.size()) {
    bool quoted = i < line.size() && line[i] == '"';
    size_t end;
    if (quoted) {
      field_.clear();
      size_t j = i + 1;
      while (j < line.size()) {
        if (line[j] == '"') {
          if (j + 1 < line.size() && line[j + 1] == '"') { field_.push_back('"'); j += 2; continue; }
          break;
        }
        field_.push_back(line[j++]);
      }
      end = line.find(options_.delimiter, j);
      if (end == std::string_view::npos) end = line.size();
      if (col == options_.column) { *field = field_; return Result::kField; }
    } else {
      end = line.find(options_.delimiter, i);
      if (end == std::string_view::npos) end = line.size();
      if (col == options_.column) { *field = line.substr(i, end - i); return Result::kField; }
    }
    ++col;
    i = end + 1;
  }
  return Result::kMissingColumn;
}

void FieldReader::MaybeShowProgress() {
  if (!options_.progress || !isatty(STDERR_FILENO)) return;
  int64_t now = SystemClock::Get().MonotonicNanos();
  if (now - last_progress_ns_ < kProgressIntervalNs) return;
  if (file_size_ != 0 && file_size_ < kProgressMinBytes) return;
  if (file_size_ == 0 && bytes_consumed_ < kProgressMinBytes) return;
  last_progress_ns_ = now;
  double secs = (now - start_ns_) / 1e9;
  double mib = bytes_consumed_ / 1048576.0;
  if (file_size_ != 0) {
    fmt::print(stderr, "\r{}: {:5.1f}% {:.0f} MiB, {} lines, {:.0f} MiB/s   ", options_.label,
               100.0 * bytes_consumed_ / file_size_, mib, Thousands(line_number_), mib / secs);
  } else {
    fmt::print(stderr, "\r{}: {:.0f} MiB, {} lines, {:.0f} MiB/s   ", options_.label, mib,
               Thousands(line_number_), mib / secs);
  }
  std::fflush(stderr);
  progress_shown_ = true;
}

void FieldReader::FinishProgress() {
  if (progress_shown_) {
    fmt::print(stderr, "\r{:80}\r", "");
    progress_shown_ = false;
  }
}

std::optional<double> ParseNumber(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  if (text.front() == '+') text.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace cairn::cli
