#include "cairn/detect/series.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace cairn::detect {
namespace {

constexpr EventTime kFiveMinutes = 5 * 60 * 1000;

std::vector<double> Noise(size_t n, uint64_t seed, double mean = 50.0, double sd = 2.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(mean, sd);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

std::vector<EventTime> Times(size_t n) {
  std::vector<EventTime> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = 1'400'000'000'000 + static_cast<EventTime>(i) * kFiveMinutes;
  return t;
}

TEST(SeriesDetector, SpikeAfterSteadyWarmupScoresHighAndExplains) {
  SeriesDetector d = *SeriesDetector::Create({.value_name = "temperature"});
  auto v = Noise(3000, 1);
  v[2500] = 95.0;
  auto t = Times(v.size());
  SeriesState st;
  Scored spike;
  for (size_t i = 0; i < v.size(); ++i) {
    Scored s = d.Update(st, {.value = v[i], .time = t[i]});
    if (i == 2500) {
      spike = s;
      const std::string reason = d.Explain(st, {.value = v[i], .time = t[i]}, s);
      EXPECT_NE(reason.find("temperature 95 is above anything seen before"), std::string::npos) << reason;
    }
  }
  EXPECT_GT(spike.score, ThresholdFor(1e-6));
  EXPECT_GT(spike.raw, 5.0);
}

TEST(SeriesDetector, ScoresAreZeroDuringWarmup) {
  SeriesDetector d = *SeriesDetector::Create({.warmup = 200});
  auto v = Noise(400, 2);
  v[100] = 1e6;
  auto s = ScoreSeries(d, Times(v.size()), v);
  for (size_t i = 0; i < 200; ++i) EXPECT_EQ(s[i].score, 0.0) << i;
}

TEST(SeriesDetector, FalseAlarmRateOnStationaryNoiseIsAtMostTheAcceptedRate) {
  SeriesDetector d;
  for (double f : {0.01, 0.001}) {
    size_t flagged = 0, scored = 0;
    for (uint64_t seed = 10; seed < 14; ++seed) {
      auto v = Noise(20000, seed);
      auto s = ScoreSeries(d, Times(v.size()), v);
      for (size_t i = 1000; i < s.size(); ++i, ++scored) flagged += s[i].score >= ThresholdFor(f) ? 1 : 0;
    }
    const double rate = static_cast<double>(flagged) / static_cast<double>(scored);
    EXPECT_LE(rate, f) << "accepted rate " << f;
  }
}

TEST(SeriesDetector, LevelShiftIsReportedOnceNotOnEveryRecord) {
  SeriesDetector d;
  auto v = Noise(4000, 3);
  for (size_t i = 3000; i < v.size(); ++i) v[i] += 30.0;
  auto s = ScoreSeries(d, Times(v.size()), v);
  size_t alarms = 0;
  double best = 0;
  for (size_t i = 3000; i < 3300; ++i) {
    alarms += s[i].score >= ThresholdFor(1e-4) ? 1 : 0;
    best = std::max(best, s[i].score);
  }
  EXPECT_GT(best, ThresholdFor(1e-6));
  EXPECT_LE(alarms, 2u);
}

TEST(SeriesDetector, ChangeMeasureSettlesSoonAfterALastingShift) {
  // After a lasting shift the CUSUM must return to zero, or its own history
  // (against which it is ranked) fills with the excursion and a later shift
  // ranks as ordinary. Against the recent baseline it settles within 100
  // records; against the median of all history (change_alpha = 0, the earlier
  // design) it stays saturated for hundreds.
  auto v = Noise(1400, 12);
  for (size_t i = 1000; i < v.size(); ++i) v[i] += 12.0;
  const auto t = Times(v.size());
  SeriesDetector recent;
  SeriesDetector all_history = *SeriesDetector::Create({.change_alpha = 0.0});
  SeriesState a, b;
  size_t alarms = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const Scored s = recent.Update(a, {.value = v[i], .time = t[i]});
    all_history.Update(b, {.value = v[i], .time = t[i]});
    if (i == 1001) {
      EXPECT_GT(a.cusum_up, 5.0);  // the shift is being measured
    }
    if (i >= 1100) {
      EXPECT_LT(std::max(a.cusum_up, a.cusum_down), 5.0) << i;
      EXPECT_NEAR(a.recent_mean, 62.0, 1.5) << i;
      alarms += s.score >= ThresholdFor(1e-4) ? 1 : 0;
    }
  }
  EXPECT_EQ(alarms, 0u);  // the new level is the new normal
  EXPECT_GT(b.cusum_up, 50.0);
}

TEST(SeriesDetector, DailyPatternBreakIsSeen) {
  // A clean daily cycle; on day 12 the afternoon peak does not happen.
  SeriesDetector d;
  const size_t per_day = 288;
  std::vector<double> v(per_day * 14);
  auto t = Times(v.size());
  auto noise = Noise(v.size(), 4, 0.0, 0.5);
  for (size_t i = 0; i < v.size(); ++i) {
    const double hour = static_cast<double>((t[i] / 3600000) % 24);
    v[i] = 20.0 + (hour >= 12 && hour < 18 ? 40.0 : 0.0) + noise[i];
  }
  const size_t day12 = per_day * 12;
  double best_normal = 0, best_broken = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double hour = static_cast<double>((t[i] / 3600000) % 24);
    if (i >= day12 && i < day12 + per_day && hour >= 12 && hour < 18) v[i] -= 40.0;
  }
  auto s = ScoreSeries(d, t, v);
  for (size_t i = per_day * 3; i < v.size(); ++i) {
    if (i >= day12 && i < day12 + per_day) best_broken = std::max(best_broken, s[i].score);
    else if (i < day12) best_normal = std::max(best_normal, s[i].score);
  }
  EXPECT_GT(best_broken, ThresholdFor(1e-4));
  EXPECT_LT(best_normal, ThresholdFor(1e-3));
}

TEST(SeriesDetector, StateRoundTripContinuesIdentically) {
  SeriesDetector d;
  auto v = Noise(3000, 5);
  v[2000] = 80;
  auto t = Times(v.size());
  SeriesState a;
  for (size_t i = 0; i < 1500; ++i) d.Update(a, {.value = v[i], .time = t[i]});
  ByteWriter w;
  a.Encode(w);
  SeriesState b;
  ByteReader r(w.data());
  ASSERT_TRUE(SeriesState::Decode(r, &b));
  for (size_t i = 1500; i < v.size(); ++i) {
    Scored sa = d.Update(a, {.value = v[i], .time = t[i]});
    Scored sb = d.Update(b, {.value = v[i], .time = t[i]});
    ASSERT_EQ(sa.score, sb.score) << i;
  }
  // Truncated or corrupt bytes are refused, not trusted.
  std::string bytes = w.data();
  ByteReader shorter(std::string_view(bytes).substr(0, bytes.size() / 2));
  SeriesState c;
  EXPECT_FALSE(SeriesState::Decode(shorter, &c));
  std::string unknown = bytes;
  unknown[0] = 9;
  ByteReader unknown_reader(unknown);
  EXPECT_FALSE(SeriesState::Decode(unknown_reader, &c));
}

TEST(SeriesDetector, Layout2StateIsRestoredWithARecentBaselineFromItsHistory) {
  // Layout 3 appends the recent baseline (two doubles) to layout 2; a layout-2
  // checkpoint is that encoding with version 2 and without them.
  SeriesDetector d;
  auto v = Noise(3000, 5);
  auto t = Times(v.size());
  SeriesState a;
  for (size_t i = 0; i < 1500; ++i) d.Update(a, {.value = v[i], .time = t[i]});
  ByteWriter w;
  a.Encode(w);
  std::string bytes = w.data();
  ASSERT_EQ(bytes[0], 3);
  bytes[0] = 2;
  bytes.resize(bytes.size() - 2 * sizeof(double));
  SeriesState b;
  ByteReader r(bytes);
  ASSERT_TRUE(SeriesState::Decode(r, &b));
  EXPECT_EQ(b.n, a.n);
  EXPECT_NEAR(b.recent_mean, 50.0, 1.0);                 // the history's median
  EXPECT_NEAR(1.25 * b.recent_dev, 2.0, 0.5);            // its robust sigma
  // It goes on scoring ordinary noise as ordinary.
  for (size_t i = 1500; i < v.size(); ++i) {
    EXPECT_LT(d.Update(b, {.value = v[i], .time = t[i]}).score, ThresholdFor(1e-4)) << i;
  }
}

TEST(SeriesDetector, NonFiniteValuesScoreZeroAndAreNotLearned) {
  SeriesDetector d;
  SeriesState st;
  auto v = Noise(500, 6);
  auto t = Times(v.size());
  for (size_t i = 0; i < v.size(); ++i) d.Update(st, {.value = v[i], .time = t[i]});
  const int64_t n = st.n;
  EXPECT_EQ(d.Update(st, {.value = std::nan(""), .time = t.back()}).score, 0.0);
  EXPECT_EQ(d.Update(st, {.value = INFINITY, .time = t.back()}).score, 0.0);
  EXPECT_EQ(st.n, n);
}

TEST(SeriesDetector, MemoryIsFixedPerKey) {
  SeriesDetector d;
  SeriesState st;
  const size_t before = st.MemoryBytes();
  auto v = Noise(50000, 7);
  auto s = ScoreSeries(d, Times(v.size()), v);
  EXPECT_EQ(st.MemoryBytes(), before);
  EXPECT_LT(before, 4096u);
}

TEST(SeriesDetector, BadConfigIsRefused) {
  EXPECT_FALSE(SeriesDetector::Create({.warmup = -1}).ok());
  SeriesConfig c;
  c.season_alpha = 0;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
  c = {};
  c.escalation = 0.5;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
  c = {};
  c.change_alpha = 1.0;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
  c = {};
  c.change_clip = 0.0;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
}

}  // namespace
}  // namespace cairn::detect
