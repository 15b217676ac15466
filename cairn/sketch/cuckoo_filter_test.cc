#include "cairn/sketch/cuckoo_filter.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/base/codec_testing.h"

namespace cairn::sketch {
namespace {

using ::testing::HasSubstr;



CuckooFilter MakeFilter(uint64_t capacity, double fpr = 0.001) {
  auto f = CuckooFilter::Create(capacity, fpr);
  EXPECT_TRUE(f.ok()) << f.status();
  return *std::move(f);
}

// Inserts random hashes until the first failure; returns them.
std::vector<uint64_t> FillUntilFull(CuckooFilter& f, std::mt19937_64& rng) {
  std::vector<uint64_t> hashes;
  for (;;) {
    const uint64_t h = rng();
    const absl::Status st = f.InsertHash(h);
    if (!st.ok()) {
      EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
      EXPECT_THAT(st.message(), HasSubstr("cuckoo filter is full (load "));
      break;
    }
    hashes.push_back(h);
  }
  return hashes;
}

TEST(CuckooFilter, CreateValidatesAndPicksFingerprintSize) {
  EXPECT_THAT(CuckooFilter::Create(0).status().message(), HasSubstr("capacity"));
  EXPECT_THAT(CuckooFilter::Create(100, 0.0).status().message(), HasSubstr("out of range"));
  EXPECT_THAT(CuckooFilter::Create(100, 1.0).status().message(), HasSubstr("out of range"));
  EXPECT_FALSE(CuckooFilter::Create(100, std::nan("")).ok());
  EXPECT_THAT(CuckooFilter::Create(100, 1e-5).status().message(), HasSubstr("BloomFilter"));
  EXPECT_THAT(CuckooFilter::Create(uint64_t{1} << 40).status().message(), HasSubstr("maximum"));
  EXPECT_EQ(MakeFilter(100, 0.01).fingerprint_bits(), 12);
  EXPECT_EQ(MakeFilter(100, 0.002).fingerprint_bits(), 12);
  EXPECT_EQ(MakeFilter(100, 0.001).fingerprint_bits(), 16);
  EXPECT_EQ(MakeFilter(100).fingerprint_bits(), 16);
  EXPECT_EQ(MakeFilter(100, 0.000125).fingerprint_bits(), 16);
  CuckooFilter f = MakeFilter(1000, 0.01);
  EXPECT_EQ(f.num_buckets(), 278u);  // ceil(1000 / (4 * 0.9))
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(f.LoadFactor(), 0.0);
  EXPECT_GE(f.MemoryBytes(), 278u * 6);
  EXPECT_LT(f.MemoryBytes(), 278u * 6 + 256);
  EXPECT_EQ(MakeFilter(1).num_buckets(), 1u);
}

TEST(CuckooFilter, NoFalseNegatives) {
  for (double fpr : {0.01, 0.001}) {
    CuckooFilter f = MakeFilter(20000, fpr);
    for (uint64_t k = 0; k < 15000; ++k) ASSERT_TRUE(f.Insert(k).ok()) << k;
    for (int i = 0; i < 5000; ++i) ASSERT_TRUE(f.Insert(fmt::format("key-{}", i)).ok()) << i;
    EXPECT_EQ(f.size(), 20000u);
    for (uint64_t k = 0; k < 15000; ++k) ASSERT_TRUE(f.Contains(k)) << k;
    for (int i = 0; i < 5000; ++i) ASSERT_TRUE(f.Contains(fmt::format("key-{}", i))) << i;
  }
}

TEST(CuckooFilter, IntegerKeyHashesLikeItsBytes) {
  CuckooFilter f = MakeFilter(100);
  const uint64_t key = 0x0102030405060708ULL;
  ASSERT_TRUE(f.Insert(std::string_view(reinterpret_cast<const char*>(&key), 8)).ok());
  EXPECT_TRUE(f.Contains(key));
  EXPECT_TRUE(f.Erase(key));
  EXPECT_EQ(f.size(), 0u);
}

TEST(CuckooFilter, EraseRemovesKeys) {
  for (double fpr : {0.01, 0.001}) {
    CuckooFilter f = MakeFilter(50000, fpr);
    for (uint64_t k = 0; k < 50000; ++k) ASSERT_TRUE(f.Insert(k).ok());
    uint64_t erased = 0;
    for (uint64_t k = 0; k < 50000; k += 2) erased += f.Erase(k);
    EXPECT_EQ(erased, 25000u);
    EXPECT_EQ(f.size(), 25000u);
    uint64_t still_there = 0;
    for (uint64_t k = 0; k < 50000; ++k) {
      if (k % 2 == 1) {
        ASSERT_TRUE(f.Contains(k)) << k;
      } else {
        still_there += f.Contains(k);
      }
    }
    // Erased keys answer like absent keys: only false positives remain.
    EXPECT_LE(static_cast<double>(still_there) / 25000, 3 * f.EstimatedFalsePositiveRate() + 4e-4);
    // Erasing keys never inserted finds (almost) nothing and never corrupts.
    uint64_t spurious = 0;
    for (uint64_t k = 1'000'000; k < 1'010'000; ++k) spurious += f.Erase(k);
    EXPECT_LE(spurious, 40u);
    EXPECT_EQ(f.size(), 25000u - spurious);
  }
}

TEST(CuckooFilter, DuplicatesNeedOneEraseEach) {
  CuckooFilter f = MakeFilter(100);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.Insert(std::string_view("dup")).ok());
  EXPECT_EQ(f.size(), 3u);
  EXPECT_TRUE(f.Erase(std::string_view("dup")));
  EXPECT_TRUE(f.Erase(std::string_view("dup")));
  EXPECT_TRUE(f.Contains(std::string_view("dup")));
  EXPECT_TRUE(f.Erase(std::string_view("dup")));
  EXPECT_FALSE(f.Contains(std::string_view("dup")));
  EXPECT_FALSE(f.Erase(std::string_view("dup")));
  // Two buckets of four slots hold 8 copies, the stash a ninth; then it is full.
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(f.Insert(uint64_t{5}).ok()) << i;
  EXPECT_EQ(f.Insert(uint64_t{5}).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(f.size(), 9u);
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(f.Erase(uint64_t{5})) << i;
  EXPECT_EQ(f.size(), 0u);
  EXPECT_FALSE(f.Contains(uint64_t{5}));
}

// Capacity is a promise: `capacity` keys always fit, and the table keeps
// taking keys to well past 95% of its slots.
TEST(CuckooFilter, FillsBeyondCapacityBeforeFailing) {
  std::mt19937_64 rng(42);
  for (uint64_t capacity : {10, 100, 1000, 12345, 100000}) {
    for (double fpr : {0.01, 0.001}) {
      CuckooFilter f = MakeFilter(capacity, fpr);
      const std::vector<uint64_t> inserted = FillUntilFull(f, rng);
      EXPECT_GE(inserted.size(), capacity) << capacity;
      if (capacity >= 1000) {
        EXPECT_GE(f.LoadFactor(), 0.95) << capacity;
      }
      std::printf("capacity %llu, %d-bit: failed at %zu keys, load %.2f%%\n",
                  static_cast<unsigned long long>(capacity), f.fingerprint_bits(),
                  inserted.size(), 100 * f.LoadFactor());
      // The failed insert lost nothing.
      EXPECT_EQ(f.size(), inserted.size());
      for (uint64_t h : inserted) ASSERT_TRUE(f.ContainsHash(h));
    }
  }
}

TEST(CuckooFilter, FullFilterRecoversAfterErase) {
  std::mt19937_64 rng(5);
  CuckooFilter f = MakeFilter(5000);
  std::vector<uint64_t> inserted = FillUntilFull(f, rng);
  const CuckooFilter before = f;
  EXPECT_FALSE(f.InsertHash(rng()).ok());
  EXPECT_FALSE(f.InsertHash(rng()).ok());
  // Failed inserts change nothing (the kick RNG aside, which is not state).
  EXPECT_TRUE(f == before);
  // Free a quarter, refill, and everything still answers.
  for (size_t i = 0; i < inserted.size() / 4; ++i) ASSERT_TRUE(f.EraseHash(inserted[i]));
  inserted.erase(inserted.begin(), inserted.begin() + inserted.size() / 4);
  for (uint64_t h : inserted) ASSERT_TRUE(f.ContainsHash(h));
  std::vector<uint64_t> more = FillUntilFull(f, rng);
  EXPECT_GT(more.size(), 1000u);
  for (uint64_t h : inserted) ASSERT_TRUE(f.ContainsHash(h));
  for (uint64_t h : more) ASSERT_TRUE(f.ContainsHash(h));
  EXPECT_EQ(f.size(), inserted.size() + more.size());
  // Erase everything: the table is empty again.
  for (uint64_t h : inserted) ASSERT_TRUE(f.EraseHash(h));
  for (uint64_t h : more) ASSERT_TRUE(f.EraseHash(h));
  EXPECT_EQ(f.size(), 0u);
  EXPECT_TRUE(f == MakeFilter(5000));
}

// Measures the numbers documented in cuckoo_filter.h.
TEST(CuckooFilter, DocumentedFprAtLoad) {
  struct Row {
    double load;
    double documented_12;
    double documented_16;
  };
  const Row rows[] = {{0.50, 0.00099, 0.000057}, {0.90, 0.00179, 0.000114},
                      {0.95, 0.00188, 0.000116}};
  for (double fpr : {0.01, 0.001}) {
    CuckooFilter f = MakeFilter(200'000, fpr);
    std::mt19937_64 rng(99);
    for (const Row& row : rows) {
      const uint64_t target = static_cast<uint64_t>(row.load * f.num_slots());
      while (f.size() < target) ASSERT_TRUE(f.InsertHash(rng()).ok());
      const uint64_t queries = f.fingerprint_bits() == 12 ? 2'000'000 : 8'000'000;
      uint64_t fp = 0;
      for (uint64_t q = 0; q < queries; ++q) fp += f.ContainsHash(rng());
      const double measured = static_cast<double>(fp) / static_cast<double>(queries);
      const double documented = f.fingerprint_bits() == 12 ? row.documented_12 : row.documented_16;
      std::printf("%d-bit at load %.0f%%: measured FPR %.6f%%, model %.6f%%\n",
                  f.fingerprint_bits(), 100 * row.load, 100 * measured,
                  100 * f.EstimatedFalsePositiveRate());
      // >= 900 expected false positives per row: 10% is > 3 standard errors.
      EXPECT_NEAR(measured, documented, 0.1 * documented) << row.load;
      if (row.load == 0.95) {
        EXPECT_LE(measured, f.fingerprint_bits() == 12 ? 0.00196 : 0.000122);
      }
    }
  }
}

TEST(CuckooFilter, MergeIsUnion) {
  CuckooFilter a = MakeFilter(20000);
  CuckooFilter b = MakeFilter(20000);
  for (uint64_t k = 0; k < 8000; ++k) ASSERT_TRUE(a.Insert(k).ok());
  for (uint64_t k = 6000; k < 16000; ++k) ASSERT_TRUE(b.Insert(fmt::format("s{}", k)).ok());
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.size(), 18000u);
  for (uint64_t k = 0; k < 8000; ++k) ASSERT_TRUE(a.Contains(k));
  for (uint64_t k = 6000; k < 16000; ++k) ASSERT_TRUE(a.Contains(fmt::format("s{}", k)));
  // Erasing b's keys leaves exactly a's.
  for (uint64_t k = 6000; k < 16000; ++k) ASSERT_TRUE(a.Erase(fmt::format("s{}", k)));
  EXPECT_EQ(a.size(), 8000u);
  for (uint64_t k = 0; k < 8000; ++k) ASSERT_TRUE(a.Contains(k));
  ASSERT_TRUE(a.Merge(a).ok());  // self-merge doubles every fingerprint
  EXPECT_EQ(a.size(), 16000u);
}

TEST(CuckooFilter, MergeRejectsMismatchedShape) {
  CuckooFilter a = MakeFilter(1000);
  EXPECT_THAT(a.Merge(MakeFilter(2000)).message(), HasSubstr("same shape"));
  EXPECT_THAT(a.Merge(MakeFilter(1000, 0.01)).message(), HasSubstr("12-bit"));
}

TEST(CuckooFilter, MergeThatDoesNotFitChangesNothing) {
  std::mt19937_64 rng(8);
  // 2224 slots. 1400 + 1500 is refused up front; 1400 + 820 (99.8% load) passes
  // the count check, fails during the inserts and is rolled back.
  for (int b_keys : {1500, 820}) {
    CuckooFilter a = MakeFilter(2000);
    CuckooFilter b = MakeFilter(2000);
    std::vector<uint64_t> a_hashes(1400), b_hashes(b_keys);
    for (uint64_t& h : a_hashes) ASSERT_TRUE(a.InsertHash(h = rng()).ok());
    for (uint64_t& h : b_hashes) ASSERT_TRUE(b.InsertHash(h = rng()).ok());
    const absl::Status st = a.Merge(b);
    EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << b_keys;
    EXPECT_THAT(st.message(), HasSubstr("cuckoo filter is full"));
    EXPECT_EQ(a.size(), 1400u);
    for (uint64_t h : a_hashes) ASSERT_TRUE(a.ContainsHash(h));
    int b_found = 0;
    for (uint64_t h : b_hashes) b_found += a.ContainsHash(h);
    EXPECT_LE(b_found, 2) << "b's fingerprints were not rolled back";
    // And it still works as a filter.
    for (uint64_t h : a_hashes) ASSERT_TRUE(a.EraseHash(h));
    EXPECT_EQ(a.size(), 0u);
  }
}

TEST(CuckooFilter, SerializeRoundTrip) {
  for (double fpr : {0.01, 0.001}) {
    CuckooFilter f = MakeFilter(3000, fpr);
    for (uint64_t k = 0; k < 3000; ++k) ASSERT_TRUE(f.Insert(k).ok());
    const std::string blob = f.Serialize();
    auto g = CuckooFilter::Deserialize(blob);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_TRUE(f == *g);
    EXPECT_EQ(g->Serialize(), blob);
    for (uint64_t k = 0; k < 3000; ++k) ASSERT_TRUE(g->Contains(k));
    EXPECT_TRUE(g->Erase(uint64_t{17}));
    EXPECT_TRUE(g->Insert(uint64_t{5000}).ok());
  }
}

TEST(CuckooFilter, StashRoundTrips) {
  std::mt19937_64 rng(13);
  CuckooFilter f = MakeFilter(500);
  std::vector<uint64_t> inserted = FillUntilFull(f, rng);
  auto g = CuckooFilter::Deserialize(f.Serialize());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(f == *g);
  for (uint64_t h : inserted) ASSERT_TRUE(g->ContainsHash(h));
  for (uint64_t h : inserted) ASSERT_TRUE(g->EraseHash(h));
  EXPECT_EQ(g->size(), 0u);
}

// The serialized format is frozen: these blobs must never change.
TEST(CuckooFilter, GoldenBlobs) {
  CuckooFilter f12 = MakeFilter(16, 0.01);
  CuckooFilter f16 = MakeFilter(8, 0.001);
  for (uint64_t k = 1; k <= 8; ++k) {
    ASSERT_TRUE(f12.Insert(k).ok());
    ASSERT_TRUE(f16.Insert(k * 1000).ok());
  }
  ASSERT_TRUE(f12.Insert(std::string_view("cairn")).ok());
  const std::string golden12 =
      "43434b4f010000004400000000000000d1ef2096b5d287090c05000000000000000900000000000000"
      "000000000000000000000000005f9de2b10c00ce42520000001c04000000008107000000001fae5600"
      "0000ecefa215402a1b38";
  const std::string golden16 =
      "43434b4f010000003e00000000000000d1ef2096b5d28709100300000000000000080000000000000000"
      "000000000000000000000000faf2156876930000c925e82300000000063ed7378dfc0000c52e17aec94f"
      "89f6";
  EXPECT_EQ(HexEncode(f12.Serialize()), golden12);
  EXPECT_EQ(HexEncode(f16.Serialize()), golden16);
  auto g12 = CuckooFilter::Deserialize(HexDecode(golden12).value());
  auto g16 = CuckooFilter::Deserialize(HexDecode(golden16).value());
  ASSERT_TRUE(g12.ok()) << g12.status();
  ASSERT_TRUE(g16.ok()) << g16.status();
  EXPECT_TRUE(*g12 == f12);
  EXPECT_TRUE(*g16 == f16);
  for (uint64_t k = 1; k <= 8; ++k) {
    EXPECT_TRUE(g12->Contains(k));
    EXPECT_TRUE(g16->Contains(k * 1000));
  }
  EXPECT_TRUE(g12->Contains(std::string_view("cairn")));
}

TEST(CuckooFilter, RejectsBadInput) {
  CuckooFilter f = MakeFilter(40, 0.01);
  for (uint64_t k = 0; k < 30; ++k) ASSERT_TRUE(f.Insert(k).ok());
  const std::string blob = f.Serialize();
  ExpectEveryTruncationAndBitFlipRejected(
      blob, [](std::string_view b) { return CuckooFilter::Deserialize(b); });
  std::string wrong_magic = blob;
  wrong_magic[3] = 'X';
  EXPECT_THAT(CuckooFilter::Deserialize(wrong_magic).status().message(), HasSubstr("magic"));
  EXPECT_FALSE(CuckooFilter::Deserialize(blob + "x").ok());
}

// Valid envelopes around bad payloads: each field is checked.
TEST(CuckooFilter, RejectsBadFields) {
  struct Fields {
    uint8_t bits = 16;
    uint64_t buckets = 2;
    uint64_t size = 1;
    uint8_t stash_used = 0;
    uint32_t stash_fp = 0;
    uint64_t stash_index = 0;
    int64_t table_bytes = -1;  // -1: the right length
  };
  auto make = [](const Fields& f) {
    ByteWriter w;
    w.U64(CuckooFilter::kSeed);
    w.U8(f.bits);
    w.U64(f.buckets);
    w.U64(f.size);
    w.U8(f.stash_used);
    w.U32(f.stash_fp);
    w.U64(f.stash_index);
    std::string table(f.table_bytes >= 0 ? static_cast<size_t>(f.table_bytes)
                                         : static_cast<size_t>(f.buckets * f.bits / 2),
                      '\0');
    if (!table.empty()) table[0] = 1;  // one fingerprint
    w.Bytes(table);
    return CuckooFilter::Deserialize(SealEnvelope(MakeMagic("CCKO"), 1, w.data())).status();
  };
  EXPECT_TRUE(make({}).ok()) << make({});
  EXPECT_TRUE(make({.bits = 12}).ok()) << make({.bits = 12});
  EXPECT_TRUE(make({.size = 2, .stash_used = 1, .stash_fp = 7, .stash_index = 1}).ok());
  EXPECT_THAT(make({.bits = 8}).message(), HasSubstr("fingerprint size"));
  EXPECT_THAT(make({.buckets = 0, .table_bytes = 0}).message(), HasSubstr("out of range"));
  EXPECT_THAT(make({.buckets = uint64_t{1} << 33, .table_bytes = 16}).message(),
              HasSubstr("out of range"));
  EXPECT_THAT(make({.buckets = uint64_t{1} << 30, .table_bytes = 16}).message(),
              HasSubstr("remain"));
  EXPECT_THAT(make({.table_bytes = 15}).message(), HasSubstr("remain"));
  EXPECT_THAT(make({.table_bytes = 17}).message(), HasSubstr("remain"));
  EXPECT_THAT(make({.size = 2}).message(), HasSubstr("size field"));
  EXPECT_THAT(make({.size = 0}).message(), HasSubstr("size field"));
  EXPECT_THAT(make({.stash_used = 2}).message(), HasSubstr("stash flag"));
  EXPECT_THAT(make({.size = 2, .stash_used = 1, .stash_fp = 0}).message(), HasSubstr("stash"));
  EXPECT_THAT(make({.size = 2, .stash_used = 1, .stash_fp = 70000}).message(),
              HasSubstr("stash"));
  EXPECT_THAT(make({.bits = 12, .size = 2, .stash_used = 1, .stash_fp = 4096}).message(),
              HasSubstr("stash"));
  EXPECT_THAT(make({.size = 2, .stash_used = 1, .stash_fp = 7, .stash_index = 2}).message(),
              HasSubstr("stash"));
  EXPECT_THAT(make({.stash_fp = 7}).message(), HasSubstr("empty stash"));
}

}  // namespace
}  // namespace cairn::sketch
