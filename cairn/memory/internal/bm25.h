// cairn_bm25(): FTS5's bm25() ranking function, with a bound on the work it does per query
// in a big store.
//
// bm25() weighs each query word by its inverse document frequency, which it finds by
// visiting every row that holds the word, once per query: a word in half of a million
// episodes costs as much as ranking them all, even when the query reads only the newest
// few matches. cairn_bm25(table, cap, w0, w1, ...) counts a word's rows only up to `cap`
// (0: all); past it, the count is estimated from where the cap-th match lies in rowid
// order (count = cap * rows / rowid of that match, rowids being dense from 1 as episode
// ids are). Every other part of the score, and the score itself whenever no word passes
// the cap, is bm25()'s (k1 = 1.2, b = 0.75, column weights w0, w1, ... as bm25() takes
// them), so rankings match bm25() exactly below the cap.
#pragma once

#include "absl/status/status.h"

struct sqlite3;

namespace cairn::memory::internal {

// Registers cairn_bm25 on the connection (which must have FTS5).
absl::Status RegisterBoundedBm25(sqlite3* db);

}  // namespace cairn::memory::internal
