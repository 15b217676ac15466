#include "cairn/detect/heavy_hitters.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "fmt/format.h"

namespace cairn::detect {
namespace {

using ::testing::HasSubstr;

constexpr EventTime kMinute = 60'000;

HeavyHitterDetector MakeDetector(HeavyHitterConfig c = {}) {
  c.item_name = "host";
  auto d = HeavyHitterDetector::Create(c);
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

struct Record {
  std::string item;
  EventTime time;
};

// `per_minute` records a minute of Zipf(1.1) traffic over `items` hosts.
std::vector<Record> ZipfTraffic(int minutes, int per_minute, uint64_t items, uint64_t seed) {
  ZipfGenerator zipf(items, 1.1, seed);
  std::vector<Record> out;
  out.reserve(static_cast<size_t>(minutes) * per_minute);
  for (int m = 0; m < minutes; ++m) {
    for (int i = 0; i < per_minute; ++i) {
      out.push_back({fmt::format("h{}", zipf.Next()), m * kMinute + static_cast<EventTime>(i) * kMinute / per_minute});
    }
  }
  return out;
}

TEST(HeavyHitters, DetectsANewTalkerAndExplainsIt) {
  const HeavyHitterDetector d = MakeDetector();
  HeavyHitterState st;
  double max_normal = 0.0;
  for (const Record& r : ZipfTraffic(10, 20'000, 100'000, 1)) {
    max_normal = std::max(max_normal, d.Update(st, {.item = r.item, .time = r.time}).score);
  }
  // Minute 10: "intruder", never seen, makes 5% of the records; h700 (rank ~700)
  // makes 3%.
  ZipfGenerator zipf(100'000, 1.1, 99);
  SplitMix64 rng(7);
  double intruder = 0.0, riser = 0.0, others = 0.0;
  std::string reason, riser_reason;
  for (int i = 0; i < 20'000; ++i) {
    const double u = rng.NextDouble();
    const std::string item = u < 0.05 ? "intruder" : u < 0.08 ? "h700" : fmt::format("h{}", zipf.Next());
    const Observation obs{.item = item, .time = 10 * kMinute + i * 3};
    const Scored s = d.Update(st, obs);
    if (item == "intruder" && s.score > intruder) {
      intruder = s.score;
      reason = d.Explain(st, obs, s);
    } else if (item == "h700" && s.score > riser) {
      riser = s.score;
      riser_reason = d.Explain(st, obs, s);
    } else if (item != "intruder" && item != "h700") {
      others = std::max(others, s.score);
    }
  }
  // Each evaluation tests the 20 items of the top-k: over ~2,000 tests the smallest
  // p-value of steady traffic is around 1 / 2,000.
  EXPECT_LT(max_normal, 0.99999);
  EXPECT_LT(others, 0.99999);
  EXPECT_GT(intruder, 0.999999);
  EXPECT_GT(riser, 0.999999);
  EXPECT_THAT(reason, HasSubstr("host 'intruder' rose to rank "));
  EXPECT_THAT(reason, HasSubstr("of the top 20 ("));
  EXPECT_THAT(reason, HasSubstr("records in this 1 min window) from below rank 1024 (at most "));
  EXPECT_THAT(reason, HasSubstr("in the 4 windows before)"));
  EXPECT_THAT(riser_reason, HasSubstr("host 'h700' rose to rank "));
  EXPECT_THAT(riser_reason, ::testing::ContainsRegex("from (rank [0-9]+|below rank 1024) \\("));
}

TEST(HeavyHitters, UnseenItemsAreCalledUnseen) {
  // Few distinct items: the reference never evicts, so an absent item is unseen.
  const HeavyHitterDetector d = MakeDetector({.min_reference_records = 100});
  HeavyHitterState st;
  for (int m = 0; m < 3; ++m) {
    for (int i = 0; i < 1000; ++i) d.Update(st, {.item = fmt::format("h{}", i % 50), .time = m * kMinute + i});
  }
  Scored s;
  const Observation obs{.item = "newcomer", .time = 3 * kMinute + 500};
  for (int i = 0; i < 300; ++i) {
    d.Update(st, {.item = fmt::format("h{}", i % 50), .time = 3 * kMinute + i});
    s = d.Update(st, obs);
  }
  EXPECT_GT(s.score, 0.9999);
  EXPECT_THAT(d.Explain(st, obs, s), HasSubstr("rose to rank 1 of the top 20 (256 of 512 records in this 1 min "
                                               "window) from unseen (0 of 3,000 records in the 3 windows before)"));
}

TEST(HeavyHitters, CalibratedOnSteadyZipfTraffic) {
  for (int per_minute : {2'000, 50'000}) {
    const HeavyHitterDetector d = MakeDetector({.eval_every = 512});
    HeavyHitterState st;
    size_t scored = 0, at_1pct = 0, at_01pct = 0;
    for (const Record& r : ZipfTraffic(40, per_minute, 1'000'000, 2)) {
      const Scored s = d.Update(st, {.item = r.item, .time = r.time});
      if (st.reference_records < 1000) continue;
      ++scored;
      at_1pct += s.score >= ThresholdFor(0.01);
      at_01pct += s.score >= ThresholdFor(0.001);
    }
    const double r1 = static_cast<double>(at_1pct) / scored, r01 = static_cast<double>(at_01pct) / scored;
    RecordProperty(fmt::format("per_minute{}_at_1pct", per_minute), std::to_string(r1));
    RecordProperty(fmt::format("per_minute{}_at_0.1pct", per_minute), std::to_string(r01));
    EXPECT_LT(r1, 0.01) << per_minute;
    EXPECT_LT(r01, 0.001) << per_minute;
  }
}

TEST(HeavyHitters, EncodeDecodeContinuesIdentically) {
  const HeavyHitterDetector d = MakeDetector({.capacity = 256, .eval_every = 128, .min_reference_records = 100});
  auto traffic = ZipfTraffic(8, 5'000, 10'000, 3);
  for (int i = 0; i < 2000; ++i) traffic[30'000 + i].item = "burst";  // a riser so findings exist
  HeavyHitterState a;
  const size_t cut = 30'500;
  for (size_t i = 0; i < cut; ++i) d.Update(a, {.item = traffic[i].item, .time = traffic[i].time});
  ASSERT_GT(a.num_findings, 0u);
  ByteWriter w;
  a.Encode(w);
  HeavyHitterState b;
  ByteReader r(w.data());
  ASSERT_TRUE(HeavyHitterState::Decode(r, &b)) << r.status();
  EXPECT_TRUE(r.Finish().ok());
  size_t nonzero = 0;
  for (size_t i = cut; i < traffic.size(); ++i) {
    const Scored sa = d.Update(a, {.item = traffic[i].item, .time = traffic[i].time});
    const Scored sb = d.Update(b, {.item = traffic[i].item, .time = traffic[i].time});
    ASSERT_EQ(sa.score, sb.score) << i;
    ASSERT_EQ(sa.raw, sb.raw) << i;
    nonzero += sa.score > 0;
  }
  EXPECT_GT(nonzero, 0u);
  std::string bytes = w.Take();
  for (size_t len = 0; len < bytes.size(); len += 97) {
    HeavyHitterState c;
    ByteReader t(std::string_view(bytes).substr(0, len));
    EXPECT_FALSE(HeavyHitterState::Decode(t, &c) && t.Finish().ok()) << len;
  }
}

TEST(HeavyHitters, MemoryIsBounded) {
  const HeavyHitterDetector d = MakeDetector();
  HeavyHitterState st;
  SplitMix64 rng(5);
  size_t peak = 0;
  for (int i = 0; i < 600'000; ++i) {
    d.Update(st, {.item = std::to_string(rng.Next()), .time = i * 3 / 5});  // 6 windows of distinct items
    if (i % 10'000 == 0) peak = std::max(peak, st.MemoryBytes());
  }
  // (reference_windows + 1) sketches of capacity 1024, the reference, the table.
  EXPECT_LT(peak, 6u * 1024 * 100 + 1024 * 24 + 100'000);
  EXPECT_EQ(st.past.size(), 4u);
}

TEST(HeavyHitters, RejectsBadConfig) {
  auto msg = [](HeavyHitterConfig c) { return std::string(HeavyHitterDetector::Create(c).status().message()); };
  EXPECT_THAT(msg({.window_ms = -5}), HasSubstr("window -5 ms must be positive"));
  EXPECT_THAT(msg({.top_k = 0}), HasSubstr("top_k 0 is out of range 1..1000"));
  EXPECT_THAT(msg({.top_k = 20, .capacity = 30}), HasSubstr("capacity 30 is out of range 40..1048576"));
  EXPECT_THAT(msg({.reference_windows = 0}), HasSubstr("reference_windows 0 is out of range 1..64"));
  EXPECT_THAT(msg({.min_rank_rise = 0.5}), HasSubstr("min_rank_rise 0.5 must be at least 1"));
  EXPECT_THAT(msg({.eval_every = 10}), HasSubstr("eval_every 10 records must be at least 64"));
  EXPECT_THAT(msg({.min_reference_records = 0}), HasSubstr("min_reference_records 0 must be at least 1"));
}

// Damaged state bytes: Decode refuses them or yields a state that Update can
// use (or resets) without reading out of bounds; ASan and UBSan check this.
TEST(HeavyHitters, DamagedStateNeverCrashes) {
  const HeavyHitterDetector d =
      MakeDetector({.window_ms = 100, .top_k = 2, .capacity = 8, .reference_windows = 2, .min_reference_records = 10});
  HeavyHitterState valid;
  for (int i = 0; i < 2000; ++i) d.Update(valid, {.item = std::to_string(i % 13 == 0 ? 99 : i % 5), .time = i / 3});
  ByteWriter w;
  valid.Encode(w);
  const std::string bytes = w.Take();
  SplitMix64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng.Next() % 4);
    for (int f = 0; f < flips; ++f) damaged[rng.Next() % damaged.size()] ^= static_cast<char>(1 + rng.Next() % 255);
    HeavyHitterState st;
    ByteReader r(damaged);
    if (!HeavyHitterState::Decode(r, &st)) continue;
    for (int i = 0; i < 200; ++i) d.Update(st, {.item = std::to_string(i % 7), .time = 1000 + i});
  }
}

}  // namespace
}  // namespace cairn::detect
