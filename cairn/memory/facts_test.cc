// Facts over time: contradictions close the old value, retractions, the single-valued
// timeline (in any arrival order, across agents, after Forget), and the fact indexes of
// older stores.
#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cairn/base/clock.h"
#include "cairn/base/temp_dir.h"
#include "cairn/memory/internal/sqlite.h"
#include "cairn/memory/memory.h"
#include "cairn/memory/testing.h"

namespace cairn::memory {
namespace {

using testing::CurrentFacts;
using testing::Ep;
using testing::kDay;
using testing::kT0;
using testing::Options;

TEST(MemoryStore, ContradictionClosesTheOldFactAndAsOfSeesIt) {
  TempDir dir;
  ManualClock clock((kT0 + 100 * kDay) * 1000000);
  auto m = MemoryStore::Open(dir.path(), Options(&clock));
  ASSERT_TRUE(m.ok()) << m.status();
  auto r1 = (*m)->Remember(Ep("p", "a", kT0, "Alice works at Initech."));
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_EQ(r1->fact_ids.size(), 1u);
  auto r2 = (*m)->Remember(Ep("p", "a", kT0 + 10 * kDay, "Alice works at Globex now."));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->closed_fact_ids, std::vector<uint64_t>{r1->fact_ids[0]});

  auto now = CurrentFacts(**m, "p", "alice", "works_at");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].object, "Globex");
  EXPECT_EQ(now[0].episodes, std::vector<uint64_t>{r2->episode_id});
  auto then = CurrentFacts(**m, "p", "Alice", "works_at", kT0 + 5 * kDay);
  ASSERT_EQ(then.size(), 1u);
  EXPECT_EQ(then[0].object, "Initech");
  EXPECT_EQ(then[0].valid_to_ms, kT0 + 10 * kDay);
  EXPECT_EQ(then[0].superseded_at_ms, kT0 + 100 * kDay);
  EXPECT_EQ(then[0].superseded_by, now[0].id);
  EXPECT_TRUE(CurrentFacts(**m, "p", "Alice", "works_at", kT0 - 1).empty());

  FactQuery h;
  h.agent = "a";
  h.ns = "p";
  h.history = true;
  auto all = (*m)->Facts(h);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);  // nothing deleted

  // Confirmation merges provenance; a negation closes without a replacement.
  auto r3 = (*m)->Remember(Ep("p", "a", kT0 + 11 * kDay, "Alice works at Globex."));
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->fact_ids, std::vector<uint64_t>{now[0].id});
  auto r4 = (*m)->Remember(Ep("p", "a", kT0 + 20 * kDay, "Alice no longer works at Globex."));
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->closed_fact_ids, std::vector<uint64_t>{now[0].id});
  EXPECT_TRUE(CurrentFacts(**m, "p", "Alice", "works_at").empty());
  EXPECT_EQ(CurrentFacts(**m, "p", "Alice", "works_at", kT0 + 15 * kDay).size(), 1u);

  // Multi-valued predicates accumulate.
  ASSERT_TRUE((*m)->Remember(Ep("p", "a", kT0, "Alice likes jazz. Alice likes chess.")).ok());
  EXPECT_EQ(CurrentFacts(**m, "p", "Alice", "likes").size(), 2u);
}

// Taking a value back ends it; it does not make the value before it current again, then or
// when a later value arrives.
TEST(MemoryStore, ARetractedValueStaysInTheTimeline) {
  TempDir dir;
  ManualClock clock((kT0 + 100 * kDay) * 1000000);
  auto m = MemoryStore::Open(dir.path(), Options(&clock));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE((*m)->Remember(Ep("p", "a", kT0, "Alice works at Initech.")).ok());
  ASSERT_TRUE((*m)->Remember(Ep("p", "a", kT0 + 10 * kDay, "Alice works at Globex now.")).ok());
  ASSERT_TRUE((*m)->Remember(Ep("p", "a", kT0 + 20 * kDay, "Alice no longer works at Globex.")).ok());
  EXPECT_TRUE(CurrentFacts(**m, "p", "Alice", "works_at").empty());
  auto r = (*m)->Remember(Ep("p", "a", kT0 + 30 * kDay, "Alice works at Acme."));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->closed_fact_ids.empty());
  auto at = [&](int64_t day) {
    std::vector<Fact> f = CurrentFacts(**m, "p", "Alice", "works_at", kT0 + day * kDay);
    return f.size() == 1 ? f[0].object : fmt::format("{} facts", f.size());
  };
  EXPECT_EQ(at(5), "Initech");
  EXPECT_EQ(at(15), "Globex");
  EXPECT_EQ(at(25), "0 facts");
  EXPECT_EQ(at(35), "Acme");
  // A value that arrives late, dated between two others, takes its place between them.
  ASSERT_TRUE((*m)->Remember(Ep("p", "a", kT0 + 5 * kDay, "Alice works at Hooli.")).ok());
  EXPECT_EQ(at(2), "Initech");
  EXPECT_EQ(at(7), "Hooli");
  EXPECT_EQ(at(15), "Globex");
  EXPECT_EQ(at(35), "Acme");
}

// Whatever order versions and negations arrive in, every version that is not retracted ends
// where the next one in (valid_from, hlc, author, id) order begins, and only the last can be
// current. Checked against the rows themselves after each write.
TEST(MemoryStore, TimelineLinksEveryVersionToTheNext) {
  TempDir dir;
  ManualClock clock((kT0 + 1000 * kDay) * 1000000);
  auto m = MemoryStore::Open(dir.path(), Options(&clock));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->CreateNamespace("team", "x", true).ok());
  for (const char* a : {"y", "z"}) ASSERT_TRUE((*m)->Grant("team", "x", a, true, true).ok());
  auto c = internal::Conn::Open(dir.path() + "/memory.db", false, false);
  ASSERT_TRUE(c.ok());
  std::mt19937_64 rng(7);
  const char* authors[] = {"x", "y", "z"};
  const char* places[] = {"Rack A", "Rack B", "Rack C", "Rack D"};
  int retracted = 0, late = 0;
  std::map<std::string, int64_t> newest;  // subject -> latest valid_from written so far
  for (int i = 0; i < 300; ++i) {
    FactInput f;
    f.ns = "team";
    f.author = authors[rng() % 3];
    f.subject = i % 2 ? "Server7" : "Server9";
    f.predicate = "lives_in";
    f.object = places[rng() % 4];
    f.negated = rng() % 6 == 0;
    f.valid_from_ms = kT0 + static_cast<int64_t>(rng() % 40) * kDay;  // ties and late arrivals
    f.hlc = rng() % 2 ? HlcPack(5000 + rng() % 3, 0) : 0;
    (void)(*m)->AddFact(f);  // a negation with nothing to close is an error; fine here
    late += newest.count(f.subject) && *f.valid_from_ms < newest[f.subject];
    newest[f.subject] = std::max(newest[f.subject], *f.valid_from_ms);
    // Each subject's versions in timeline order.
    auto s = (*c)->Prepare("SELECT subject, id, valid_from, valid_to, superseded_by, retracted FROM facts"
                           " WHERE predicate = 'lives_in' ORDER BY subject, valid_from, hlc, author, id");
    ASSERT_TRUE(s.ok());
    struct Row {
      int64_t subject, id, from;
      std::optional<int64_t> to;
      int64_t by;
      bool retracted;
    };
    std::vector<Row> rows;
    for (auto r = s->Step(); r.ok() && *r; r = s->Step()) {
      rows.push_back({s->Int(0), s->Int(1), s->Int(2), std::nullopt, s->Int(4), s->Int(5) != 0});
      if (!s->IsNull(3)) rows.back().to = s->Int(3);
    }
    retracted = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      retracted += rows[k].retracted;
      if (rows[k].retracted) continue;
      const std::string where = fmt::format("write {}, fact {}", i, rows[k].id);
      if (k + 1 < rows.size() && rows[k + 1].subject == rows[k].subject) {
        EXPECT_EQ(rows[k].to, rows[k + 1].from) << where;
        EXPECT_EQ(rows[k].by, rows[k + 1].id) << where;
      } else {
        EXPECT_FALSE(rows[k].to.has_value()) << where;
        EXPECT_EQ(rows[k].by, 0) << where;
      }
    }
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(retracted, 5);  // the sequence exercised negations
  EXPECT_GT(late, 50);      // and versions dated before one already written
}

TEST(MemoryStore, ConflictingSharedWritesResolveTheSameInAnyOrder) {
  std::vector<std::string> outcomes;
  for (int order = 0; order < 2; ++order) {
    TempDir dir;
    auto m = MemoryStore::Open(dir.path(), Options());
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE((*m)->CreateNamespace("team", "owner", true).ok());
    ASSERT_TRUE((*m)->Grant("team", "owner", "x", true, true).ok());
    ASSERT_TRUE((*m)->Grant("team", "owner", "y", true, true).ok());
    // Two agents state different values for the same moment; y's stamp is later.
    FactInput fx{"team", "x", "Server7", "lives_in", "Rack A", false, false, kT0, 0.9, HlcPack(5000, 1)};
    FactInput fy{"team", "y", "Server7", "lives_in", "Rack B", false, false, kT0, 0.9, HlcPack(5000, 2)};
    if (order == 0) {
      ASSERT_TRUE((*m)->AddFact(fx).ok());
      ASSERT_TRUE((*m)->AddFact(fy).ok());
    } else {
      ASSERT_TRUE((*m)->AddFact(fy).ok());
      ASSERT_TRUE((*m)->AddFact(fx).ok());
    }
    FactQuery q{"owner", "team", "Server7", "lives_in", std::nullopt, false, 100};
    auto cur = (*m)->Facts(q);
    ASSERT_TRUE(cur.ok());
    ASSERT_EQ(cur->size(), 1u);
    EXPECT_EQ((*cur)[0].author, "y");
    q.history = true;
    auto hist = (*m)->Facts(q);
    ASSERT_TRUE(hist.ok());
    ASSERT_EQ(hist->size(), 2u);  // both versions kept
    for (const Fact& f : *hist)
      if (f.author == "x") {
        EXPECT_EQ(f.valid_to_ms, kT0);  // an empty validity: it never held
        EXPECT_TRUE(f.superseded_at_ms.has_value());
      }
    outcomes.push_back((*cur)[0].object);
  }
  EXPECT_EQ(outcomes[0], outcomes[1]);
}

// Forgetting the episode behind a version in the middle of a timeline relinks the versions
// around it; a retracted version stays where it was.
TEST(MemoryStore, ForgetRelinksTheTimeline) {
  TempDir dir;
  ManualClock clock((kT0 + 100 * kDay) * 1000000);
  auto m = MemoryStore::Open(dir.path(), Options(&clock));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0, "Zed works at Initech.")).ok());
  auto mid = (*m)->Remember(Ep("n", "a", kT0 + 10 * kDay, "Zed works at Globex."));
  ASSERT_TRUE(mid.ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0 + 20 * kDay, "Zed works at Acme.")).ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0 + 30 * kDay, "Zed no longer works at Acme.")).ok());
  ASSERT_TRUE((*m)->Remember(Ep("n", "a", kT0 + 40 * kDay, "Zed works at Hooli.")).ok());
  ASSERT_TRUE((*m)->Forget("a", mid->episode_id).ok());
  auto at = [&](int64_t day) {
    std::vector<Fact> f = CurrentFacts(**m, "n", "Zed", "works_at", kT0 + day * kDay);
    return f.size() == 1 ? f[0].object : fmt::format("{} facts", f.size());
  };
  EXPECT_EQ(at(5), "Initech");
  EXPECT_EQ(at(15), "Initech");  // Globex is gone: Initech holds until Acme
  EXPECT_EQ(at(25), "Acme");
  EXPECT_EQ(at(35), "0 facts");  // Acme was taken back
  EXPECT_EQ(at(45), "Hooli");
  std::vector<Fact> initech = CurrentFacts(**m, "n", "Zed", "works_at", kT0);
  ASSERT_EQ(initech.size(), 1u);
  EXPECT_EQ(initech[0].valid_to_ms, kT0 + 20 * kDay);
}

// A store made with an older fact index (facts_sp, facts_spo) gets facts_spov and
// facts_timeline in its place on open, and its facts stay readable and writable.
TEST(MemoryStore, OpenReplacesTheOlderFactIndex) {
  TempDir dir;
  auto indexes = [&] {
    auto c = internal::Conn::Open(dir.path() + "/memory.db", false, false);
    EXPECT_TRUE(c.ok());
    std::set<std::string> out;
    auto s = (*c)->Prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'facts'");
    EXPECT_TRUE(s.ok());
    for (auto r = s->Step(); r.ok() && *r; r = s->Step()) out.insert(s->Text(0));
    return out;
  };
  {
    auto m = MemoryStore::Open(dir.path(), Options());
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE((*m)->Remember(Ep("ns", "a", kT0, "Alma Okafor works at Kalo Labs.")).ok());
  }
  EXPECT_TRUE(indexes().count("facts_spov"));
  EXPECT_TRUE(indexes().count("facts_timeline"));
  ASSERT_TRUE(testing::ExecOnStore(dir.path(), {"DROP INDEX facts_spov", "DROP INDEX facts_timeline",
                                                 "CREATE INDEX facts_sp ON facts(ns, subject, predicate)",
                                                 "CREATE INDEX facts_spo ON facts(ns, subject, predicate, object_key)"}));
  {
    auto m = MemoryStore::Open(dir.path(), Options());
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE((*m)->Remember(Ep("ns", "a", kT0 + kDay, "Alma Okafor works at Lumo Bank.")).ok());
  }
  const std::set<std::string> after = indexes();
  EXPECT_TRUE(after.count("facts_spov"));
  EXPECT_TRUE(after.count("facts_timeline"));
  EXPECT_FALSE(after.count("facts_sp"));
  EXPECT_FALSE(after.count("facts_spo"));
  auto m = MemoryStore::Open(dir.path(), Options());
  ASSERT_TRUE(m.ok());
  std::vector<Fact> now = CurrentFacts(**m, "ns", "Alma Okafor", "works_at");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].object, "Lumo Bank");
}

}  // namespace
}  // namespace cairn::memory
