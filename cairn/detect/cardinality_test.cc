#include "cairn/detect/cardinality.h"

#include <algorithm>
#include <cmath>
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

CardinalityDetector MakeDetector(CardinalityConfig c = {}) {
  c.verb = "contacted";
  c.item_name = "destinations";
  auto d = CardinalityDetector::Create(c);
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

// Normal traffic: each of `keys` sources sends about 40 records a minute to a
// pool of its own `pool`..`pool` + 40 usual destinations, plus now and then an
// unusual one. With a pool of 200 most records are distinct and the counts
// vary like Poisson counts; with a pool of 20 they are steadier.
struct Traffic {
  struct Record {
    int key;
    std::string item;
    EventTime time;
  };
  std::vector<Record> records;
};

Traffic NormalTraffic(int keys, int minutes, uint64_t seed, int pool_size = 20) {
  Traffic t;
  SplitMix64 rng(seed);
  std::vector<int> pool(keys);
  for (int k = 0; k < keys; ++k) pool[k] = pool_size + static_cast<int>(rng.Next() % 41);
  for (int minute = 0; minute < minutes; ++minute) {
    for (int k = 0; k < keys; ++k) {
      const int n = 30 + static_cast<int>(rng.Next() % 21);
      for (int i = 0; i < n; ++i) {
        const EventTime time = minute * kMinute + static_cast<EventTime>(rng.Next() % kMinute);
        std::string item = rng.NextDouble() < 0.05 ? fmt::format("rare-{}", rng.Next() % 100000)
                                                    : fmt::format("d{}-{}", k, rng.Next() % pool[k]);
        t.records.push_back({k, std::move(item), time});
      }
    }
  }
  std::stable_sort(t.records.begin(), t.records.end(), [](const auto& a, const auto& b) { return a.time < b.time; });
  return t;
}

TEST(Cardinality, DetectsAScanAndExplainsIt) {
  const CardinalityDetector d = MakeDetector();
  Traffic t = NormalTraffic(20, 60, 1);
  std::vector<CardinalityState> states(20);
  double max_normal = 0.0;
  for (const auto& r : t.records) {
    const std::string key = fmt::format("10.0.0.{}", r.key);
    const Scored s = d.Update(states[r.key], {.key = key, .item = r.item, .time = r.time});
    max_normal = std::max(max_normal, s.score);
  }
  // Minute 60: source 7 scans 900 distinct destinations.
  double max_scan = 0.0;
  std::string reason;
  for (int i = 0; i < 900; ++i) {
    const std::string item = fmt::format("scan-{}", i);
    const Observation obs{.key = "10.0.0.7", .item = item, .time = 60 * kMinute + i * 50};
    const Scored s = d.Update(states[7], obs);
    if (s.score > max_scan) {
      max_scan = s.score;
      reason = d.Explain(states[7], obs, s);
    }
  }
  EXPECT_GT(max_scan, 0.99999);
  EXPECT_LT(max_normal, 0.9999);
  EXPECT_THAT(reason, HasSubstr("10.0.0.7 contacted "));
  EXPECT_THAT(reason, HasSubstr("distinct destinations in the last 1 min; usually "));
  // The estimate is close to the truth (900 scanned + the usual ones).
  EXPECT_GT(d.Estimate(states[7]), 700);
  EXPECT_LT(d.Estimate(states[7]), 1300);
  const auto [median, spread] = d.Baseline(states[7]);
  EXPECT_GT(median, 10);
  EXPECT_LT(median, 80);
  EXPECT_GT(spread, 0);
}

// Per window (the count just before the window slides on) the alarm rate matches
// the false-alarm rate asked for when counts vary like Poisson counts; per
// record it is lower, because right after a slide the window is not yet full;
// with steadier counts the Poisson floor of the spread makes it lower still.
TEST(Cardinality, CalibratedOnNormalTraffic) {
  const CardinalityDetector d = MakeDetector();
  for (int pool : {200, 20}) {
    Traffic t = NormalTraffic(100, 120, 2, pool);
    std::vector<CardinalityState> states(100);
    const auto warm = static_cast<uint32_t>(d.config().warmup);
    size_t records = 0, windows = 0;
    size_t rec_1pct = 0, rec_01pct = 0, win_1pct = 0, win_01pct = 0;
    for (const auto& r : t.records) {
      CardinalityState& st = states[r.key];
      if (st.samples >= warm && r.time >= st.bucket_end) {  // the window ending with this sub-window
        ++windows;
        win_1pct += st.score >= ThresholdFor(0.01);
        win_01pct += st.score >= ThresholdFor(0.001);
      }
      const Scored s = d.Update(st, {.key = "k", .item = r.item, .time = r.time});
      if (st.samples < warm) continue;
      ++records;
      rec_1pct += s.score >= ThresholdFor(0.01);
      rec_01pct += s.score >= ThresholdFor(0.001);
    }
    ASSERT_GT(records, 400'000u);
    ASSERT_GT(windows, 40'000u);
    const double w1 = static_cast<double>(win_1pct) / windows, w01 = static_cast<double>(win_01pct) / windows;
    const double r1 = static_cast<double>(rec_1pct) / records, r01 = static_cast<double>(rec_01pct) / records;
    RecordProperty(fmt::format("pool{}_windows_at_1pct", pool), std::to_string(w1));
    RecordProperty(fmt::format("pool{}_windows_at_0.1pct", pool), std::to_string(w01));
    RecordProperty(fmt::format("pool{}_records_at_1pct", pool), std::to_string(r1));
    RecordProperty(fmt::format("pool{}_records_at_0.1pct", pool), std::to_string(r01));
    EXPECT_LT(w1, 0.02) << pool;
    EXPECT_LT(w01, 0.002) << pool;
    EXPECT_LT(r1, 0.01) << pool;
    EXPECT_LT(r01, 0.001) << pool;
    if (pool == 200) {
      EXPECT_GT(w1, 0.005);
      EXPECT_GT(w01, 0.0004);
    }
  }
}

TEST(Cardinality, EncodeDecodeContinuesIdentically) {
  const CardinalityDetector d = MakeDetector();
  Traffic t = NormalTraffic(5, 30, 3);
  std::vector<CardinalityState> a(5);
  const size_t half = t.records.size() / 2;
  for (size_t i = 0; i < half; ++i) d.Update(a[t.records[i].key], {.item = t.records[i].item, .time = t.records[i].time});
  std::vector<CardinalityState> b(5);
  for (int k = 0; k < 5; ++k) {
    ByteWriter w;
    a[k].Encode(w);
    ByteReader r(w.data());
    ASSERT_TRUE(CardinalityState::Decode(r, &b[k])) << r.status();
    EXPECT_TRUE(r.Finish().ok());
  }
  for (size_t i = half; i < t.records.size(); ++i) {
    const auto& rec = t.records[i];
    const Scored sa = d.Update(a[rec.key], {.item = rec.item, .time = rec.time});
    const Scored sb = d.Update(b[rec.key], {.item = rec.item, .time = rec.time});
    ASSERT_EQ(sa.score, sb.score) << i;
    ASSERT_EQ(sa.raw, sb.raw) << i;
  }
  // Truncated or damaged bytes are refused, never trusted.
  ByteWriter w;
  a[0].Encode(w);
  std::string bytes = w.Take();
  for (size_t cut = 0; cut < bytes.size(); cut += 7) {
    ByteReader r(std::string_view(bytes).substr(0, cut));
    CardinalityState s;
    EXPECT_FALSE(CardinalityState::Decode(r, &s) && r.Finish().ok()) << cut;
  }
}

// State written by the layout with stored union registers (version 1) is
// refused with a message that says so.
TEST(Cardinality, OldStateVersionIsRefusedClearly) {
  const CardinalityDetector d = MakeDetector();
  CardinalityState st;
  d.Update(st, {.item = "x", .time = 0});
  ByteWriter w;
  st.Encode(w);
  std::string bytes = w.Take();
  ASSERT_EQ(bytes[0], 2);
  bytes[0] = 1;
  ByteReader r(bytes);
  CardinalityState s;
  EXPECT_FALSE(CardinalityState::Decode(r, &s));
  EXPECT_NE(std::string(r.status().message()).find("version 1"), std::string::npos) << r.status();
}

TEST(Cardinality, StateOfAnotherShapeStartsAfresh) {
  const CardinalityDetector small = MakeDetector({.precision = 4});
  const CardinalityDetector big = MakeDetector({.precision = 8});
  CardinalityState st;
  for (int i = 0; i < 100; ++i) small.Update(st, {.item = std::to_string(i), .time = i});
  big.Update(st, {.item = "x", .time = 200});
  EXPECT_EQ(st.register_count, 4u * 256);
  EXPECT_FALSE(st.spill.empty());  // too large to sit inside the state block
  EXPECT_NEAR(big.Estimate(st), 1.0, 0.01);
}

TEST(Cardinality, LateRecordsAreIgnoredAndOutOfOrderOnesCount) {
  const CardinalityDetector d = MakeDetector({.window_ms = 4000, .buckets = 4});
  CardinalityState st;
  d.Update(st, {.item = "a", .time = 10'000});
  d.Update(st, {.item = "b", .time = 9'500});  // same window, earlier bucket
  EXPECT_NEAR(d.Estimate(st), 2.0, 0.1);
  const Scored late = d.Update(st, {.item = "c", .time = 1'000});  // older than the window
  EXPECT_EQ(late.score, 0.0);
  EXPECT_NEAR(d.Estimate(st), 2.0, 0.1);
  d.Update(st, {.item = "d", .time = 13'500});  // slides: bucket of 9.5 s drops out
  EXPECT_NEAR(d.Estimate(st), 2.0, 0.1);
}

TEST(Cardinality, MemoryIsBoundedPerKey) {
  const CardinalityDetector d = MakeDetector();
  CardinalityState st;
  d.Update(st, {.item = "first", .time = 0});
  const size_t initial = st.MemoryBytes();
  EXPECT_LT(initial, 700u);
  for (int i = 0; i < 200'000; ++i) d.Update(st, {.item = std::to_string(i), .time = i * 10});
  EXPECT_EQ(st.MemoryBytes(), initial);
}

TEST(Cardinality, RejectsBadConfig) {
  auto msg = [](CardinalityConfig c) { return std::string(CardinalityDetector::Create(c).status().message()); };
  EXPECT_THAT(msg({.window_ms = 0}), HasSubstr("window 0 ms must be positive"));
  EXPECT_THAT(msg({.window_ms = 1000, .buckets = 3}), HasSubstr("not a multiple of 3 buckets"));
  EXPECT_THAT(msg({.buckets = 0}), HasSubstr("buckets 0 is out of range"));
  EXPECT_THAT(msg({.precision = 3}), HasSubstr("precision 3 is out of range 4..12"));
  EXPECT_THAT(msg({.history = 4}), HasSubstr("history 4 is out of range"));
  EXPECT_THAT(msg({.history = 16, .warmup = 17}), HasSubstr("warmup 17 is out of range 1..16"));
  EXPECT_TRUE(CardinalityDetector::Create({}).ok());
}

TEST(Cardinality, Deterministic) {
  Traffic t = NormalTraffic(3, 20, 4);
  const CardinalityDetector d = MakeDetector();
  std::vector<double> first, second;
  for (int run = 0; run < 2; ++run) {
    std::vector<CardinalityState> st(3);
    for (const auto& r : t.records) {
      // The second run prefetches as a batching caller would: results must not change.
      if (run == 1) {
        d.PrefetchState(st[r.key], d.HashItem(r.item));
        d.Prefetch(st[r.key], d.HashItem(r.item), r.time);
      }
      (run == 0 ? first : second).push_back(d.Update(st[r.key], {.item = r.item, .time = r.time}).score);
    }
  }
  EXPECT_EQ(first, second);
}

// UpdateBatch gives what one UpdateHash per record gives, with a key's state
// appearing many times in one batch and batches of every length.
TEST(Cardinality, UpdateBatchEqualsUpdateHash) {
  const CardinalityDetector d = MakeDetector();
  Traffic t = NormalTraffic(5, 40, 9);
  std::vector<CardinalityState> one(5), batched(5);
  std::vector<double> want;
  for (const auto& r : t.records) want.push_back(d.UpdateHash(one[r.key], d.HashItem(r.item), r.time).score);
  std::vector<double> got;
  SplitMix64 rng(3);
  for (size_t i = 0; i < t.records.size();) {
    const size_t n = std::min<size_t>(rng.Next() % 100, t.records.size() - i);
    std::vector<CardinalityState*> st;
    std::vector<uint64_t> h;
    std::vector<EventTime> time;
    for (size_t k = i; k < i + n; ++k) {
      st.push_back(&batched[t.records[k].key]);
      h.push_back(d.HashItem(t.records[k].item));
      time.push_back(t.records[k].time);
    }
    std::vector<Scored> out(n + 3);  // a longer output span: the shortest span decides
    ASSERT_EQ(d.UpdateBatch(st, h, time, out), n);
    for (size_t k = 0; k < n; ++k) got.push_back(out[k].score);
    i += n;
  }
  EXPECT_EQ(got, want);
  for (int k = 0; k < 5; ++k) EXPECT_EQ(batched[k].estimate, one[k].estimate);
}

// The baseline kept from the sorted history equals the median and spread of
// sqrt(count + 3/8) found by sorting the whole history, after every window, in
// the inline and the spilled shape, while the ring wraps around many times and
// after a checkpoint round trip.
TEST(Cardinality, SortedHistoryGivesTheBaselineOfAFullSort) {
  const auto check = [](const CardinalityState& st, size_t record) {
    std::vector<float> y;
    for (size_t i = 0; i < st.samples; ++i) y.push_back(std::sqrt(st.History(i) + 0.375f));
    if (y.empty()) return;
    const auto median = [](std::vector<float> v) {
      std::sort(v.begin(), v.end());
      const size_t n = v.size();
      return n % 2 == 1 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
    };
    const float med = median(y);
    std::vector<float> dev;
    for (float v : y) dev.push_back(std::fabs(v - med));
    const float mad = median(dev);
    ASSERT_EQ(st.base_y, med) << record;
    ASSERT_EQ(st.base_s, std::max(1.4826f * mad, 0.5f) * (1.0f + 1.0f / static_cast<float>(y.size()))) << record;
    for (size_t k = 1; k < st.samples; ++k) ASSERT_LE(st.History(st.Order(k - 1)), st.History(st.Order(k))) << record;
  };
  for (const CardinalityConfig& c : {CardinalityConfig{.window_ms = kMinute, .history = 8, .warmup = 2},
                                     CardinalityConfig{.window_ms = kMinute, .history = 32},
                                     CardinalityConfig{.window_ms = kMinute, .precision = 8, .history = 41}}) {
    const CardinalityDetector d = *CardinalityDetector::Create(c);
    // Bursty counts with many ties: some windows repeat earlier counts exactly.
    Traffic t = NormalTraffic(3, 150, 1, 12);
    std::vector<CardinalityState> st(3);
    uint16_t seen = 0;
    for (size_t i = 0; i < t.records.size(); ++i) {
      const auto& r = t.records[i];
      d.Update(st[r.key], {.item = r.item, .time = r.time});
      if (st[r.key].samples != seen || i % 97 == 0) check(st[r.key], i);
      seen = st[r.key].samples;
      if (i == t.records.size() / 2) {
        for (auto& s : st) {  // continue from decoded states
          ByteWriter w;
          s.Encode(w);
          ByteReader rd(w.data());
          CardinalityState back;
          ASSERT_TRUE(CardinalityState::Decode(rd, &back)) << rd.status();
          s = back;
          check(s, i);
        }
      }
    }
    EXPECT_EQ(st[0].samples, c.history);  // the ring wrapped
  }
}

// The default shape lives in one 512-byte block; a larger one spills its
// registers and history to the heap and behaves the same: bounded, prefetching
// changes nothing, and its state round-trips.
// The window's union, recomputed plainly from the registers after every record
// (the sub-windows that left the window are zero by then): the union pass of a
// rotation (vectorized for four sub-windows) and the per-record update of the sum
// and the empty count agree with it exactly.
TEST(Cardinality, UnionSumMatchesThePlainFormulaAfterEveryRecord) {
  for (const int buckets : {4, 2, 3}) {
    const CardinalityDetector d = MakeDetector({.window_ms = 60'000, .buckets = buckets});
    const size_t m = size_t{1} << d.config().precision;
    CardinalityState st;
    SplitMix64 rng(static_cast<uint64_t>(buckets));
    int rotations_checked = 0;
    EventTime time = 0;
    for (int i = 0; i < 6000; ++i) {
      time += static_cast<EventTime>(rng.Next() % 400);
      // Distinct counts that rise and fall, so registers grow and sub-windows clear.
      const uint64_t pool = 5 + (static_cast<uint64_t>(time) / 90'000) % 7 * 40;
      const int64_t epoch_before = st.epoch;
      d.Update(st, {.item = fmt::format("i{}", rng.Next() % pool), .time = time});
      const uint8_t* regs = st.inline_registers;
      long double sum = 0;
      uint32_t zeros = 0;
      for (size_t j = 0; j < m; ++j) {
        uint8_t u = 0;
        for (int b = 0; b < buckets; ++b) u = std::max(u, regs[j * buckets + b]);
        sum += std::ldexp(1.0L, -u);
        zeros += u == 0;
      }
      ASSERT_EQ(st.inv_sum, static_cast<double>(sum)) << "buckets " << buckets << ", record " << i;
      ASSERT_EQ(st.zeros, zeros) << "buckets " << buckets << ", record " << i;
      const double raw = 0.709 * m * m / static_cast<double>(sum);
      const double expect = zeros > 0 && raw <= 2.5 * m ? m * std::log(static_cast<double>(m) / zeros) : raw;
      ASSERT_FLOAT_EQ(static_cast<float>(d.Estimate(st)), static_cast<float>(expect)) << i;
      rotations_checked += st.epoch != epoch_before && i > 0;
    }
    EXPECT_GT(rotations_checked, 30) << buckets;
  }
}

TEST(Cardinality, InlineAndSpilledShapes) {
  const CardinalityDetector small = MakeDetector();
  CardinalityState a;
  small.Update(a, {.item = "x", .time = 0});
  EXPECT_TRUE(a.spill.empty());
  EXPECT_EQ(a.MemoryBytes(), 512u);

  const CardinalityDetector big = MakeDetector({.precision = 8, .history = 64, .warmup = 4});
  Traffic t = NormalTraffic(4, 20, 12, 200);
  std::vector<CardinalityState> plain(4), fetched(4);
  const size_t half = t.records.size() / 2;
  for (size_t i = 0; i < half; ++i) {
    const auto& rec = t.records[i];
    const uint64_t h = big.HashItem(rec.item);
    big.PrefetchState(fetched[rec.key], h);
    big.Prefetch(fetched[rec.key], h, rec.time);
    const Scored x = big.UpdateHash(plain[rec.key], h, rec.time);
    const Scored y = big.UpdateHash(fetched[rec.key], h, rec.time);
    ASSERT_EQ(x.score, y.score) << i;
  }
  EXPECT_FALSE(plain[0].spill.empty());
  EXPECT_EQ(plain[0].MemoryBytes(), 512u + 4 * 256 + 64 * (4 + 2) + 16);  // registers, history, its order, size
  std::vector<CardinalityState> decoded(4);
  for (int k = 0; k < 4; ++k) {
    ByteWriter w;
    plain[k].Encode(w);
    ByteReader r(w.data());
    ASSERT_TRUE(CardinalityState::Decode(r, &decoded[k])) << r.status();
    ASSERT_TRUE(r.Finish().ok());
  }
  size_t positive = 0;
  for (size_t i = half; i < t.records.size(); ++i) {
    const auto& rec = t.records[i];
    const Scored x = big.Update(plain[rec.key], {.item = rec.item, .time = rec.time});
    const Scored y = big.Update(decoded[rec.key], {.item = rec.item, .time = rec.time});
    ASSERT_EQ(x.score, y.score) << i;
    ASSERT_EQ(x.raw, y.raw) << i;
    positive += x.score > 0;
  }
  EXPECT_GT(positive, 0u);  // the history filled and scoring ran
}

// Damaged state bytes: Decode refuses them or yields a state that Update can
// use (or resets) without reading out of bounds; ASan and UBSan check this.
TEST(Cardinality, DamagedStateNeverCrashes) {
  const CardinalityDetector d = MakeDetector({.window_ms = 4000, .buckets = 4, .history = 8, .warmup = 2});
  CardinalityState valid;
  for (int i = 0; i < 5000; ++i) d.Update(valid, {.item = std::to_string(i % 300), .time = i * 7});
  ByteWriter w;
  valid.Encode(w);
  const std::string bytes = w.Take();
  SplitMix64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng.Next() % 4);
    for (int f = 0; f < flips; ++f) damaged[rng.Next() % damaged.size()] ^= static_cast<char>(1 + rng.Next() % 255);
    CardinalityState st;
    ByteReader r(damaged);
    if (!CardinalityState::Decode(r, &st)) continue;
    for (int i = 0; i < 200; ++i) {
      d.Prefetch(st, d.HashItem(std::to_string(i)), 40'000 + i * 13);
      d.Update(st, {.item = std::to_string(i), .time = 40'000 + i * 13});
    }
  }
}

}  // namespace
}  // namespace cairn::detect
