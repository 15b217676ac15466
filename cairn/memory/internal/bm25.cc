#include "cairn/memory/internal/bm25.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

namespace cairn::memory::internal {
namespace {

// Per query (FTS5 auxiliary data): the average row size and each phrase's idf.
struct QueryData {
  double avgdl = 0;
  std::vector<double> idf;
};

struct HitCount {
  int64_t n = 0;
  int64_t cap = 0;
  int64_t last_rowid = 0;
};

int CountHit(const Fts5ExtensionApi* api, Fts5Context* fts, void* user) {
  auto* c = static_cast<HitCount*>(user);
  ++c->n;
  if (c->cap > 0 && c->n >= c->cap) {
    c->last_rowid = api->xRowid(fts);
    return SQLITE_DONE;  // ends the scan; xQueryPhrase returns SQLITE_OK
  }
  return SQLITE_OK;
}

int GetQueryData(const Fts5ExtensionApi* api, Fts5Context* fts, int64_t cap, QueryData** out) {
  auto* d = static_cast<QueryData*>(api->xGetAuxdata(fts, 0));
  if (d != nullptr) {
    *out = d;
    return SQLITE_OK;
  }
  d = new QueryData;
  sqlite3_int64 rows = 0, tokens = 0;
  int rc = api->xRowCount(fts, &rows);
  if (rc == SQLITE_OK) rc = api->xColumnTotalSize(fts, -1, &tokens);
  if (rc == SQLITE_OK) d->avgdl = static_cast<double>(tokens) / static_cast<double>(rows);
  const int phrases = api->xPhraseCount(fts);
  d->idf.resize(static_cast<size_t>(std::max(phrases, 0)));
  for (int i = 0; rc == SQLITE_OK && i < phrases; ++i) {
    HitCount c;
    c.cap = cap;
    rc = api->xQueryPhrase(fts, i, &c, CountHit);
    if (rc != SQLITE_OK) break;
    double hits = static_cast<double>(c.n);
    if (c.cap > 0 && c.n >= c.cap && c.last_rowid > 0)
      hits = std::clamp(static_cast<double>(c.cap) * static_cast<double>(rows) / static_cast<double>(c.last_rowid),
                        static_cast<double>(c.cap), static_cast<double>(std::max<sqlite3_int64>(rows, c.cap)));
    // As bm25(): a word in more than half of the rows would get a negative weight.
    double idf = std::log((static_cast<double>(rows) - hits + 0.5) / (hits + 0.5));
    if (idf <= 0.0) idf = 1e-6;
    d->idf[static_cast<size_t>(i)] = idf;
  }
  if (rc == SQLITE_OK) rc = api->xSetAuxdata(fts, d, [](void* p) { delete static_cast<QueryData*>(p); });
  else delete d;
  if (rc == SQLITE_OK) *out = d;
  return rc;
}

// cairn_bm25(table, cap, w0, w1, ...): see bm25.h. Returns what bm25() returns (the
// negated score: smaller is better).
void BoundedBm25(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int nval,
                 sqlite3_value** vals) {
  constexpr double k1 = 1.2, b = 0.75;
  const int64_t cap = nval > 0 ? sqlite3_value_int64(vals[0]) : 0;
  QueryData* d = nullptr;
  int rc = GetQueryData(api, fts, cap, &d);
  if (rc != SQLITE_OK) {
    sqlite3_result_error_code(ctx, rc);
    return;
  }
  std::vector<double> freq(d->idf.size(), 0.0);
  int instances = 0;
  rc = api->xInstCount(fts, &instances);
  for (int i = 0; rc == SQLITE_OK && i < instances; ++i) {
    int phrase = 0, column = 0, offset = 0;
    rc = api->xInst(fts, i, &phrase, &column, &offset);
    if (rc == SQLITE_OK && phrase >= 0 && static_cast<size_t>(phrase) < freq.size())
      freq[static_cast<size_t>(phrase)] += nval - 1 > column ? sqlite3_value_double(vals[1 + column]) : 1.0;
  }
  int row_tokens = 0;
  if (rc == SQLITE_OK) rc = api->xColumnSize(fts, -1, &row_tokens);
  if (rc != SQLITE_OK) {
    sqlite3_result_error_code(ctx, rc);
    return;
  }
  const double dl = static_cast<double>(row_tokens);
  double score = 0.0;
  for (size_t i = 0; i < freq.size(); ++i)
    score += d->idf[i] * ((freq[i] * (k1 + 1.0)) / (freq[i] + k1 * (1 - b + b * dl / d->avgdl)));
  sqlite3_result_double(ctx, -1.0 * score);
}

}  // namespace

absl::Status RegisterBoundedBm25(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr) != SQLITE_OK)
    return absl::FailedPreconditionError(fmt::format("memory: SQLite has no FTS5: {}", sqlite3_errmsg(db)));
  sqlite3_bind_pointer(stmt, 1, &api, "fts5_api_ptr", nullptr);
  sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (api == nullptr || api->iVersion < 2) return absl::FailedPreconditionError("memory: SQLite's FTS5 is too old");
  if (api->xCreateFunction(api, "cairn_bm25", nullptr, BoundedBm25, nullptr) != SQLITE_OK)
    return absl::InternalError(fmt::format("memory: cannot register cairn_bm25: {}", sqlite3_errmsg(db)));
  return absl::OkStatus();
}

}  // namespace cairn::memory::internal
