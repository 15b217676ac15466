#include "cairn/sketch/count_min.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/base/codec_testing.h"
#include "cairn/base/random.h"

namespace cairn::sketch {
namespace {

using ::testing::HasSubstr;



CountMinSketch MakeSketch(double epsilon, double delta, bool conservative = false) {
  auto s = CountMinSketch::Create(epsilon, delta, conservative);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

std::vector<uint64_t> ZipfStream(size_t n_items, uint64_t universe, double s, uint64_t seed) {
  ZipfGenerator zipf(universe, s, seed);
  std::vector<uint64_t> out(n_items);
  // Scramble ranks so keys are not small consecutive integers.
  for (auto& k : out) k = Mix64(zipf.Next());
  return out;
}

std::vector<uint64_t> UniformStream(size_t n_items, uint64_t universe, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> dist(0, universe - 1);
  std::vector<uint64_t> out(n_items);
  for (auto& k : out) k = dist(rng);
  return out;
}

std::unordered_map<uint64_t, uint64_t> TrueCounts(const std::vector<uint64_t>& stream) {
  std::unordered_map<uint64_t, uint64_t> counts;
  for (uint64_t k : stream) ++counts[k];
  return counts;
}

// Replaces the payload of a sealed blob, keeping magic and version: for crafting
// blobs that pass the envelope checks but carry bad fields.
std::string Reseal(std::string_view payload) {
  return SealEnvelope(MakeMagic("CCMS"), 1, payload);
}

std::string PayloadOf(const std::string& blob) {
  return blob.substr(kEnvelopeHeaderSize, blob.size() - kEnvelopeHeaderSize - kEnvelopeTrailerSize);
}

TEST(CountMinSketch, CreatePicksShapeFromEpsilonAndDelta) {
  CountMinSketch s = MakeSketch(0.001, 0.01);
  EXPECT_EQ(s.width(), 2719u);  // ceil(e / 0.001)
  EXPECT_EQ(s.depth(), 5u);     // ceil(ln 100)
  EXPECT_NEAR(s.epsilon(), std::numbers::e / 2719, 1e-15);
  EXPECT_NEAR(s.delta(), std::exp(-5.0), 1e-15);
  EXPECT_FALSE(s.conservative_update());
  EXPECT_EQ(s.TotalCount(), 0u);
  EXPECT_GE(s.MemoryBytes(), 5u * 2719 * sizeof(uint64_t));
  EXPECT_EQ(MakeSketch(1.0, 0.9).depth(), 1u);
}

TEST(CountMinSketch, CreateRejectsBadParameters) {
  for (double eps : {0.0, -0.1, 1.5, std::nan(""), 1e-12}) {
    EXPECT_FALSE(CountMinSketch::Create(eps, 0.01).ok()) << eps;
  }
  for (double delta : {0.0, 1.0, -1.0, std::nan(""), 1e-20}) {
    EXPECT_FALSE(CountMinSketch::Create(0.01, delta).ok()) << delta;
  }
  EXPECT_THAT(CountMinSketch::Create(0.0, 0.1).status().message(), HasSubstr("epsilon 0"));
  EXPECT_THAT(CountMinSketch::CreateWithShape(0, 10).status().message(),
              HasSubstr("depth 0 is out of range 1..32"));
  EXPECT_FALSE(CountMinSketch::CreateWithShape(33, 10).ok());
  EXPECT_THAT(CountMinSketch::CreateWithShape(1, 0).status().message(),
              HasSubstr("width 0 is out of range"));
  EXPECT_FALSE(CountMinSketch::CreateWithShape(1, CountMinSketch::kMaxWidth + 1).ok());
  EXPECT_THAT(CountMinSketch::CreateWithShape(2, CountMinSketch::kMaxWidth).status().message(),
              HasSubstr("more than the limit"));
}

TEST(CountMinSketch, CountsASingleKeyExactly) {
  CountMinSketch s = MakeSketch(0.01, 0.01);
  s.Add(uint64_t{42});
  s.Add(uint64_t{42}, 9);
  s.Add(std::string_view("press-7"), 3);
  s.Add(std::string("press-7"));
  EXPECT_EQ(s.Estimate(uint64_t{42}), 10u);
  EXPECT_EQ(s.Estimate(std::string_view("press-7")), 4u);
  EXPECT_EQ(s.Estimate("press-7"), 4u);
  EXPECT_EQ(s.TotalCount(), 14u);
  EXPECT_EQ(s.EstimateHash(Hash64(uint64_t{42}, s.seed())), 10u);
  s.AddHash(Hash64(uint64_t{42}, s.seed()), 5);
  EXPECT_EQ(s.Estimate(uint64_t{42}), 15u);
}

// Checks the Count-Min contract on a stream: never below the true count, and above
// it by more than epsilon * N for at most a delta fraction of the queried keys
// (the seen keys plus as many unseen ones).
void CheckErrorBound(const std::vector<uint64_t>& stream, double epsilon, double delta,
                     bool conservative) {
  CountMinSketch s = MakeSketch(epsilon, delta, conservative);
  for (uint64_t k : stream) s.Add(k);
  ASSERT_EQ(s.TotalCount(), stream.size());
  const auto truth = TrueCounts(stream);
  const double bound = s.epsilon() * static_cast<double>(stream.size());
  size_t queried = 0, over_bound = 0;
  for (const auto& [key, count] : truth) {
    const uint64_t est = s.Estimate(key);
    ASSERT_GE(est, count) << "under-estimate for key " << key;
    ++queried;
    if (static_cast<double>(est - count) > bound) ++over_bound;
  }
  SplitMix64 rng(99);
  for (size_t i = 0; i < truth.size(); ++i) {
    const uint64_t key = rng.Next();
    if (truth.count(key)) continue;
    ++queried;
    if (static_cast<double>(s.Estimate(key)) > bound) ++over_bound;
  }
  const double failure_rate = static_cast<double>(over_bound) / static_cast<double>(queried);
  EXPECT_LE(failure_rate, delta) << over_bound << " of " << queried << " keys over the bound";
}

TEST(CountMinSketch, ErrorBoundHoldsOnZipfStream) {
  const auto stream = ZipfStream(200000, 100000, 1.1, 1);
  CheckErrorBound(stream, 0.002, 0.01, false);
  CheckErrorBound(stream, 0.002, 0.01, true);
}

TEST(CountMinSketch, ErrorBoundHoldsOnUniformStream) {
  const auto stream = UniformStream(200000, 50000, 2);
  CheckErrorBound(stream, 0.002, 0.05, false);
  CheckErrorBound(stream, 0.002, 0.05, true);
}

TEST(CountMinSketch, ErrorBoundHoldsForWeightedAdds) {
  CountMinSketch s = MakeSketch(0.01, 0.01);
  std::mt19937_64 rng(3);
  std::unordered_map<uint64_t, uint64_t> truth;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t key = rng() % 3000, count = 1 + rng() % 100;
    s.Add(key, count);
    truth[key] += count;
  }
  size_t over = 0;
  for (const auto& [key, count] : truth) {
    ASSERT_GE(s.Estimate(key), count);
    if (static_cast<double>(s.Estimate(key) - count) > s.epsilon() * s.TotalCount()) ++over;
  }
  EXPECT_LE(over, truth.size() / 100);
}

TEST(CountMinSketch, ConservativeUpdateIsNeverWorseThanPlain) {
  const auto stream = ZipfStream(100000, 50000, 1.1, 4);
  auto plain = *CountMinSketch::CreateWithShape(4, 512, false);
  auto cons = *CountMinSketch::CreateWithShape(4, 512, true);
  for (uint64_t k : stream) {
    plain.Add(k);
    cons.Add(k);
  }
  EXPECT_TRUE(cons.conservative_update());
  uint64_t plain_error = 0, cons_error = 0;
  for (const auto& [key, count] : TrueCounts(stream)) {
    const uint64_t p = plain.Estimate(key), c = cons.Estimate(key);
    ASSERT_LE(count, c);
    ASSERT_LE(c, p);
    plain_error += p - count;
    cons_error += c - count;
  }
  // On a skewed stream conservative update removes much of the collision noise.
  EXPECT_LT(static_cast<double>(cons_error), 0.8 * static_cast<double>(plain_error));
}

TEST(CountMinSketch, MergeEqualsSketchOfUnionExactly) {
  const auto a = ZipfStream(50000, 20000, 1.1, 5);
  const auto b = UniformStream(50000, 20000, 6);
  CountMinSketch sa = MakeSketch(0.01, 0.01), sb = MakeSketch(0.01, 0.01),
                 sab = MakeSketch(0.01, 0.01);
  for (uint64_t k : a) {
    sa.Add(k);
    sab.Add(k);
  }
  for (uint64_t k : b) {
    sb.Add(k, 2);
    sab.Add(k, 2);
  }
  sa.Add("text key", 7);
  sab.Add("text key", 7);
  ASSERT_TRUE(sa.Merge(sb).ok());
  EXPECT_EQ(sa.counters(), sab.counters());
  EXPECT_EQ(sa.TotalCount(), sab.TotalCount());
  EXPECT_EQ(sa.Serialize(), sab.Serialize());
}

TEST(CountMinSketch, MergeOfConservativeSketchesStaysAnUpperBound) {
  const auto a = ZipfStream(50000, 20000, 1.1, 7);
  const auto b = ZipfStream(50000, 20000, 1.1, 8);
  auto sa = *CountMinSketch::CreateWithShape(4, 256, true);
  auto sb = *CountMinSketch::CreateWithShape(4, 256, true);
  auto plain_b = *CountMinSketch::CreateWithShape(4, 256, false);
  for (uint64_t k : a) sa.Add(k);
  for (uint64_t k : b) {
    sb.Add(k);
    plain_b.Add(k);
  }
  CountMinSketch mixed = sa;
  ASSERT_TRUE(sa.Merge(sb).ok());
  ASSERT_TRUE(mixed.Merge(plain_b).ok());  // conservative + plain is allowed too
  auto truth = TrueCounts(a);
  for (uint64_t k : b) ++truth[k];
  for (const auto& [key, count] : truth) {
    ASSERT_GE(sa.Estimate(key), count);
    ASSERT_GE(mixed.Estimate(key), count);
  }
  EXPECT_EQ(sa.TotalCount(), 100000u);
}

TEST(CountMinSketch, MergeIntoItselfDoubles) {
  CountMinSketch s = MakeSketch(0.1, 0.1);
  s.Add(uint64_t{1}, 3);
  ASSERT_TRUE(s.Merge(s).ok());
  EXPECT_EQ(s.Estimate(uint64_t{1}), 6u);
  EXPECT_EQ(s.TotalCount(), 6u);
}

TEST(CountMinSketch, MergeRejectsDifferentShapeOrSeed) {
  auto a = *CountMinSketch::CreateWithShape(4, 100);
  auto b = *CountMinSketch::CreateWithShape(4, 101);
  auto c = *CountMinSketch::CreateWithShape(5, 100);
  EXPECT_THAT(a.Merge(b).message(), HasSubstr("4x100"));
  EXPECT_FALSE(a.Merge(c).ok());
  // Same shape, another seed (as a blob from a different build would carry).
  std::string payload = PayloadOf(a.Serialize());
  payload[0] ^= 1;
  auto other_seed = CountMinSketch::Deserialize(Reseal(payload));
  ASSERT_TRUE(other_seed.ok()) << other_seed.status();
  EXPECT_THAT(a.Merge(*other_seed).message(), HasSubstr("seed"));
}

TEST(CountMinSketch, CountersSaturateInsteadOfWrapping) {
  auto s = *CountMinSketch::CreateWithShape(2, 4);
  s.Add(uint64_t{1}, ~uint64_t{0} - 1);
  s.Add(uint64_t{1}, 5);
  EXPECT_EQ(s.Estimate(uint64_t{1}), ~uint64_t{0});
  EXPECT_EQ(s.TotalCount(), ~uint64_t{0});
  CountMinSketch t = s;
  ASSERT_TRUE(t.Merge(s).ok());
  EXPECT_EQ(t.Estimate(uint64_t{1}), ~uint64_t{0});
  t.Scale(4.0);
  EXPECT_EQ(t.Estimate(uint64_t{1}), ~uint64_t{0});
  EXPECT_TRUE(CountMinSketch::Deserialize(t.Serialize()).ok());
}

TEST(CountMinSketch, ScaleDecaysCountersAndTotal) {
  auto s = *CountMinSketch::CreateWithShape(4, 1024);
  s.Add(uint64_t{1}, 100);
  s.Add(uint64_t{2}, 7);
  s.Scale(0.5);
  EXPECT_EQ(s.Estimate(uint64_t{1}), 50u);
  EXPECT_EQ(s.Estimate(uint64_t{2}), 3u);  // rounded down
  EXPECT_GE(s.TotalCount(), 53u);
  EXPECT_LE(s.TotalCount(), 54u);
  s.Scale(1.0);
  EXPECT_EQ(s.Estimate(uint64_t{1}), 50u);
  s.Scale(0.0);
  EXPECT_EQ(s.Estimate(uint64_t{1}), 0u);
  EXPECT_EQ(s.TotalCount(), 0u);
  EXPECT_TRUE(CountMinSketch::Deserialize(s.Serialize()).ok());
}

TEST(CountMinSketch, ScaledSketchStillDeserializes) {
  // Rounding each counter and the total separately must not break the row-sum check.
  CountMinSketch s = MakeSketch(0.05, 0.05);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 5000; ++i) s.Add(rng() % 500, 1 + rng() % 9);
  for (double f : {0.9, 0.37, 1.7, 0.999}) {
    s.Scale(f);
    ASSERT_TRUE(CountMinSketch::Deserialize(s.Serialize()).ok()) << f;
  }
}

TEST(CountMinSketch, ClearForgetsEverything) {
  CountMinSketch s = MakeSketch(0.1, 0.1);
  s.Add(uint64_t{5}, 5);
  s.Clear();
  EXPECT_EQ(s.Estimate(uint64_t{5}), 0u);
  EXPECT_EQ(s.TotalCount(), 0u);
}

TEST(CountMinSketch, SerializationRoundTrips) {
  for (bool conservative : {false, true}) {
    CountMinSketch s = MakeSketch(0.01, 0.001, conservative);
    for (uint64_t k : ZipfStream(20000, 5000, 1.1, 12)) s.Add(k);
    const std::string blob = s.Serialize();
    auto back = CountMinSketch::Deserialize(blob);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->counters(), s.counters());
    EXPECT_EQ(back->TotalCount(), s.TotalCount());
    EXPECT_EQ(back->depth(), s.depth());
    EXPECT_EQ(back->width(), s.width());
    EXPECT_EQ(back->conservative_update(), conservative);
    EXPECT_EQ(back->seed(), s.seed());
    EXPECT_EQ(back->Serialize(), blob);
  }
}

constexpr std::string_view kGoldenHex =
    "43434d53010000002b0000000000000001eeffc031534d43020000000800000001d70000000000000000"
    "0302000400c80105000200050001c801048d4c185be0f9c43b";

TEST(CountMinSketch, GoldenBlob) {
  auto s = *CountMinSketch::CreateWithShape(2, 8, true);
  for (uint64_t k = 1; k <= 5; ++k) s.Add(k, k);
  s.Add("cairn", 200);
  EXPECT_EQ(HexEncode(s.Serialize()), kGoldenHex);
  EXPECT_EQ(s.Estimate("cairn"), 200u);
  // And a blob of this format version keeps decoding to the same sketch.
  auto back = CountMinSketch::Deserialize(HexDecode(kGoldenHex).value());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->counters(), s.counters());
  EXPECT_TRUE(back->conservative_update());
  EXPECT_EQ(back->TotalCount(), 215u);
  EXPECT_EQ(back->Estimate(uint64_t{5}), 5u);
}

TEST(CountMinSketch, RejectsTruncatedCorruptedAndForeignBlobs) {
  CountMinSketch s = MakeSketch(0.2, 0.1);
  for (uint64_t k = 0; k < 100; ++k) s.Add(k);
  const std::string blob = s.Serialize();
  ExpectEveryTruncationAndBitFlipRejected(
      blob, [](std::string_view b) { return CountMinSketch::Deserialize(b); });
  std::string foreign = blob;
  foreign[0] = 'X';
  EXPECT_THAT(CountMinSketch::Deserialize(foreign).status().message(), HasSubstr("magic"));
  EXPECT_FALSE(CountMinSketch::Deserialize(blob + "x").ok());
  EXPECT_FALSE(CountMinSketch::Deserialize("").ok());
}

TEST(CountMinSketch, RejectsInconsistentPayloads) {
  auto s = *CountMinSketch::CreateWithShape(2, 4);
  s.Add(uint64_t{1}, 3);
  const std::string good = PayloadOf(s.Serialize());
  ASSERT_TRUE(CountMinSketch::Deserialize(Reseal(good)).ok());
  // Field offsets: seed 0..7, depth 8..11, width 12..15, flags 16, total 17..24.
  auto with = [&](size_t offset, std::string_view bytes) {
    std::string p = good;
    p.replace(offset, bytes.size(), bytes);
    return CountMinSketch::Deserialize(Reseal(p)).status();
  };
  EXPECT_THAT(with(8, std::string("\0\0\0\0", 4)).message(), HasSubstr("depth 0"));
  EXPECT_THAT(with(8, std::string("\x21\0\0\0", 4)).message(), HasSubstr("depth 33"));
  EXPECT_THAT(with(12, std::string("\0\0\0\x40", 4)).message(), HasSubstr("width"));
  EXPECT_THAT(with(12, std::string("\0\x10\0\0", 4)).message(), HasSubstr("bytes remain"));
  EXPECT_THAT(with(16, std::string("\x02", 1)).message(), HasSubstr("flags"));
  EXPECT_THAT(with(17, std::string("\x02\0\0\0\0\0\0\0", 8)).message(),
              HasSubstr("more than the total"));
  EXPECT_THAT(CountMinSketch::Deserialize(Reseal(good + "\x01")).status().message(),
              HasSubstr("trailing"));
  EXPECT_FALSE(CountMinSketch::Deserialize(Reseal(good.substr(0, good.size() - 1))).ok());
  // A varint counter running past the end.
  std::string p = good;
  p.back() = '\x80';
  EXPECT_FALSE(CountMinSketch::Deserialize(Reseal(p)).ok());
}

TEST(CountMinZipfGenerator, FollowsZipfLaw) {
  for (double s : {0.8, 1.0, 1.1, 2.0}) {
    const uint64_t n = 1000;
    ZipfGenerator zipf(n, s, 42);
    std::vector<uint64_t> hist(n + 1, 0);
    const int draws = 200000;
    for (int i = 0; i < draws; ++i) {
      const uint64_t k = zipf.Next();
      ASSERT_GE(k, 1u);
      ASSERT_LE(k, n);
      ++hist[k];
    }
    double norm = 0;
    for (uint64_t k = 1; k <= n; ++k) norm += std::pow(static_cast<double>(k), -s);
    for (uint64_t k : {1, 2, 5, 20}) {
      const double expected = draws * std::pow(static_cast<double>(k), -s) / norm;
      EXPECT_NEAR(hist[k], expected, 5 * std::sqrt(expected) + 1) << "s=" << s << " k=" << k;
    }
  }
  ZipfGenerator a(100, 1.1, 7), b(100, 1.1, 7);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.Next(), b.Next());
  ZipfGenerator one(1, 1.5, 1);
  EXPECT_EQ(one.Next(), 1u);
}

}  // namespace
}  // namespace cairn::sketch
