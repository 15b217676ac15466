#include "cairn/sketch/windowed.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "cairn/sketch/count_min.h"
#include "cairn/sketch/hyperloglog.h"
#include "cairn/sketch/top_k.h"

namespace cairn::sketch {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSecond = 1000000000;

// A Count-Min sketch wide enough that a few hundred keys never all collide: its
// estimates are exact, so window contents can be compared exactly.
absl::StatusOr<CountMinSketch> WideCountMin() { return CountMinSketch::CreateWithShape(4, 1 << 16); }

TimeWindowed<CountMinSketch> MakeCountMinWindow(int64_t window, int buckets) {
  auto w = TimeWindowed<CountMinSketch>::Create(window, buckets, WideCountMin);
  EXPECT_TRUE(w.ok()) << w.status();
  return std::move(*w);
}

TEST(TimeWindowed, CreateValidatesParameters) {
  using W = TimeWindowed<CountMinSketch>;
  EXPECT_THAT(W::Create(0, 4, WideCountMin).status().message(), HasSubstr("must be positive"));
  EXPECT_THAT(W::Create(10, 0, WideCountMin).status().message(),
              HasSubstr("buckets 0 is out of range"));
  EXPECT_FALSE(W::Create(100000, W::kMaxBuckets + 1, WideCountMin).ok());
  EXPECT_THAT(W::Create(10, 3, WideCountMin).status().message(), HasSubstr("not a multiple"));
  EXPECT_FALSE(W::Create(10, 2, nullptr).ok());
  auto failing = [] { return CountMinSketch::CreateWithShape(0, 1); };
  EXPECT_THAT(W::Create(10, 2, failing).status().message(), HasSubstr("depth 0"));
  auto ok = W::Create(10 * kSecond, 10, WideCountMin);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->bucket_nanos(), kSecond);
  EXPECT_EQ(ok->window_nanos(), 10 * kSecond);
  EXPECT_EQ(ok->buckets(), 10);
}

TEST(TimeWindowed, CountMinForgetsEventsThatLeaveTheWindow) {
  // 10 s window of 1 s buckets.
  auto w = MakeCountMinWindow(10 * kSecond, 10);
  w.Add(kSecond / 2, uint64_t{1});           // bucket 0
  w.Add(3 * kSecond + 200, uint64_t{2}, 5);  // bucket 3
  w.Add(9 * kSecond, std::string_view("press-7"));
  auto snap = w.Snapshot(9 * kSecond + 999);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->Estimate(uint64_t{1}), 1u);
  EXPECT_EQ(snap->Estimate(uint64_t{2}), 5u);
  EXPECT_EQ(snap->Estimate("press-7"), 1u);
  EXPECT_EQ(snap->TotalCount(), 7u);

  // At 10.5 s the window is buckets 1..10: bucket 0 (key 1) is out.
  snap = w.Snapshot(10 * kSecond + kSecond / 2);
  EXPECT_EQ(snap->Estimate(uint64_t{1}), 0u);
  EXPECT_EQ(snap->Estimate(uint64_t{2}), 5u);

  // An event at 13 s rotates buckets 0..3 out for good.
  w.Add(13 * kSecond, uint64_t{3});
  snap = w.Snapshot(13 * kSecond);
  EXPECT_EQ(snap->Estimate(uint64_t{2}), 0u);
  EXPECT_EQ(snap->Estimate("press-7"), 1u);
  EXPECT_EQ(snap->Estimate(uint64_t{3}), 1u);
  // Querying the past sees only what is still in the ring.
  EXPECT_EQ(w.Snapshot(5 * kSecond)->Estimate(uint64_t{2}), 0u);
  // A query far ahead sees an empty window.
  EXPECT_EQ(w.Snapshot(100 * kSecond)->TotalCount(), 0u);
}

TEST(TimeWindowed, LateEventsAreCountedNotAdded) {
  auto w = MakeCountMinWindow(10 * kSecond, 10);
  w.Add(20 * kSecond, uint64_t{1});
  w.Add(10 * kSecond, uint64_t{7});  // bucket 10 rotated out when bucket 20 arrived
  w.Add(5 * kSecond, uint64_t{7}, 3);
  EXPECT_EQ(w.late_dropped(), 2u);
  w.Add(11 * kSecond, uint64_t{8});  // out of order but inside the ring: kept
  EXPECT_EQ(w.late_dropped(), 2u);
  auto snap = w.Snapshot(20 * kSecond);
  EXPECT_EQ(snap->Estimate(uint64_t{7}), 0u);
  EXPECT_EQ(snap->Estimate(uint64_t{8}), 1u);
  EXPECT_EQ(snap->TotalCount(), 2u);
}

TEST(TimeWindowed, WithinWindowCountsAreExact) {
  // 1 s window of 100 ms buckets; events every 7 ms with random keys, in order.
  constexpr int64_t kMs = 1000000;
  auto w = MakeCountMinWindow(1000 * kMs, 10);
  std::mt19937_64 rng(1);
  std::vector<std::pair<int64_t, uint64_t>> events;
  for (int64_t t = 0; t < 5000 * kMs; t += 7 * kMs) {
    const uint64_t key = rng() % 200;
    events.push_back({t, key});
    w.Add(t, key);
    if (events.size() % 97 != 0) continue;
    // The window ending at t: buckets floor(t / 100 ms) - 9 .. floor(t / 100 ms).
    const int64_t first = (t / (100 * kMs) - 9) * 100 * kMs;
    std::map<uint64_t, uint64_t> truth;
    for (const auto& [et, ek] : events) {
      if (et >= first && et <= t) ++truth[ek];
    }
    auto snap = w.Snapshot(t);
    ASSERT_TRUE(snap.ok());
    uint64_t total = 0;
    for (uint64_t k = 0; k < 200; ++k) {
      ASSERT_EQ(snap->Estimate(k), truth.count(k) ? truth[k] : 0) << "t=" << t << " key=" << k;
      total += truth.count(k) ? truth[k] : 0;
    }
    EXPECT_EQ(snap->TotalCount(), total);
  }
  EXPECT_EQ(w.late_dropped(), 0u);
}

TEST(TimeWindowed, NegativeTimesAndBigJumps) {
  auto w = MakeCountMinWindow(4 * kSecond, 4);
  w.Add(-kSecond / 2, uint64_t{1});  // bucket -1
  w.Add(kSecond / 2, uint64_t{1});   // bucket 0
  EXPECT_EQ(w.Snapshot(0)->Estimate(uint64_t{1}), 2u);
  EXPECT_EQ(w.Snapshot(3 * kSecond)->Estimate(uint64_t{1}), 1u);  // buckets 0..3
  w.Add(1000 * kSecond, uint64_t{2});  // jumps far ahead: everything older is gone
  EXPECT_EQ(w.Snapshot(1000 * kSecond)->TotalCount(), 1u);
  w.Add(0, uint64_t{1});
  EXPECT_EQ(w.late_dropped(), 1u);
}

TEST(TimeWindowed, TopKWindowForgetsOldHeavyHitters) {
  auto w = TimeWindowed<TopK<std::string>>::Create(
      60 * kSecond, 6, [] { return TopK<std::string>::Create(16); });
  ASSERT_TRUE(w.ok()) << w.status();
  for (int i = 0; i < 100; ++i) w->Add(i * kSecond / 10, std::string_view("pump"));  // 0..10 s
  for (int i = 0; i < 30; ++i) w->Add(30 * kSecond + i * kSecond, "press-7");        // 30..59 s
  w->Add(50 * kSecond, "fan", 5);
  auto snap = w->Snapshot(59 * kSecond);
  ASSERT_TRUE(snap.ok()) << snap.status();
  auto top = snap->Top(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], (TopK<std::string>::Item{"pump", 100, 0}));
  EXPECT_EQ(top[1], (TopK<std::string>::Item{"press-7", 30, 0}));
  EXPECT_EQ(top[2], (TopK<std::string>::Item{"fan", 5, 0}));
  // At 75 s the window is [20 s, 80 s): "pump" (0..10 s) is gone.
  snap = w->Snapshot(75 * kSecond);
  top = snap->Top(3);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, "press-7");
  EXPECT_EQ(snap->TotalCount(), 35u);
}

TEST(TimeWindowed, TopKOfIntegersAndMemory) {
  auto w = TimeWindowed<TopK<uint64_t>>::Create(
      10, 2, [] { return TopK<uint64_t>::Create(4); });
  ASSERT_TRUE(w.ok());
  const size_t empty = w->MemoryBytes();
  for (uint64_t k = 0; k < 100; ++k) w->Add(static_cast<int64_t>(k % 10), k % 7);
  EXPECT_GT(w->MemoryBytes(), empty);
  auto snap = w->Snapshot(9);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->TotalCount(), 100u);
  EXPECT_EQ(snap->size(), 4u);

  auto cms = MakeCountMinWindow(100, 4);
  const size_t one = WideCountMin()->MemoryBytes();
  EXPECT_GE(cms.MemoryBytes(), 5 * one - 5 * sizeof(CountMinSketch));
  EXPECT_LE(cms.MemoryBytes(), 5 * one + 1024);
}

TEST(TimeWindowed, HyperLogLogCountsDistinctKeysOfTheWindowOnly) {
  // A 60 s window of 6 buckets: 1000 distinct sources per 10 s, a new set each time.
  auto w = TimeWindowed<HyperLogLog>::Create(60 * kSecond, 6, [] { return HyperLogLog::Create(12); });
  ASSERT_TRUE(w.ok()) << w.status();
  for (int64_t step = 0; step < 12; ++step) {
    for (uint64_t i = 0; i < 1000; ++i) w->Add(step * 10 * kSecond + static_cast<int64_t>(i), step * 1000 + i);
  }
  // At t = 119 s the window holds steps 6..11: 6000 distinct keys.
  auto snap = w->Snapshot(119 * kSecond);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_NEAR(snap->Estimate(), 6000, 6000 * 3 * snap->RelativeStandardError());
  // Merging a window snapshot of the same keys changes nothing: no double counting.
  auto again = w->Snapshot(119 * kSecond);
  ASSERT_TRUE(snap->Merge(*again).ok());
  EXPECT_NEAR(snap->Estimate(), 6000, 6000 * 3 * snap->RelativeStandardError());
  // Later, with no new events, the old keys leave the window.
  auto later = w->Snapshot(165 * kSecond);  // buckets 11..16: step 11 only
  ASSERT_TRUE(later.ok());
  EXPECT_NEAR(later->Estimate(), 1000, 1000 * 3 * later->RelativeStandardError());
  EXPECT_EQ(w->late_dropped(), 0u);
}

TEST(DecayedCountMin, HalvesPerHalfLife) {
  auto d = DecayedCountMin::Create(10 * kSecond, kSecond, *WideCountMin());
  ASSERT_TRUE(d.ok()) << d.status();
  d->Add(0, uint64_t{1}, 1000);
  d->Add(0, std::string_view("k"), 10);
  EXPECT_NEAR(d->Estimate(0, uint64_t{1}), 1000, 1e-6);
  EXPECT_NEAR(d->Estimate(10 * kSecond, uint64_t{1}), 500, 0.5);
  d->Add(10 * kSecond, uint64_t{1}, 500);  // applies the decay of 10 ticks
  EXPECT_NEAR(d->Estimate(10 * kSecond, uint64_t{1}), 1000, 1.0);
  EXPECT_NEAR(d->Estimate(20 * kSecond, uint64_t{1}), 500, 1.0);
  EXPECT_NEAR(d->Estimate(20 * kSecond, "k"), 2.5, 0.01);
  EXPECT_NEAR(d->TotalCount(10 * kSecond), 1005, 1.0);
  // A late event weighs what it would have decayed to.
  d->Add(0, uint64_t{2}, 100);
  EXPECT_NEAR(d->Estimate(10 * kSecond, uint64_t{2}), 50, 0.01);
  // Many ticks of decay do not erase counts through rounding.
  auto e = DecayedCountMin::Create(100 * kSecond, kSecond, *WideCountMin());
  e->Add(0, uint64_t{9}, 1);
  for (int64_t t = 1; t <= 100; ++t) e->Add(t * kSecond, uint64_t{10});
  EXPECT_NEAR(e->Estimate(100 * kSecond, uint64_t{9}), 0.5, 0.01);
}

TEST(DecayedCountMin, CreateValidatesParameters) {
  EXPECT_THAT(DecayedCountMin::Create(0, 1, *WideCountMin()).status().message(),
              HasSubstr("half-life"));
  EXPECT_THAT(DecayedCountMin::Create(10, 11, *WideCountMin()).status().message(),
              HasSubstr("tick 11"));
  auto used = *WideCountMin();
  used.Add(uint64_t{1});
  EXPECT_FALSE(DecayedCountMin::Create(10, 1, used).ok());
}

}  // namespace
}  // namespace cairn::sketch
