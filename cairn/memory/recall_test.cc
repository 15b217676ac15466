// Recall's text side: stemming, the preceding-episode context, the next-episode credit, the
// speaker boost, dates as words and pseudo-relevance feedback, on small conversations written for these tests.
#include <algorithm>
#include <limits>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "cairn/base/temp_dir.h"
#include "cairn/memory/internal/bm25.h"
#include "cairn/memory/memory.h"
#include "cairn/memory/testing.h"

namespace cairn::memory {
namespace {

constexpr int64_t kMinute = 60000;
constexpr int64_t kT0 = 1'683'504'000'000;  // 8 May 2023 00:00 UTC

MemoryOptions Options() {
  MemoryOptions o;
  o.dim = 64;
  o.sync_full = false;
  return o;
}

Episode Turn(int64_t t, std::string speaker, std::string text) {
  return Episode{.ns = "chat", .author = "a", .speaker = std::move(speaker), .time_ms = t, .content = std::move(text)};
}

// BM25 alone, so that each test sees the text side only.
RecallQuery TextOnly(const std::string& text, size_t k) {
  RecallQuery q;
  q.agent = std::string("a");  // (operator=(const char*) trips a GCC 12 -Wrestrict false positive here)
  q.namespaces = {"chat"};
  q.text = text;
  q.k = k;
  q.facts = false;
  q.vector_weight = q.graph_weight = q.recency_weight = q.importance_weight = 0;
  q.feedback_terms = 0;
  return q;
}

using testing::Ids;

bool Has(const std::vector<uint64_t>& ids, uint64_t id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

TEST(DateWords, NamesTheUtcDay) {
  EXPECT_EQ(DateWords(kT0), "8 May 2023");
  EXPECT_EQ(DateWords(kT0 + 86400000 - 1), "8 May 2023");
  EXPECT_EQ(DateWords(0), "1 January 1970");
  EXPECT_EQ(DateWords(-1), "31 December 1969");
  EXPECT_EQ(DateWords(951782400000), "29 February 2000");
  EXPECT_EQ(DateWords(-86400000), "31 December 1969");
  EXPECT_EQ(DateWords(-86400001), "30 December 1969");
  EXPECT_FALSE(DateWords(std::numeric_limits<int64_t>::min()).empty());
  EXPECT_FALSE(DateWords(std::numeric_limits<int64_t>::max()).empty());
}

TEST(RecallText, StemmedWordsMatch) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  auto a = (*m)->Remember(Turn(kT0, "Ann", "Ann: I painted two landscapes last weekend."));
  auto b = (*m)->Remember(Turn(kT0 + 4 * 86400000, "Ann", "Ann: The bakery was closed again."));
  auto c = (*m)->Remember(Turn(kT0 + 5 * 86400000, "Ann", "Ann: My brother called."));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const auto ids = Ids((*m)->Recall(TextOnly("What paintings did she make?", 5)));
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], a->episode_id);
}

// A reply that only makes sense with the question before it is found by the question's words.
TEST(RecallText, RepliesAreFoundThroughTheTurnsBeforeThem) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<Episode> eps = {
      Turn(kT0, "Ann", "How is the new job going?"),
      Turn(kT0 + 1000, "Bob", "Busy, but I like the team."),
      Turn(kT0 + 2000, "Ann", "Do you still go swimming at the lake?"),
      Turn(kT0 + 3000, "Bob", "Yes, every Sunday morning before breakfast."),
      // Two hours later: outside the context window, so it gets no context.
      Turn(kT0 + 120 * kMinute, "Bob", "Sure, see you then."),
      Turn(kT0 + 130 * kMinute, "Ann", "Have you read the book I sent?"),
      Turn(kT0 + 131 * kMinute, "Bob", "Not yet, it is on my desk."),
  };
  auto rs = (*m)->RememberBatch(eps);
  ASSERT_TRUE(rs.ok()) << rs.status();
  RecallQuery q = TextOnly("When does Bob go swimming at the lake?", 5);
  auto ids = Ids((*m)->Recall(q));
  EXPECT_TRUE(Has(ids, (*rs)[3].episode_id));
  EXPECT_TRUE(Has(ids, (*rs)[2].episode_id));
  EXPECT_FALSE(Has(ids, (*rs)[4].episode_id));
  q.context_weight = 0;
  ids = Ids((*m)->Recall(q));
  EXPECT_FALSE(Has(ids, (*rs)[3].episode_id)) << "without the context the reply shares no word";

  // The window is configurable, and 0 episodes turns the context off.
  TempDir dir2;
  MemoryOptions o = Options();
  o.context_episodes = 0;
  auto m2 = MemoryStore::Open(dir2.path(), o);
  ASSERT_TRUE(m2.ok());
  auto rs2 = (*m2)->RememberBatch(eps);
  ASSERT_TRUE(rs2.ok());
  ids = Ids((*m2)->Recall(TextOnly("When does Bob go swimming at the lake?", 5)));
  EXPECT_FALSE(Has(ids, (*rs2)[3].episode_id));
}

TEST(RecallText, EpisodesOfTheNamedSpeakerComeFirst) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE((*m)->Remember(Turn(kT0 - (i + 1) * 86400000LL, "Cid", fmt::format("Weather note {}.", i))).ok());
  // Bob's sentence is shorter, so plain BM25 ranks it first.
  auto bob = (*m)->Remember(Turn(kT0, "Bob Stone", "I adopted a puppy."));
  auto ann = (*m)->Remember(Turn(kT0 + 1000, "Ann", "Guess what, I adopted a puppy from the shelter this week."));
  ASSERT_TRUE(bob.ok() && ann.ok());
  RecallQuery q = TextOnly("What did Ann tell Bob about the puppy she adopted?", 2);
  q.context_weight = 0;
  auto ids = Ids((*m)->Recall(q));
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], ann->episode_id);
  q.text = "What did Bob tell Ann about the puppy he adopted?";
  ids = Ids((*m)->Recall(q));
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], bob->episode_id);
  q.text = "What did Ann tell Bob about the puppy she adopted?";
  q.speaker_boost = 0;
  EXPECT_TRUE(absl::IsInvalidArgument((*m)->Recall(q).status()));
  q.speaker_boost = 1;
  ids = Ids((*m)->Recall(q));
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], bob->episode_id) << "no boost: plain BM25 order";
}

TEST(RecallText, QueriesThatNameADayFindThatDay) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<uint64_t> ids;
  for (int d = 0; d < 5; ++d) {
    auto r = (*m)->Remember(Turn(kT0 + d * 86400000LL, "Ann", "Ann: I went to the market today."));
    ASSERT_TRUE(r.ok());
    ids.push_back(r->episode_id);
  }
  auto got = Ids((*m)->Recall(TextOnly("Where did Ann go on 10 May, 2023?", 1)));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], ids[2]);
  RecallQuery q = TextOnly("Where did Ann go on 11 May, 2023?", 1);
  got = Ids((*m)->Recall(q));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], ids[3]);
}

// Next-episode credit: a turn that shares no word with the question is found through the
// reply right after it, but not through one outside the context window or after as_of.
TEST(RecallText, TurnsAreFoundThroughTheRepliesAfterThem) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  constexpr int64_t kDay = 86400000;
  std::vector<Episode> eps = {
      Turn(kT0, "Ann", "I finally did it this morning, all forty-two kilometres!"),
      Turn(kT0 + 1000, "Bob", "A marathon? Congratulations, that is huge."),
      Turn(kT0 + 2000, "Ann", "Thanks, my legs still hurt."),
      Turn(kT0 + kDay, "Cid", "I finished my long project yesterday."),
      // Two hours later: outside the window, so it credits nothing.
      Turn(kT0 + kDay + 120 * kMinute, "Dan", "Did you watch the marathon on TV?"),
      Turn(kT0 + 2 * kDay, "Ann", "The bakery was closed again."),
      Turn(kT0 + 3 * kDay, "Bob", "My brother called."),
      Turn(kT0 - 2 * kDay, "Zed", "The city marathon is in May."),
  };
  auto rs = (*m)->RememberBatch(eps);
  ASSERT_TRUE(rs.ok()) << rs.status();
  RecallQuery q = TextOnly("Who ran a marathon?", 5);
  auto ids = Ids((*m)->Recall(q));
  EXPECT_TRUE(Has(ids, (*rs)[1].episode_id));
  EXPECT_TRUE(Has(ids, (*rs)[0].episode_id)) << "credited by the reply after it";
  EXPECT_FALSE(Has(ids, (*rs)[3].episode_id)) << "its successor is outside the window";
  EXPECT_FALSE(Has(ids, (*rs)[5].episode_id));
  // Only what the query may see credits: before the reply was made, nothing names the run.
  q.as_of_ms = kT0 + 500;
  ids = Ids((*m)->Recall(q));
  EXPECT_TRUE(Has(ids, (*rs)[7].episode_id));
  EXPECT_FALSE(Has(ids, (*rs)[0].episode_id));
  q.as_of_ms.reset();
  q.next_weights = {0};
  ids = Ids((*m)->Recall(q));
  EXPECT_TRUE(Has(ids, (*rs)[1].episode_id));
  EXPECT_FALSE(Has(ids, (*rs)[0].episode_id)) << "without the credit it shares no word";
  // The second weight is for the episode two before the match.
  q.text = "Do your legs still hurt?";
  q.next_weights = {0, 0.5};
  EXPECT_TRUE(Has(Ids((*m)->Recall(q)), (*rs)[0].episode_id));
  q.next_weights = {0.5, 0};
  EXPECT_FALSE(Has(Ids((*m)->Recall(q)), (*rs)[0].episode_id));
  q.next_weights = {-1};
  EXPECT_TRUE(absl::IsInvalidArgument((*m)->Recall(q).status()));
  q.next_weights.assign(9, 0.1);
  EXPECT_TRUE(absl::IsInvalidArgument((*m)->Recall(q).status()));
}

// Feedback adds the words the best matches share: here "kayak" brings the episode that
// says "paddle" only through the words around it.
TEST(RecallText, FeedbackFindsRelatedWords) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<Episode> eps = {
      Turn(kT0, "Ann", "I bought a kayak and a paddle for the river."),
      Turn(kT0 + 86400000, "Ann", "The kayak trip on the river was calm."),
      Turn(kT0 + 2 * 86400000, "Ann", "My paddle broke near the rapids on the river."),
      Turn(kT0 + 3 * 86400000, "Ann", "I baked bread with my sister."),
      Turn(kT0 + 4 * 86400000, "Ann", "Work was long today."),
      Turn(kT0 + 5 * 86400000, "Ann", "The cat slept all afternoon."),
  };
  auto rs = (*m)->RememberBatch(eps);
  ASSERT_TRUE(rs.ok()) << rs.status();
  RecallQuery q = TextOnly("Tell me about the kayak", 4);
  auto ids = Ids((*m)->Recall(q));
  EXPECT_FALSE(Has(ids, (*rs)[2].episode_id));
  q.feedback_terms = 5;
  ids = Ids((*m)->Recall(q));
  ASSERT_GE(ids.size(), 3u);
  EXPECT_TRUE(Has(ids, (*rs)[2].episode_id));
  EXPECT_FALSE(Has(ids, (*rs)[3].episode_id));
}

}  // namespace
}  // namespace cairn::memory

namespace cairn::memory {
namespace {

// cairn_bm25 (internal/bm25.h) is bm25() while no word is in more rows than its cap; past
// the cap it estimates the word's row count, which moves the score but not the order of
// rows that hold that word alone.
TEST(BoundedBm25, MatchesBm25BelowTheCapAndKeepsTheOrderAbove) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_TRUE(internal::RegisterBoundedBm25(db).ok());
  ASSERT_EQ(sqlite3_exec(db, "CREATE VIRTUAL TABLE t USING fts5(a, b, tokenize='porter unicode61')", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  for (int i = 1; i <= 300; ++i) {
    // "common" in every other row, with a varying number of filler words; "rare" in 1 of 30.
    std::string a = i % 2 == 0 ? "common" : "other";
    for (int j = 0; j < i % 7; ++j) a += " filler";
    if (i % 30 == 0) a += " rare";
    const std::string sql = fmt::format("INSERT INTO t(rowid, a, b) VALUES ({}, '{}', '{}')", i, a,
                                        i % 3 == 0 ? "common words" : "nothing");
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto scores = [&](const std::string& fn, const std::string& match) {
    std::vector<std::pair<int64_t, double>> out;
    sqlite3_stmt* s = nullptr;
    const std::string sql = fmt::format("SELECT rowid, {} FROM t WHERE t MATCH '{}' ORDER BY rowid", fn, match);
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    while (sqlite3_step(s) == SQLITE_ROW) out.emplace_back(sqlite3_column_int64(s, 0), sqlite3_column_double(s, 1));
    sqlite3_finalize(s);
    return out;
  };
  for (const char* match : {"common", "rare", "common OR rare", "{a} : (common OR rare)"}) {
    const auto want = scores("bm25(t, 1.0, 0.4)", match);
    ASSERT_FALSE(want.empty()) << match;
    EXPECT_EQ(scores("cairn_bm25(t, 0, 1.0, 0.4)", match), want) << match;      // no cap
    EXPECT_EQ(scores("cairn_bm25(t, 1000, 1.0, 0.4)", match), want) << match;   // above every count
  }
  // "common" is in 200 of the 300 rows (more than half: bm25 gives it the smallest weight);
  // capped at 10 its count is estimated as 10 * 300 / 15 (the rowid of its 10th row) = 200.
  EXPECT_EQ(scores("cairn_bm25(t, 10, 1.0, 0.4)", "common"), scores("bm25(t, 1.0, 0.4)", "common"));
  // "rare" is in 10 rows; capped at 5 its count is estimated as 5 * 300 / 150 = 10: the
  // same scores again, and in general the same order (one word: the weight is common).
  EXPECT_EQ(scores("cairn_bm25(t, 5, 1.0, 0.4)", "rare"), scores("bm25(t, 1.0, 0.4)", "rare"));
  sqlite3_close(db);
}

}  // namespace
}  // namespace cairn::memory
