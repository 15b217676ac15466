#include "cairn/detect/novelty.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "fmt/format.h"

namespace cairn::detect {
namespace {

using ::testing::HasSubstr;

NoveltyDetector MakeDetector(NoveltyConfig c = {}) {
  c.item_name = "device";
  auto d = NoveltyDetector::Create(c);
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

// `n` records: a known device (1000 of them) except, with probability
// `new_rate`, a device never used before.
std::vector<std::string> Devices(size_t n, double new_rate, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<std::string> out;
  out.reserve(n);
  uint64_t next_new = 0;
  for (size_t i = 0; i < n; ++i) {
    if (rng.NextDouble() < new_rate) {
      out.push_back(fmt::format("new-{}-{}", seed, next_new++));
    } else {
      out.push_back(fmt::format("robot-{}", rng.Next() % 1000));
    }
  }
  return out;
}

TEST(Novelty, DetectsANewDeviceAndExplainsIt) {
  const NoveltyDetector d = MakeDetector({.expected_items = 10'000, .half_life = 20'000});
  NoveltyState st;
  double max_normal = 0.0;
  for (const std::string& dev : Devices(200'000, 0.0, 1)) {
    max_normal = std::max(max_normal, d.Update(st, {.item = dev}).score);
  }
  EXPECT_EQ(max_normal, 0.0);  // only known devices after the warm-up
  const Observation obs{.item = "robot-1017"};
  const Scored s = d.Update(st, obs);
  EXPECT_GT(s.score, 0.9999);
  EXPECT_GT(s.raw, 10'000);
  EXPECT_THAT(d.Explain(st, obs, s), HasSubstr("first time device 'robot-1017' is seen (new items are 1 in "));
  // Seen now: no longer new.
  const Scored again = d.Update(st, obs);
  EXPECT_EQ(again.score, 0.0);
  EXPECT_THAT(d.Explain(st, obs, again), HasSubstr("device 'robot-1017' has been seen before"));
}

TEST(Novelty, StreamsFullOfNewItemsDoNotAlarm) {
  const NoveltyDetector d = MakeDetector({.expected_items = 100'000});
  NoveltyState st;
  size_t flagged = 0;
  const auto devices = Devices(300'000, 0.1, 2);
  for (const std::string& dev : devices) flagged += d.Update(st, {.item = dev}).score >= ThresholdFor(0.01);
  EXPECT_EQ(flagged, 0u);
}

// With a steady rate r of new items, the flagged fraction stays below the
// false-alarm rate f: none when r > f, about r (the new items) when r < f.
TEST(Novelty, CalibratedOnSteadyStreams) {
  for (double r : {0.01, 0.001, 0.0001}) {
    // The filter is sized for all the items: past its size, false positives
    // hide new items and the rate of new items looks lower than it is.
    const auto expected = static_cast<uint64_t>(2000 + 1.2e6 * r);
    const NoveltyDetector d = MakeDetector({.expected_items = expected, .half_life = 20'000});
    NoveltyState st;
    const auto devices = Devices(1'000'000, r, 3);
    size_t scored = 0;
    std::vector<size_t> flagged(3);
    const double fs[] = {0.01, 0.001, 0.0001};
    for (size_t i = 0; i < devices.size(); ++i) {
      const Scored s = d.Update(st, {.item = devices[i]});
      if (i < 100'000) continue;  // the rate settles within a few half-lives
      ++scored;
      for (int j = 0; j < 3; ++j) flagged[j] += s.score >= ThresholdFor(fs[j]);
    }
    for (int j = 0; j < 3; ++j) {
      const double rate = static_cast<double>(flagged[j]) / scored;
      RecordProperty(fmt::format("new{}_at_{}", r, fs[j]), std::to_string(rate));
      EXPECT_LT(rate, 1.5 * fs[j] + 1e-5) << "new rate " << r << ", f " << fs[j];
      if (r < fs[j] / 3) {
        EXPECT_GT(rate, 0.5 * r) << "new rate " << r << ", f " << fs[j];
      }
      if (r > fs[j] * 3) {
        EXPECT_LT(rate, 0.05 * fs[j]) << "new rate " << r << ", f " << fs[j];
      }
    }
  }
}

TEST(Novelty, EncodeDecodeContinuesIdentically) {
  const NoveltyDetector d = MakeDetector({.expected_items = 5000, .warmup = 100});
  const auto devices = Devices(50'000, 0.01, 4);
  NoveltyState a;
  for (size_t i = 0; i < 20'000; ++i) d.Update(a, {.item = devices[i]});
  ByteWriter w;
  a.Encode(w);
  NoveltyState b;
  ByteReader r(w.data());
  ASSERT_TRUE(NoveltyState::Decode(r, &b)) << r.status();
  EXPECT_TRUE(r.Finish().ok());
  for (size_t i = 20'000; i < devices.size(); ++i) {
    const Scored sa = d.Update(a, {.item = devices[i]});
    const Scored sb = d.Update(b, {.item = devices[i]});
    ASSERT_EQ(sa.score, sb.score) << i;
    ASSERT_EQ(sa.raw, sb.raw) << i;
  }
  std::string bytes = w.Take();
  bytes[bytes.size() / 2] ^= 0x5a;  // inside the filter: its checksum fails
  ByteReader bad(bytes);
  NoveltyState c;
  EXPECT_FALSE(NoveltyState::Decode(bad, &c));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("novelty state"));
}

TEST(Novelty, MemoryIsTheFilters) {
  const NoveltyDetector d = MakeDetector({.expected_items = 100'000, .false_positive_rate = 0.01});
  NoveltyState st;
  d.Update(st, {.item = "x"});
  const size_t initial = st.MemoryBytes();
  EXPECT_LT(initial, 100'000 * 11 / 8 + 1000);  // about 10.5 bits per expected item
  for (int i = 0; i < 300'000; ++i) d.Update(st, {.item = std::to_string(i)});
  EXPECT_EQ(st.MemoryBytes(), initial);
}

TEST(Novelty, WarmupOnlyLearns) {
  const NoveltyDetector d = MakeDetector({.warmup = 10});
  NoveltyState st;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(d.Update(st, {.item = std::to_string(i)}).score, 0.0);
  EXPECT_GT(d.Update(st, {.item = "eleventh"}).score, 0.0);
  EXPECT_EQ(st.distinct, 11u);
}

TEST(Novelty, RejectsBadConfig) {
  auto msg = [](NoveltyConfig c) { return std::string(NoveltyDetector::Create(c).status().message()); };
  EXPECT_THAT(msg({.expected_items = 0}), HasSubstr("expected_items must be at least 1"));
  EXPECT_THAT(msg({.false_positive_rate = 0.9}), HasSubstr("false_positive_rate 0.9 is out of range"));
  EXPECT_THAT(msg({.half_life = 0.5}), HasSubstr("half_life 0.5 records is out of range"));
  EXPECT_THAT(msg({.warmup = -1}), HasSubstr("warmup -1 records must be >= 0"));
  EXPECT_THAT(msg({.expected_items = uint64_t{1} << 50}), HasSubstr("novelty detector: "));
}

// Damaged state bytes: Decode refuses them or yields a state that Update can
// use (or resets) without reading out of bounds; ASan and UBSan check this.
TEST(Novelty, DamagedStateNeverCrashes) {
  const NoveltyDetector d = MakeDetector({.expected_items = 100, .warmup = 10});
  NoveltyState valid;
  for (int i = 0; i < 300; ++i) d.Update(valid, {.item = std::to_string(i % 150)});
  ByteWriter w;
  valid.Encode(w);
  const std::string bytes = w.Take();
  SplitMix64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng.Next() % 4);
    for (int f = 0; f < flips; ++f) damaged[rng.Next() % damaged.size()] ^= static_cast<char>(1 + rng.Next() % 255);
    NoveltyState st;
    ByteReader r(damaged);
    if (!NoveltyState::Decode(r, &st)) continue;
    for (int i = 0; i < 200; ++i) d.Update(st, {.item = std::to_string(i)});
  }
}

}  // namespace
}  // namespace cairn::detect
