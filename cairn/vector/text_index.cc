#include "cairn/vector/text_index.h"

#include <sqlite3.h>

#include <cstring>

#include <fmt/format.h>

namespace cairn::vector {
namespace {

// Point ids are uint64; SQLite rowids are int64: the bits are kept as they are.
int64_t ToRowid(uint64_t id) {
  int64_t r;
  std::memcpy(&r, &id, 8);
  return r;
}
uint64_t FromRowid(int64_t r) {
  uint64_t id;
  std::memcpy(&id, &r, 8);
  return id;
}

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

}  // namespace

absl::Status TextIndex::Error(std::string_view what) const {
  return absl::InternalError(fmt::format("{}: {}: {}", path_, what, sqlite3_errmsg(db_)));
}

absl::Status TextIndex::Exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(fmt::format("{}: {}: {}", path_, sql, msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TextIndex>> TextIndex::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::InternalError(fmt::format("cannot open text index {}: {}", path, msg));
  }
  std::unique_ptr<TextIndex> t(new TextIndex(db, path));
  // WAL journal with synchronous=NORMAL: commits are atomic and survive a process
  // crash; durability against power loss comes from the collection WAL (replayed
  // after applied_seq) and from Checkpoint() before a snapshot drops WAL records.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                          "CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(body, "
                          "tokenize='unicode61 remove_diacritics 2')",
                          "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"}) {
    auto st = t->Exec(sql);
    if (!st.ok()) {
      if (std::strstr(sql, "fts5") != nullptr) {
        return absl::FailedPreconditionError(
            fmt::format("{} (is SQLite built with FTS5?)", std::string(st.message())));
      }
      return st;
    }
  }
  Stmt q;
  if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='applied_seq'", -1, &q.s, nullptr) !=
      SQLITE_OK) {
    return t->Error("reading applied_seq");
  }
  rc = sqlite3_step(q.s);
  if (rc == SQLITE_ROW) {
    t->applied_seq_ = static_cast<uint64_t>(sqlite3_column_int64(q.s, 0));
  } else if (rc != SQLITE_DONE) {
    return t->Error("reading applied_seq");
  }
  return t;
}

TextIndex::~TextIndex() { sqlite3_close(db_); }

uint64_t TextIndex::applied_seq() const {
  std::lock_guard lock(mu_);
  return applied_seq_;
}

absl::Status TextIndex::Apply(uint64_t seq, std::span<const TextChange> changes) {
  std::lock_guard lock(mu_);
  auto st = Exec("BEGIN IMMEDIATE");
  if (!st.ok()) return st;
  auto fail = [&](std::string_view what) {
    absl::Status err = Error(what);
    (void)Exec("ROLLBACK");
    return err;
  };
  Stmt del, ins, meta;
  if (sqlite3_prepare_v2(db_, "DELETE FROM docs WHERE rowid=?", -1, &del.s, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db_, "INSERT INTO docs(rowid, body) VALUES(?, ?)", -1, &ins.s, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('applied_seq', ?)", -1,
                         &meta.s, nullptr) != SQLITE_OK) {
    return fail("preparing statements");
  }
  for (const TextChange& c : changes) {
    sqlite3_reset(del.s);
    sqlite3_bind_int64(del.s, 1, ToRowid(c.id));
    if (sqlite3_step(del.s) != SQLITE_DONE) return fail("deleting old text");
    if (!c.text) continue;
    sqlite3_reset(ins.s);
    sqlite3_bind_int64(ins.s, 1, ToRowid(c.id));
    sqlite3_bind_text(ins.s, 2, c.text->data(), static_cast<int>(c.text->size()), SQLITE_STATIC);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return fail("inserting text");
  }
  sqlite3_bind_int64(meta.s, 1, static_cast<int64_t>(seq));
  if (sqlite3_step(meta.s) != SQLITE_DONE) return fail("recording applied_seq");
  st = Exec("COMMIT");
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  applied_seq_ = seq;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> TextIndex::Get(uint64_t id) const {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_, "SELECT body FROM docs WHERE rowid=?", -1, &q.s, nullptr) != SQLITE_OK) {
    return Error("reading text");
  }
  sqlite3_bind_int64(q.s, 1, ToRowid(id));
  int rc = sqlite3_step(q.s);
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return Error("reading text");
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(q.s, 0));
  int n = sqlite3_column_bytes(q.s, 0);
  return std::optional<std::string>(std::string(p ? p : "", static_cast<size_t>(n)));
}

std::string TextIndex::MatchExpression(std::string_view query) {
  std::string out;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!out.empty()) out += " OR ";
    out += '"';
    out += word;  // only word bytes: no quote to escape
    out += '"';
    word.clear();
  };
  for (unsigned char c : query) {
    if (IsWordByte(c)) {
      word.push_back(static_cast<char>(c));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

absl::StatusOr<std::vector<TextHit>> TextIndex::Search(std::string_view query, size_t k,
                                                       const Filter* filter) const {
  std::vector<TextHit> hits;
  const std::string match = MatchExpression(query);
  if (match.empty() || k == 0) return hits;
  std::lock_guard lock(mu_);
  Stmt q;
  // Without a filter SQLite stops after k rows; with one we step through the ranked
  // matches until k allowed ids are found.
  const char* sql = filter == nullptr
                        ? "SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?"
                        : "SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank";
  if (sqlite3_prepare_v2(db_, sql, -1, &q.s, nullptr) != SQLITE_OK) return Error("text search");
  sqlite3_bind_text(q.s, 1, match.data(), static_cast<int>(match.size()), SQLITE_STATIC);
  if (filter == nullptr) sqlite3_bind_int64(q.s, 2, static_cast<int64_t>(k));
  int rc;
  while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
    uint64_t id = FromRowid(sqlite3_column_int64(q.s, 0));
    if (filter != nullptr && !filter->Allows(id)) continue;
    // bm25() is negated by FTS5 so that ascending order is best-first.
    hits.push_back({id, -sqlite3_column_double(q.s, 1)});
    if (hits.size() >= k) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("text search");
  return hits;
}

size_t TextIndex::Count() const {
  std::lock_guard lock(mu_);
  Stmt q;
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM docs", -1, &q.s, nullptr) != SQLITE_OK) return 0;
  if (sqlite3_step(q.s) != SQLITE_ROW) return 0;
  return static_cast<size_t>(sqlite3_column_int64(q.s, 0));
}

absl::Status TextIndex::Checkpoint() {
  std::lock_guard lock(mu_);
  // FULL synchronous for the checkpoint itself, so the main database file is fsync'ed.
  auto st = Exec("PRAGMA synchronous=FULL");
  if (!st.ok()) return st;
  st = Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  auto st2 = Exec("PRAGMA synchronous=NORMAL");
  if (!st.ok()) return st;
  return st2;
}

}  // namespace cairn::vector
