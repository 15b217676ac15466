// File connectors for Rows: a source that reads CSV or JSON-lines files (or
// standard input), a sink that writes them exactly once (or to standard
// output), and a dead-letter sink that keeps rejected input in a file.
//
// FileSource
//   Reads lines with large buffered reads and turns each into a Row
// (format.h). Blank lines are skipped. A line that does not parse, or whose
// event time cannot be read, goes to the dead-letter sink with origin
// "file:<path>:<line number>" and reading goes on. A line longer than
// `max_line_bytes` is rejected the same way (its first max_line_bytes bytes as
// the raw record). A malformed CSV header stops the pipeline: no row could be
// read right.
//   Position() is the byte offset of the next unread line and its line number;
// Open() with it seeks there (re-reading a CSV header from the file's start
// first), so a file source is exactly-once. Standard input cannot rewind: it
// ignores a restored position and is at-most-once.
//   `follow` tails a growing file: at its end Poll waits up to max_wait for more
// and returns kIdle, and a last line without its newline is left unread until it
// is complete. Without `follow` the end of the file ends the input, and a last
// line without a newline is a record. Truncation or replacement of a followed
// file is not detected.
//   Parallelism: only subtask 0 reads; every other subtask returns kEndOfInput
// at once. One file is one sequential stream.
//
// FileSink
//   Subtask i of n writes `path` when n == 1, else `path`-i. Rows written
// between two checkpoint barriers go to a pending file beside it
// (`<file>.pending-<id>`, created on the first row); PrepareCheckpoint makes it
// durable and returns the state that CommitCheckpoint and a restore need;
// CommitCheckpoint appends it to <file> and deletes it. So <file> only ever holds
// the output of committed checkpoints, and Open(restored) finishes a commit cut
// short by a crash and cuts off output of later, lost checkpoints (their input is
// replayed). A fresh Open (no restored state) empties <file>. Close() commits
// everything written (the end of a bounded pipeline). Destroying a sink without
// Close() drops what was not committed, as a crash would. Restoring with another
// parallelism than the state was written with is not supported.
//   With path "-" rows go to standard output, flushed at each checkpoint:
// at-least-once, as output already written cannot be taken back.
//   CSV: a header line (the first row's field names) starts an empty file; later
// rows are written by position whatever their names.
//
// DeadLetterFile
//   Appends one JSON object per rejected record, {"origin", "error", "raw"}, to
// a file (or only counts, without a path), and logs the first few rejections and
// then every 1000th as warnings.
//
// Thread-safety: FileSource and FileSink as connector.h says (one engine thread
// per instance); DeadLetterFile is thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cairn/base/status.h"
#include "cairn/stream/connector.h"
#include "cairn/stream/format.h"
#include "cairn/stream/record.h"

namespace cairn::stream {

enum class FileFormat { kCsv, kJsonLines };
// "csv", or "jsonl" (also "json", "ndjson").
absl::StatusOr<FileFormat> ParseFileFormat(std::string_view name);
const char* FileFormatName(FileFormat format);

class DeadLetterFile final : public DeadLetterSink {
 public:
  // Counts and logs only.
  DeadLetterFile() = default;
  // Appends to `path` (created if missing); an empty path counts and logs only.
  static absl::StatusOr<std::unique_ptr<DeadLetterFile>> Open(const std::string& path);
  ~DeadLetterFile() override;
  DeadLetterFile(const DeadLetterFile&) = delete;
  DeadLetterFile& operator=(const DeadLetterFile&) = delete;

  void Reject(std::string_view origin, std::string_view raw, std::string_view error) override;
  uint64_t rejected() const override;
  const std::string& path() const { return path_; }

  // Rejections logged in full before only every `log_every`th is.
  static constexpr uint64_t kLogFirst = 5;
  static constexpr uint64_t kLogEvery = 1000;

 private:
  std::string path_;
  int fd_ = -1;
  mutable absl::Mutex mu_;
  uint64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
};

struct FileSourceOptions {
  std::string path;  // "-" = standard input
  FileFormat format = FileFormat::kCsv;
  CsvOptions csv;
  std::string time_field;            // empty: records carry no event time
  std::string time_format = "auto";  // ParseEventTime's formats
  bool follow = false;               // tail a growing file
  size_t max_line_bytes = 1 << 20;
  size_t read_bytes = 1 << 20;  // bytes asked of one read(2)
};

class FileSource final : public Source<Row> {
 public:
  explicit FileSource(FileSourceOptions options);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  absl::Status Open(const SourceContext& ctx, std::optional<std::string> restored) override;
  absl::StatusOr<PollStatus> Poll(SourceBatch<Row>& out, size_t max_records,
                                  std::chrono::milliseconds max_wait) override;
  std::string Position() override;
  void Close() override;
  DeliveryGuarantee guarantee() const override;

  // Lines consumed so far (blank and rejected ones included).
  uint64_t lines() const { return line_; }

 private:
  enum class Fill { kData, kNoData, kEnd };
  absl::StatusOr<Fill> ReadMore(std::chrono::steady_clock::time_point deadline, bool may_wait);
  absl::Status ReadHeaderFromStart();
  absl::Status HandleLine(std::string_view line, uint64_t line_no, SourceBatch<Row>& out);
  void Reject(uint64_t line_no, std::string_view raw, std::string_view error);

  FileSourceOptions options_;
  SourceContext ctx_;
  DeadLetterSink* dead_letter_ = nullptr;
  DeadLetterFile own_dead_letter_;  // when the context has none
  bool is_stdin_ = false;
  bool regular_ = false;  // a regular file: reads never block
  bool reader_ = false;   // this subtask reads
  bool finished_ = false;
  int fd_ = -1;
  std::optional<CsvRowParser> csv_;
  std::string buf_;
  size_t begin_ = 0;           // unread bytes are buf_[begin_, end_)
  size_t end_ = 0;
  uint64_t buf_offset_ = 0;    // file offset of buf_[begin_]
  uint64_t line_start_ = 0;    // file offset of the next unread line
  uint64_t line_ = 0;          // lines before line_start_
  bool skipping_ = false;      // inside a line longer than max_line_bytes
};

struct FileSinkOptions {
  std::string path;  // "-" = standard output
  FileFormat format = FileFormat::kCsv;
  char delimiter = ',';
  bool csv_header = true;         // CSV: a header line first in an empty file
  size_t buffer_bytes = 1 << 20;  // output gathered before one write(2)
};

class FileSink final : public Sink<Row> {
 public:
  explicit FileSink(FileSinkOptions options);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  absl::Status Open(const SinkContext& ctx, std::optional<std::string> restored) override;
  absl::Status Write(std::span<const Row> records, std::span<const EventTime> times) override;
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t id) override;
  absl::Status CommitCheckpoint(int64_t id) override;
  absl::Status Close() override;
  DeliveryGuarantee guarantee() const override;

  // The file this subtask writes (after Open).
  const std::string& file() const { return file_; }

 private:
  // Output of the rows between two barriers, prepared but not yet committed.
  struct Epoch {
    int64_t id = 0;
    uint64_t before = 0;  // length of <file> before this epoch's rows
    uint64_t after = 0;   // ... and with them
    std::string pending;  // pending file name (in the file's directory)
  };
  std::string PendingName(int64_t id) const;
  bool IsPendingName(std::string_view name) const;
  std::string InDir(std::string_view name) const;
  uint64_t TailLength() const;  // <file>'s length once every prepared epoch is committed
  absl::Status FlushBuffer();
  absl::Status SealOpenEpoch(int64_t id);
  absl::Status Apply(const Epoch& e);
  absl::Status RemoveStrayPending();
  absl::Status Restore(std::string_view state);

  FileSinkOptions options_;
  std::string file_;
  std::string dir_;
  std::string base_;
  bool stdout_ = false;
  bool closed_ = false;
  int fd_ = -1;
  int pending_fd_ = -1;
  std::string pending_name_;    // the open epoch's pending file, once created
  uint64_t pending_bytes_ = 0;  // the open epoch's bytes, buffered ones included
  std::string buffer_;
  uint64_t committed_ = 0;
  int64_t next_id_ = 1;  // names the open epoch's pending file
  std::deque<Epoch> prepared_;
  bool any_output_ = false;  // stdout: whether the header was written
};

}  // namespace cairn::stream
