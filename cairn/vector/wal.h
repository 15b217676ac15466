// The collection write-ahead log: a file of records, one per acknowledged batch.
//
// Each record is a base-codec envelope (magic "CVWR", version 1: header, payload,
// XXH3 checksum) whose payload is EncodeWalBatch(seq, ops): the sequence number
// (1, 2, 3, ... per collection, never reused) and the batch's upserts and deletes,
// with vectors already embedded/validated so replay needs no embedder and is
// deterministic.
//
// ScanWal tells a torn tail from corruption: a last record that is incomplete, or
// complete-looking but failing its checks while nothing follows it, is what a crash
// during append leaves behind and is reported as torn (the caller truncates it); a
// bad record with bytes after it is corruption and an error naming the file and the
// record's offset.
//
// Thread-safety: WalWriter is single-writer (the collection serializes writes);
// the free functions are stateless.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/vector/filter.h"

namespace cairn::vector {

struct WalOp {
  enum class Kind : uint8_t { kUpsert = 1, kDelete = 2 };
  Kind kind = Kind::kUpsert;
  uint64_t id = 0;
  std::vector<float> vector;         // upsert only
  Attributes attributes;             // upsert only
  std::optional<std::string> text;   // upsert only
};

struct WalBatch {
  uint64_t seq = 0;
  std::vector<WalOp> ops;
};

// The payload of one record.
std::string EncodeWalBatch(uint64_t seq, std::span<const WalOp> ops);
absl::StatusOr<WalBatch> DecodeWalBatch(std::string_view payload);
// A whole record (envelope around the payload), as appended to the file.
std::string EncodeWalRecord(uint64_t seq, std::span<const WalOp> ops);

struct WalRecordRef {
  uint64_t offset = 0;           // of the record in the file
  std::string_view payload;      // points into the scanned bytes
};

struct WalScan {
  std::vector<WalRecordRef> records;
  uint64_t valid_bytes = 0;      // bytes up to the end of the last good record
  uint64_t torn_bytes = 0;       // bytes after it (a torn tail), 0 when clean
  std::string torn_reason;       // why the tail was judged torn
};

// Splits `bytes` (a whole WAL file) into records. `file` names it in errors.
absl::StatusOr<WalScan> ScanWal(std::string_view bytes, std::string_view file);

class WalWriter {
 public:
  // Opens `path` for appending (created when missing). A torn tail must have been
  // truncated before (ScanWal + TruncateFile).
  static absl::StatusOr<std::unique_ptr<WalWriter>> Open(const std::string& path, bool sync_each);
  ~WalWriter();
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Appends one record and, with sync_each, fdatasyncs it. On failure the file is cut
  // back to its previous length, so a failed append leaves no partial record.
  [[nodiscard]] absl::Status Append(std::string_view record);
  [[nodiscard]] absl::Status Sync();
  // Empties the log (after a snapshot made its records redundant), durably.
  [[nodiscard]] absl::Status Reset();
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  WalWriter(std::string path, int fd, uint64_t size, bool sync_each)
      : path_(std::move(path)), fd_(fd), size_(size), sync_each_(sync_each) {}
  std::string path_;
  int fd_;
  uint64_t size_;
  bool sync_each_;
};

// Reads a whole file; NotFound when it does not exist.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
// Writes `data` to path.tmp, fsyncs, renames over `path` and fsyncs the directory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view data);
absl::Status SyncDirectory(const std::string& dir);
absl::Status TruncateFile(const std::string& path, uint64_t size);

}  // namespace cairn::vector
