#include "cairn/memory/internal/mention_index.h"

#include <sqlite3.h>

#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::memory::internal {
namespace {

// Newest() gives what recall's SQL over the mentions_entity index gave: the same episodes in
// the same order, after adds in any order, repeated adds and removes.
TEST(MentionIndex, NewestMatchesTheSqlOrder) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE mentions(episode INTEGER NOT NULL, entity INTEGER NOT NULL,"
                         " PRIMARY KEY(episode, entity)) WITHOUT ROWID;"
                         "CREATE INDEX mentions_entity ON mentions(entity, episode);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_stmt *ins = nullptr, *del = nullptr, *newest = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO mentions(episode, entity) VALUES (?, ?)", -1, &ins, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_prepare_v2(db, "DELETE FROM mentions WHERE episode = ? AND entity = ?", -1, &del, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT episode FROM mentions WHERE entity = ? ORDER BY episode DESC LIMIT ?", -1,
                               &newest, nullptr),
            SQLITE_OK);
  auto run = [](sqlite3_stmt* s, int64_t a, int64_t b) {
    sqlite3_bind_int64(s, 1, a);
    sqlite3_bind_int64(s, 2, b);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
    sqlite3_reset(s);
  };
  MentionIndex index;
  std::mt19937_64 rng(7);
  uint64_t next_episode = 1;
  size_t removed = 0, late = 0;
  for (int step = 0; step < 5000; ++step) {
    const uint64_t entity = 1 + rng() % 12;
    const int op = static_cast<int>(rng() % 10);
    if (op < 7) {  // a new episode (mostly), or an earlier one again or out of order
      const uint64_t episode = op < 5 ? next_episode++ : 1 + rng() % next_episode;
      late += op >= 5;
      index.Add(entity, episode);
      run(ins, static_cast<int64_t>(episode), static_cast<int64_t>(entity));
    } else if (op < 9) {
      const uint64_t episode = 1 + rng() % next_episode;
      index.Remove(entity, episode);
      run(del, static_cast<int64_t>(episode), static_cast<int64_t>(entity));
      removed += sqlite3_changes(db) > 0;
    } else {
      const size_t limit = rng() % 40;
      std::vector<uint64_t> want;
      sqlite3_bind_int64(newest, 1, static_cast<int64_t>(entity));
      sqlite3_bind_int64(newest, 2, static_cast<int64_t>(limit));
      while (sqlite3_step(newest) == SQLITE_ROW) want.push_back(static_cast<uint64_t>(sqlite3_column_int64(newest, 0)));
      sqlite3_reset(newest);
      std::vector<uint64_t> got = {42};  // Newest appends
      index.Newest(entity, limit, &got);
      want.insert(want.begin(), 42);
      ASSERT_EQ(got, want) << "step " << step << ", entity " << entity << ", limit " << limit;
    }
  }
  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM mentions", -1, &count, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(index.size(), static_cast<size_t>(sqlite3_column_int64(count, 0)));
  EXPECT_GT(removed, 50u);
  EXPECT_GT(late, 100u);
  for (sqlite3_stmt* s : {ins, del, newest, count}) sqlite3_finalize(s);
  sqlite3_close(db);
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
  std::vector<uint64_t> none;
  index.Newest(1, 10, &none);
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace cairn::memory::internal
