#include "cairn/memory/internal/relation_graph.h"

#include <sqlite3.h>

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::memory::internal {
namespace {

// Strongest() gives what the SQL over weight indexes that recall used before gave: the same
// neighbours in the same order, ties, relations to self and several predicates between one
// pair included.
TEST(RelationGraph, StrongestMatchesTheSqlOrder) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE relations(ns TEXT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL,"
                         " predicate TEXT NOT NULL, weight REAL NOT NULL, PRIMARY KEY(src, dst, predicate));"
                         "CREATE INDEX relations_src_weight ON relations(src, weight DESC, dst, predicate);"
                         "CREATE INDEX relations_dst_weight ON relations(dst, weight DESC);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_stmt* up = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO relations(ns, src, dst, predicate, weight) VALUES ('n', ?, ?, ?, ?)"
                               " ON CONFLICT(src, dst, predicate) DO UPDATE SET weight = weight + excluded.weight"
                               " RETURNING rowid, weight",
                               -1, &up, nullptr),
            SQLITE_OK);
  RelationGraph graph;
  std::mt19937_64 rng(3);
  const char* predicates[] = {"mentioned_with", "works_at", "likes", "lives_in"};
  for (int i = 0; i < 4000; ++i) {
    uint64_t a = 1 + rng() % 40, b = 1 + rng() % 40;  // a == b now and then
    const char* p = predicates[rng() % 4];
    sqlite3_bind_int64(up, 1, static_cast<int64_t>(a));
    sqlite3_bind_int64(up, 2, static_cast<int64_t>(b));
    sqlite3_bind_text(up, 3, p, -1, SQLITE_STATIC);
    sqlite3_bind_double(up, 4, 1 + static_cast<double>(rng() % 3));  // many equal weights
    ASSERT_EQ(sqlite3_step(up), SQLITE_ROW);
    graph.Put(sqlite3_column_int64(up, 0), a, b, p, sqlite3_column_double(up, 1));
    ASSERT_EQ(sqlite3_step(up), SQLITE_DONE);
    sqlite3_reset(up);
  }
  sqlite3_finalize(up);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT o, weight FROM (SELECT * FROM (SELECT dst AS o, weight, 0 AS side, dst AS k1,"
                               " predicate AS k2, 0 AS k3 FROM relations WHERE src = ?1 ORDER BY weight DESC, dst,"
                               " predicate LIMIT ?2) UNION ALL SELECT * FROM (SELECT src, weight, 1, 0, '', rowid FROM"
                               " relations WHERE dst = ?1 ORDER BY weight DESC, rowid LIMIT ?2)) ORDER BY weight DESC,"
                               " side, k1, k2, k3 LIMIT ?2",
                               -1, &q, nullptr),
            SQLITE_OK);
  size_t compared = 0;
  for (uint64_t e = 0; e <= 41; ++e) {
    for (int k : {1, 4, 8, 200}) {
      sqlite3_bind_int64(q, 1, static_cast<int64_t>(e));
      sqlite3_bind_int(q, 2, k);
      std::vector<std::pair<uint64_t, double>> want;
      while (sqlite3_step(q) == SQLITE_ROW)
        want.emplace_back(static_cast<uint64_t>(sqlite3_column_int64(q, 0)), sqlite3_column_double(q, 1));
      sqlite3_reset(q);
      EXPECT_EQ(graph.Strongest(e, static_cast<size_t>(k)), want) << "entity " << e << ", k " << k;
      compared += want.size();
    }
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  EXPECT_GT(compared, 2000u);
  EXPECT_LE(graph.size(), 40u * 40u * 4u);
}

TEST(RelationGraph, PutUpdatesAndClearEmpties) {
  RelationGraph g;
  g.Put(1, 10, 20, "likes", 1);
  g.Put(2, 10, 30, "likes", 2);
  g.Put(1, 10, 20, "likes", 5);  // the same relation, a new weight
  EXPECT_EQ(g.size(), 2u);
  EXPECT_EQ(g.Strongest(10, 8), (std::vector<std::pair<uint64_t, double>>{{20, 5}, {30, 2}}));
  EXPECT_EQ(g.Strongest(20, 8), (std::vector<std::pair<uint64_t, double>>{{10, 5}}));
  EXPECT_TRUE(g.Strongest(99, 8).empty());
  g.Clear();
  EXPECT_EQ(g.size(), 0u);
  EXPECT_TRUE(g.Strongest(10, 8).empty());
}

}  // namespace
}  // namespace cairn::memory::internal
