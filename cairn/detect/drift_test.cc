#include "cairn/detect/drift.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "fmt/format.h"

namespace cairn::detect {
namespace {

using ::testing::HasSubstr;

constexpr EventTime kHour = 3'600'000;

DriftDetector MakeDetector(DriftConfig c = {}) {
  c.value_name = "temperature";
  auto d = DriftDetector::Create(c);
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

// A reading every 10 s: an AR(1) process around `mean` with stationary sd
// `sd` and lag-1 autocorrelation `rho`.
class Sensor {
 public:
  Sensor(double mean, double sd, double rho, uint64_t seed) : mean_(mean), sd_(sd), rho_(rho), rng_(seed) {}
  double Next() {
    x_ = rho_ * x_ + std::sqrt(1 - rho_ * rho_) * normal_(rng_);
    return mean_ + sd_ * x_;
  }
  double mean_, sd_, rho_;

 private:
  std::mt19937_64 rng_;
  std::normal_distribution<double> normal_;
  double x_ = 0.0;
};

TEST(Drift, DetectsAShiftAndExplainsIt) {
  const DriftDetector d = MakeDetector();
  DriftState st;
  Sensor m7(74.0, 2.0, 0.0, 1);
  double max_normal = 0.0;
  for (int i = 0; i < 360 * 10; ++i) {  // 10 h
    max_normal = std::max(max_normal, d.Update(st, {.key = "m7", .value = m7.Next(), .time = i * 10'000}).score);
  }
  m7.mean_ = 81.3;
  Scored best;
  std::string reason;
  for (int i = 360 * 10; i < 360 * 11 + 1; ++i) {  // hour 11, and the first reading after it
    const Observation obs{.key = "m7", .value = m7.Next(), .time = i * 10'000};
    const Scored s = d.Update(st, obs);
    if (s.score > best.score) {
      best = s;
      reason = d.Explain(st, obs, s);
    }
  }
  EXPECT_LT(max_normal, 0.999);
  EXPECT_GT(best.score, 0.999999);
  EXPECT_GT(best.raw, 0.8);
  EXPECT_THAT(reason, ::testing::MatchesRegex("temperature distribution of m7 in the last 1 h differs from the previous "
                                              "1 h \\(KS 0\\.9[0-9], median 7[34]\\.[0-9] -> 8[01]\\.[0-9]\\)"));
}

TEST(Drift, EvaluatesInsideTheWindow) {
  const DriftDetector d = MakeDetector({.eval_every = 60});
  DriftState st;
  Sensor s(20.0, 1.0, 0.0, 2);
  for (int i = 0; i < 720; ++i) d.Update(st, {.key = "k", .value = s.Next(), .time = i * 10'000});
  s.mean_ = 23.0;
  int first_alarm = -1;
  for (int i = 720; i < 1080 && first_alarm < 0; ++i) {
    const Observation obs{.key = "k", .value = s.Next(), .time = i * 10'000};
    const Scored sc = d.Update(st, obs);
    if (sc.score >= ThresholdFor(0.001)) {
      first_alarm = i - 720;
      EXPECT_THAT(d.Explain(st, obs, sc), HasSubstr("in this 1 h window (60 values so far) differs from the previous 1 h"));
    }
  }
  EXPECT_EQ(first_alarm, 59);  // the first evaluation of the new window
}

// The p-values of evaluations on stationary data: the alarm rate matches the
// false-alarm rate for independent values, and stays below it for
// autocorrelated ones (the effective sizes make the test conservative).
TEST(Drift, CalibratedOnStationarySensors) {
  for (double rho : {0.0, 0.9}) {
    const DriftDetector d = MakeDetector({.window_ms = kHour / 6, .eval_every = 1 << 30});
    const int keys = 100, windows = 40;
    size_t evaluations = 0, at_5pct = 0, at_1pct = 0;
    for (int k = 0; k < keys; ++k) {
      DriftState st;
      Sensor s(50.0 + k, 1.0 + k % 5, rho, 100 + k);
      for (int i = 0; i < 60 * windows; ++i) {  // 60 readings per window
        const Scored sc = d.Update(st, {.key = "k", .value = s.Next(), .time = i * 10'000});
        if (i % 60 == 0 && i >= 120) {  // a window closed and had a reference
          ++evaluations;
          at_5pct += sc.score >= ThresholdFor(0.05);
          at_1pct += sc.score >= ThresholdFor(0.01);
        }
      }
    }
    const double r5 = static_cast<double>(at_5pct) / evaluations, r1 = static_cast<double>(at_1pct) / evaluations;
    RecordProperty(fmt::format("rho{}_at_5pct", rho), std::to_string(r5));
    RecordProperty(fmt::format("rho{}_at_1pct", rho), std::to_string(r1));
    EXPECT_LT(r5, 0.07) << rho;
    EXPECT_LT(r1, 0.017) << rho;
    if (rho == 0.0) {
      EXPECT_GT(r5, 0.02);
      EXPECT_GT(r1, 0.003);
    }
  }
}

TEST(Drift, LargeWindowsAreNotOversensitive) {
  // 36,000 readings a window: the sketches compact, and their error is allowed for.
  const DriftDetector d = MakeDetector({.window_ms = kHour, .eval_every = 1 << 30});
  DriftState st;
  Sensor s(10.0, 3.0, 0.0, 3);
  size_t alarms = 0, evaluations = 0;
  for (int i = 0; i < 36'000 * 12; ++i) {
    const Scored sc = d.Update(st, {.key = "k", .value = s.Next(), .time = i * 100});
    if (i % 36'000 == 0 && i >= 72'000) {
      ++evaluations;
      alarms += sc.score >= ThresholdFor(0.01);
    }
  }
  EXPECT_EQ(evaluations, 10u);
  EXPECT_EQ(alarms, 0u);
}

TEST(Drift, EncodeDecodeContinuesIdentically) {
  const DriftDetector d = MakeDetector({.window_ms = kHour, .eval_every = 100});
  Sensor s(5.0, 1.0, 0.5, 4);
  std::vector<double> values(20'000);
  for (double& v : values) v = s.Next();
  for (size_t i = 15'000; i < values.size(); ++i) values[i] += 0.5;
  DriftState a;
  for (size_t i = 0; i < 7'777; ++i) d.Update(a, {.value = values[i], .time = static_cast<EventTime>(i) * 1000});
  ByteWriter w;
  a.Encode(w);
  DriftState b;
  ByteReader r(w.data());
  ASSERT_TRUE(DriftState::Decode(r, &b)) << r.status();
  EXPECT_TRUE(r.Finish().ok());
  size_t nonzero = 0;
  for (size_t i = 7'777; i < values.size(); ++i) {
    const Observation obs{.value = values[i], .time = static_cast<EventTime>(i) * 1000};
    const Scored sa = d.Update(a, obs);
    const Scored sb = d.Update(b, obs);
    ASSERT_EQ(sa.score, sb.score) << i;
    ASSERT_EQ(sa.raw, sb.raw) << i;
    nonzero += sa.score > 0.5;
  }
  EXPECT_GT(nonzero, 0u);
  std::string bytes = w.Take();
  for (size_t len = 0; len < bytes.size(); len += 53) {
    DriftState c;
    ByteReader t(std::string_view(bytes).substr(0, len));
    EXPECT_FALSE(DriftState::Decode(t, &c) && t.Finish().ok()) << len;
  }
}

TEST(Drift, MemoryIsBoundedPerKey) {
  const DriftDetector d = MakeDetector();
  DriftState st;
  Sensor s(0.0, 1.0, 0.0, 5);
  size_t peak = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    d.Update(st, {.value = s.Next(), .time = i * 10});  // 360,000 values an hour
    if (i % 1000 == 0) peak = std::max(peak, st.MemoryBytes());
  }
  EXPECT_LT(peak, 2500u);
  RecordProperty("peak_bytes", std::to_string(peak));
}

TEST(Drift, IgnoresNonFiniteValues) {
  const DriftDetector d = MakeDetector();
  DriftState st;
  EXPECT_EQ(d.Update(st, {.value = std::nan(""), .time = 0}).score, 0.0);
  EXPECT_EQ(d.Update(st, {.value = INFINITY, .time = 1}).score, 0.0);
  d.Update(st, {.value = 1e300, .time = 2});  // beyond float: clamped, not infinite
  EXPECT_EQ(st.current->n(), 1u);
  EXPECT_TRUE(std::isfinite(st.current->max()));
}

TEST(Drift, RejectsBadConfig) {
  auto msg = [](DriftConfig c) { return std::string(DriftDetector::Create(c).status().message()); };
  EXPECT_THAT(msg({.window_ms = 0}), HasSubstr("drift detector: window 0 ms must be positive"));
  EXPECT_THAT(msg({.k = 4}), HasSubstr("k 4 is out of range 8..2000"));
  EXPECT_THAT(msg({.grid = 2000}), HasSubstr("grid 2000 is out of range 8..1024"));
  EXPECT_THAT(msg({.eval_every = 3}), HasSubstr("eval_every 3 values must be at least 16"));
  EXPECT_THAT(msg({.min_samples = 1}), HasSubstr("min_samples 1 must be at least 2"));
}

// Damaged state bytes: Decode refuses them or yields a state that Update can
// use (or resets) without reading out of bounds; ASan and UBSan check this.
TEST(Drift, DamagedStateNeverCrashes) {
  const DriftDetector d = MakeDetector({.window_ms = 100, .k = 8, .grid = 8, .eval_every = 16, .min_samples = 4});
  DriftState valid;
  for (int i = 0; i < 2000; ++i) d.Update(valid, {.value = (i % 17) * 0.5, .time = i / 3});
  ByteWriter w;
  valid.Encode(w);
  const std::string bytes = w.Take();
  SplitMix64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng.Next() % 4);
    for (int f = 0; f < flips; ++f) damaged[rng.Next() % damaged.size()] ^= static_cast<char>(1 + rng.Next() % 255);
    DriftState st;
    ByteReader r(damaged);
    if (!DriftState::Decode(r, &st)) continue;
    for (int i = 0; i < 200; ++i) d.Update(st, {.value = i * 0.25, .time = 1000 + i});
  }
}

}  // namespace
}  // namespace cairn::detect
