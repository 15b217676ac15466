#include "cairn/memory/extractor.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "cairn/base/clock.h"
#include "cairn/memory/hlc.h"

namespace cairn::memory {
namespace {

bool HasEntity(const Extraction& x, const std::string& name, const std::string& type = "") {
  return std::any_of(x.entities.begin(), x.entities.end(),
                     [&](const ExtractedEntity& e) { return e.name == name && (type.empty() || e.type == type); });
}

const ExtractedFact* FindFact(const Extraction& x, const std::string& predicate) {
  for (const auto& f : x.facts)
    if (f.predicate == predicate) return &f;
  return nullptr;
}

TEST(RuleExtractor, NamesTypesAndPatterns) {
  RuleExtractor ex;
  ExtractContext ctx;
  auto x = ex.Extract("Yesterday Alice Smith met Bob at Acme Corp in Paris. Please mail bob@example.com or see "
                      "https://example.com on 8 May 2023.",
                      ctx);
  ASSERT_TRUE(x.ok());
  EXPECT_TRUE(HasEntity(*x, "Alice Smith", "person"));
  EXPECT_TRUE(HasEntity(*x, "Bob", "person"));
  EXPECT_TRUE(HasEntity(*x, "Acme Corp", "organization"));
  EXPECT_TRUE(HasEntity(*x, "Paris", "place"));
  EXPECT_TRUE(HasEntity(*x, "bob@example.com", "email"));
  EXPECT_TRUE(HasEntity(*x, "https://example.com", "url"));
  EXPECT_TRUE(HasEntity(*x, "8 May 2023", "date"));
  // A sentence-initial common word is not a name.
  EXPECT_FALSE(HasEntity(*x, "Yesterday Alice Smith"));
  EXPECT_FALSE(HasEntity(*x, "Please"));
}

TEST(RuleExtractor, FactsWithSpeakerAndNegation) {
  RuleExtractor ex;
  ExtractContext ctx;
  ctx.speaker = "Carol";
  auto x = ex.Extract("I work at Initech, and I'm a nurse. Dave lives in Berlin. Dave doesn't like jazz.", ctx);
  ASSERT_TRUE(x.ok());
  const ExtractedFact* w = FindFact(*x, "works_at");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->subject, "Carol");
  EXPECT_EQ(w->object, "Initech");
  EXPECT_TRUE(w->object_is_entity);
  EXPECT_FALSE(w->negated);
  const ExtractedFact* is = FindFact(*x, "is");
  ASSERT_NE(is, nullptr);
  EXPECT_EQ(is->object, "nurse");
  const ExtractedFact* l = FindFact(*x, "lives_in");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->subject, "Dave");
  EXPECT_EQ(l->object, "Berlin");
  const ExtractedFact* likes = FindFact(*x, "likes");
  ASSERT_NE(likes, nullptr);
  EXPECT_TRUE(likes->negated);
  EXPECT_EQ(likes->object, "jazz");
  EXPECT_FALSE(likes->object_is_entity);

  auto y = ex.Extract("Dave no longer works at Initech.", ctx);
  ASSERT_TRUE(y.ok());
  ASSERT_NE(FindFact(*y, "works_at"), nullptr);
  EXPECT_TRUE(FindFact(*y, "works_at")->negated);
  // Without a speaker, first-person sentences state nothing.
  auto z = ex.Extract("I work at Initech.", ExtractContext{});
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(FindFact(*z, "works_at"), nullptr);
}

TEST(RuleExtractor, KnownAliasesAreFoundLowerCase) {
  RuleExtractor ex;
  ExtractContext ctx;
  ctx.is_known_alias = [](const std::string& s) { return s == "project kestrel"; };
  auto x = ex.Extract("we shipped project kestrel today", ctx);
  ASSERT_TRUE(x.ok());
  EXPECT_TRUE(HasEntity(*x, "project kestrel"));
}

TEST(RuleExtractor, OddInputNeverCrashes) {
  RuleExtractor ex;
  ExtractContext ctx;
  ctx.speaker = "S";
  for (const std::string& s : std::vector<std::string>{"", ".", "I", "I am", "X is a", "'''", "\xE2\x80\x99s", "May", "May ,", "A B C D E F G H",
                        std::string(1000, 'A'), std::string("Caf\xC3\xA9 Noir lives in Z\xC3\xBCrich")}) {
    EXPECT_TRUE(ex.Extract(s, ctx).ok()) << s;
  }
}

TEST(NormalizeName, LowerCasesAndCollapsesSpace) {
  EXPECT_EQ(NormalizeName("  Alice   SMITH "), "alice smith");
  EXPECT_EQ(NormalizeName(""), "");
  EXPECT_TRUE(IsSingleValued("works_at"));
  EXPECT_FALSE(IsSingleValued("likes"));
}

TEST(HybridClock, MonotonicWhenWallClockStallsOrStepsBack) {
  ManualClock wall(5'000'000'000);  // 5000 ms
  HybridClock hlc(wall);
  uint64_t a = hlc.Now();
  EXPECT_EQ(HlcMillis(a), 5000);
  uint64_t b = hlc.Now();
  EXPECT_GT(b, a);
  wall.Set(1'000'000'000);  // back to 1000 ms
  uint64_t c = hlc.Now();
  EXPECT_GT(c, b);
  EXPECT_EQ(HlcMillis(c), 5000);
  // A stamp from a node ahead pulls the clock forward.
  uint64_t remote = HlcPack(9000, 7);
  uint64_t d = hlc.Observe(remote);
  EXPECT_GT(d, remote);
  wall.Set(20'000'000'000);
  EXPECT_EQ(hlc.Now(), HlcPack(20000, 0));
}

}  // namespace
}  // namespace cairn::memory
