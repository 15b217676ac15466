// BM25 text search over point payloads, on SQLite FTS5.
//
// One SQLite database per collection (text.db, WAL journal mode) holds an FTS5 table of
// the payloads keyed by point id, and the sequence number of the last collection WAL
// record applied, updated in the same transaction as the batch: on open, the collection
// replays exactly the WAL records after it, so text and vectors agree after a crash.
//
// Queries are split into words (letters, digits and non-ASCII bytes) and matched as
// "any of the words" (OR), ranked by FTS5's bm25(); operators in user text are never
// interpreted. Thread-safety: all methods are thread-safe (one connection behind a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/vector/index.h"

struct sqlite3;

namespace cairn::vector {

struct TextHit {
  uint64_t id = 0;
  double score = 0;  // BM25, higher is better
};

struct TextChange {
  uint64_t id = 0;
  std::optional<std::string> text;  // nullopt: the point has no text (any old one is removed)
};

class TextIndex {
 public:
  // Opens or creates the database at `path`.
  static absl::StatusOr<std::unique_ptr<TextIndex>> Open(const std::string& path);
  ~TextIndex();
  TextIndex(const TextIndex&) = delete;
  TextIndex& operator=(const TextIndex&) = delete;

  // Sequence of the last applied batch (0 for a new database).
  uint64_t applied_seq() const;
  // Applies the changes of batch `seq` and records seq, in one transaction.
  [[nodiscard]] absl::Status Apply(uint64_t seq, std::span<const TextChange> changes);
  // The point's text, or nullopt when it has none.
  absl::StatusOr<std::optional<std::string>> Get(uint64_t id) const;
  // Up to k best matches among the ids `filter` allows (nullptr = all).
  absl::StatusOr<std::vector<TextHit>> Search(std::string_view query, size_t k,
                                              const Filter* filter) const;
  size_t Count() const;
  // Makes everything applied so far durable in the main database file (checkpoint + fsync).
  [[nodiscard]] absl::Status Checkpoint();

  // The FTS5 MATCH expression for a user query: words quoted and OR-ed; empty when the
  // query has no words.
  static std::string MatchExpression(std::string_view query);

 private:
  explicit TextIndex(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Exec(const char* sql) const;
  absl::Status Error(std::string_view what) const;

  mutable std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  uint64_t applied_seq_ = 0;  // guarded by mu_
};

}  // namespace cairn::vector
