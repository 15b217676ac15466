#include "cairn/memory/locomo.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace cairn::memory {
namespace {

using V = std::vector<std::string>;

TEST(NormalizeDiaIds, RepairsMalformedIds) {
  EXPECT_EQ(NormalizeDiaIds("D1:3"), V{"D1:3"});
  EXPECT_EQ(NormalizeDiaIds("D8:6; D9:17"), (V{"D8:6", "D9:17"}));
  EXPECT_EQ(NormalizeDiaIds("D:11:26"), V{"D11:26"});
  EXPECT_EQ(NormalizeDiaIds("D30:05"), V{"D30:5"});
  EXPECT_EQ(NormalizeDiaIds(" d3:4 "), V{"D3:4"});
  EXPECT_EQ(NormalizeDiaIds("D2:1,D2:1"), V{"D2:1"});
  EXPECT_TRUE(NormalizeDiaIds("D").empty());
  EXPECT_TRUE(NormalizeDiaIds("").empty());
  EXPECT_TRUE(NormalizeDiaIds("D5").empty());
  EXPECT_TRUE(NormalizeDiaIds("X1:2").empty());
  EXPECT_TRUE(NormalizeDiaIds("D1:2:3").empty());
  EXPECT_TRUE(NormalizeDiaIds("D1x:2").empty());
}

TEST(ParseLocomoDate, ReadsSessionDates) {
  auto t = ParseLocomoDate("1:56 pm on 8 May, 2023");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, 1683554160000);  // 2023-05-08T13:56:00Z
  auto midnight = ParseLocomoDate("12:05 am on 1 January, 2024");
  ASSERT_TRUE(midnight.ok());
  EXPECT_EQ(*midnight, 1704067500000);
  EXPECT_FALSE(ParseLocomoDate("yesterday").ok());
  EXPECT_FALSE(ParseLocomoDate("25:00 pm on 8 May, 2023").ok());
}

// A hand-written conversation in the benchmark's format.
constexpr char kFixture[] = R"([
 {"sample_id": "t-1",
  "conversation": {
   "speaker_a": "Nora", "speaker_b": "Theo",
   "session_1_date_time": "9:00 am on 3 March, 2024",
   "session_1": [
     {"speaker": "Nora", "dia_id": "D1:1", "text": "Hi Theo! I adopted a puppy named Biscuit last weekend."},
     {"speaker": "Theo", "dia_id": "D1:2", "text": "Congrats! I started pottery classes at the community center."},
     {"speaker": "Nora", "dia_id": "D1:3", "text": "Biscuit loves chasing tennis balls in the park."}
   ],
   "session_2_date_time": "6:30 pm on 20 April, 2024",
   "session_2": [
     {"speaker": "Theo", "dia_id": "D2:1", "text": "My pottery teacher Ingrid says my bowls are improving.",
      "blip_caption": "a photo of a blue ceramic bowl"},
     {"speaker": "Nora", "dia_id": "D2:2", "text": "I ran the Lisbon half marathon on Sunday."},
     {"speaker": "Theo", "dia_id": "D2:3", "text": "That is amazing, what was your time?"}
   ]},
  "qa": [
   {"question": "What is the name of Nora's puppy?", "answer": "Biscuit", "evidence": ["D1:1"], "category": 4},
   {"question": "Who teaches Theo pottery?", "answer": "Ingrid", "evidence": ["D2:1; D1:2"], "category": 1},
   {"question": "When did Nora run the half marathon?", "answer": "April 2024", "evidence": ["D:2:2"], "category": 2},
   {"question": "What does Biscuit like?", "answer": "tennis balls", "evidence": ["D01:03"], "category": 3},
   {"question": "What did Theo say about marathons?", "evidence": ["D2:3"], "category": 5,
    "adversarial_answer": "nothing"},
   {"question": "What color is the bowl?", "answer": "blue", "evidence": [], "category": 4},
   {"question": "Unscorable", "answer": "x", "evidence": ["D"], "category": 2}
  ]}
])";

TEST(Locomo, ParsesAndScoresAFixture) {
  auto samples = ParseLocomo(kFixture);
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 1u);
  const LocomoSample& s = (*samples)[0];
  ASSERT_EQ(s.sessions.size(), 2u);
  EXPECT_EQ(s.sessions[1].turns[0].text,
            "My pottery teacher Ingrid says my bowls are improving. [shares a photo: a photo of a blue ceramic bowl]");
  ASSERT_EQ(s.qa.size(), 7u);
  EXPECT_EQ(s.qa[1].evidence, (V{"D2:1", "D1:2"}));
  EXPECT_EQ(s.qa[3].evidence, V{"D1:3"});
  EXPECT_TRUE(s.qa[6].evidence.empty());

  LocomoOptions o;
  o.work_dir = (std::filesystem::temp_directory_path() / fmt::format("cairn_locomo_test_{}", ::getpid())).string();
  o.memory.dim = 64;
  o.memory.sync_full = false;
  auto r = RunLocomo(*samples, o);
  if (std::getenv("CAIRN_LOCOMO_KEEP") == nullptr) std::filesystem::remove_all(o.work_dir);
  else std::printf("stores kept in %s\n", o.work_dir.c_str());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->episodes, 6u);
  ASSERT_EQ(r->categories.size(), 5u);
  // Six episodes: every evidence id is within the first 20.
  EXPECT_DOUBLE_EQ(r->overall.recall.at(20), 1.0);
  EXPECT_EQ(r->overall.questions, 4u);
  EXPECT_EQ(r->overall.skipped, 2u);  // the empty and the unscorable one
  EXPECT_EQ(r->categories[4].category, 5);
  EXPECT_EQ(r->categories[4].questions, 1u);
  EXPECT_EQ(r->categories[1].skipped, 1u);
  // The single-hop question finds its turn first or nearly so.
  EXPECT_DOUBLE_EQ(r->categories[3].recall.at(5), 1.0);
  EXPECT_GE(r->overall.recall.at(5), 0.75);
}

TEST(Locomo, RejectsBadFiles) {
  EXPECT_FALSE(ParseLocomo("{").ok());
  EXPECT_FALSE(ParseLocomo("{}").ok());
  EXPECT_FALSE(ParseLocomo(R"([{"qa": []}])").ok());
  EXPECT_FALSE(ParseLocomo(R"([{"conversation": {"session_1": [{"text": "x", "dia_id": "D1:1"}]}}])").ok());
  EXPECT_FALSE(ParseLocomo(R"([{"conversation": {}, "qa": [{"question": "q"}]}])").ok());
  EXPECT_TRUE(ParseLocomo("[]").ok());
}

// The full benchmark when CAIRN_LOCOMO_DATA names a LoCoMo file (skipped otherwise):
// prints the per-category table that `cairn eval locomo` prints.
TEST(Locomo, FullFileFromEnvironment) {
  const char* path = std::getenv("CAIRN_LOCOMO_DATA");
  if (path == nullptr) GTEST_SKIP() << "set CAIRN_LOCOMO_DATA to a LoCoMo JSON file";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  auto samples = ParseLocomo(ss.str());
  ASSERT_TRUE(samples.ok()) << samples.status();
  LocomoOptions o;
  o.work_dir = (std::filesystem::temp_directory_path() / fmt::format("cairn_locomo_full_{}", ::getpid())).string();
  o.memory.sync_full = false;
  if (const char* w = std::getenv("CAIRN_LOCOMO_GRAPH_WEIGHT")) o.recall.graph_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_BM25_WEIGHT")) o.recall.bm25_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_VECTOR_WEIGHT")) o.recall.vector_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_RECENCY_WEIGHT")) o.recall.recency_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_IMPORTANCE_WEIGHT")) o.recall.importance_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_CONTEXT_WEIGHT")) o.recall.context_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_DATE_WEIGHT")) o.recall.date_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_SPEAKER_BOOST")) o.recall.speaker_boost = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_FEEDBACK_TERMS")) o.recall.feedback_terms = std::atoi(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_FEEDBACK_WEIGHT")) o.recall.feedback_weight = std::atof(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_FEEDBACK_DOCS")) o.recall.feedback_docs = std::atoi(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_NEXT_WEIGHTS")) {  // e.g. "0.25,0.1"; "" turns it off
    o.recall.next_weights.clear();
    std::stringstream list(w);
    for (std::string v; std::getline(list, v, ',');)
      if (!v.empty()) o.recall.next_weights.push_back(std::atof(v.c_str()));
  }
  if (const char* w = std::getenv("CAIRN_LOCOMO_CONTEXT_EPISODES")) o.memory.context_episodes = std::atoi(w);
  if (const char* w = std::getenv("CAIRN_LOCOMO_DIM")) o.memory.dim = std::atoi(w);
  o.speaker_prefix = std::getenv("CAIRN_LOCOMO_NO_SPEAKER_PREFIX") == nullptr;
  // CAIRN_LOCOMO_DUMP=FILE writes one line per question: category, question, sources found.
  std::ofstream dump;
  if (const char* d = std::getenv("CAIRN_LOCOMO_DUMP")) {
    dump.open(d);
    o.on_answer = [&dump](const LocomoQuestion& q, const std::vector<Recalled>& got) {
      dump << q.category << '\t' << q.question << '\t';
      for (const Recalled& x : got) dump << x.source << ' ';
      dump << '\n';
    };
  }
  auto r = RunLocomo(*samples, o);
  if (std::getenv("CAIRN_LOCOMO_KEEP") == nullptr) std::filesystem::remove_all(o.work_dir);
  else std::printf("stores kept in %s\n", o.work_dir.c_str());
  ASSERT_TRUE(r.ok()) << r.status();
  auto print = [](const LocomoCategory& c) {
    std::printf("category %d: %zu questions, %zu skipped, recall@5 %.4f @10 %.4f @20 %.4f\n", c.category, c.questions,
                c.skipped, c.recall.at(5), c.recall.at(10), c.recall.at(20));
  };
  for (const auto& c : r->categories) print(c);
  print(r->overall);
  std::printf("%zu episodes in %.2f s; recall p50 %.2f ms p99 %.2f ms\n", r->episodes, r->ingest_seconds,
              r->query_p50_ms, r->query_p99_ms);
}

}  // namespace
}  // namespace cairn::memory
