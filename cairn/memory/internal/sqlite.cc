#include "cairn/memory/internal/sqlite.h"

#include <sqlite3.h>

#include <algorithm>

#include <fmt/format.h>

namespace cairn::memory::internal {

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

absl::StatusOr<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->Error("step");
}

absl::Status Stmt::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

absl::Status Stmt::Reset() {
  if (sqlite3_reset(stmt_) != SQLITE_OK) return conn_->Error("reset");
  return absl::OkStatus();
}

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
double Stmt::Real(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}
bool Stmt::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

absl::StatusOr<std::unique_ptr<Conn>> Conn::Open(const std::string& path, bool create, bool sync_full,
                                                 uint64_t mmap_bytes, uint64_t cache_bytes, uint64_t checkpoint_bytes) {
  // Memory statistics make every SQLite allocation take a process-wide mutex (about 8% of
  // recall's CPU time in a profile). The setting only takes before SQLite initializes;
  // when something else in the process opened a database first it stays on (harmless).
  static const int kNoMemStatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kNoMemStatus;
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::FailedPreconditionError(fmt::format("memory store '{}': cannot open: {}", path, msg));
  }
  sqlite3_busy_timeout(db, 10000);
  std::unique_ptr<Conn> conn(new Conn(db, path));
  // The first statement reads the header: a file that is not SQLite fails here.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=OFF"}) {
    if (absl::Status s = conn->Exec(sql); !s.ok())
      return absl::FailedPreconditionError(
          fmt::format("memory store '{}' is not a memory database or is damaged: {}", path, std::string(s.message())));
  }
  if (absl::Status s = conn->Exec(sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"); !s.ok())
    return s;
  // Pages read through a memory map are not copied by a read() each time they are missed
  // in SQLite's own small page cache (about a tenth of recall's time at 100 K episodes).
  if (mmap_bytes > 0) {
    if (absl::Status s = conn->Exec(fmt::format("PRAGMA mmap_size={}", mmap_bytes)); !s.ok()) return s;
  }
  // With the default 2 MB a large store's index pages are evicted between batches and read
  // back (from the WAL, with a copy, when not yet checkpointed) batch after batch.
  if (cache_bytes > 0) {
    if (absl::Status s = conn->Exec(fmt::format("PRAGMA cache_size=-{}", std::max<uint64_t>(cache_bytes >> 10, 1)));
        !s.ok())
      return s;
  }
  if (checkpoint_bytes > 0) {
    sqlite3_stmt* ps = nullptr;
    int64_t page = 4096;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &ps, nullptr) == SQLITE_OK && sqlite3_step(ps) == SQLITE_ROW)
      page = std::max<int64_t>(sqlite3_column_int64(ps, 0), 512);
    sqlite3_finalize(ps);
    sqlite3_wal_autocheckpoint(db, static_cast<int>(std::clamp<uint64_t>(checkpoint_bytes / page, 1, 1u << 30)));
  }
  return conn;
}

Conn::~Conn() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

absl::Status Conn::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return absl::InternalError(fmt::format("memory store '{}': {}: {}", path_, text.substr(0, 60), msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<Stmt> Conn::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) return Error(fmt::format("prepare '{}'", sql.substr(0, 60)));
    it = cache_.emplace(std::string(sql), stmt).first;
  }
  return Stmt(this, it->second);
}

absl::Status Conn::Error(std::string_view what) const {
  return absl::InternalError(fmt::format("memory store '{}': {}: {}", path_, what, sqlite3_errmsg(db_)));
}

void Conn::CheckpointPassive() {
  (void)sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

int64_t Conn::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
int Conn::Changes() const { return sqlite3_changes(db_); }

}  // namespace cairn::memory::internal
