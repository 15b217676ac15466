#include "cairn/sketch/bloom_filter.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "cairn/base/codec.h"
#include "cairn/base/codec_testing.h"

namespace cairn::sketch {
namespace {

using ::testing::HasSubstr;



// Inserts keys [0, n) and queries n..n+queries (all absent); returns the FP rate.
double MeasureFpr(const BloomFilter& filter, uint64_t first_absent, uint64_t queries) {
  uint64_t fp = 0;
  for (uint64_t k = first_absent; k < first_absent + queries; ++k) fp += filter.Contains(k);
  return static_cast<double>(fp) / static_cast<double>(queries);
}

TEST(BloomFilter, CreateRejectsBadParameters) {
  EXPECT_THAT(BloomFilter::Create(0, 0.01).status().message(), HasSubstr("expected_keys"));
  EXPECT_THAT(BloomFilter::Create(100, 0.0).status().message(), HasSubstr("out of range"));
  EXPECT_THAT(BloomFilter::Create(100, 0.9).status().message(), HasSubstr("out of range"));
  EXPECT_FALSE(BloomFilter::Create(100, std::nan("")).ok());
  EXPECT_THAT(BloomFilter::Create(uint64_t{1} << 62, 1e-6).status().message(),
              HasSubstr("maximum"));
  auto tiny = BloomFilter::Create(1, 0.5);
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->num_blocks(), 1u);
}

TEST(BloomFilter, NoFalseNegatives) {
  auto f = BloomFilter::Create(20000, 0.01);
  ASSERT_TRUE(f.ok());
  std::mt19937_64 rng(7);
  std::vector<uint64_t> keys(20000);
  for (auto& k : keys) k = rng();
  for (uint64_t k : keys) f->Insert(k);
  for (int i = 0; i < 5000; ++i) f->Insert(fmt::format("key-{}", i));
  for (int i = 0; i < 5000; ++i) f->InsertHash(keys[i] * 0x9E3779B97F4A7C15ULL);
  for (uint64_t k : keys) ASSERT_TRUE(f->Contains(k)) << k;
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(f->Contains(fmt::format("key-{}", i))) << i;
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(f->ContainsHash(keys[i] * 0x9E3779B97F4A7C15ULL));
}

TEST(BloomFilter, IntegerKeyHashesLikeItsBytes) {
  auto f = BloomFilter::Create(100, 0.01);
  ASSERT_TRUE(f.ok());
  const uint64_t key = 0x0102030405060708ULL;
  f->Insert(std::string_view(reinterpret_cast<const char*>(&key), 8));
  EXPECT_TRUE(f->Contains(key));
}

struct FprCase {
  uint64_t keys;
  double target;
};

class BloomFilterFpr : public ::testing::TestWithParam<FprCase> {};

// The brief: the measured FPR at the sized load is within 20% of the target and
// not above it by more than 20%. 1e6 absent queries: at 1% the standard error is
// 1%, at 0.1% about 3%, so the bounds are many sigmas wide.
TEST_P(BloomFilterFpr, MeasuredFprMeetsTarget) {
  const FprCase c = GetParam();
  auto f = BloomFilter::Create(c.keys, c.target);
  ASSERT_TRUE(f.ok());
  for (uint64_t k = 0; k < c.keys; ++k) f->Insert(k);
  const double measured = MeasureFpr(*f, uint64_t{1} << 40, 1'000'000);
  const double model = f->EstimatedFalsePositiveRate(c.keys);
  EXPECT_LE(model, c.target);
  EXPECT_GE(measured, 0.8 * c.target) << "model " << model;
  EXPECT_LE(measured, 1.2 * c.target) << "model " << model;
  // Bits per key stays near the split-block figures in the header.
  const double bits_per_key = f->num_blocks() * 256.0 / static_cast<double>(c.keys);
  if (c.target == 0.01) {
    EXPECT_NEAR(bits_per_key, 10.53, 0.05);
  }
  if (c.target == 0.001) {
    EXPECT_NEAR(bits_per_key, 16.89, 0.05);
  }
  RecordProperty("measured_fpr", fmt::format("{:.6f}", measured));
  std::printf("keys=%llu target=%.4f model=%.6f measured=%.6f bits/key=%.2f\n",
              static_cast<unsigned long long>(c.keys), c.target, model, measured, bits_per_key);
}

INSTANTIATE_TEST_SUITE_P(BloomFilter, BloomFilterFpr,
                         ::testing::Values(FprCase{100'000, 0.01}, FprCase{1'000'000, 0.01},
                                           FprCase{100'000, 0.001},
                                           FprCase{1'000'000, 0.001}),
                         [](const ::testing::TestParamInfo<FprCase>& info) {
                           return fmt::format("keys{}_fpr{}", info.param.keys,
                                              static_cast<int>(info.param.target * 10000)) +
                                  "bp";
                         });

// The sizing model is exact for ideal hashing; check that XXH3 + these salts
// follow it at loads well away from the sizing point too.
TEST(BloomFilter, MeasuredFprMatchesModel) {
  auto f = BloomFilter::Create(200'000, 0.0001);
  ASSERT_TRUE(f.ok());
  std::mt19937_64 rng(11);
  uint64_t inserted = 0;
  for (uint64_t target_load : {200'000, 400'000, 800'000}) {
    for (; inserted < target_load; ++inserted) f->InsertHash(rng());
    const double model = f->EstimatedFalsePositiveRate(inserted);
    uint64_t fp = 0;
    const uint64_t queries = 500'000;
    for (uint64_t q = 0; q < queries; ++q) fp += f->ContainsHash(rng());
    const double measured = static_cast<double>(fp) / queries;
    const double sigma = std::sqrt(model / queries);
    EXPECT_NEAR(measured, model, 5 * sigma + 0.02 * model) << "load " << inserted;
  }
}

TEST(BloomFilter, EstimatedFprGrowsWithLoad) {
  auto f = BloomFilter::Create(1000, 0.01);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->EstimatedFalsePositiveRate(0), 0.0);
  double prev = 0;
  for (uint64_t n : {10, 100, 1000, 2000, 5000, 10000}) {
    const double e = f->EstimatedFalsePositiveRate(n);
    EXPECT_GT(e, prev) << n;
    EXPECT_LE(e, 1.0);
    prev = e;
  }
  EXPECT_NEAR(f->EstimatedFalsePositiveRate(100000000), 1.0, 1e-6);
}

TEST(BloomFilter, SimdAndScalarSetTheSameBits) {
  if (!internal::kBloomUseAvx2) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937_64 rng(3);
  alignas(32) uint32_t simd[8] = {};
  uint32_t scalar[8] = {};
  for (int i = 0; i < 2000; ++i) {
    const uint32_t key = static_cast<uint32_t>(rng());
    uint32_t mask[8];
    for (int w = 0; w < 8; ++w) mask[w] = uint32_t{1} << ((key * BloomFilter::kSalts[w]) >> 27);
    bool scalar_has = true;
    for (int w = 0; w < 8; ++w) scalar_has &= (scalar[w] & mask[w]) == mask[w];
    ASSERT_EQ(internal::BloomContainsAvx2(simd, key), scalar_has);
    if (i % 4 == 0) {
      internal::BloomInsertAvx2(simd, key);
      for (int w = 0; w < 8; ++w) scalar[w] |= mask[w];
      ASSERT_TRUE(internal::BloomContainsAvx2(simd, key));
    }
    for (int w = 0; w < 8; ++w) ASSERT_EQ(simd[w], scalar[w]);
  }
}

TEST(BloomFilter, MergeEqualsFilterOfUnion) {
  auto a = BloomFilter::Create(10000, 0.01);
  auto b = BloomFilter::Create(10000, 0.01);
  auto u = BloomFilter::Create(10000, 0.01);
  ASSERT_TRUE(a.ok() && b.ok() && u.ok());
  for (uint64_t k = 0; k < 6000; ++k) {
    a->Insert(k);
    u->Insert(k);
  }
  for (uint64_t k = 4000; k < 10000; ++k) {
    b->Insert(fmt::format("s{}", k));
    u->Insert(fmt::format("s{}", k));
  }
  ASSERT_TRUE(a->Merge(*b).ok());
  EXPECT_TRUE(*a == *u);
  EXPECT_EQ(a->Serialize(), u->Serialize());
  ASSERT_TRUE(a->Merge(*a).ok());  // self-merge is a no-op
  EXPECT_TRUE(*a == *u);
}

TEST(BloomFilter, MergeRejectsMismatchedShape) {
  auto a = BloomFilter::Create(10000, 0.01);
  auto b = BloomFilter::Create(20000, 0.01);
  ASSERT_TRUE(a.ok() && b.ok());
  auto st = a->Merge(*b);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("same shape"));
}

TEST(BloomFilter, SerializeRoundTrip) {
  auto f = BloomFilter::Create(5000, 0.001);
  ASSERT_TRUE(f.ok());
  for (uint64_t k = 0; k < 5000; k += 3) f->Insert(k);
  const std::string blob = f->Serialize();
  EXPECT_EQ(blob.size(), kEnvelopeHeaderSize + kEnvelopeTrailerSize + 20 + f->num_blocks() * 32);
  auto g = BloomFilter::Deserialize(blob);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(*f == *g);
  EXPECT_EQ(g->Serialize(), blob);
  for (uint64_t k = 0; k < 5000; k += 3) ASSERT_TRUE(g->Contains(k));
  EXPECT_GE(g->MemoryBytes(), g->num_blocks() * 32);
  EXPECT_LT(g->MemoryBytes(), g->num_blocks() * 32 + 256);
}

// The serialized format is frozen: this blob must never change.
TEST(BloomFilter, GoldenBlob) {
  auto f = BloomFilter::Create(8, 0.05);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->num_blocks(), 1u);
  for (uint64_t k = 1; k <= 8; ++k) f->Insert(k);
  f->Insert("cairn");
  const std::string golden =
      "43424c4d0100000034000000000000005b537d3130da753608000000010000000000000091622220"
      "202006c4106390a0300550146401940026002d0091029406141a4c006ebfb14cf0dd2107";
  EXPECT_EQ(HexEncode(f->Serialize()), golden);
  auto g = BloomFilter::Deserialize(HexDecode(golden).value());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(*f == *g);
  for (uint64_t k = 1; k <= 8; ++k) EXPECT_TRUE(g->Contains(k));
  EXPECT_TRUE(g->Contains("cairn"));
}

TEST(BloomFilter, RejectsBadInput) {
  auto f = BloomFilter::Create(100, 0.01);
  ASSERT_TRUE(f.ok());
  for (uint64_t k = 0; k < 50; ++k) f->Insert(k);
  const std::string blob = f->Serialize();
  ExpectEveryTruncationAndBitFlipRejected(
      blob, [](std::string_view b) { return BloomFilter::Deserialize(b); });
  std::string wrong_magic = blob;
  wrong_magic[0] = 'X';
  EXPECT_THAT(BloomFilter::Deserialize(wrong_magic).status().message(), HasSubstr("magic"));
  EXPECT_FALSE(BloomFilter::Deserialize(blob + "x").ok());
}

// Valid envelopes around bad payloads: each field is checked.
TEST(BloomFilter, RejectsBadFields) {
  auto make = [](uint32_t words, uint64_t blocks, size_t bit_bytes) {
    ByteWriter w;
    w.U64(BloomFilter::kSeed);
    w.U32(words);
    w.U64(blocks);
    w.Bytes(std::string(bit_bytes, '\0'));
    return SealEnvelope(MakeMagic("CBLM"), 1, w.data());
  };
  EXPECT_TRUE(BloomFilter::Deserialize(make(8, 2, 64)).ok());
  EXPECT_THAT(BloomFilter::Deserialize(make(16, 2, 64)).status().message(),
              HasSubstr("words per block"));
  EXPECT_THAT(BloomFilter::Deserialize(make(8, 0, 0)).status().message(), HasSubstr("out of range"));
  EXPECT_THAT(BloomFilter::Deserialize(make(8, uint64_t{1} << 40, 64)).status().message(),
              HasSubstr("out of range"));
  EXPECT_THAT(BloomFilter::Deserialize(make(8, 1u << 30, 64)).status().message(),
              HasSubstr("remain"));
  EXPECT_THAT(BloomFilter::Deserialize(make(8, 2, 65)).status().message(), HasSubstr("remain"));
  EXPECT_THAT(BloomFilter::Deserialize(make(8, 2, 63)).status().message(), HasSubstr("remain"));
  // Version 2 is from the future.
  ByteWriter w;
  w.U64(BloomFilter::kSeed);
  w.U32(8);
  w.U64(1);
  w.Bytes(std::string(32, '\0'));
  EXPECT_THAT(BloomFilter::Deserialize(SealEnvelope(MakeMagic("CBLM"), 2, w.data())).status().message(),
              HasSubstr("version"));
}

TEST(BloomFilter, ForeignSeedDeserializesButDoesNotMerge) {
  ByteWriter w;
  w.U64(12345);
  w.U32(8);
  w.U64(1);
  w.Bytes(std::string(32, '\0'));
  auto foreign = BloomFilter::Deserialize(SealEnvelope(MakeMagic("CBLM"), 1, w.data()));
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(foreign->seed(), 12345u);
  auto mine = BloomFilter::Create(1, 0.5);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->num_blocks(), 1u);
  EXPECT_THAT(mine->Merge(*foreign).message(), HasSubstr("seed"));
}

}  // namespace
}  // namespace cairn::sketch
