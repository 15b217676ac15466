// `cairn detect …`: score a CSV file with an anomaly detector, one output line
// per input line, in input order.
//
//   cairn detect edges  — (src, dst, time) records, edge/node bursts (detect/edges.h)
//   cairn detect series — a time series per key (detect/series.h)
//
// Both read the file in one streaming pass through a large buffer, split only
// the columns they need, parse numbers without allocating, and write through a
// buffer, so tens of millions of lines take constant memory (series: one state
// per key). A bad line stops the run with its line number (--on-error fail) or
// gets an empty score and is counted (--on-error skip), so that output line N
// always belongs to input line N.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "bench/edge_workload.h"
#include "cairn/base/clock.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"
#include "cairn/cli/input.h"
#include "cairn/detect/edges.h"
#include "cairn/detect/series.h"
#include "cairn/pipeline/pipeline_file.h"
#include "cairn/stream/format.h"

namespace cairn::cli {
namespace {

// Small enough that input and output buffers stay out of the way of the
// detector's sketches in the core's cache.
constexpr size_t kBufferSize = 256 << 10;
constexpr size_t kMaxFields = 256;

// Lines of a file (or stdin) through one buffer; a line stays valid until the
// next call. Lines longer than the buffer are carried in a growing string.
class LineReader {
 public:
  absl::Status Open(const std::string& path) {
    path_ = path;
    if (path == "-") {
      fd_ = 0;
    } else {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) return absl::NotFoundError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
      struct stat st;
      if (fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
        return absl::InvalidArgumentError(fmt::format("'{}' is a directory, not a file", path));
      }
    }
    buf_ = std::make_unique<char[]>(kBufferSize);
    return absl::OkStatus();
  }
  ~LineReader() {
    if (fd_ > 0) ::close(fd_);
  }

  // False at the end of input or on a read error (then error() is set).
  bool Next(std::string_view* line) {
    carry_.clear();
    for (;;) {
      if (begin_ == end_ && !Fill()) {
        if (carry_.empty()) return false;
        *line = Trim(carry_);
        ++line_number_;
        return true;
      }
      const char* start = buf_.get() + begin_;
      const void* nl = std::memchr(start, '\n', end_ - begin_);
      if (nl != nullptr) {
        const size_t len = static_cast<const char*>(nl) - start;
        begin_ += len + 1;
        ++line_number_;
        if (carry_.empty()) {
          *line = Trim(std::string_view(start, len));
        } else {
          carry_.append(start, len);
          *line = Trim(carry_);
        }
        return true;
      }
      carry_.append(start, end_ - begin_);
      begin_ = end_;
    }
  }

  uint64_t line_number() const { return line_number_; }
  const std::string& error() const { return error_; }
  std::string display_name() const { return path_ == "-" ? "<stdin>" : path_; }

 private:
  static std::string_view Trim(std::string_view s) {
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    return s;
  }
  bool Fill() {
    if (eof_) return false;
    ssize_t n;
    do {
      n = ::read(fd_, buf_.get(), kBufferSize);
    } while (n < 0 && errno == EINTR);
    begin_ = 0;
    end_ = n > 0 ? static_cast<size_t>(n) : 0;
    if (n <= 0) {
      eof_ = true;
      if (n < 0) error_ = fmt::format("error reading '{}': {}", display_name(), std::strerror(errno));
      return false;
    }
    if (line_number_ == 0 && end_ >= 3 && std::memcmp(buf_.get(), "\xEF\xBB\xBF", 3) == 0) begin_ = 3;  // BOM
    return true;
  }

  std::string path_;
  int fd_ = -1;
  std::unique_ptr<char[]> buf_;
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  std::string carry_;
  uint64_t line_number_ = 0;
  std::string error_;
};

// Splits a CSV line into at most `max` fields (views into the line). A quoted
// field's view is its text between the quotes, doubled quotes left as they
// are (node names are hashed as bytes; values do not hold quotes). Returns the
// number of fields found.
size_t SplitCsv(std::string_view line, char delim, size_t max, std::string_view* out) {
  size_t n = 0, i = 0;
  while (n < max) {
    if (i < line.size() && line[i] == '"') {
      size_t j = i + 1;
      for (;;) {
        j = line.find('"', j);
        if (j == std::string_view::npos) { j = line.size(); break; }
        if (j + 1 < line.size() && line[j + 1] == '"') { j += 2; continue; }
        break;
      }
      out[n++] = line.substr(i + 1, j - (i + 1));
      size_t e = line.find(delim, j);
      if (e == std::string_view::npos) return n;
      i = e + 1;
    } else {
      const void* p = std::memchr(line.data() + i, delim, line.size() - i);
      if (p == nullptr) {
        out[n++] = line.substr(i);
        return n;
      }
      const size_t e = static_cast<const char*>(p) - line.data();
      out[n++] = line.substr(i, e - i);
      i = e + 1;
    }
  }
  return n;
}

std::string_view StripSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseInt(std::string_view s, int64_t* out) {
  // The common case first: up to 18 plain digits cannot overflow.
  if (!s.empty() && s.size() <= 18) {
    uint64_t v = 0;
    size_t i = 0;
    for (; i < s.size(); ++i) {
      const unsigned d = static_cast<unsigned char>(s[i]) - '0';
      if (d > 9) break;
      v = v * 10 + d;
    }
    if (i == s.size()) {
      *out = static_cast<int64_t>(v);
      return true;
    }
  }
  s = StripSpaces(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "YYYY-MM-DD[T ]HH:MM:SS[.fff][Z]" without allocating; false for any other
// shape (the caller then asks ParseEventTime, which knows every form).
bool FastIso8601(std::string_view s, int64_t* ms) {
  auto num = [&](size_t at, size_t len, int* v) {
    if (at + len > s.size()) return false;
    int x = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
  };
  int y, mo, d, h, mi, se;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':') {
    return false;
  }
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) || !num(14, 2, &mi) ||
      !num(17, 2, &se)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return false;
  size_t i = 19;
  int frac_ms = 0;
  if (i < s.size() && s[i] == '.') {
    int digits = 0;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
      if (digits < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
    }
    if (digits == 0) return false;
    for (; digits < 3; ++digits) frac_ms *= 10;
  }
  if (i < s.size() && s[i] == 'Z') ++i;
  if (i != s.size()) return false;
  *ms = ((DaysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + se * 1000 + frac_ms;
  return true;
}

enum class TimeFormat { kAuto, kUnix, kUnixMs, kIso8601 };

TimeFormat TimeFormatOf(const std::string& name) {
  if (name == "unix") return TimeFormat::kUnix;
  if (name == "unix_ms") return TimeFormat::kUnixMs;
  if (name == "iso8601") return TimeFormat::kIso8601;
  return TimeFormat::kAuto;
}

// Event time of a field under `format`.
bool ParseTime(std::string_view field, TimeFormat format, int64_t* ms, std::string* problem) {
  field = StripSpaces(field);
  int64_t v;
  if (format != TimeFormat::kIso8601 && ParseInt(field, &v)) {
    const bool seconds = format == TimeFormat::kUnix ||
                         (format == TimeFormat::kAuto && v > -100'000'000'000 && v < 100'000'000'000);
    if (seconds && (v > INT64_MAX / 1000 || v < INT64_MIN / 1000)) {
      *problem = fmt::format("time '{}' is out of range", stream::PrintableExcerpt(field, 40));
      return false;
    }
    *ms = seconds ? v * 1000 : v;
    return true;
  }
  if ((format == TimeFormat::kAuto || format == TimeFormat::kIso8601) && FastIso8601(field, ms)) return true;
  // Everything else (fractions of seconds, zone offsets, ...) the slow general way.
  const std::string_view f = format == TimeFormat::kUnix     ? "epoch_s"
                             : format == TimeFormat::kUnixMs ? "epoch_ms"
                             : format == TimeFormat::kIso8601 ? "iso8601"
                                                              : "auto";
  auto t = stream::ParseEventTime(stream::Value(std::string(field)), f);
  if (!t.ok()) {
    *problem = std::string(t.status().message());
    return false;
  }
  *ms = *t;
  return true;
}

// Scores as text without the cost of general float formatting: 9 decimals,
// trailing zeros dropped ("0", "0.5", "0.999931", "1"), then `end`.
void AppendScore(std::string& out, double score, char end) {
  char text[16];
  size_t len;
  const uint64_t v = score > 0 ? static_cast<uint64_t>(std::min(score, 1.0) * 1e9 + 0.5) : 0;
  if (v == 0 || v >= 1'000'000'000) {
    text[0] = v == 0 ? '0' : '1';
    len = 1;
  } else {
    text[0] = '0';
    text[1] = '.';
    uint64_t x = v;
    for (int i = 10; i >= 2; --i, x /= 10) text[i] = static_cast<char>('0' + x % 10);
    len = 11;
    while (text[len - 1] == '0') --len;
  }
  text[len++] = end;
  out.append(text, len);
}

// Buffered output to a file or stdout.
class Output {
 public:
  absl::Status Open(const std::string& path) {
    path_ = path;
    if (path.empty() || path == "-") {
      f_ = stdout;
    } else {
      f_ = std::fopen(path.c_str(), "wb");
      if (f_ == nullptr) return absl::NotFoundError(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
      owned_ = true;
    }
    buf_.reserve(kBufferSize + 4096);
    return absl::OkStatus();
  }
  ~Output() {
    if (owned_) std::fclose(f_);
  }
  std::string& buf() { return buf_; }
  void MaybeFlush() {
    if (buf_.size() >= kBufferSize) Flush();
  }
  void Flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) failed_ = true;
    buf_.clear();
  }
  absl::Status Close() {
    Flush();
    if (std::fflush(f_) != 0) failed_ = true;
    if (owned_) {
      owned_ = false;
      if (std::fclose(f_) != 0) failed_ = true;
    }
    if (failed_) return absl::InternalError(fmt::format("error writing '{}'", path_.empty() ? "<stdout>" : path_));
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  bool owned_ = false;
  bool failed_ = false;
  std::string buf_;
};

// Progress on stderr: a rewritten line about once a second.
class Progress {
 public:
  Progress(std::string label, bool forced) : label_(std::move(label)) {
    enabled_ = forced || isatty(STDERR_FILENO);
    start_ = last_ = SystemClock::Get().MonotonicNanos();
  }
  void Tick(uint64_t lines) {
    if (!enabled_ || (lines & 0xffff) != 0) return;
    const int64_t now = SystemClock::Get().MonotonicNanos();
    if (now - last_ < 1'000'000'000) return;
    last_ = now;
    fmt::print(stderr, "\r{}: {} lines, {} lines/s   ", label_, Thousands(lines),
               HumanCount(lines / ((now - start_) / 1e9)));
    std::fflush(stderr);
    shown_ = true;
  }
  void Clear() {
    if (shown_) fmt::print(stderr, "\r{:70}\r", "");
    shown_ = false;
  }
  double Seconds() const { return (SystemClock::Get().MonotonicNanos() - start_) / 1e9; }

 private:
  std::string label_;
  bool enabled_ = false;
  bool shown_ = false;
  int64_t start_ = 0, last_ = 0;
};

// A column given as a 0-based index or (with a header) a name.
struct ColumnSpec {
  std::string text;
  int index = -1;
  absl::Status Resolve(const std::vector<std::string>* header, const char* flag) {
    int64_t v;
    if (ParseInt(text, &v)) {
      if (v < 0 || v >= static_cast<int64_t>(kMaxFields)) {
        return absl::InvalidArgumentError(fmt::format("{} {} is out of range 0..{}", flag, v, kMaxFields - 1));
      }
      index = static_cast<int>(v);
      return absl::OkStatus();
    }
    if (header == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("{} '{}' is a column name: the file needs a header line (--header)", flag, text));
    }
    for (size_t i = 0; i < header->size() && i < kMaxFields; ++i) {
      if ((*header)[i] == text) {
        index = static_cast<int>(i);
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(
        fmt::format("{} '{}' is not in the header ({})", flag, text, fmt::join(*header, ", ")));
  }
};

// What to do with a bad line.
struct ErrorPolicy {
  bool skip = false;
  uint64_t skipped = 0;
  uint64_t first_line = 0;
  std::string first_problem;
  // True when the run goes on (the line was skipped); prints the failure otherwise.
  bool Handle(const char* cmd, const LineReader& in, const std::string& problem) {
    if (!skip) {
      fmt::print(stderr, "cairn detect {}: {}:{}: {} (use --on-error skip to go on past bad lines)\n", cmd,
                 in.display_name(), in.line_number(), problem);
      return false;
    }
    if (skipped++ == 0) {
      first_line = in.line_number();
      first_problem = problem;
    }
    return true;
  }
  void Report(const char* cmd) const {
    if (skipped == 0) return;
    fmt::print(stderr, "cairn detect {}: skipped {} bad line{} (empty score); the first, line {}: {}\n", cmd,
               Thousands(skipped), skipped == 1 ? "" : "s", first_line, first_problem);
  }
};

std::vector<std::string> HeaderNames(std::string_view line, char delim) {
  std::string_view f[kMaxFields];
  const size_t n = SplitCsv(line, delim, kMaxFields, f);
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.emplace_back(StripSpaces(f[i]));
  return names;
}

// A CSV field as written back: quoted when it holds a delimiter, quote or line break.
void AppendCsvField(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) {
    out.append(s);
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

struct EdgesFlags {
  std::string input;
  std::string output;
  ColumnSpec src{"0"}, dst{"1"}, time{"2"}, label;
  std::string time_format = "auto";
  std::string tick = "1s";
  bool header = false;
  bool progress = false;
  bool explain = false;
  double false_alarm_rate = 0.001;
  std::string on_error = "fail";
  std::string delimiter = ",";
};

int RunDetectEdges(EdgesFlags f) {
  const char* cmd = "edges";
  auto fail = [&](const std::string& msg, int code) {
    fmt::print(stderr, "cairn detect edges: {}\n", msg);
    return code;
  };
  if (f.delimiter.size() != 1) return fail("--delimiter must be one character", 2);
  auto tick_ms = pipeline::ParseDurationMs(f.tick);
  if (!tick_ms.ok()) return fail(fmt::format("--tick: {}", std::string(tick_ms.status().message())), 2);
  detect::EdgeConfig config;
  config.tick_ms = std::max<int64_t>(*tick_ms, 1);
  auto det = detect::EdgeDetector::Create(config);
  if (!det.ok()) return fail(std::string(det.status().message()), 2);

  LineReader in;
  if (absl::Status s = in.Open(f.input); !s.ok()) return fail(std::string(s.message()), 1);
  Output out;
  if (absl::Status s = out.Open(f.output); !s.ok()) return fail(std::string(s.message()), 1);
  const char delim = f.delimiter[0];
  std::string_view line;
  std::vector<std::string> header;
  if (f.header) {
    if (!in.Next(&line)) return fail(fmt::format("{}: no header line", in.display_name()), 1);
    header = HeaderNames(line, delim);
    out.buf() += f.explain ? "score,reason\n" : "score\n";
  }
  const std::vector<std::string>* h = f.header ? &header : nullptr;
  for (auto [spec, flag] : {std::pair{&f.src, "--src-col"}, {&f.dst, "--dst-col"}, {&f.time, "--time-col"}}) {
    if (absl::Status s = spec->Resolve(h, flag); !s.ok()) return fail(std::string(s.message()), 2);
  }
  const bool labelled = !f.label.text.empty();
  if (labelled) {
    if (absl::Status s = f.label.Resolve(h, "--label-col"); !s.ok()) return fail(std::string(s.message()), 2);
  }
  const size_t need = 1 + static_cast<size_t>(std::max({f.src.index, f.dst.index, f.time.index, f.label.index}));

  if (!(f.false_alarm_rate > 0 && f.false_alarm_rate < 1)) return fail("--false-alarm-rate must be in (0, 1)", 2);
  const double threshold = detect::ThresholdFor(f.false_alarm_rate);
  ErrorPolicy policy{.skip = f.on_error == "skip"};
  const TimeFormat time_format = TimeFormatOf(f.time_format);
  Progress progress("detect edges", f.progress);
  detect::EdgeState st;
  std::vector<double> scores;
  std::vector<uint8_t> labels;
  std::string_view fields[kMaxFields];
  std::string problem;
  uint64_t lines = 0;
  // Without --explain, records are scored in blocks through UpdateBatch, which
  // gives the same scores as one call per record, faster; --explain needs the
  // state right after each record, so it scores one at a time. A block keeps,
  // per line in input order, whether it was a record (bad lines skipped with
  // --on-error skip get an empty line at their place).
  constexpr size_t kBlock = 4096;
  std::vector<uint64_t> block_src, block_dst;
  std::vector<int64_t> block_time;
  std::vector<uint8_t> block_label, block_line_ok;
  std::vector<detect::Scored> block_out(kBlock);
  if (!f.explain) {
    block_src.reserve(kBlock);
    block_dst.reserve(kBlock);
    block_time.reserve(kBlock);
    block_label.reserve(kBlock);
  }
  const auto flush_block = [&] {
    const size_t n = det->UpdateBatch(st, block_src, block_dst, block_time, block_out);
    size_t j = 0;
    for (uint8_t ok : block_line_ok) {
      if (!ok || j >= n) {
        out.buf() += '\n';
        continue;
      }
      AppendScore(out.buf(), block_out[j].score, '\n');
      if (labelled) {
        scores.push_back(block_out[j].score);
        labels.push_back(block_label[j]);
      }
      ++j;
    }
    block_src.clear();
    block_dst.clear();
    block_time.clear();
    block_label.clear();
    block_line_ok.clear();
    out.MaybeFlush();
  };
  while (in.Next(&line)) {
    progress.Tick(++lines);
    const size_t n = SplitCsv(line, delim, need, fields);
    int64_t t = 0, label = 0;
    problem.clear();
    if (n < need) {
      problem = fmt::format("has {} fields, needs at least {}", n, need);
    } else if (!ParseTime(fields[f.time.index], time_format, &t, &problem)) {
      problem = fmt::format("column {}: {}", f.time.index, problem);
    } else if (labelled && !ParseInt(fields[f.label.index], &label)) {
      problem = fmt::format("column {}: label '{}' is not an integer", f.label.index,
                            stream::PrintableExcerpt(fields[f.label.index], 40));
    }
    if (!problem.empty()) {
      progress.Clear();
      if (!policy.Handle(cmd, in, problem)) {
        if (!f.explain) flush_block();
        (void)out.Close();  // the lines before the bad one
        return 1;
      }
      if (f.explain) {
        out.buf() += '\n';
      } else {
        block_line_ok.push_back(0);
        if (block_line_ok.size() == kBlock) flush_block();
      }
      continue;
    }
    const uint64_t src = det->HashNode(fields[f.src.index]), dst = det->HashNode(fields[f.dst.index]);
    if (!f.explain) {
      block_src.push_back(src);
      block_dst.push_back(dst);
      block_time.push_back(t);
      block_label.push_back(label != 0);
      block_line_ok.push_back(1);
      if (block_line_ok.size() == kBlock) flush_block();
      continue;
    }
    const detect::Scored s = det->UpdateHashed(st, src, dst, t);
    AppendScore(out.buf(), s.score, ',');
    if (s.score >= threshold) {
      const detect::Observation obs{.key = fields[f.src.index], .item = fields[f.dst.index], .time = t};
      AppendCsvField(out.buf(), det->Explain(st, obs, s));
    }
    out.buf() += '\n';
    out.MaybeFlush();
    if (labelled) {
      scores.push_back(s.score);
      labels.push_back(label != 0);
    }
  }
  if (!f.explain) flush_block();
  progress.Clear();
  if (!in.error().empty()) return fail(in.error(), 1);
  if (absl::Status s = out.Close(); !s.ok()) return fail(std::string(s.message()), 1);
  policy.Report(cmd);
  const double secs = progress.Seconds();
  fmt::print(stderr, "cairn detect edges: {} lines in {:.2f} s ({} lines/s), detector state {}\n",
             Thousands(lines), secs, HumanCount(lines / std::max(secs, 1e-9)), HumanBytes(st.MemoryBytes()));
  if (labelled) {
    const double auc = bench::RocAuc(scores, labels);
    const auto positives = std::count(labels.begin(), labels.end(), 1);
    fmt::print(stderr, "cairn detect edges: ROC-AUC {:.4f} over {} labelled lines ({} anomalous)\n", auc,
               Thousands(labels.size()), Thousands(positives));
  }
  return 0;
}

struct SeriesFlags {
  std::string input;
  std::string output;
  ColumnSpec time{"timestamp"}, value{"value"}, key;
  double false_alarm_rate = 0.001;
  bool progress = false;
  std::string on_error = "fail";
  std::string value_name = "value";
  int64_t warmup = detect::SeriesConfig{}.warmup;
};

int RunDetectSeries(SeriesFlags f) {
  const char* cmd = "series";
  auto fail = [&](const std::string& msg, int code) {
    fmt::print(stderr, "cairn detect series: {}\n", msg);
    return code;
  };
  if (!(f.false_alarm_rate > 0 && f.false_alarm_rate < 1)) return fail("--false-alarm-rate must be in (0, 1)", 2);
  detect::SeriesConfig config;
  config.value_name = f.value_name;
  config.warmup = f.warmup;
  auto det = detect::SeriesDetector::Create(config);
  if (!det.ok()) return fail(std::string(det.status().message()), 2);
  const double threshold = detect::ThresholdFor(f.false_alarm_rate);

  LineReader in;
  if (absl::Status s = in.Open(f.input); !s.ok()) return fail(std::string(s.message()), 1);
  Output out;
  if (absl::Status s = out.Open(f.output); !s.ok()) return fail(std::string(s.message()), 1);
  std::string_view line;
  if (!in.Next(&line)) return fail(fmt::format("{}: no header line", in.display_name()), 1);
  const std::vector<std::string> header = HeaderNames(line, ',');
  if (absl::Status s = f.time.Resolve(&header, "--time-col"); !s.ok()) return fail(std::string(s.message()), 2);
  if (absl::Status s = f.value.Resolve(&header, "--value-col"); !s.ok()) return fail(std::string(s.message()), 2);
  const bool keyed = !f.key.text.empty();
  if (keyed) {
    if (absl::Status s = f.key.Resolve(&header, "--key-col"); !s.ok()) return fail(std::string(s.message()), 2);
  }
  const size_t need = 1 + static_cast<size_t>(std::max({f.time.index, f.value.index, f.key.index}));
  out.buf() += keyed ? "key,timestamp,value,score,reason\n" : "timestamp,value,score,reason\n";

  ErrorPolicy policy{.skip = f.on_error == "skip"};
  Progress progress("detect series", f.progress);
  absl::flat_hash_map<std::string, detect::SeriesState> states;
  detect::SeriesState single;
  std::string_view fields[kMaxFields];
  std::string problem;
  uint64_t lines = 0, reported = 0;
  while (in.Next(&line)) {
    progress.Tick(++lines);
    const size_t n = SplitCsv(line, ',', need, fields);
    int64_t t = 0;
    std::optional<double> value;
    problem.clear();
    if (n < need) {
      problem = fmt::format("has {} fields, needs at least {}", n, need);
    } else if (!ParseTime(fields[f.time.index], TimeFormat::kAuto, &t, &problem)) {
      problem = fmt::format("column {}: {}", f.time.index, problem);
    } else if (!(value = ParseNumber(fields[f.value.index]))) {
      problem = fmt::format("column {}: value '{}' is not a finite number", f.value.index,
                            stream::PrintableExcerpt(fields[f.value.index], 40));
    }
    std::string& o = out.buf();
    const size_t row_start = o.size();
    if (keyed && n > static_cast<size_t>(f.key.index)) {
      AppendCsvField(o, fields[f.key.index]);
      o += ',';
    } else if (keyed) {
      o += ',';
    }
    if (n > static_cast<size_t>(f.time.index)) AppendCsvField(o, fields[f.time.index]);
    o += ',';
    if (n > static_cast<size_t>(f.value.index)) AppendCsvField(o, fields[f.value.index]);
    o += ',';
    if (!problem.empty()) {
      progress.Clear();
      if (!policy.Handle(cmd, in, problem)) {
        o.resize(row_start);  // not the bad line's partial row
        (void)out.Close();
        return 1;
      }
      o += ",\n";
      continue;
    }
    const std::string_view key = keyed ? fields[f.key.index] : std::string_view();
    detect::SeriesState* stp = &single;
    if (keyed) {
      auto it = states.find(absl::string_view(key.data(), key.size()));
      if (it == states.end()) it = states.emplace(std::string(key), detect::SeriesState{}).first;
      stp = &it->second;
    }
    detect::SeriesState& st = *stp;
    const detect::Observation obs{.key = key, .value = *value, .time = t};
    const detect::Scored s = det->Update(st, obs);
    AppendScore(o, s.score, ',');
    if (s.score >= threshold) {
      AppendCsvField(o, det->Explain(st, obs, s));
      ++reported;
    }
    o += '\n';
    out.MaybeFlush();
  }
  progress.Clear();
  if (!in.error().empty()) return fail(in.error(), 1);
  if (absl::Status s = out.Close(); !s.ok()) return fail(std::string(s.message()), 1);
  policy.Report(cmd);
  fmt::print(stderr, "cairn detect series: {} rows{}, {} at or above the threshold {} (false-alarm rate {})\n",
             Thousands(lines), keyed ? fmt::format(" in {} series", Thousands(states.size())) : "",
             Thousands(reported), threshold, f.false_alarm_rate);
  return 0;
}

}  // namespace

void RegisterDetect(CLI::App& app, Runner* run) {
  CLI::App* detect = app.add_subcommand("detect", "Score a CSV file with an anomaly detector");
  detect->require_subcommand(1);

  auto e = std::make_shared<EdgesFlags>();
  CLI::App* ed = detect->add_subcommand(
      "edges", "Bursts in an edge stream (src, dst, time): one score per input line, in input order");
  ed->add_option("--input", e->input, "Input CSV file, or - for stdin")->required();
  ed->add_option("--src-col", e->src.text, "Source column: 0-based index, or a name with --header")
      ->capture_default_str();
  ed->add_option("--dst-col", e->dst.text, "Destination column")->capture_default_str();
  ed->add_option("--time-col", e->time.text, "Event-time column")->capture_default_str();
  ed->add_option("--time-format", e->time_format, "unix (seconds), unix_ms, iso8601, or auto")
      ->capture_default_str()
      ->check(CLI::IsMember({"unix", "unix_ms", "iso8601", "auto"}));
  ed->add_option("--tick", e->tick, "Event time per detector tick (e.g. 1s, 100ms)")->capture_default_str();
  ed->add_flag("--header", e->header, "The first line names the columns (the output gets a 'score' header)");
  ed->add_option("--label-col", e->label.text, "0/1 label column: print the ROC-AUC at the end");
  ed->add_option("--output", e->output, "Output file (default: stdout)");
  ed->add_flag("--explain", e->explain,
               "Write score,reason: a reason (which edge or node burst) for scores >= 1 - --false-alarm-rate");
  ed->add_option("--false-alarm-rate", e->false_alarm_rate, "With --explain: the report threshold is 1 - F")
      ->capture_default_str();
  ed->add_option("--on-error", e->on_error, "A bad line: fail (stop with its line number) or skip (empty score)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fail", "skip"}));
  ed->add_option("--delimiter", e->delimiter, "Field delimiter")->capture_default_str();
  ed->add_flag("--progress", e->progress, "Show progress on stderr even when it is not a terminal");
  ed->callback([=] { *run = [=] { return RunDetectEdges(*e); }; });

  auto s = std::make_shared<SeriesFlags>();
  CLI::App* se = detect->add_subcommand(
      "series", "Anomalies in a time-series CSV (header line; NAB layout by default): timestamp,value,score,reason");
  se->add_option("--input", s->input, "Input CSV file, or - for stdin")->required();
  se->add_option("--time-col", s->time.text, "Timestamp column: name or 0-based index")->capture_default_str();
  se->add_option("--value-col", s->value.text, "Value column")->capture_default_str();
  se->add_option("--key-col", s->key.text, "Series key column: one detector state per key");
  se->add_option("--false-alarm-rate", s->false_alarm_rate,
                 "Reasons are written for rows scoring at least ThresholdFor(F) = 1 - F")
      ->capture_default_str();
  se->add_option("--value-name", s->value_name, "What the values measure, used in reasons")->capture_default_str();
  se->add_option("--warmup", s->warmup, "Rows per series scored 0 while the detector learns")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  se->add_option("--output", s->output, "Output file (default: stdout)");
  se->add_option("--on-error", s->on_error, "A bad line: fail (stop with its line number) or skip (empty score)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fail", "skip"}));
  se->add_flag("--progress", s->progress, "Show progress on stderr even when it is not a terminal");
  se->callback([=] { *run = [=] { return RunDetectSeries(*s); }; });
}

}  // namespace cairn::cli
