#include "cairn/memory/memory.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <span>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cairn/base/clock.h"
#include "cairn/base/temp_dir.h"
#include "cairn/memory/internal/sqlite.h"
#include "cairn/memory/testing.h"
#include "cairn/vector/collection.h"

namespace cairn::memory {
namespace {

using testing::CurrentFacts;
using testing::Ep;
using testing::kDay;
using testing::kT0;
using testing::Options;

// The HNSW build parameters are chosen when a store is created and kept with it.
TEST(MemoryStore, VectorIndexParametersAreSetAtCreationAndKept) {
  TempDir dir;
  auto settings = [&] {
    auto s = vector::SettingsFromJson([&] {
      std::ifstream in(std::filesystem::path(dir.path()) / "vectors" / "settings.json");
      return std::string(std::istreambuf_iterator<char>(in), {});
    }());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : vector::CollectionSettings{};
  };
  MemoryOptions o = Options();
  EXPECT_EQ(o.hnsw_ef_construction, 64u);  // the default, lower than the vector subsystem's 200
  o.hnsw_m = 12;
  o.hnsw_ef_construction = 40;
  {
    auto m = MemoryStore::Open(dir.path(), o);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE((*m)->Remember(Ep("ns", "a", kT0, "Alma Okafor works at Kalo Labs.")).ok());
  }
  EXPECT_EQ(settings().hnsw.m, 12u);
  EXPECT_EQ(settings().hnsw.ef_construction, 40u);
  {
    auto m = MemoryStore::Open(dir.path(), Options());  // other defaults: the store keeps its own
    ASSERT_TRUE(m.ok()) << m.status();
    RecallQuery q;
    q.agent = "a";
    q.text = "Alma Okafor";
    q.namespaces = {"ns"};
    auto r = (*m)->Recall(q);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->empty());
  }
  EXPECT_EQ(settings().hnsw.ef_construction, 40u);
  o.hnsw_ef_construction = 0;
  TempDir bad;
  EXPECT_FALSE(MemoryStore::Open(bad.path(), o).ok());
}

TEST(MemoryStore, NamespacesEnforceReadAndWriteRules) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Remember(Ep("alice.private", "alice", kT0, "My locker code is 4471.")).ok());
  EXPECT_TRUE(absl::IsPermissionDenied((*m)->Remember(Ep("alice.private", "bob", kT0, "hi")).status()));
  RecallQuery q;
  q.agent = "bob";
  q.text = "locker code";
  q.namespaces = {"alice.private"};
  EXPECT_TRUE(absl::IsPermissionDenied((*m)->Recall(q).status()));
  q.agent = "alice";
  auto own = (*m)->Recall(q);
  ASSERT_TRUE(own.ok()) << own.status();
  ASSERT_FALSE(own->empty());
  EXPECT_EQ((*own)[0].author, "alice");

  ASSERT_TRUE((*m)->CreateNamespace("swarm", "lead", true).ok());
  EXPECT_TRUE(absl::IsAlreadyExists((*m)->CreateNamespace("swarm", "x", true)));
  ASSERT_TRUE((*m)->Grant("swarm", "lead", "reader", true, false).ok());
  ASSERT_TRUE((*m)->Grant("swarm", "lead", "writer", true, true).ok());
  EXPECT_TRUE(absl::IsPermissionDenied((*m)->Grant("swarm", "writer", "z", true, true)));
  EXPECT_TRUE((*m)->Remember(Ep("swarm", "writer", kT0, "The deploy key rotates on Fridays.")).ok());
  EXPECT_TRUE(absl::IsPermissionDenied((*m)->Remember(Ep("swarm", "reader", kT0, "x")).status()));
  q.agent = "reader";
  q.text = "deploy key";
  q.namespaces = {"swarm"};
  auto shared = (*m)->Recall(q);
  ASSERT_TRUE(shared.ok());
  ASSERT_FALSE(shared->empty());
  EXPECT_EQ((*shared)[0].author, "writer");
  EXPECT_TRUE(absl::IsInvalidArgument((*m)->Remember(Ep("bad/ns", "a", kT0, "x")).status()));
  EXPECT_TRUE(absl::IsInvalidArgument((*m)->Remember(Ep("ok", "a", kT0, "")).status()));
}

// The graph signal reaches entities through their relations (held in memory), the same after
// the store is reopened as before.
TEST(MemoryStore, GraphNeighboursAreFoundBeforeAndAfterReopening) {
  TempDir dir;
  const RecallQuery q = testing::GraphOnlyQuery("Alma Okafor", 5);
  std::vector<uint64_t> before;
  uint64_t bruno_only = 0;
  {
    auto m = MemoryStore::Open(dir.path(), Options());
    ASSERT_TRUE(m.ok());
    std::vector<Episode> eps = {
        Ep("n", "a", kT0 + 1 * kDay, "Alma Okafor met Bruno Novak at the harbour."),
        Ep("n", "a", kT0 + 2 * kDay, "Bruno Novak fixed the old boat engine."),
        Ep("n", "a", kT0 + 3 * kDay, "Carmen Moreau baked bread."),
    };
    auto rs = (*m)->RememberBatch(eps);
    ASSERT_TRUE(rs.ok()) << rs.status();
    bruno_only = (*rs)[1].episode_id;
    auto r = (*m)->Recall(q);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const Recalled& x : *r) before.push_back(x.id);
  }
  EXPECT_NE(std::find(before.begin(), before.end(), bruno_only), before.end());
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  auto r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<uint64_t> after;
  for (const Recalled& x : *r) after.push_back(x.id);
  EXPECT_EQ(after, before);
}

// Recall's graph signal reads an entity's newest 1,000 mentions. Forgetting the newest of
// 1,001 episodes that name one entity lets the oldest in: the forgotten episode leaves the
// mention index with its row. Opening a store of schema version 3 drops its mentions_entity
// index and reads the mentions from the table.
TEST(MemoryStore, ForgetRemovesTheEpisodesMentions) {
  TempDir dir;
  const RecallQuery q = testing::GraphOnlyQuery("Zorblax Quintana", 3);
  auto ids = [&](MemoryStore& m) { return testing::Ids(m.Recall(q)); };
  uint64_t first = 0, last = 0;
  {
    auto m = MemoryStore::Open(dir.path(), Options());
    ASSERT_TRUE(m.ok()) << m.status();
    std::vector<Episode> eps;
    for (int i = 0; i < 1001; ++i)
      eps.push_back(Ep("n", "a", kT0 + i * 1000, fmt::format("Zorblax Quintana counted crate {}.", i)));
    auto rs = (*m)->RememberBatch(eps);
    ASSERT_TRUE(rs.ok()) << rs.status();
    first = rs->front().episode_id;
    last = rs->back().episode_id;
    // Equal scores rank by id: the oldest of the newest 1,000 come first.
    EXPECT_EQ(ids(**m), (std::vector<uint64_t>{first + 1, first + 2, first + 3}));
    ASSERT_TRUE((*m)->Forget("a", last).ok());
    EXPECT_EQ(ids(**m), (std::vector<uint64_t>{first, first + 1, first + 2}));
  }
  ASSERT_TRUE(testing::ExecOnStore(dir.path(), {"CREATE INDEX mentions_entity ON mentions(entity, episode)",
                                                 "UPDATE meta SET value = '3' WHERE key = 'schema_version'"}));
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(ids(**m), (std::vector<uint64_t>{first, first + 1, first + 2}));
  auto c = internal::Conn::Open(dir.path() + "/memory.db", false, false);
  ASSERT_TRUE(c.ok());
  auto s = (*c)->Prepare("SELECT (SELECT count(*) FROM sqlite_master WHERE name = 'mentions_entity'),"
                         " (SELECT value FROM meta WHERE key = 'schema_version')");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(*s->Step());
  EXPECT_EQ(s->Int(0), 0);
  EXPECT_EQ(s->Text(1), "4");
}

// Two stores open on one directory stand for two processes writing it: each sees what the
// other wrote before its own next write, so relation weights add up and an entity the other
// made is not made again.
TEST(MemoryStore, AnotherWriterOnTheSameStoreIsNotOverwritten) {
  TempDir dir;
  auto a = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE((*a)->Remember(Ep("n", "a", kT0, "Alma Okafor met Bruno Novak.")).ok());
  ASSERT_TRUE((*b)->Remember(Ep("n", "a", kT0 + 1, "Alma Okafor and Bruno Novak met Carmen Moreau.")).ok());
  ASSERT_TRUE((*a)->Remember(Ep("n", "a", kT0 + 2, "Alma Okafor called Bruno Novak about Carmen Moreau.")).ok());
  auto ents = (*a)->Entities("a", "n");
  ASSERT_TRUE(ents.ok()) << ents.status();
  std::map<std::string, uint64_t> ids;
  for (const Entity& e : *ents) {
    EXPECT_FALSE(ids.count(e.name)) << e.name << " made twice";
    ids[e.name] = e.id;
  }
  ASSERT_TRUE(ids.count("Alma Okafor") && ids.count("Bruno Novak") && ids.count("Carmen Moreau"));
  auto rels = (*a)->Relations("a", ids["Alma Okafor"]);
  ASSERT_TRUE(rels.ok()) << rels.status();
  std::map<uint64_t, double> weight;
  for (const Relation& r : *rels) weight[r.src == ids["Alma Okafor"] ? r.dst : r.src] += r.weight;
  EXPECT_EQ(weight[ids["Bruno Novak"]], 3);
  EXPECT_EQ(weight[ids["Carmen Moreau"]], 2);
}

// Relation weights go to relation_log and are folded into relations every few rows; the
// weights read back are the same whatever the fold size, before and after reopening, and a
// store made with schema version 2 (no relation_log) is upgraded on open.
TEST(MemoryStore, RelationWeightsAreTheSameWhateverTheFoldSize) {
  auto weights = [](MemoryStore& m) {
    std::map<std::tuple<uint64_t, uint64_t, std::string>, double> out;
    auto ents = m.Entities("a", "n");
    EXPECT_TRUE(ents.ok()) << ents.status();
    for (const Entity& e : *ents) {
      auto rels = m.Relations("a", e.id);
      EXPECT_TRUE(rels.ok()) << rels.status();
      for (const Relation& r : *rels) out[{r.src, r.dst, r.predicate}] = r.weight;
    }
    return out;
  };
  auto log_rows = [](const std::string& path) {
    auto c = internal::Conn::Open(path + "/memory.db", false, false);
    EXPECT_TRUE(c.ok());
    auto s = (*c)->Prepare("SELECT count(*) FROM relation_log");
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(s->Step().ok());
    return s->Int(0);
  };
  const char* people[] = {"Alma Okafor", "Bruno Novak", "Carmen Moreau", "Dmitri Petrov", "Elena Varga"};
  std::mt19937_64 rng(11);
  std::vector<Episode> eps;
  for (int i = 0; i < 60; ++i) {
    eps.push_back(Ep("n", "a", kT0 + i * 1000,
                     fmt::format("{} met {} and {}.", people[rng() % 5], people[rng() % 5], people[rng() % 5])));
  }
  TempDir small_dir, big_dir;
  MemoryOptions small = Options();
  small.relation_log_fold_rows = 3;
  std::map<std::tuple<uint64_t, uint64_t, std::string>, double> want, got;
  {
    auto big = MemoryStore::Open(big_dir.path(), Options());
    auto few = MemoryStore::Open(small_dir.path(), small);
    ASSERT_TRUE(big.ok() && few.ok());
    for (size_t i = 0; i < eps.size(); i += 4) {
      std::span<const Episode> part(eps.data() + i, std::min<size_t>(4, eps.size() - i));
      ASSERT_TRUE((*big)->RememberBatch(part).ok());
      ASSERT_TRUE((*few)->RememberBatch(part).ok());
    }
    want = weights(**big);
    got = weights(**few);
  }
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(got, want);
  EXPECT_GT(log_rows(big_dir.path()), 20);  // nothing folded at the default size
  EXPECT_LE(log_rows(small_dir.path()), 20);  // folded along the way
  {
    auto few = MemoryStore::Open(small_dir.path(), small);
    ASSERT_TRUE(few.ok());
    EXPECT_EQ(weights(**few), want);
  }
  // Back to schema version 2 with the log folded in: the store opens, gains relation_log
  // and reads the same weights.
  {
    auto big = MemoryStore::Open(big_dir.path(), small);  // its first write folds
    ASSERT_TRUE(big.ok());
    ASSERT_TRUE((*big)->Remember(Ep("n", "a", kT0 + 100000, "Nobody was there.")).ok());
  }
  EXPECT_EQ(log_rows(big_dir.path()), 0);
  ASSERT_TRUE(testing::ExecOnStore(big_dir.path(), {"DROP TABLE relation_log",
                                                     "UPDATE meta SET value = '2' WHERE key = 'schema_version'"}));
  auto big = MemoryStore::Open(big_dir.path(), Options());
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(weights(**big), want);
  EXPECT_EQ(log_rows(big_dir.path()), 0);
}

TEST(MemoryStore, RecallFusesSignalsAndExplainsWhy) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  std::vector<Episode> eps = {
      Ep("n", "a", kT0 + 1 * kDay, "Priya painted a lighthouse at dawn last summer.", "Priya"),
      Ep("n", "a", kT0 + 2 * kDay, "The weather was rainy all week.", "Tomas"),
      Ep("n", "a", kT0 + 3 * kDay, "Tomas went to the chess club meeting yesterday.", "Tomas"),
      Ep("n", "a", kT0 + 4 * kDay, "We talked about sailing lessons and hiking plans.", "Priya"),
      Ep("n", "a", kT0 + 5 * kDay, "Tomas is comparing electric bikes.", "Tomas"),
  };
  auto rs = (*m)->RememberBatch(eps);
  ASSERT_TRUE(rs.ok()) << rs.status();
  RecallQuery q;
  q.agent = "a";
  q.namespaces = {"n"};
  q.k = 3;
  q.facts = false;
  q.text = "When did Tomas go to the chess club?";
  auto r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->empty());
  EXPECT_EQ((*r)[0].id, (*rs)[2].episode_id);
  const auto& why = (*r)[0].why;
  EXPECT_NE(std::find(why.begin(), why.end(), "bm25#1"), why.end());
  EXPECT_NE(std::find(why.begin(), why.end(), "graph:Tomas"), why.end());
  EXPECT_TRUE(std::any_of(why.begin(), why.end(), [](const std::string& w) { return w.rfind("vector#", 0) == 0; }));
  EXPECT_GT((*r)[0].score, 0);
  for (size_t i = 1; i < r->size(); ++i) EXPECT_LE((*r)[i].score, (*r)[i - 1].score);

  q.text = "lighthouse painting";
  r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].id, (*rs)[0].episode_id);
  // as_of hides what happened later.
  q.as_of_ms = kT0 + 0;
  r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(MemoryStore, RecallReturnsFactsValidAsOf) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0, "Bob lives in Lisbon.")).ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0 + 30 * kDay, "Bob moved to Oslo.")).ok());
  RecallQuery q;
  q.agent = "a";
  q.namespaces = {"n"};
  q.text = "Where does Bob live?";
  q.episodes = false;
  auto now = (*m)->Recall(q);
  ASSERT_TRUE(now.ok()) << now.status();
  ASSERT_FALSE(now->empty());
  EXPECT_EQ((*now)[0].kind, Recalled::Kind::kFact);
  EXPECT_EQ((*now)[0].fact->object, "Oslo");
  q.as_of_ms = kT0 + kDay;
  auto then = (*m)->Recall(q);
  ASSERT_TRUE(then.ok());
  ASSERT_FALSE(then->empty());
  EXPECT_EQ((*then)[0].fact->object, "Lisbon");
  EXPECT_FALSE((*then)[0].provenance.empty());
}

TEST(MemoryStore, EntitiesResolveByAliasPrefixAndKeepRelations) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0, "Melanie met Jonathan at Acme University.")).ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0, "Mel said hello.")).ok());
  auto es = (*m)->Entities("a", "n", "mel");
  ASSERT_TRUE(es.ok());
  ASSERT_EQ(es->size(), 1u);
  EXPECT_EQ((*es)[0].name, "Melanie");
  EXPECT_EQ((*es)[0].mentions, 2u);
  EXPECT_NE(std::find((*es)[0].aliases.begin(), (*es)[0].aliases.end(), "mel"), (*es)[0].aliases.end());
  auto rel = (*m)->Relations("a", (*es)[0].id);
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->size(), 2u);  // mentioned with Jonathan and Acme University
}

TEST(MemoryStore, ConsolidationSummarizesDecaysArchivesAndSparesPinned) {
  TempDir dir;
  ManualClock clock((kT0 + 200 * kDay) * 1000000);
  auto m = MemoryStore::Open(dir.path(), Options(&clock));
  ASSERT_TRUE(m.ok());
  std::vector<Episode> eps = {Ep("n", "a", kT0, "The pump in hall B overheated. Technicians replaced the pump seal."),
                              Ep("n", "a", kT0 + 1000, "The pump seal was ordered from the supplier."),
                              Ep("n", "a", kT0 + kDay / 2, "Lunch was pizza."),
                              Ep("n", "a", kT0 + 199 * kDay, "A fresh note.")};
  auto rs = (*m)->RememberBatch(eps);
  ASSERT_TRUE(rs.ok());
  ASSERT_TRUE((*m)->Pin("a", (*rs)[2].episode_id, true).ok());
  ConsolidateOptions o;
  o.agent = "a";
  o.half_life_days = 30;
  o.archive_below = 0.05;
  o.summary_sentences = 2;
  auto rep = (*m)->Consolidate(o);
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->summaries, 1u);
  EXPECT_EQ(rep->summarized, 2u);  // the pinned one stays out
  EXPECT_GE(rep->archived, 2u);
  auto old = (*m)->GetEpisode("a", (*rs)[0].episode_id);
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->archived);  // archived, not deleted
  EXPECT_LT(old->importance, 0.05);
  auto pinned = (*m)->GetEpisode("a", (*rs)[2].episode_id);
  ASSERT_TRUE(pinned.ok());
  EXPECT_FALSE(pinned->archived);
  EXPECT_DOUBLE_EQ(pinned->importance, 0.5);
  auto fresh = (*m)->GetEpisode("a", (*rs)[3].episode_id);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->archived);
  EXPECT_LT(fresh->importance, 0.5);
  RecallQuery q;
  q.agent = "a";
  q.namespaces = {"n"};
  q.text = "pump seal";
  q.facts = false;
  auto r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->empty());
  // The summary carries the pump sentences; the archived originals are hidden by default.
  EXPECT_EQ((*r)[0].source, "consolidation");
  EXPECT_NE((*r)[0].text.find("pump"), std::string::npos);
  EXPECT_EQ((*r)[0].provenance.size(), 2u);
  for (const Recalled& x : *r) EXPECT_NE(x.id, (*rs)[0].episode_id);
  q.include_archived = true;
  r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::any_of(r->begin(), r->end(), [&](const Recalled& x) { return x.id == (*rs)[0].episode_id; }));
}

TEST(MemoryStore, ForgetRemovesTheEpisodeAndItsOnlyFacts) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  auto r = (*m)->Remember(Ep("n", "a", kT0, "Zed lives in Quito."));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(CurrentFacts(**m, "n", "Zed", "lives_in").size(), 1u);
  EXPECT_TRUE(absl::IsPermissionDenied((*m)->Forget("other", r->episode_id)));
  ASSERT_TRUE((*m)->Forget("a", r->episode_id).ok());
  EXPECT_TRUE(absl::IsNotFound((*m)->GetEpisode("a", r->episode_id).status()));
  EXPECT_TRUE(CurrentFacts(**m, "n", "Zed", "lives_in").empty());
  RecallQuery q{"a", "Quito", 5, std::nullopt, {"n"}};
  auto rec = (*m)->Recall(q);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->empty());
}

TEST(MemoryStore, ReopenKeepsEverythingAndRejectsForeignFiles) {
  TempDir dir;
  uint64_t id = 0;
  {
    auto m = MemoryStore::Open(dir.path(), Options());
    ASSERT_TRUE(m.ok());
    auto r = (*m)->Remember(Ep("n", "a", kT0, "Kim works at Hooli."));
    ASSERT_TRUE(r.ok());
    id = r->episode_id;
  }
  {
    auto m = MemoryStore::Open(dir.path(), Options());
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_TRUE((*m)->GetEpisode("a", id).ok());
    EXPECT_EQ(CurrentFacts(**m, "n", "Kim", "works_at").size(), 1u);
    RecallQuery q{"a", "Hooli", 5, std::nullopt, {"n"}};
    auto rec = (*m)->Recall(q);
    ASSERT_TRUE(rec.ok());
    EXPECT_FALSE(rec->empty());
  }
  // Garbage where the database should be.
  TempDir bad;
  std::filesystem::create_directories(bad.path());
  {
    std::ofstream f(bad.path() + "/memory.db", std::ios::binary);
    f << std::string(8192, 'x');
  }
  auto m = MemoryStore::Open(bad.path(), Options());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(std::string(m.status().message()).find("memory.db"), std::string::npos) << m.status();
  // A SQLite file of something else.
  TempDir other;
  std::filesystem::create_directories(other.path());
  {
    auto c = internal::Conn::Open(other.path() + "/memory.db", true, false);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Exec("CREATE TABLE t(x)").ok());
  }
  m = MemoryStore::Open(other.path(), Options());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(std::string(m.status().message()).find("not a cairn memory store"), std::string::npos) << m.status();
}

// The writing connection's page cache and WAL checkpoint size are what Open was given;
// 0 leaves SQLite's defaults.
TEST(MemoryStore, ConnectionTakesItsCacheAndCheckpointSizes) {
  TempDir dir;
  std::filesystem::create_directories(dir.path());
  auto pragma = [](internal::Conn& c, const char* sql) -> int64_t {
    auto s = c.Prepare(sql);
    EXPECT_TRUE(s.ok());
    auto r = s->Step();
    EXPECT_TRUE(r.ok() && *r);
    return s->Int(0);
  };
  {
    auto c = internal::Conn::Open(dir.path() + "/memory.db", true, false, 0, 8u << 20, 1u << 20);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(pragma(**c, "PRAGMA cache_size"), -8192);
    EXPECT_EQ(pragma(**c, "PRAGMA wal_autocheckpoint"), (1 << 20) / pragma(**c, "PRAGMA page_size"));
  }
  auto c = internal::Conn::Open(dir.path() + "/memory.db", false, false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(pragma(**c, "PRAGMA cache_size"), -2000);
  EXPECT_EQ(pragma(**c, "PRAGMA wal_autocheckpoint"), 1000);
  // A store opened with SQLite's defaults reads and writes the same.
  MemoryOptions o = Options();
  o.write_cache_bytes = 0;
  o.wal_checkpoint_bytes = 0;
  auto m = MemoryStore::Open(dir.path() + "/store", o);
  ASSERT_TRUE(m.ok()) << m.status();
}

TEST(MemoryStore, ConcurrentWritersAndReaders) {
  TempDir dir;
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->CreateNamespace("s", "w0", true).ok());
  for (int w = 1; w < 4; ++w) ASSERT_TRUE((*m)->Grant("s", "w0", fmt::format("w{}", w), true, true).ok());
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; ++w)
    ts.emplace_back([&, w] {
      for (int i = 0; i < 25; ++i) {
        std::string who = fmt::format("w{}", w);
        if (!(*m)->Remember(Ep("s", who, kT0 + i, fmt::format("Sensor{} reads {}", i, w))).ok())
          ++errors;
        RecallQuery q{who, "Sensor reads", 5, std::nullopt, {"s"}};
        if (!(*m)->Recall(q).ok()) ++errors;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ((*m)->EpisodeCount(), 100u);
}

// A batch writes what the same episodes written one by one write: episodes, facts and
// their timelines, entity mention counts and relation weights (summed per transaction).
TEST(MemoryStore, RememberBatchEqualsRememberingOneByOne) {
  std::vector<Episode> eps;
  const char* kText[] = {"Alice works at Acme. Bob works at Acme.", "Alice met Bob and Carol in Berlin.",
                         "Alice works at Initech now.", "Carol lives in Paris. Alice met Carol.",
                         "Bob does not work at Acme anymore.", "Alice met Bob at Initech."};
  for (int i = 0; i < 12; ++i) eps.push_back(Ep("n", i % 2 ? "a" : "b", kT0 + i * kDay, kText[i % 6]));
  TempDir one_dir, batch_dir;
  auto one = MemoryStore::Open(one_dir.path(), Options());
  auto batch = MemoryStore::Open(batch_dir.path(), Options());
  ASSERT_TRUE(one.ok() && batch.ok());
  for (auto* m : {one->get(), batch->get()}) {
    ASSERT_TRUE(m->CreateNamespace("n", "a", true).ok());
    ASSERT_TRUE(m->Grant("n", "a", "b", true, true).ok());
  }
  std::vector<RememberResult> singles;
  for (const Episode& e : eps) {
    auto r = (*one)->Remember(e);
    ASSERT_TRUE(r.ok()) << r.status();
    singles.push_back(*r);
  }
  auto batched = (*batch)->RememberBatch(eps);
  ASSERT_TRUE(batched.ok()) << batched.status();
  ASSERT_EQ(batched->size(), singles.size());
  for (size_t i = 0; i < singles.size(); ++i) {
    EXPECT_EQ((*batched)[i].episode_id, singles[i].episode_id);
    EXPECT_EQ((*batched)[i].entity_ids, singles[i].entity_ids);
    EXPECT_EQ((*batched)[i].fact_ids, singles[i].fact_ids);
    EXPECT_EQ((*batched)[i].closed_fact_ids, singles[i].closed_fact_ids);
  }
  auto ents_one = (*one)->Entities("a", "n");
  auto ents_batch = (*batch)->Entities("a", "n");
  ASSERT_TRUE(ents_one.ok() && ents_batch.ok());
  ASSERT_EQ(ents_one->size(), ents_batch->size());
  for (size_t i = 0; i < ents_one->size(); ++i) {
    EXPECT_EQ((*ents_one)[i].name, (*ents_batch)[i].name);
    EXPECT_EQ((*ents_one)[i].mentions, (*ents_batch)[i].mentions) << (*ents_one)[i].name;
    auto r1 = (*one)->Relations("a", (*ents_one)[i].id);
    auto r2 = (*batch)->Relations("a", (*ents_batch)[i].id);
    ASSERT_TRUE(r1.ok() && r2.ok());
    ASSERT_EQ(r1->size(), r2->size());
    for (size_t j = 0; j < r1->size(); ++j) {
      EXPECT_EQ((*r1)[j].src, (*r2)[j].src);
      EXPECT_EQ((*r1)[j].dst, (*r2)[j].dst);
      EXPECT_EQ((*r1)[j].predicate, (*r2)[j].predicate);
      EXPECT_DOUBLE_EQ((*r1)[j].weight, (*r2)[j].weight);
    }
  }
  FactQuery fq;
  fq.agent = "a";
  fq.ns = "n";
  fq.history = true;
  auto f1 = (*one)->Facts(fq);
  auto f2 = (*batch)->Facts(fq);
  ASSERT_TRUE(f1.ok() && f2.ok());
  ASSERT_EQ(f1->size(), f2->size());
  for (size_t i = 0; i < f1->size(); ++i) {
    EXPECT_EQ((*f1)[i].id, (*f2)[i].id);
    EXPECT_EQ((*f1)[i].valid_to_ms, (*f2)[i].valid_to_ms);
    EXPECT_DOUBLE_EQ((*f1)[i].confidence, (*f2)[i].confidence);
    EXPECT_EQ((*f1)[i].episodes, (*f2)[i].episodes);
  }
  // A batch with a bad episode writes nothing, counters included.
  auto before = (*batch)->Entities("a", "n", "alice");
  ASSERT_TRUE(before.ok() && before->size() == 1u);
  std::vector<Episode> bad = {Ep("n", "a", kT0, "Alice met Dora."), Ep("n", "a", kT0, "")};
  EXPECT_FALSE((*batch)->RememberBatch(bad).ok());
  EXPECT_EQ((*batch)->EpisodeCount(), eps.size());
  auto after = (*batch)->Entities("a", "n", "alice");
  ASSERT_TRUE(after.ok() && after->size() == 1u);
  EXPECT_EQ((*after)[0].mentions, (*before)[0].mentions);
  EXPECT_TRUE((*batch)->Entities("a", "n", "dora")->empty());
  // and the next batch counts from where the committed state is
  ASSERT_TRUE((*batch)->RememberBatch(std::vector<Episode>{Ep("n", "a", kT0, "Alice met Dora.")}).ok());
  EXPECT_EQ((*(*batch)->Entities("a", "n", "alice"))[0].mentions, (*before)[0].mentions + 1);
}

// Runs `write` in a forked child over the store in `dir`: each call writes something and
// returns the id it acknowledges (0 = failed). After `acks` acknowledgements the child is
// killed with SIGKILL. Returns the last acknowledged id, or 0 (with a test failure) when
// the child could not start or stopped early.
uint64_t KillAfterAcks(const std::string& dir, uint64_t acks,
                       const std::function<uint64_t(MemoryStore&, uint64_t)>& write) {
  int fds[2];
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return 0;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    ::close(fds[0]);
    ::close(fds[1]);
    return 0;
  }
  if (pid == 0) {
    ::close(fds[0]);
    auto m = MemoryStore::Open(dir, Options());
    if (!m.ok()) ::_exit(2);
    for (uint64_t i = 0;; ++i) {
      uint64_t acked = write(**m, i);
      if (acked == 0) ::_exit(3);
      if (::write(fds[1], &acked, sizeof(acked)) != sizeof(acked)) ::_exit(4);
    }
  }
  ::close(fds[1]);
  uint64_t last = 0, got = 0, acked;
  while (got < acks && ::read(fds[0], &acked, sizeof(acked)) == sizeof(acked)) {
    last = acked;
    ++got;
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  EXPECT_EQ(got, acks) << "child exited early with status " << status;
  EXPECT_TRUE(WIFSIGNALED(status));
  return got == acks ? last : 0;
}

// kill -9 of a writer: every episode it acknowledged (Remember returned and it said so
// through the pipe) is there after reopening, with its vector.
TEST(MemoryCrash, AcknowledgedEpisodesSurviveKill9) {
  TempDir dir;
  { ASSERT_TRUE(MemoryStore::Open(dir.path(), Options()).ok()); }
  const uint64_t last = KillAfterAcks(dir.path(), 120, [](MemoryStore& m, uint64_t i) -> uint64_t {
    auto r = m.Remember(Ep("n", "a", kT0 + static_cast<int64_t>(i), fmt::format("Robot{} works at Dock{}.", i, i % 7)));
    return r.ok() ? r->episode_id : 0;
  });
  ASSERT_GT(last, 0u);
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  for (uint64_t id = 1; id <= last; ++id) ASSERT_TRUE((*m)->GetEpisode("a", id).ok()) << "acknowledged " << id << " lost";
  // Episode ids start at 1: episode `last` was written in iteration last - 1.
  RecallQuery q{"a", fmt::format("Robot{} works at Dock{}.", last - 1, (last - 1) % 7), 3, std::nullopt, {"n"}};
  q.bm25_weight = 0;
  q.graph_weight = 0;
  q.facts = false;
  auto r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->empty());
  EXPECT_EQ((*r)[0].id, last);  // found by the vector side alone: its vector was rebuilt or kept
}

// The same with batches under synchronous=NORMAL (WAL): a batch acknowledged after its
// commit survives kill -9 whole, and no part of an unacknowledged one is half there.
TEST(MemoryCrash, AcknowledgedBatchesSurviveKill9) {
  TempDir dir;
  { ASSERT_TRUE(MemoryStore::Open(dir.path(), Options()).ok()); }
  constexpr uint64_t kBatch = 16;
  const uint64_t last = KillAfterAcks(dir.path(), 20, [](MemoryStore& m, uint64_t b) -> uint64_t {
    std::vector<Episode> eps;
    for (uint64_t i = 0; i < kBatch; ++i) {
      const uint64_t n = b * kBatch + i;
      eps.push_back(Ep("n", "a", kT0 + static_cast<int64_t>(n), fmt::format("Robot{} works at Dock{}.", n, n % 7)));
    }
    auto r = m.RememberBatch(eps);
    return r.ok() ? r->back().episode_id : 0;
  });
  ASSERT_GT(last, 0u);
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok()) << m.status();
  const size_t count = (*m)->EpisodeCount();
  EXPECT_GE(count, last);
  EXPECT_EQ(count % kBatch, 0u) << "a batch was half written";
  for (uint64_t id = 1; id <= last; ++id)
    ASSERT_TRUE((*m)->GetEpisode("a", id).ok()) << "acknowledged " << id << " lost";
  auto facts = CurrentFacts(**m, "n", fmt::format("Robot{}", last - 1), "works_at");
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].object, fmt::format("Dock{}", (last - 1) % 7));
  RecallQuery q{"a", fmt::format("Robot{} works at Dock{}.", last - 1, (last - 1) % 7), 3, std::nullopt, {"n"}};
  q.bm25_weight = 0;
  q.graph_weight = 0;
  q.facts = false;
  auto r = (*m)->Recall(q);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->empty());
  EXPECT_EQ((*r)[0].id, last);
}

}  // namespace
}  // namespace cairn::memory
