#include "cairn/detect/series.h"

#include <algorithm>
#include <array>
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
  EXPECT_GT(b.cusum_up, 25.0);  // still saturated 400 records after the shift
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
  // From day 3 on (every slot then has two earlier visits) the pattern itself
  // raises no seasonal alarm; the broken afternoon does. A normal day may still
  // bring a new extreme of the noise, which the level measure reports (at most
  // one here).
  SeriesState st;
  size_t level_alarms = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const Scored s = d.Update(st, {.value = v[i], .time = t[i]});
    const bool seasonal = st.cause == 2 || st.cause == 4;
    if (i >= day12 && i < day12 + per_day) {
      if (seasonal) best_broken = std::max(best_broken, s.score);
    } else if (i >= per_day * 3 && i < day12) {
      if (seasonal) best_normal = std::max(best_normal, s.score);
      else level_alarms += s.score >= ThresholdFor(1e-3) ? 1 : 0;
    }
  }
  EXPECT_GT(best_broken, ThresholdFor(1e-4));
  EXPECT_LT(best_normal, ThresholdFor(1e-3));
  EXPECT_LE(level_alarms, 1u);
}

TEST(SeriesDetector, HourSlotsCountVisitsAndAreScoredAfterTwoEarlierOnes) {
  // Within its first visit a slot's level follows that hour's own readings, and
  // after one earlier visit it is one day's level: residuals against either are
  // not yet evidence, so no seasonal residual is ranked or learned before the
  // third day (the third week for hour-of-week slots).
  SeriesDetector d;
  const size_t per_day = 288;
  auto v = Noise(per_day * 3 + 50, 21);
  auto t = Times(v.size());
  SeriesState st;
  std::array<int, 24> visits{};
  int previous_hour = -1;
  bool any_scored = false;
  for (size_t i = 0; i < v.size(); ++i) {
    d.Update(st, {.value = v[i], .time = t[i]});
    const int h = static_cast<int>((t[i] / 3600000) % 24);
    if (h != previous_hour) ++visits[h];
    previous_hour = h;
    // Twelve readings an hour are one visit, not twelve.
    ASSERT_EQ(st.HourSeen(h), std::min(visits[h], 3)) << i;
    any_scored = any_scored || visits[h] >= 3;
    if (!any_scored) {
      ASSERT_EQ(st.season.count, 0) << i;
    }
    ASSERT_EQ(st.week.count, 0) << i;
  }
  ASSERT_TRUE(any_scored);
  EXPECT_GE(st.season.count, static_cast<int64_t>(per_day) / 2);  // from the third visit on, residuals are learned
}

TEST(SeriesDetector, YoungSeasonalSampleCountsInProportion) {
  // A daily pattern whose afternoon peak fails on day 4, when the daily
  // residual sample holds about 300 residuals: with season_ramp 2000 its z
  // counts about 0.15, so the break scores lower than with the ramp off.
  const size_t per_day = 288;
  std::vector<double> v(per_day * 5);
  auto t = Times(v.size());
  auto noise = Noise(v.size(), 22, 0.0, 0.5);
  for (size_t i = 0; i < v.size(); ++i) {
    const double hour = static_cast<double>((t[i] / 3600000) % 24);
    const bool peak = hour >= 12 && hour < 18 && !(i >= per_day * 3 && i < per_day * 4);
    v[i] = 20.0 + (peak ? 40.0 : 0.0) + noise[i];
  }
  const auto ramped = ScoreSeries(SeriesDetector(), t, v);
  const auto at_once = ScoreSeries(*SeriesDetector::Create({.season_ramp = 0}), t, v);
  double best_ramped = 0, best_at_once = 0;
  for (size_t i = per_day * 3; i < per_day * 4; ++i) {
    best_ramped = std::max(best_ramped, ramped[i].raw);
    best_at_once = std::max(best_at_once, at_once[i].raw);
  }
  EXPECT_GT(best_at_once, 5.0);
  EXPECT_LT(best_ramped, 0.5 * best_at_once);
}

TEST(SeriesDetector, YoungSeriesSurpriseIsDiscounted) {
  // The same spike at record 500 of the same noise: with the default young
  // discount (0.5 at the first record, none at 2,000) its z is 0.625 of the
  // undiscounted one; at record 2,500 both agree.
  auto v = Noise(3000, 23);
  v[500] = 80.0;
  v[2500] = 80.0;
  const auto t = Times(v.size());
  const auto young = ScoreSeries(SeriesDetector(), t, v);
  const auto plain = ScoreSeries(*SeriesDetector::Create({.young_records = 0}), t, v);
  ASSERT_GT(plain[500].raw, 5.0);
  EXPECT_NEAR(young[500].raw, 0.625 * plain[500].raw, 1e-9 * plain[500].raw);
  ASSERT_GT(plain[2500].raw, 5.0);
  EXPECT_EQ(young[2500].raw, plain[2500].raw);
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
  c = {};
  c.season_visits = 3;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
  c = {};
  c.season_ramp = -1;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
  c = {};
  c.young_floor = 1.5;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
  c = {};
  c.young_records = -1;
  EXPECT_FALSE(SeriesDetector::Create(c).ok());
}

}  // namespace
}  // namespace cairn::detect
