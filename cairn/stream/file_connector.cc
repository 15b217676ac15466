#include "cairn/stream/file_connector.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "cairn/base/codec.h"
#include "fmt/format.h"

namespace cairn::stream {
namespace {

constexpr uint8_t kPositionVersion = 1;
constexpr uint8_t kSinkStateVersion = 1;
// How often a followed file is checked for growth while Poll waits.
constexpr std::chrono::milliseconds kFollowInterval{10};

absl::Status ErrnoError(std::string_view what, std::string_view path, int err = errno) {
  std::string message = fmt::format("{} {}: {}", what, path, std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
}

absl::Status WriteAll(int fd, std::string_view data, std::string_view path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems cannot sync directories; their entries are then as durable as they get.
  if (rc != 0 && err != EINVAL && err != EROFS) return ErrnoError("cannot sync directory", dir, err);
  return absl::OkStatus();
}

std::string Printable(std::string_view s, size_t max = 200) { return PrintableExcerpt(s, max); }

bool IsBlank(std::string_view line, FileFormat format) {
  if (format == FileFormat::kCsv) return line.empty() || line == "\r";
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

absl::StatusOr<FileFormat> ParseFileFormat(std::string_view name) {
  if (name == "csv") return FileFormat::kCsv;
  if (name == "jsonl" || name == "json" || name == "ndjson") return FileFormat::kJsonLines;
  return absl::InvalidArgumentError(fmt::format("unknown file format \"{}\" (expected csv or jsonl)", name));
}

const char* FileFormatName(FileFormat format) { return format == FileFormat::kCsv ? "csv" : "jsonl"; }

// ---------------------------------------------------------------------------
// DeadLetterFile

absl::StatusOr<std::unique_ptr<DeadLetterFile>> DeadLetterFile::Open(const std::string& path) {
  auto sink = std::make_unique<DeadLetterFile>();
  if (path.empty()) return sink;
  std::error_code ec;
  if (auto parent = std::filesystem::path(path).parent_path(); !parent.empty())
    std::filesystem::create_directories(parent, ec);  // a failure shows in open() below
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot open dead-letter file", path);
  sink->path_ = path;
  sink->fd_ = fd;
  return sink;
}

DeadLetterFile::~DeadLetterFile() {
  if (fd_ >= 0) ::close(fd_);
}

void DeadLetterFile::Reject(std::string_view origin, std::string_view raw, std::string_view error) {
  std::string line;
  if (fd_ >= 0) {
    line.reserve(origin.size() + raw.size() + error.size() + 40);
    line += "{\"origin\":";
    AppendJsonString(line, origin);
    line += ",\"error\":";
    AppendJsonString(line, error);
    line += ",\"raw\":";
    AppendJsonString(line, raw);
    line += "}\n";
  }
  absl::MutexLock lock(&mu_);
  uint64_t n = ++rejected_;
  if (n <= kLogFirst || n % kLogEvery == 0) {
    spdlog::warn("rejected record #{} from {}: {} (raw: '{}')", n, origin, error, Printable(raw));
  }
  if (fd_ >= 0 && !write_failed_) {
    // One write(2) per record under O_APPEND: a line is never interleaved with another.
    absl::Status s = WriteAll(fd_, line, path_);
    if (!s.ok()) {
      write_failed_ = true;
      spdlog::error("dead-letter file: {}; rejected records are only counted from now on", std::string(s.message()));
    }
  }
}

uint64_t DeadLetterFile::rejected() const {
  absl::MutexLock lock(&mu_);
  return rejected_;
}

// ---------------------------------------------------------------------------
// FileSource

FileSource::FileSource(FileSourceOptions options) : options_(std::move(options)) {
  options_.max_line_bytes = std::max<size_t>(options_.max_line_bytes, 1);
  options_.read_bytes = std::max<size_t>(options_.read_bytes, 4096);
}

FileSource::~FileSource() { Close(); }

absl::Status FileSource::Open(const SourceContext& ctx, std::optional<std::string> restored) {
  ctx_ = ctx;
  dead_letter_ = ctx.dead_letter != nullptr ? ctx.dead_letter : &own_dead_letter_;
  reader_ = ctx.subtask == 0;
  if (!options_.time_field.empty()) CAIRN_RETURN_IF_ERROR(CheckEventTimeFormat(options_.time_format));
  if (!reader_) return absl::OkStatus();
  if (options_.format == FileFormat::kCsv) csv_.emplace(options_.csv);
  is_stdin_ = options_.path == "-";
  if (is_stdin_) {
    fd_ = STDIN_FILENO;
  } else {
    fd_ = ::open(options_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return ErrnoError("file source: cannot open", options_.path);
  }
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoError("file source: cannot stat", options_.path);
  regular_ = S_ISREG(st.st_mode);
  if (!is_stdin_ && !regular_ && options_.follow) {
    return absl::InvalidArgumentError(fmt::format("file source: {} is not a regular file; follow needs one", options_.path));
  }
  if (restored.has_value() && !is_stdin_) {
    ByteReader r(*restored, "file source position");
    uint8_t version = r.U8();
    uint64_t offset = r.U64();
    uint64_t lines = r.U64();
    CAIRN_RETURN_IF_ERROR(r.Finish());
    if (version != kPositionVersion) {
      return absl::InvalidArgumentError(fmt::format("file source {}: position has version {}, expected {}",
                                                    options_.path, version, kPositionVersion));
    }
    if (regular_ && offset > static_cast<uint64_t>(st.st_size)) {
      return absl::FailedPreconditionError(
          fmt::format("file source {}: restored position {} is past the end of the file ({} bytes); was the file "
                      "truncated or replaced?",
                      options_.path, offset, st.st_size));
    }
    if (offset > 0) {
      if (csv_ && options_.csv.header) CAIRN_RETURN_IF_ERROR(ReadHeaderFromStart());
      if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
        return ErrnoError("file source: cannot seek in", options_.path);
      }
    }
    buf_offset_ = line_start_ = offset;
    line_ = lines;
  }
  return absl::OkStatus();
}

// The header as the first pass read it: the first line that is not blank,
// after a byte order mark.
absl::Status FileSource::ReadHeaderFromStart() {
  std::string line;
  char chunk[4096];
  uint64_t at = 0;
  bool first_line = true;
  while (true) {
    ssize_t n = ::pread(fd_, chunk, sizeof chunk, static_cast<off_t>(at));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("file source: cannot read the header of", options_.path);
    }
    at += static_cast<uint64_t>(n);
    std::string_view got(chunk, static_cast<size_t>(n));
    while (true) {
      size_t nl = got.find('\n');
      line.append(got.substr(0, nl));
      if (nl == std::string_view::npos && n > 0) break;  // the line goes on in the next chunk
      std::string_view text = line;
      if (first_line && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
      first_line = false;
      if (!IsBlank(text, FileFormat::kCsv) || n == 0) {
        absl::StatusOr<Row> parsed = csv_->Parse(text);
        if (!parsed.ok()) {
          return absl::InvalidArgumentError(fmt::format("file source {}: cannot read the CSV header: {}",
                                                        options_.path, std::string(parsed.status().message())));
        }
        return absl::OkStatus();
      }
      line.clear();
      got.remove_prefix(nl + 1);
    }
    if (line.size() > options_.max_line_bytes) {
      return absl::InvalidArgumentError(fmt::format("file source {}: the CSV header is longer than {} bytes",
                                                    options_.path, options_.max_line_bytes));
    }
  }
}

void FileSource::Reject(uint64_t line_no, std::string_view raw, std::string_view error) {
  dead_letter_->Reject(fmt::format("file:{}:{}", options_.path, line_no), raw, error);
}

absl::Status FileSource::HandleLine(std::string_view line, uint64_t line_no, SourceBatch<Row>& out) {
  if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // a UTF-8 byte order mark
  if (IsBlank(line, options_.format)) return absl::OkStatus();
  absl::StatusOr<Row> row;
  if (csv_) {
    const bool header = csv_->expecting_header();
    row = csv_->Parse(line);
    if (header) {
      if (row.ok()) return absl::OkStatus();
      return absl::InvalidArgumentError(fmt::format("file source {}:{}: cannot read the CSV header: {}", options_.path,
                                                    line_no, std::string(row.status().message())));
    }
  } else {
    row = ParseJsonRow(line);
  }
  if (!row.ok()) {
    Reject(line_no, line, std::string(row.status().message()));
    return absl::OkStatus();
  }
  if (!options_.time_field.empty()) {
    const Value* v = row->Get(options_.time_field);
    if (v == nullptr) {
      Reject(line_no, line, fmt::format("no field \"{}\" for the event time", options_.time_field));
      return absl::OkStatus();
    }
    absl::StatusOr<EventTime> t = ParseEventTime(*v, options_.time_format);
    if (!t.ok()) {
      Reject(line_no, line, std::string(t.status().message()));
      return absl::OkStatus();
    }
    out.times.push_back(*t);
  }
  out.records.push_back(std::move(*row));
  return absl::OkStatus();
}

absl::StatusOr<FileSource::Fill> FileSource::ReadMore(std::chrono::steady_clock::time_point deadline, bool may_wait) {
  // Room for one large read: drop consumed bytes first, grow only for a long line.
  if (buf_.size() - end_ < options_.read_bytes) {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < options_.read_bytes) buf_.resize(end_ + options_.read_bytes);
  }
  if (!regular_) {
    // Pipes and terminals: wait for data in poll(2), never in read(2).
    auto now = std::chrono::steady_clock::now();
    int timeout_ms = may_wait && deadline > now
                         ? static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count())
                         : 0;
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0 && errno != EINTR) return ErrnoError("file source: cannot poll", options_.path);
    if (rc <= 0) return Fill::kNoData;
  }
  while (true) {
    ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Fill::kNoData;
      return ErrnoError("file source: cannot read", options_.path);
    }
    if (n == 0) return Fill::kEnd;
    end_ += static_cast<size_t>(n);
    return Fill::kData;
  }
}

absl::StatusOr<PollStatus> FileSource::Poll(SourceBatch<Row>& out, size_t max_records,
                                            std::chrono::milliseconds max_wait) {
  if (!reader_ || finished_) return PollStatus::kEndOfInput;
  if (fd_ < 0) return absl::FailedPreconditionError("file source: Poll before Open or after Close");
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  const size_t first = out.records.size();
  bool progress = false;
  auto consume = [&](size_t n) {  // n bytes of the line and its newline
    begin_ += n;
    buf_offset_ += n;
    line_start_ = buf_offset_;
    ++line_;
  };
  while (out.records.size() - first < max_records) {
    const char* data = buf_.data() + begin_;
    const size_t avail = end_ - begin_;
    const char* nl = avail > 0 ? static_cast<const char*>(std::memchr(data, '\n', avail)) : nullptr;
    if (nl != nullptr) {
      size_t len = static_cast<size_t>(nl - data);
      progress = true;
      if (skipping_) {
        skipping_ = false;
        consume(len + 1);
      } else if (len > options_.max_line_bytes) {
        Reject(line_ + 1, std::string_view(data, options_.max_line_bytes),
               fmt::format("line longer than {} bytes", options_.max_line_bytes));
        consume(len + 1);
      } else {
        consume(len + 1);  // leaves the bytes in buf_
        CAIRN_RETURN_IF_ERROR(HandleLine(std::string_view(data, len), line_, out));
      }
      continue;
    }
    if (!skipping_ && avail > options_.max_line_bytes) {
      // Reported now; the rest of it is skipped as it arrives.
      Reject(line_ + 1, std::string_view(data, options_.max_line_bytes),
             fmt::format("line longer than {} bytes", options_.max_line_bytes));
      skipping_ = true;
    }
    if (skipping_) {  // keep none of an over-long line; line_start_ stays at its beginning
      buf_offset_ += avail;
      begin_ = end_ = 0;
    }
    const bool may_wait = out.records.size() == first && !progress;
    CAIRN_ASSIGN_OR_RETURN(Fill fill, ReadMore(deadline, may_wait));
    if (fill == Fill::kData) continue;
    if (fill == Fill::kNoData) break;
    if (!options_.follow || !regular_) {
      if (end_ > begin_ && !skipping_) {  // a last line without its newline
        std::string_view line(buf_.data() + begin_, end_ - begin_);
        consume(line.size());
        CAIRN_RETURN_IF_ERROR(HandleLine(line, line_, out));
      } else if (skipping_) {
        skipping_ = false;
        line_start_ = buf_offset_;
        ++line_;
      }
      finished_ = true;
      progress = true;
      break;
    }
    if (!may_wait) break;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(kFollowInterval, deadline - now));
  }
  if (out.records.size() > first || (progress && !finished_)) return PollStatus::kRecords;
  return finished_ ? PollStatus::kEndOfInput : PollStatus::kIdle;
}

std::string FileSource::Position() {
  ByteWriter w;
  w.U8(kPositionVersion);
  w.U64(line_start_);
  w.U64(line_);
  return w.Take();
}

void FileSource::Close() {
  if (fd_ >= 0 && !is_stdin_) ::close(fd_);
  fd_ = -1;
}

DeliveryGuarantee FileSource::guarantee() const {
  return options_.path == "-" ? DeliveryGuarantee::kAtMostOnce : DeliveryGuarantee::kExactlyOnce;
}


// ---------------------------------------------------------------------------
// FileSink

FileSink::FileSink(FileSinkOptions options) : options_(std::move(options)) {
  options_.buffer_bytes = std::max<size_t>(options_.buffer_bytes, 4096);
}

FileSink::~FileSink() {
  // No flush and no commit: what was not committed is left for the next Open to settle.
  if (fd_ >= 0 && !stdout_) ::close(fd_);
  if (pending_fd_ >= 0) ::close(pending_fd_);
}

std::string FileSink::PendingName(int64_t id) const { return fmt::format("{}.pending-{}", base_, id); }

bool FileSink::IsPendingName(std::string_view name) const {
  std::string prefix = base_ + ".pending-";
  if (!name.starts_with(prefix)) return false;
  std::string_view id = name.substr(prefix.size());
  if (!id.empty() && id[0] == '-') id.remove_prefix(1);
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string FileSink::InDir(std::string_view name) const { return fmt::format("{}/{}", dir_, name); }

uint64_t FileSink::TailLength() const { return prepared_.empty() ? committed_ : prepared_.back().after; }

absl::Status FileSink::Open(const SinkContext& ctx, std::optional<std::string> restored) {
  stdout_ = options_.path == "-";
  if (stdout_) {
    file_ = "-";
    fd_ = STDOUT_FILENO;
    return absl::OkStatus();
  }
  if (options_.path.empty()) return absl::InvalidArgumentError("file sink: no path");
  file_ = ctx.parallelism > 1 ? fmt::format("{}-{}", options_.path, ctx.subtask) : options_.path;
  size_t slash = file_.rfind('/');
  dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : file_.substr(0, slash));
  base_ = slash == std::string::npos ? file_ : file_.substr(slash + 1);
  if (base_.empty()) return absl::InvalidArgumentError(fmt::format("file sink: {} names a directory", file_));
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);  // a failure shows in open() below
  struct stat st;
  const bool existed = ::stat(file_.c_str(), &st) == 0;
  fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return ErrnoError("file sink: cannot open", file_);
  if (!existed) CAIRN_RETURN_IF_ERROR(FsyncDir(dir_));
  if (restored.has_value()) {
    CAIRN_RETURN_IF_ERROR(Restore(*restored));
  } else {
    if (::ftruncate(fd_, 0) != 0) return ErrnoError("file sink: cannot truncate", file_);
    if (::fsync(fd_) != 0) return ErrnoError("file sink: cannot sync", file_);
    committed_ = 0;
  }
  return RemoveStrayPending();
}

absl::Status FileSink::Restore(std::string_view state) {
  ByteReader r(state, "file sink checkpoint state");
  uint8_t version = r.U8();
  int64_t checkpoint = r.I64();
  uint64_t length = r.U64();
  uint64_t count = r.Varint();
  if (r.ok() && count > r.remaining()) r.Fail(fmt::format("{} pending epochs cannot fit", count));
  std::vector<Epoch> epochs;
  for (uint64_t k = 0; r.ok() && k < count; ++k) {
    Epoch e;
    e.id = r.I64();
    e.before = r.U64();
    e.after = r.U64();
    e.pending = std::string(r.String());
    if (r.ok() && (e.after < e.before || !IsPendingName(e.pending))) {
      r.Fail(fmt::format("epoch {} names \"{}\" ({}..{}), not a pending file of {}", e.id, e.pending, e.before,
                         e.after, base_));
    }
    epochs.push_back(std::move(e));
  }
  CAIRN_RETURN_IF_ERROR(r.Finish());
  if (version != kSinkStateVersion) {
    return absl::InvalidArgumentError(
        fmt::format("file sink {}: state has version {}, expected {}", file_, version, kSinkStateVersion));
  }
  // Epochs whose pending file is still there were not (completely) committed:
  // commit them again from their start. Those without were committed.
  for (const Epoch& e : epochs) {
    struct stat st;
    if (::stat(InDir(e.pending).c_str(), &st) == 0) {
      CAIRN_RETURN_IF_ERROR(Apply(e));
    } else if (errno != ENOENT) {
      return ErrnoError("file sink: cannot stat", InDir(e.pending));
    }
  }
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoError("file sink: cannot stat", file_);
  if (static_cast<uint64_t>(st.st_size) < length) {
    return absl::DataLossError(fmt::format(
        "file sink {}: the file has {} bytes but checkpoint {} committed {}; it was changed outside this pipeline",
        file_, st.st_size, checkpoint, length));
  }
  // Output of checkpoints after the restored one is cut off: their input is replayed.
  if (::ftruncate(fd_, static_cast<off_t>(length)) != 0) return ErrnoError("file sink: cannot truncate", file_);
  if (::fsync(fd_) != 0) return ErrnoError("file sink: cannot sync", file_);
  committed_ = length;
  next_id_ = checkpoint + 1;
  return absl::OkStatus();
}

absl::Status FileSink::RemoveStrayPending() {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ErrnoError("file sink: cannot list", dir_);
  std::vector<std::string> stray;
  while (dirent* entry = ::readdir(d)) {
    if (IsPendingName(entry->d_name)) stray.emplace_back(entry->d_name);
  }
  ::closedir(d);
  for (const std::string& name : stray) {
    if (::unlink(InDir(name).c_str()) != 0 && errno != ENOENT) return ErrnoError("file sink: cannot remove", InDir(name));
  }
  return stray.empty() ? absl::OkStatus() : FsyncDir(dir_);
}

// Writes the epoch's pending bytes at its place in <file>, syncs, and deletes
// the pending file. Running it again after a crash gives the same bytes.
absl::Status FileSink::Apply(const Epoch& e) {
  std::string pending = InDir(e.pending);
  int in = ::open(pending.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError("file sink: cannot open", pending);
  std::string chunk(std::min<uint64_t>(options_.buffer_bytes, std::max<uint64_t>(e.after - e.before, 1)), '\0');
  uint64_t done = 0;
  absl::Status status;
  while (status.ok() && done < e.after - e.before) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), e.after - e.before - done));
    ssize_t n = ::pread(in, chunk.data(), want, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = n < 0 ? ErrnoError("file sink: cannot read", pending)
                     : absl::DataLossError(fmt::format("file sink: {} has {} bytes, the checkpoint says {}", pending,
                                                       done, e.after - e.before));
      break;
    }
    for (size_t off = 0; status.ok() && off < static_cast<size_t>(n);) {
      ssize_t w = ::pwrite(fd_, chunk.data() + off, static_cast<size_t>(n) - off,
                           static_cast<off_t>(e.before + done + off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) status = ErrnoError("file sink: cannot write", file_);
      if (w > 0) off += static_cast<size_t>(w);
    }
    done += static_cast<uint64_t>(n);
  }
  ::close(in);
  CAIRN_RETURN_IF_ERROR(status);
  if (::ftruncate(fd_, static_cast<off_t>(e.after)) != 0) return ErrnoError("file sink: cannot truncate", file_);
  if (::fsync(fd_) != 0) return ErrnoError("file sink: cannot sync", file_);
  if (::unlink(pending.c_str()) != 0 && errno != ENOENT) return ErrnoError("file sink: cannot remove", pending);
  return absl::OkStatus();
}

absl::Status FileSink::FlushBuffer() {
  if (buffer_.empty()) return absl::OkStatus();
  if (stdout_) {
    CAIRN_RETURN_IF_ERROR(WriteAll(fd_, buffer_, "standard output"));
  } else {
    if (pending_fd_ < 0) {
      pending_name_ = PendingName(next_id_);
      std::string path = InDir(pending_name_);
      pending_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (pending_fd_ < 0) return ErrnoError("file sink: cannot create", path);
    }
    CAIRN_RETURN_IF_ERROR(WriteAll(pending_fd_, buffer_, InDir(pending_name_)));
  }
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status FileSink::Write(std::span<const Row> records, std::span<const EventTime> /*times*/) {
  if (fd_ < 0 || closed_) return absl::FailedPreconditionError("file sink: Write before Open or after Close");
  for (const Row& row : records) {
    if (options_.format == FileFormat::kCsv) {
      const bool empty = stdout_ ? !any_output_ : TailLength() == 0 && pending_bytes_ == 0;
      if (options_.csv_header && empty) {
        std::string header = FormatCsvHeader(row, options_.delimiter);
        header += '\n';
        buffer_ += header;
        pending_bytes_ += header.size();
      }
      std::string line = FormatCsvRow(row, options_.delimiter);
      line += '\n';
      buffer_ += line;
      pending_bytes_ += line.size();
    } else {
      std::string line = FormatJsonRow(row);
      line += '\n';
      buffer_ += line;
      pending_bytes_ += line.size();
    }
    any_output_ = true;
    if (buffer_.size() >= options_.buffer_bytes) CAIRN_RETURN_IF_ERROR(FlushBuffer());
  }
  // Standard output is for watching: each batch goes out at once (it is
  // at-least-once anyway), so nothing waits for a checkpoint or is lost on Ctrl-C.
  if (stdout_) CAIRN_RETURN_IF_ERROR(FlushBuffer());
  return absl::OkStatus();
}

// Makes the open epoch's output durable under checkpoint `id` and queues it for commit.
absl::Status FileSink::SealOpenEpoch(int64_t id) {
  CAIRN_RETURN_IF_ERROR(FlushBuffer());
  if (pending_bytes_ == 0) return absl::OkStatus();
  std::string name = pending_name_;
  if (::fsync(pending_fd_) != 0) return ErrnoError("file sink: cannot sync", InDir(name));
  ::close(pending_fd_);
  pending_fd_ = -1;
  if (name != PendingName(id)) {  // checkpoint ids are not always consecutive
    std::string renamed = PendingName(id);
    if (::rename(InDir(name).c_str(), InDir(renamed).c_str()) != 0) return ErrnoError("file sink: cannot rename", InDir(name));
    name = renamed;
  }
  // The pending file's directory entry must survive a crash: the state names it.
  CAIRN_RETURN_IF_ERROR(FsyncDir(dir_));
  uint64_t before = TailLength();
  prepared_.push_back(Epoch{id, before, before + pending_bytes_, std::move(name)});
  pending_bytes_ = 0;
  pending_name_.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::string> FileSink::PrepareCheckpoint(int64_t id) {
  if (fd_ < 0 || closed_) return absl::FailedPreconditionError("file sink: checkpoint before Open or after Close");
  if (stdout_) {
    CAIRN_RETURN_IF_ERROR(FlushBuffer());
    return std::string();
  }
  CAIRN_RETURN_IF_ERROR(SealOpenEpoch(id));
  next_id_ = id + 1;
  ByteWriter w;
  w.U8(kSinkStateVersion);
  w.I64(id);
  w.U64(TailLength());
  w.Varint(prepared_.size());
  for (const Epoch& e : prepared_) {
    w.I64(e.id);
    w.U64(e.before);
    w.U64(e.after);
    w.String(e.pending);
  }
  return w.Take();
}

absl::Status FileSink::CommitCheckpoint(int64_t id) {
  if (stdout_) return absl::OkStatus();
  if (fd_ < 0) return absl::FailedPreconditionError("file sink: commit before Open");
  // A later checkpoint's commit covers earlier ones whose notice never came.
  while (!prepared_.empty() && prepared_.front().id <= id) {
    CAIRN_RETURN_IF_ERROR(Apply(prepared_.front()));
    committed_ = prepared_.front().after;
    prepared_.pop_front();
  }
  return absl::OkStatus();
}

absl::Status FileSink::Close() {
  if (closed_ || fd_ < 0) return absl::OkStatus();
  if (stdout_) {
    CAIRN_RETURN_IF_ERROR(FlushBuffer());
  } else {
    CAIRN_RETURN_IF_ERROR(SealOpenEpoch(next_id_));
    while (!prepared_.empty()) {
      CAIRN_RETURN_IF_ERROR(Apply(prepared_.front()));
      committed_ = prepared_.front().after;
      prepared_.pop_front();
    }
    ::close(fd_);
  }
  fd_ = -1;
  closed_ = true;
  return absl::OkStatus();
}

DeliveryGuarantee FileSink::guarantee() const {
  return options_.path == "-" ? DeliveryGuarantee::kAtLeastOnce : DeliveryGuarantee::kExactlyOnce;
}

}  // namespace cairn::stream
