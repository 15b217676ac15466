// A thin RAII layer over the SQLite C API for cairn/memory: one connection with a cache of
// prepared statements, and a statement handle that resets itself when it goes out of scope.
// Not thread-safe: the owner serializes use of a connection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cairn::memory::internal {

class Conn;

class Stmt {
 public:
  Stmt(Conn* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Stmt(Stmt&& o) noexcept : conn_(o.conn_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Binds by 1-based index.
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, uint64_t v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, bool v) { return Bind(i, static_cast<int64_t>(v ? 1 : 0)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& BindNull(int i);
  template <typename... Args>
  Stmt& BindAll(const Args&... args) {
    int i = 0;
    (Bind(++i, args), ...);
    return *this;
  }

  // True when a row is ready, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion (for statements that return no rows).
  absl::Status Run();
  // Rewinds the statement (keeping its bindings) so it can be stepped again.
  absl::Status Reset();

  int64_t Int(int col) const;
  double Real(int col) const;
  std::string Text(int col) const;
  bool IsNull(int col) const;

 private:
  Conn* conn_;
  sqlite3_stmt* stmt_;
};

class Conn {
 public:
  // Opens (creating when `create`) the database at `path` in WAL mode, reading through a
  // memory map of up to `mmap_bytes` of the file (0: none), with a page cache of up to
  // `cache_bytes` (0: SQLite's default, 2 MB), checkpointing the WAL into the database
  // when it has grown to `checkpoint_bytes` (0: SQLite's default, 1,000 pages).
  static absl::StatusOr<std::unique_ptr<Conn>> Open(const std::string& path, bool create, bool sync_full,
                                                    uint64_t mmap_bytes = 0, uint64_t cache_bytes = 0,
                                                    uint64_t checkpoint_bytes = 0);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  absl::Status Exec(std::string_view sql);
  // A cached prepared statement (prepared on first use).
  absl::StatusOr<Stmt> Prepare(std::string_view sql);
  // An error naming the database file, what failed and SQLite's message.
  absl::Status Error(std::string_view what) const;
  int64_t LastInsertId() const;
  int Changes() const;
  sqlite3* db() const { return db_; }
  // Copies the WAL's committed pages into the database as far as readers allow, without
  // waiting for any lock; a failure (another checkpoint running) only leaves the WAL longer.
  void CheckpointPassive();
  const std::string& path() const { return path_; }

 private:
  Conn(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  std::map<std::string, sqlite3_stmt*, std::less<>> cache_;
};

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back when it fails.
template <typename F>
absl::Status InTransaction(Conn& conn, F&& body) {
  if (absl::Status s = conn.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = body();
  if (!s.ok()) {
    (void)conn.Exec("ROLLBACK");
    return s;
  }
  s = conn.Exec("COMMIT");
  if (!s.ok()) (void)conn.Exec("ROLLBACK");
  return s;
}

}  // namespace cairn::memory::internal
