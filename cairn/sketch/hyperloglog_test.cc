#include "cairn/sketch/hyperloglog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/base/codec_testing.h"
#include "cairn/base/hash.h"

namespace cairn::sketch {
namespace {

using ::testing::HasSubstr;

// splitmix64: a bijection of its counter, so one stream never repeats a value.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t operator()() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

HyperLogLog MakeSketch(int precision) {
  absl::StatusOr<HyperLogLog> s = HyperLogLog::Create(precision);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

HyperLogLog SketchOfHashes(int precision, const std::vector<uint64_t>& hashes) {
  HyperLogLog s = MakeSketch(precision);
  for (uint64_t h : hashes) s.AddHash(h);
  return s;
}

std::vector<uint64_t> RandomHashes(size_t n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<uint64_t> out(n);
  for (auto& h : out) h = rng();
  return out;
}



// ---------------------------------------------------------------- basics

TEST(HyperLogLogTest, CreateValidatesPrecision) {
  for (int p : {3, 19, -1, 0, 64}) {
    absl::StatusOr<HyperLogLog> s = HyperLogLog::Create(p);
    ASSERT_FALSE(s.ok()) << p;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.status().message()),
                HasSubstr(fmt::format("precision {} is out of range 4..18", p)));
  }
  for (int p = HyperLogLog::kMinPrecision; p <= HyperLogLog::kMaxPrecision; ++p) {
    HyperLogLog s = MakeSketch(p);
    EXPECT_EQ(s.precision(), p);
    EXPECT_TRUE(s.is_sparse());
    EXPECT_EQ(s.Estimate(), 0.0);
    EXPECT_DOUBLE_EQ(s.RelativeStandardError(), 1.04 / std::sqrt(std::ldexp(1.0, p)));
    EXPECT_EQ(s.seed(), HyperLogLog::kSeed);
  }
}

TEST(HyperLogLogTest, KeysHashWithTheSketchSeed) {
  HyperLogLog a = MakeSketch(12);
  HyperLogLog b = MakeSketch(12);
  a.Add(uint64_t{42});
  a.Add(std::string_view("press-7"));
  a.Add(std::string("sensor"));
  b.AddHash(Hash64(uint64_t{42}, HyperLogLog::kSeed));
  b.AddHash(Hash64(std::string_view("press-7"), HyperLogLog::kSeed));
  b.AddHash(Hash64(std::string_view("sensor"), HyperLogLog::kSeed));
  EXPECT_EQ(a.Serialize(), b.Serialize());
}

TEST(HyperLogLogTest, DuplicatesDoNotCount) {
  for (int n : {50, 5000}) {
    HyperLogLog s = MakeSketch(12);
    for (int i = 0; i < n; ++i) s.Add(static_cast<uint64_t>(i));
    const std::string once = s.Serialize();
    for (int rep = 0; rep < 3; ++rep) {
      for (int i = n - 1; i >= 0; --i) s.Add(static_cast<uint64_t>(i));
    }
    EXPECT_EQ(s.Serialize(), once);
  }
}

TEST(HyperLogLogTest, SparseIsNearExact) {
  for (int p : {4, 8, 12, 18}) {
    HyperLogLog s = MakeSketch(p);
    SplitMix64 rng(p);
    size_t n = 0;
    size_t next_check = 1;
    while (n < HyperLogLog::SparseLimit(p) / 2) {
      s.AddHash(rng());
      ++n;
      if (n < next_check) continue;
      next_check += next_check / 8 + 1;
      ASSERT_TRUE(s.is_sparse());
      // Collisions of 26-bit prefixes are rare at these sizes, and the 2^26
      // registers of the sparse form make the estimate near-exact anyway.
      ASSERT_NEAR(s.Estimate(), static_cast<double>(n), 0.5 + 1e-3 * static_cast<double>(n))
          << "p=" << p;
    }
  }
}

TEST(HyperLogLogTest, TurnsDenseExactlyPastTheSparseLimit) {
  for (int p : {4, 5, 6, 12, 18}) {
    HyperLogLog s = MakeSketch(p);
    const size_t limit = HyperLogLog::SparseLimit(p);
    EXPECT_EQ(limit, (size_t{3} << p) / 16);
    // Hashes with distinct 26-bit prefixes make distinct sparse entries.
    for (uint64_t i = 0; i < limit; ++i) s.AddHash((i * 2654435761u % (1u << 26)) << 38 | 12345);
    EXPECT_TRUE(s.is_sparse()) << p;
    EXPECT_LE(s.MemoryBytes(), sizeof(HyperLogLog) + (size_t{1} << p)) << p;
    EXPECT_NEAR(s.Estimate(), static_cast<double>(limit), 0.01 * static_cast<double>(limit) + 1);
    s.AddHash(uint64_t{1} << 63 | 777);
    EXPECT_FALSE(s.is_sparse()) << p;
    EXPECT_GE(s.MemoryBytes(), sizeof(HyperLogLog) + (size_t{1} << p));
  }
}

TEST(HyperLogLogTest, ExtremeHashesReachTheMaximumRank) {
  // Hash 0 has the most leading zeros possible: rank 65 - p dense, 39 sparse,
  // and the sparse entry must fold to the same dense register.
  for (int p : {4, 12, 18}) {
    HyperLogLog via_sparse = MakeSketch(p);
    via_sparse.AddHash(0);
    via_sparse.AddHash(~uint64_t{0});
    std::vector<uint64_t> filler = RandomHashes(HyperLogLog::SparseLimit(p) * 4, 99);
    for (uint64_t h : filler) via_sparse.AddHash(h);
    ASSERT_FALSE(via_sparse.is_sparse());

    HyperLogLog direct = MakeSketch(p);
    for (uint64_t h : filler) direct.AddHash(h);
    ASSERT_FALSE(direct.is_sparse());
    direct.AddHash(0);
    direct.AddHash(~uint64_t{0});
    EXPECT_EQ(via_sparse.Serialize(), direct.Serialize()) << p;
    EXPECT_TRUE(std::isfinite(direct.Estimate()));
  }
  // A sketch whose every register holds the maximum rank (reachable only with
  // adversarial hashes) still estimates a finite, huge value.
  HyperLogLog full = MakeSketch(4);
  for (uint64_t i = 0; i < 16; ++i) full.AddHash(i << 60);
  for (uint64_t i = 0; i < 16; ++i) full.AddHash(i << 60);
  EXPECT_TRUE(std::isfinite(full.Estimate()));
  EXPECT_GT(full.Estimate(), 1e15);
}

TEST(HyperLogLogTest, DenseEstimateUsesTheFiniteRegisterCountConstant) {
  // With every register at rank 1, Ertl's estimator reduces to 2 * alpha * m, so
  // the estimate shows the alpha_m in use. Recompute alpha_m =
  // 1 / (m * integral_0^inf log2(1 + e^-t)^m e^t dt) by Simpson's rule (t = y / m).
  for (int p = HyperLogLog::kMinPrecision; p <= HyperLogLog::kMaxPrecision; ++p) {
    const double m = std::ldexp(1.0, p);
    constexpr int kSteps = 200000;
    constexpr double kRange = 4000;
    const double h = kRange / kSteps;
    double sum = 0;
    for (int i = 0; i <= kSteps; ++i) {
      const double t = i * h / m;
      const double f = std::pow(std::log2(1 + std::exp(-t)), m) * std::exp(t) / m;
      sum += f * (i == 0 || i == kSteps ? 1 : (i % 2 ? 4 : 2));
    }
    const double alpha = 1.0 / (m * sum * h / 3);

    ByteWriter w;
    w.U8(static_cast<uint8_t>(p));
    w.U8(1);
    w.U64(HyperLogLog::kSeed);
    w.Bytes(std::string(size_t{1} << p, '\x01'));
    absl::StatusOr<HyperLogLog> s =
        HyperLogLog::Deserialize(SealEnvelope(MakeMagic("CHLL"), 1, w.Take()));
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_NEAR(s->Estimate() / (2 * m), alpha, 1e-9) << "p=" << p;
  }
}

// ---------------------------------------------------------------- accuracy

struct AccuracyResult {
  double cardinality;
  double rms;
  double mean;
};

// Adds distinct random hashes to `trials` sketches and records the relative
// error each time a checkpoint cardinality is passed.
std::vector<AccuracyResult> MeasureAccuracy(int precision, int trials,
                                            const std::vector<uint64_t>& checkpoints,
                                            uint64_t seed) {
  std::vector<double> sum(checkpoints.size(), 0.0);
  std::vector<double> sum_sq(checkpoints.size(), 0.0);
  for (int t = 0; t < trials; ++t) {
    HyperLogLog s = MakeSketch(precision);
    SplitMix64 rng(seed * 1000003 + static_cast<uint64_t>(t));
    uint64_t n = 0;
    for (size_t c = 0; c < checkpoints.size(); ++c) {
      for (; n < checkpoints[c]; ++n) s.AddHash(rng());
      const double rel = s.Estimate() / static_cast<double>(n) - 1.0;
      sum[c] += rel;
      sum_sq[c] += rel * rel;
    }
  }
  std::vector<AccuracyResult> out;
  for (size_t c = 0; c < checkpoints.size(); ++c) {
    out.push_back({static_cast<double>(checkpoints[c]), std::sqrt(sum_sq[c] / trials),
                   sum[c] / trials});
  }
  return out;
}

void ExpectAccurate(int precision, int trials, const std::vector<uint64_t>& checkpoints,
                    uint64_t seed) {
  const double rse = 1.04 / std::sqrt(std::ldexp(1.0, precision));
  for (const AccuracyResult& r : MeasureAccuracy(precision, trials, checkpoints, seed)) {
    SCOPED_TRACE(fmt::format("p={} n={} trials={} rms={:.5f} mean={:+.5f} rse={:.5f}", precision,
                             r.cardinality, trials, r.rms, r.mean, rse));
    EXPECT_LE(r.rms, 3 * rse);
    // The mean of `trials` errors has a standard error of rse / sqrt(trials).
    EXPECT_LE(std::abs(r.mean), 3 * rse / std::sqrt(static_cast<double>(trials)));
  }
}

const std::vector<uint64_t> kCheckpoints = {10, 100, 1000, 10000, 100000, 1000000, 10000000};

TEST(HyperLogLogTest, AccuracyP12) {
  // 100 trials to 10^7 are 10^9 AddHash calls: ~2 s in release, ~15 s under
  // AddressSanitizer, which is within the suite's budget, so no reduced variant.
  ExpectAccurate(12, 100, kCheckpoints, 1);
}

TEST(HyperLogLogTest, AccuracyP4) {
  // With 16 registers 10^6 already lies deep in the asymptotic range.
#if defined(__SANITIZE_ADDRESS__)
  ExpectAccurate(4, 100, {10, 100, 1000, 10000, 100000}, 3);
#else
  ExpectAccurate(4, 100, {10, 100, 1000, 10000, 100000, 1000000}, 3);
#endif
}

TEST(HyperLogLogTest, AccuracyP18) {
  // 262144 registers: each trial costs a 256 KiB sketch and its 10^7 adds miss
  // the cache, so fewer trials (the bounds scale with them).
#if defined(__SANITIZE_ADDRESS__)
  ExpectAccurate(18, 4, kCheckpoints, 4);
#else
  ExpectAccurate(18, 20, kCheckpoints, 4);
#endif
}

TEST(HyperLogLogTest, AccuracyAllPrecisions) {
  for (int p = HyperLogLog::kMinPrecision; p <= HyperLogLog::kMaxPrecision; ++p) {
    ExpectAccurate(p, 10, {10, 1000, 100000}, 100 + p);
  }
}

// ---------------------------------------------------------------- merge / reduce

TEST(HyperLogLogTest, MergeEqualsSketchOfUnion) {
  // Sizes around the p = 12 sparse limit (768): sparse+sparse staying sparse,
  // sparse+sparse turning dense, sparse+dense, dense+sparse, dense+dense.
  const std::vector<std::pair<size_t, size_t>> sizes = {
      {0, 0}, {0, 10}, {10, 0}, {100, 200}, {500, 500}, {300, 5000}, {5000, 300}, {20000, 30000}};
  for (auto [na, nb] : sizes) {
    // A and B overlap in a third of B.
    std::vector<uint64_t> a = RandomHashes(na, 11);
    std::vector<uint64_t> b = RandomHashes(nb, 12);
    for (size_t i = 0; i < nb / 3 && i < na; ++i) b[i] = a[i];
    std::vector<uint64_t> all = a;
    all.insert(all.end(), b.begin(), b.end());

    HyperLogLog sa = SketchOfHashes(12, a);
    const HyperLogLog sb = SketchOfHashes(12, b);
    const HyperLogLog su = SketchOfHashes(12, all);
    ASSERT_TRUE(sa.Merge(sb).ok());
    EXPECT_EQ(sa.is_sparse(), su.is_sparse()) << na << "+" << nb;
    EXPECT_EQ(sa.Serialize(), su.Serialize()) << na << "+" << nb;
    EXPECT_EQ(sa.Estimate(), su.Estimate());
  }
}

TEST(HyperLogLogTest, MergeIsCommutativeAndIdempotent) {
  std::vector<uint64_t> a = RandomHashes(400, 21);
  std::vector<uint64_t> b = RandomHashes(7000, 22);
  HyperLogLog ab = SketchOfHashes(10, a);
  HyperLogLog ba = SketchOfHashes(10, b);
  ASSERT_TRUE(ab.Merge(SketchOfHashes(10, b)).ok());
  ASSERT_TRUE(ba.Merge(SketchOfHashes(10, a)).ok());
  EXPECT_EQ(ab.Serialize(), ba.Serialize());
  const std::string before = ab.Serialize();
  ASSERT_TRUE(ab.Merge(ab).ok());
  ASSERT_TRUE(ab.Merge(ba).ok());
  EXPECT_EQ(ab.Serialize(), before);
}

TEST(HyperLogLogTest, ReduceEqualsSketchAtLowerPrecision) {
  for (size_t n : {0, 5, 100, 3000, 50000}) {
    std::vector<uint64_t> hashes = RandomHashes(n, 31 + n);
    const HyperLogLog high = SketchOfHashes(18, hashes);
    for (int p = HyperLogLog::kMinPrecision; p <= HyperLogLog::kMaxPrecision; ++p) {
      absl::StatusOr<HyperLogLog> reduced = high.Reduce(p);
      ASSERT_TRUE(reduced.ok()) << reduced.status();
      EXPECT_EQ(reduced->precision(), p);
      const HyperLogLog direct = SketchOfHashes(p, hashes);
      EXPECT_EQ(reduced->Serialize(), direct.Serialize()) << "n=" << n << " p=" << p;
      EXPECT_EQ(reduced->MemoryBytes(), direct.MemoryBytes()) << "n=" << n << " p=" << p;
    }
  }
  // Through a chain of reductions too.
  std::vector<uint64_t> hashes = RandomHashes(200000, 7);
  HyperLogLog s = SketchOfHashes(17, hashes);
  for (int p = 16; p >= 4; p -= 3) s = *s.Reduce(p);
  EXPECT_EQ(s.Serialize(), SketchOfHashes(s.precision(), hashes).Serialize());
}

TEST(HyperLogLogTest, ReduceValidatesTarget) {
  HyperLogLog s = MakeSketch(10);
  for (int p : {11, 3, 0, 100}) {
    absl::StatusOr<HyperLogLog> r = s.Reduce(p);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("cannot reduce precision 10"));
  }
}

TEST(HyperLogLogTest, MergeOfDifferentPrecisionsTakesTheLowerOne) {
  const std::vector<size_t> sizes = {50, 2000, 100000};
  for (size_t na : sizes) {
    for (size_t nb : sizes) {
      std::vector<uint64_t> a = RandomHashes(na, 41);
      std::vector<uint64_t> b = RandomHashes(nb, 42);
      std::vector<uint64_t> all = a;
      all.insert(all.end(), b.begin(), b.end());
      const std::string expected = SketchOfHashes(12, all).Serialize();

      HyperLogLog high = SketchOfHashes(14, a);
      ASSERT_TRUE(high.Merge(SketchOfHashes(12, b)).ok());
      EXPECT_EQ(high.precision(), 12);
      EXPECT_EQ(high.Serialize(), expected) << na << "+" << nb;

      HyperLogLog low = SketchOfHashes(12, b);
      ASSERT_TRUE(low.Merge(SketchOfHashes(14, a)).ok());
      EXPECT_EQ(low.precision(), 12);
      EXPECT_EQ(low.Serialize(), expected) << na << "+" << nb;

      const double truth = static_cast<double>(na + nb);
      EXPECT_NEAR(low.Estimate(), truth, 3 * low.RelativeStandardError() * truth);
    }
  }
}

TEST(HyperLogLogTest, MergedAccuracyAcrossPrecisions) {
  // 20 pairs of (p = 16 sketch of A, p = 10 sketch of B), |A| = |B| = 50000, a
  // quarter of B shared with A.
  const double rse10 = 1.04 / 32;
  double sum_sq = 0;
  constexpr int kTrials = 20;
  for (int t = 0; t < kTrials; ++t) {
    std::vector<uint64_t> a = RandomHashes(50000, 500 + t);
    std::vector<uint64_t> b = RandomHashes(50000, 900 + t);
    for (size_t i = 0; i < 12500; ++i) b[i] = a[i];
    HyperLogLog s = SketchOfHashes(16, a);
    ASSERT_TRUE(s.Merge(SketchOfHashes(10, b)).ok());
    const double rel = s.Estimate() / 87500.0 - 1.0;
    sum_sq += rel * rel;
  }
  EXPECT_LE(std::sqrt(sum_sq / kTrials), 3 * rse10);
}

// Returns `bytes` with the stored seed replaced (and the checksum redone).
std::string WithSeed(const std::string& bytes, uint64_t seed) {
  std::string payload = bytes.substr(kEnvelopeHeaderSize,
                                     bytes.size() - kEnvelopeHeaderSize - kEnvelopeTrailerSize);
  std::memcpy(payload.data() + 2, &seed, 8);
  return SealEnvelope(MakeMagic("CHLL"), 1, payload);
}

TEST(HyperLogLogTest, MergeRefusesOtherSeeds) {
  HyperLogLog a = SketchOfHashes(12, RandomHashes(100, 1));
  absl::StatusOr<HyperLogLog> foreign =
      HyperLogLog::Deserialize(WithSeed(SketchOfHashes(12, RandomHashes(100, 2)).Serialize(), 7));
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  EXPECT_EQ(foreign->seed(), 7u);
  const std::string before = a.Serialize();
  absl::Status st = a.Merge(*foreign);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("seeds differ"));
  EXPECT_EQ(a.Serialize(), before);
  // A sketch with another seed hashes its keys with that seed.
  foreign->Add(uint64_t{5});
  HyperLogLog check = *HyperLogLog::Deserialize(WithSeed(MakeSketch(12).Serialize(), 7));
  check.Add(uint64_t{5});
  EXPECT_EQ(check.Serialize(), WithSeed(SketchOfHashes(12, {Hash64(uint64_t{5}, 7)}).Serialize(), 7));
}

// ---------------------------------------------------------------- serialization

TEST(HyperLogLogTest, RoundTripsSparseAndDense) {
  for (int p : {4, 12, 18}) {
    for (size_t n : {0, 1, 100, 1000, 100000}) {
      const HyperLogLog s = SketchOfHashes(p, RandomHashes(n, n + p));
      const std::string bytes = s.Serialize();
      absl::StatusOr<HyperLogLog> back = HyperLogLog::Deserialize(bytes);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->precision(), p);
      EXPECT_EQ(back->is_sparse(), s.is_sparse());
      EXPECT_EQ(back->Estimate(), s.Estimate());
      EXPECT_EQ(back->Serialize(), bytes);
      EXPECT_LE(back->MemoryBytes(), s.MemoryBytes());
      if (s.is_sparse()) {
        EXPECT_LT(bytes.size(), 5 * n + 40);
      } else {
        EXPECT_EQ(bytes.size(), (size_t{1} << p) + 10 + 24);
      }
    }
  }
}

TEST(HyperLogLogTest, GoldenSparse) {
  HyperLogLog s = MakeSketch(12);
  for (uint64_t k = 1; k <= 5; ++k) s.Add(k);
  ASSERT_TRUE(s.is_sparse());
  // "CHLL", version 1, flags 0, payload size 35; precision 12, sparse, seed;
  // 5 entries as varint(index delta << 6 | rank); XXH3 checksum.
  const std::string golden =
      "43484c4c0100000023000000000000000c0061482b7d5e1f3a9c05c28194f007c192ccee01c1c7a602c19b8fbf02"
      "c4e2aad0010b9f4bc42f3f27e2";
  EXPECT_EQ(HexEncode(s.Serialize()), golden);
  absl::StatusOr<HyperLogLog> back = HyperLogLog::Deserialize(HexDecode(golden).value());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Serialize(), s.Serialize());
  EXPECT_TRUE(back->is_sparse());
  EXPECT_NEAR(back->Estimate(), 5.0, 1e-3);
}

TEST(HyperLogLogTest, GoldenDense) {
  HyperLogLog s = MakeSketch(4);
  for (uint64_t k = 1; k <= 100; ++k) s.Add(k);
  ASSERT_FALSE(s.is_sparse());
  // "CHLL", version 1, flags 0, payload size 26; precision 4, dense, seed;
  // 16 register bytes; XXH3 checksum.
  const std::string golden =
      "43484c4c010000001a00000000000000040161482b7d5e1f3a9c04040405040603050403040303040404a34744d8"
      "a0a7b6a7";
  EXPECT_EQ(HexEncode(s.Serialize()), golden);
  absl::StatusOr<HyperLogLog> back = HyperLogLog::Deserialize(HexDecode(golden).value());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Serialize(), s.Serialize());
}

TEST(HyperLogLogTest, RejectsTruncatedAndCorruptedBlobs) {
  HyperLogLog sparse = MakeSketch(6);
  for (uint64_t k = 0; k < 5; ++k) sparse.Add(k);
  HyperLogLog dense = MakeSketch(4);
  for (uint64_t k = 0; k < 100; ++k) dense.Add(k);
  ASSERT_TRUE(sparse.is_sparse());
  ASSERT_FALSE(dense.is_sparse());
  for (const std::string& blob : {sparse.Serialize(), dense.Serialize()}) {
    ExpectEveryTruncationAndBitFlipRejected(
        blob, [](std::string_view b) { return HyperLogLog::Deserialize(b); });
    EXPECT_FALSE(HyperLogLog::Deserialize(blob + "x").ok());
    std::string wrong_magic = blob;
    wrong_magic[0] = 'X';
    absl::Status st = HyperLogLog::Deserialize(wrong_magic).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  }
  // A well-formed envelope of another sketch type.
  absl::Status st = HyperLogLog::Deserialize(SealEnvelope(MakeMagic("CBLM"), 1, "abc")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
}

// Seals a hand-made payload so that only the field checks can reject it.
absl::Status DecodePayload(const std::string& payload) {
  return HyperLogLog::Deserialize(SealEnvelope(MakeMagic("CHLL"), 1, payload)).status();
}

std::string Header(uint8_t precision, uint8_t mode) {
  ByteWriter w;
  w.U8(precision);
  w.U8(mode);
  w.U64(HyperLogLog::kSeed);
  return w.Take();
}

std::string SparsePayload(uint8_t precision, uint64_t count, const std::vector<uint64_t>& values) {
  ByteWriter w;
  w.Bytes(Header(precision, 0));
  w.Varint(count);
  for (uint64_t v : values) w.Varint(v);
  return w.Take();
}

TEST(HyperLogLogTest, RejectsInvalidFields) {
  auto expect_error = [](const std::string& payload, const std::string& text) {
    absl::Status st = DecodePayload(payload);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(st.message()), HasSubstr(text));
  };
  // Valid baselines first, so the failures below are the field checks.
  EXPECT_TRUE(DecodePayload(SparsePayload(12, 2, {5 << 6 | 3, 1 << 6 | 39})).ok());
  EXPECT_TRUE(DecodePayload(Header(4, 1) + std::string(16, '\x3d')).ok());  // 61 = 65 - 4

  expect_error(SparsePayload(3, 0, {}), "precision 3 is out of range 4..18");
  expect_error(SparsePayload(19, 0, {}), "precision 19 is out of range 4..18");
  expect_error(Header(12, 2), "unknown mode 2");
  expect_error(Header(12, 0).substr(0, 5), "truncated");
  // Dense: register above 65 - p, and too few register bytes.
  expect_error(Header(4, 1) + std::string(15, '\x01') + "\x3e", "register 15 holds 62");
  expect_error(Header(12, 1) + std::string(100, '\x01'), "truncated");
  expect_error(Header(4, 1) + std::string(17, '\x01'), "1 unexpected trailing bytes");
  // Sparse: ranks outside 1..39, index beyond 2^26, index not increasing,
  // count above the sparse limit or beyond the bytes, trailing bytes.
  expect_error(SparsePayload(12, 1, {5 << 6 | 0}), "rank 0, outside 1..39");
  expect_error(SparsePayload(12, 1, {5 << 6 | 40}), "rank 40, outside 1..39");
  expect_error(SparsePayload(12, 1, {uint64_t{1} << 32 | 1}), "index beyond 2^26");
  expect_error(SparsePayload(12, 2, {((uint64_t{1} << 26) - 1) << 6 | 1, 1 << 6 | 1}),
               "index beyond 2^26");
  expect_error(SparsePayload(12, 2, {5 << 6 | 1, 0 << 6 | 2}), "does not increase the index");
  expect_error(SparsePayload(4, 4, {1 << 6 | 1, 1 << 6 | 1, 1 << 6 | 1, 1 << 6 | 1}),
               "4 sparse entries exceed the limit 3 of precision 4");
  expect_error(SparsePayload(12, 500, {1 << 6 | 1}), "500 sparse entries cannot fit");
  expect_error(SparsePayload(12, 1, {1 << 6 | 1, 7}), "1 unexpected trailing bytes");
  expect_error(SparsePayload(12, 2, {100 << 6 | 1}), "truncated");
  expect_error(Header(12, 0) + std::string(11, '\xff'), "malformed varint");
}

}  // namespace
}  // namespace cairn::sketch
