#include "bench/edge_workload.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::bench {
namespace {

TEST(RocAuc, PerfectReversedAndTied) {
  const std::vector<uint8_t> labels = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<double>{0.1, 0.2, 0.8, 0.9}, labels), 1.0);
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<double>{0.9, 0.8, 0.2, 0.1}, labels), 0.0);
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<double>{0.5, 0.5, 0.5, 0.5}, labels), 0.5);
}

TEST(RocAuc, HandComputedWithTies) {
  // Positives 0.8, 0.5, 0.3; negatives 0.5, 0.2, 0.1, 0.9.
  // Pairs won by the positive: 0.8 beats 3 (0.5, 0.2, 0.1); 0.5 beats 2 and ties 1
  // (0.5); 0.3 beats 2. U = 3 + 2.5 + 2 = 7.5 of 3 * 4 = 12 pairs.
  const std::vector<double> scores = {0.8, 0.5, 0.5, 0.2, 0.3, 0.1, 0.9};
  const std::vector<uint8_t> labels = {1, 1, 0, 0, 1, 0, 0};
  EXPECT_DOUBLE_EQ(RocAuc(scores, labels), 7.5 / 12);
}

TEST(RocAuc, OneClassIsNaNAndNaNScoresRankLowest) {
  EXPECT_TRUE(std::isnan(RocAuc(std::vector<double>{0.1, 0.2}, std::vector<uint8_t>{1, 1})));
  EXPECT_TRUE(std::isnan(RocAuc(std::vector<double>{}, std::vector<uint8_t>{})));
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<double>{NAN, 0.3}, std::vector<uint8_t>{0, 1}), 1.0);
}

TEST(EdgeStream, DeterministicLabelledAndOrdered) {
  EdgeStreamOptions o{.edges = 200'000, .seed = 7, .nodes = 5000, .rate = 2000, .burst_probability = 0.5};
  const std::vector<EdgeRecord> a = GenerateEdgeStream(o);
  const std::vector<EdgeRecord> b = GenerateEdgeStream(o);
  ASSERT_GE(a.size(), o.edges);
  ASSERT_EQ(a.size(), b.size());
  int kinds[4] = {};
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].src, b[i].src);
    ASSERT_EQ(a[i].dst, b[i].dst);
    ASSERT_EQ(a[i].time_ms, b[i].time_ms);
    ASSERT_EQ(a[i].kind, b[i].kind);
    if (i > 0) {
      ASSERT_GE(a[i].time_ms, a[i - 1].time_ms);
    }
    ++kinds[static_cast<int>(a[i].kind)];
    // No bursts in the quiet first ticks.
    if (a[i].time_ms < o.start_ms + o.quiet_ticks * 1000) {
      ASSERT_FALSE(a[i].anomalous());
    }
  }
  for (int k = 0; k < 4; ++k) EXPECT_GT(kinds[k], 0) << k;
  EXPECT_LT(kinds[1] + kinds[2] + kinds[3], static_cast<int>(a.size() / 2));
  o.seed = 8;
  const std::vector<EdgeRecord> c = GenerateEdgeStream(o);
  size_t same = 0;
  for (size_t i = 0; i < std::min(a.size(), c.size()); ++i) same += a[i].src == c[i].src && a[i].dst == c[i].dst;
  EXPECT_LT(same, a.size() / 10);
}

TEST(EdgeStream, DetectorMeetsTheAccuracyTarget) {
  EdgeBenchOptions o;
  o.stream.edges = 400'000;
  o.stream.rate = 8'000;
  o.speed = false;
  auto rep = RunEdgeBench(o);
  ASSERT_TRUE(rep.ok()) << rep.status();
  ASSERT_EQ(rep->results.size(), 3u);
  EXPECT_GE(rep->results[0].auc, 0.95);
  EXPECT_GT(rep->results[0].bytes, 0);
  // More accurate than both references on the same stream.
  EXPECT_EQ(rep->results[2].name, "MIDAS-F (reference)");
  EXPECT_GT(rep->results[0].auc, rep->results[1].auc);
  EXPECT_GT(rep->results[0].auc, rep->results[2].auc);
}

TEST(EdgeStream, WritesCsv) {
  const std::vector<EdgeRecord> recs = {{1, 2, 1000, EdgeKind::kNormal}, {3, 4, 2000, EdgeKind::kFanIn}};
  const std::string path = testing::TempDir() + "/edges.csv";
  ASSERT_TRUE(WriteEdgeCsv(recs, path).ok());
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "src,dst,time,label\n1,2,1000,0\n3,4,2000,1\n");
  std::remove(path.c_str());
  EXPECT_FALSE(WriteEdgeCsv(recs, "/nonexistent-dir/x.csv").ok());
}

}  // namespace
}  // namespace cairn::bench
