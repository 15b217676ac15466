#include "cairn/detect/edges.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/base/random.h"

namespace cairn::detect {
namespace {

// Steady background traffic: `per_second` records per second among `nodes`
// nodes, each source with a few usual destinations, spread over each second.
class Traffic {
 public:
  Traffic(int nodes, int per_second, uint64_t seed) : nodes_(nodes), per_second_(per_second), rng_(seed) {}

  // Feeds `seconds` seconds starting at second `t0`; returns the scores.
  std::vector<Scored> Run(const EdgeDetector& d, EdgeState& st, int64_t t0, int seconds) {
    std::vector<Scored> out;
    for (int64_t s = t0; s < t0 + seconds; ++s) {
      for (int i = 0; i < per_second_; ++i) {
        const uint64_t src = rng_.Next() % nodes_;
        const uint64_t dst = (src * 7 + rng_.Next() % 4) % nodes_;
        out.push_back(d.UpdateHashed(st, d.HashNode(src), d.HashNode(dst), s * 1000 + i * 1000 / per_second_));
      }
    }
    return out;
  }

 private:
  uint64_t nodes_;
  int per_second_;
  SplitMix64 rng_;
};

std::string Name(uint64_t n) { return "10.0." + std::to_string(n / 256) + "." + std::to_string(n % 256); }

TEST(EdgeDetector, EdgeBurstScoresHighAndIsExplained) {
  const EdgeDetector d;
  EdgeState st;
  Traffic t(500, 1000, 1);
  t.Run(d, st, 0, 60);
  // Node 3 usually sends to 21..24 about twice a second; now 300 records to 22 in one second.
  const std::string src = Name(3), dst = Name(22);
  Scored last;
  std::string reason;
  for (int i = 0; i < 300; ++i) {
    const Observation obs{.key = src, .item = dst, .time = 60'000 + i * 3};
    last = d.Update(st, obs);
    if (i == 299) reason = d.Explain(st, obs, last);
  }
  EXPECT_GE(last.score, ThresholdFor(1e-4));
  EXPECT_GT(last.raw, 100);
  EXPECT_NE(reason.find("edge " + src + " -> " + dst), std::string::npos) << reason;
  EXPECT_NE(reason.find("in the last 2 s"), std::string::npos) << reason;
}

TEST(EdgeDetector, SourceFanOutAndDestinationFanInFireTheirNodeSketch) {
  const EdgeDetector d;
  EdgeState st;
  Traffic t(500, 1000, 2);
  t.Run(d, st, 0, 60);
  // A scan: one quiet source to 400 distinct destinations; every edge is new.
  Scored s;
  Observation obs;
  std::vector<std::string> names;
  for (int i = 0; i < 400; ++i) names.push_back("scan-target-" + std::to_string(i));
  for (int i = 0; i < 400; ++i) {
    obs = {.key = "10.9.9.9", .item = names[i], .time = 60'000 + i * 2};
    s = d.Update(st, obs);
  }
  EXPECT_GE(s.score, ThresholdFor(1e-4));
  EXPECT_EQ(st.fired, 1);
  EXPECT_NE(d.Explain(st, obs, s).find("source 10.9.9.9"), std::string::npos) << d.Explain(st, obs, s);
  t.Run(d, st, 61, 30);
  // A flood: 400 distinct sources into one quiet destination.
  for (int i = 0; i < 400; ++i) {
    obs = {.key = names[i], .item = "10.8.8.8", .time = 91'000 + i * 2};
    s = d.Update(st, obs);
  }
  EXPECT_GE(s.score, ThresholdFor(1e-4));
  EXPECT_EQ(st.fired, 2);
  EXPECT_NE(d.Explain(st, obs, s).find("destination 10.8.8.8"), std::string::npos) << d.Explain(st, obs, s);
}

TEST(EdgeDetector, SteadyTrafficIsCalibrated) {
  const EdgeDetector d;
  EdgeState st;
  Traffic t(2000, 4000, 3);
  t.Run(d, st, 0, 10);  // warm-up
  const std::vector<Scored> scores = t.Run(d, st, 10, 100);
  for (double f : {0.05, 0.01, 0.001}) {
    size_t over = 0;
    for (const Scored& s : scores) over += s.score >= ThresholdFor(f);
    const double rate = static_cast<double>(over) / scores.size();
    EXPECT_GT(rate, f / 2) << "f=" << f;
    EXPECT_LT(rate, f * 2) << "f=" << f;
  }
  for (const Scored& s : scores) {
    ASSERT_GE(s.score, 0.0);
    ASSERT_LE(s.score, 1.0);
  }
}

TEST(EdgeDetector, ScoresZeroWhileWarmingUp) {
  const EdgeDetector d;
  EdgeState st;
  Traffic t(100, 500, 4);
  for (const Scored& s : t.Run(d, st, 0, 3)) EXPECT_EQ(s.score, 0.0);
}

TEST(EdgeDetector, StateRoundTripContinuesWithIdenticalScores) {
  const EdgeDetector d;
  EdgeState a;
  Traffic warm(300, 800, 5);
  warm.Run(d, a, 0, 30);
  ByteWriter w;
  a.Encode(w);
  EdgeState b;
  ByteReader r(w.data());
  ASSERT_TRUE(EdgeState::Decode(r, &b));
  ASSERT_TRUE(r.Finish().ok()) << r.Finish();
  ASSERT_TRUE(d.Check(b).ok());
  Traffic t1(300, 800, 6), t2(300, 800, 6);
  const std::vector<Scored> sa = t1.Run(d, a, 30, 20);
  const std::vector<Scored> sb = t2.Run(d, b, 30, 20);
  ASSERT_EQ(sa.size(), sb.size());
  size_t positive = 0;
  for (size_t i = 0; i < sa.size(); ++i) {
    ASSERT_EQ(sa[i].score, sb[i].score) << i;
    ASSERT_EQ(sa[i].raw, sb[i].raw) << i;
    positive += sa[i].score > 0;
  }
  EXPECT_GT(positive, sa.size() / 2);
}

TEST(EdgeDetector, DecodeRejectsDamagedState) {
  const EdgeDetector d;
  EdgeState a;
  Traffic(50, 100, 7).Run(d, a, 0, 5);
  ByteWriter w;
  a.Encode(w);
  const std::string bytes = w.data();
  for (size_t cut : {size_t{0}, size_t{1}, size_t{9}, bytes.size() / 2, bytes.size() - 1}) {
    EdgeState b;
    ByteReader r(std::string_view(bytes).substr(0, cut));
    EXPECT_FALSE(EdgeState::Decode(r, &b) && r.Finish().ok()) << cut;
  }
  std::string bad = bytes;
  bad[0] = 9;  // version
  EdgeState b;
  ByteReader r(bad);
  EXPECT_FALSE(EdgeState::Decode(r, &b));
}

TEST(EdgeDetector, StateOfAnotherShapeIsReportedAndReset) {
  const EdgeDetector d;
  EdgeState st;
  Traffic(50, 100, 8).Run(d, st, 0, 5);
  auto small = EdgeDetector::Create({.edge_width = 64, .node_width = 32});
  ASSERT_TRUE(small.ok());
  EXPECT_FALSE(small->Check(st).ok());
  small->UpdateHashed(st, 1, 2, 6000);
  EXPECT_TRUE(small->Check(st).ok());
  EXPECT_EQ(st.MemoryBytes(), small->StateBytes());
}

TEST(EdgeDetector, MemoryIsConstantAsRecordsGrow) {
  const EdgeDetector d;
  EdgeState st;
  Traffic t(100'000, 5000, 9);
  t.Run(d, st, 0, 1);
  const size_t first = st.MemoryBytes();
  EXPECT_EQ(first, d.StateBytes());
  t.Run(d, st, 1, 40);  // 200 000 records over 100 000 nodes
  EXPECT_EQ(st.MemoryBytes(), first);
  // Default shape: 8192 + 2 * 4096 cells of 16 bytes, plus a small fixed part.
  EXPECT_GE(first, 16384u * 16);
  EXPECT_LT(first, 16384u * 16 + 8192);
}

TEST(EdgeDetector, DeterministicAndSafeOnOddTimes) {
  auto d = EdgeDetector::Create({.tick_ms = 1});
  ASSERT_TRUE(d.ok());
  EdgeState a, b;
  const int64_t times[] = {5, 5, 4, -3, 1000, int64_t{1} << 40, (int64_t{1} << 40) + 1, INT64_MAX, INT64_MIN,
                           0,  int64_t{3} << 32, INT64_MAX - 5};
  for (int round = 0; round < 50; ++round) {
    for (int64_t t : times) {
      const Scored x = d->UpdateHashed(a, round, round % 7, t);
      const Scored y = d->UpdateHashed(b, round, round % 7, t);
      ASSERT_EQ(x.score, y.score);
      ASSERT_TRUE(std::isfinite(x.raw)) << t;
      ASSERT_GE(x.score, 0.0);
      ASSERT_LE(x.score, 1.0);
    }
  }
}

TEST(EdgeDetector, CreateRejectsBadConfigs) {
  EXPECT_FALSE(EdgeDetector::Create({.rows = 0}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.rows = 9}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.edge_width = 0}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.tick_ms = 0}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.decay = 1.0}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.decay = 0.0}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.history_half_life_ticks = -1}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.filter_threshold = NAN}).ok());
  EXPECT_FALSE(EdgeDetector::Create({.warmup_ticks = 0}).ok());
  EXPECT_TRUE(EdgeDetector::Create({.rows = 3, .history_half_life_ticks = 0, .filter_threshold = 0}).ok());
}

// Pinned results on a fixed stream with one edge burst: speed work on Update
// must not change what it computes (these values were the same before the
// statistic became branch-free). Sums are compared with a relative tolerance
// for other platforms' libm; a changed formula moves them far more.
TEST(EdgeDetector, GoldenScoresOnAFixedStream) {
  const EdgeDetector d;
  EdgeState st;
  SplitMix64 rng(21);
  double sum_raw = 0, sum_score = 0;
  int high = 0;
  for (int64_t s = 0; s < 40; ++s) {
    for (int i = 0; i < 2000; ++i) {
      uint64_t src = rng.Next() % 800, dst = (src * 7 + rng.Next() % 4) % 800;
      if (s >= 30 && s < 32 && i % 4 == 0) src = 5, dst = 6;  // the burst
      const Scored x = d.UpdateHashed(st, d.HashNode(src), d.HashNode(dst), s * 1000 + i / 2);
      sum_raw += x.raw;
      sum_score += x.score;
      high += x.score >= 0.999;
    }
  }
  EXPECT_NEAR(sum_raw, 128717270.0, 128717270.0 * 1e-6);
  EXPECT_NEAR(sum_score, 33810.482, 0.01);
  EXPECT_NEAR(high, 811, 2);
}

// UpdateBatch must give exactly what record-at-a-time updates give: the same
// scores and the same state, whatever the batch boundaries, with late records,
// long gaps (cells older than the step table), a burst in the stream and the
// calibration's counts halved.
TEST(EdgeDetector, BatchScoresLikeRecordAtATime) {
  for (int rows : {1, 2}) {
    // A short calibration window: its counts are halved several times within the stream.
    auto d = EdgeDetector::Create({.rows = rows,
                                   .edge_width = 512,
                                   .node_width = 256,
                                   .calibration_warmup = 300,
                                   .calibration_window = 4096});
    ASSERT_TRUE(d.ok());
    SplitMix64 rng(31 + rows);
    std::vector<uint64_t> src, dst;
    std::vector<EventTime> time;
    int64_t t = 5'000;
    for (int i = 0; i < 30'000; ++i) {
      uint64_t a = rng.Next() % 300, b = (a * 5 + rng.Next() % 3) % 300;
      if (i >= 20'000 && i < 20'600 && i % 3 == 0) a = 7, b = 8;  // a burst
      t += rng.Next() % 4;
      if (i == 12'000) t += 200'000;  // a gap of 200 ticks
      src.push_back(d->HashNode(a));
      dst.push_back(d->HashNode(b));
      time.push_back(i % 97 == 0 ? t - 3'000 : t);  // some records late
    }
    EdgeState one, many;
    std::vector<Scored> expected;
    for (size_t i = 0; i < src.size(); ++i) expected.push_back(d->UpdateHashed(one, src[i], dst[i], time[i]));
    std::vector<Scored> got(src.size());
    const size_t sizes[] = {1, 7, 16, 17, 33, 1000, 5};
    size_t at = 0;
    for (int k = 0; at < src.size(); ++k) {
      const size_t m = std::min(sizes[k % 7], src.size() - at);
      ASSERT_EQ(d->UpdateBatch(many, std::span(src).subspan(at, m), std::span(dst).subspan(at, m),
                               std::span(time).subspan(at, m), std::span(got).subspan(at, m)),
                m);
      at += m;
    }
    size_t high = 0;
    for (size_t i = 0; i < src.size(); ++i) {
      ASSERT_EQ(got[i].score, expected[i].score) << "rows " << rows << " record " << i;
      ASSERT_EQ(got[i].raw, expected[i].raw) << "rows " << rows << " record " << i;
      high += got[i].score >= 0.999;
    }
    EXPECT_GT(high, 50u);
    ByteWriter wa, wb;
    one.Encode(wa);
    many.Encode(wb);
    EXPECT_EQ(wa.data(), wb.data()) << "rows " << rows;
  }
  // Spans of different lengths: the shortest decides.
  const EdgeDetector d;
  EdgeState st;
  const uint64_t a[3] = {1, 2, 3}, b[2] = {4, 5};
  const EventTime t[3] = {0, 1, 2};
  Scored out[3];
  EXPECT_EQ(d.UpdateBatch(st, a, b, t, out), 2u);
  EXPECT_EQ(st.records, 2u);
  EXPECT_EQ(d.UpdateBatch(st, a, b, t, std::span<Scored>()), 0u);
}

TEST(EdgeDetector, SeveralRowsWork) {
  auto d = EdgeDetector::Create({.rows = 3, .edge_width = 4096, .node_width = 2048});
  ASSERT_TRUE(d.ok());
  EdgeState st;
  Traffic t(500, 1000, 10);
  t.Run(*d, st, 0, 30);
  Scored s;
  for (int i = 0; i < 300; ++i) s = d->Update(st, {.key = "a", .item = "b", .time = 30'000 + i});
  EXPECT_GE(s.score, ThresholdFor(1e-3));
}

}  // namespace
}  // namespace cairn::detect
