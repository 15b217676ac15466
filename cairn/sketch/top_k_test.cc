#include "cairn/sketch/top_k.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/base/codec_testing.h"
#include "cairn/base/random.h"

namespace cairn::sketch {
namespace {

using ::testing::HasSubstr;

using TopKU64 = TopK<uint64_t>;
using TopKStr = TopK<std::string>;



std::string Reseal(std::string_view payload) {
  return SealEnvelope(MakeMagic("CTPK"), 1, payload);
}

std::string PayloadOf(const std::string& blob) {
  return blob.substr(kEnvelopeHeaderSize, blob.size() - kEnvelopeHeaderSize - kEnvelopeTrailerSize);
}

template <typename T>
T Make(size_t capacity) {
  auto s = T::Create(capacity);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

std::vector<uint64_t> ZipfStream(size_t n_items, uint64_t universe, double s, uint64_t seed) {
  ZipfGenerator zipf(universe, s, seed);
  std::vector<uint64_t> out(n_items);
  for (auto& k : out) k = Mix64(zipf.Next());
  return out;
}

using Counts = std::unordered_map<uint64_t, uint64_t>;

Counts TrueCounts(const std::vector<uint64_t>& stream) {
  Counts counts;
  for (uint64_t k : stream) ++counts[k];
  return counts;
}

// The k-th largest true count: a key with at least this count is in the true top-k
// (ties at the boundary all count as top-k).
uint64_t KthCount(const Counts& truth, size_t k) {
  std::vector<uint64_t> c;
  for (const auto& [key, n] : truth) c.push_back(n);
  std::sort(c.rbegin(), c.rend());
  return c[std::min(k, c.size()) - 1];
}

std::vector<uint64_t> TrueTopKeys(const Counts& truth, size_t k) {
  std::vector<std::pair<uint64_t, uint64_t>> v(truth.begin(), truth.end());
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<uint64_t> keys;
  for (size_t i = 0; i < k && i < v.size(); ++i) keys.push_back(v[i].first);
  return keys;
}

// Checks the SpaceSaving contract for every monitored key and the absent ones.
void CheckBounds(const TopKU64& s, const Counts& truth, uint64_t n) {
  ASSERT_EQ(s.TotalCount(), n);
  const double bound = static_cast<double>(n) / static_cast<double>(s.capacity());
  for (const auto& item : s.Top(s.capacity())) {
    const auto it = truth.find(item.key);
    const uint64_t f = it == truth.end() ? 0 : it->second;
    ASSERT_LE(item.count - item.error, f) << item.key;
    ASSERT_GE(item.count, f) << item.key;
    ASSERT_LE(static_cast<double>(item.error), bound);
  }
  EXPECT_LE(static_cast<double>(s.MinCount()), bound);
  for (const auto& [key, f] : truth) {
    const bool present = s.Find(key).has_value();
    if (static_cast<double>(f) > bound) {
      ASSERT_TRUE(present) << key;
    }
    if (!present) {
      ASSERT_LE(f, s.MinCount());
    }
  }
}

TEST(TopK, CreateValidatesCapacity) {
  EXPECT_THAT(TopKU64::Create(0).status().message(), HasSubstr("capacity 0 is out of range"));
  EXPECT_FALSE(TopKStr::Create(TopKStr::kMaxCapacity + 1).ok());
  auto big = TopKU64::Create(TopKU64::kMaxCapacity);
  ASSERT_TRUE(big.ok());
  EXPECT_LT(big->MemoryBytes(), 4096u);  // allocated as keys arrive
  EXPECT_EQ(big->capacity(), TopKU64::kMaxCapacity);
}

TEST(TopK, ExactWhileKeysFitTheCapacity) {
  auto s = Make<TopKU64>(100);
  for (uint64_t k = 1; k <= 50; ++k) s.Add(k, k);
  s.Add(uint64_t{7});
  EXPECT_EQ(s.TotalCount(), 50u * 51 / 2 + 1);
  EXPECT_EQ(s.size(), 50u);
  EXPECT_EQ(s.MinCount(), 0u);
  const auto top = s.Top(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], (TopKU64::Item{50, 50, 0}));
  EXPECT_EQ(top[1], (TopKU64::Item{49, 49, 0}));
  EXPECT_EQ(top[2], (TopKU64::Item{48, 48, 0}));
  EXPECT_EQ(s.Find(7)->count, 8u);
  EXPECT_FALSE(s.Find(51).has_value());
  EXPECT_EQ(s.Top(1000).size(), 50u);
  s.Add(uint64_t{9}, 0);  // no-op
  EXPECT_EQ(s.TotalCount(), 50u * 51 / 2 + 1);
}

TEST(TopK, EvictsTheMinimumAndRecordsItsCountAsError) {
  auto s = Make<TopKU64>(2);
  s.Add(uint64_t{1}, 5);
  s.Add(uint64_t{2}, 3);
  s.Add(uint64_t{3});  // replaces key 2: count 3 + 1, error 3
  EXPECT_FALSE(s.Find(2).has_value());
  EXPECT_EQ(*s.Find(3), (TopKU64::Item{3, 4, 3}));
  s.Add(uint64_t{4}, 2);  // replaces key 3 (count 4 < 5): count 6, error 4
  EXPECT_EQ(s.Top(2), (std::vector<TopKU64::Item>{{4, 6, 4}, {1, 5, 0}}));
  EXPECT_EQ(s.MinCount(), 5u);
}

// Capacity 1000 for the top-100 (ratio 10): recall of the true top-100 (ties at the
// 100th count included) must be at least 0.99.
TEST(TopK, RecallOfTrueTop100OnZipf11) {
  constexpr size_t kCapacity = 1000, kK = 100;
  for (uint64_t seed : {1, 2, 3}) {
    const auto stream = ZipfStream(300000, 1000000, 1.1, seed);
    auto s = Make<TopKU64>(kCapacity);
    for (uint64_t k : stream) s.Add(k);
    const Counts truth = TrueCounts(stream);
    const uint64_t kth = KthCount(truth, kK);
    size_t hits = 0;
    for (const auto& item : s.Top(kK)) hits += truth.at(item.key) >= kth;
    EXPECT_GE(static_cast<double>(hits) / kK, 0.99) << "seed " << seed;
    CheckBounds(s, truth, stream.size());
  }
}

TEST(TopK, BoundsHoldForWeightedAndAdversarialStreams) {
  // Weighted Zipf.
  {
    auto s = Make<TopKU64>(64);
    std::mt19937_64 rng(5);
    ZipfGenerator zipf(5000, 0.9, 5);
    Counts truth;
    uint64_t n = 0;
    for (int i = 0; i < 50000; ++i) {
      const uint64_t key = zipf.Next(), w = 1 + rng() % 20;
      s.Add(key, w);
      truth[key] += w;
      n += w;
    }
    CheckBounds(s, truth, n);
  }
  // All-distinct keys (the worst case: every add evicts).
  {
    auto s = Make<TopKU64>(100);
    Counts truth;
    for (uint64_t k = 0; k < 20000; ++k) {
      s.Add(k);
      truth[k] = 1;
    }
    CheckBounds(s, truth, 20000);
  }
  // Round-robin over capacity + 1 keys.
  {
    auto s = Make<TopKU64>(10);
    Counts truth;
    for (int i = 0; i < 11000; ++i) {
      s.Add(static_cast<uint64_t>(i % 11));
      ++truth[i % 11];
    }
    CheckBounds(s, truth, 11000);
  }
}

TEST(TopK, MergeOfHalvesContainsTrueTopKWithValidBounds) {
  constexpr size_t kCapacity = 1000, kK = 100;
  const auto stream = ZipfStream(300000, 1000000, 1.1, 9);
  const std::vector<uint64_t> first(stream.begin(), stream.begin() + stream.size() / 2);
  const std::vector<uint64_t> second(stream.begin() + stream.size() / 2, stream.end());
  auto a = Make<TopKU64>(kCapacity), b = Make<TopKU64>(kCapacity);
  for (uint64_t k : first) a.Add(k);
  for (uint64_t k : second) b.Add(k);
  ASSERT_TRUE(a.Merge(b).ok());
  const Counts truth = TrueCounts(stream);
  CheckBounds(a, truth, stream.size());
  for (uint64_t key : TrueTopKeys(truth, kK)) EXPECT_TRUE(a.Find(key).has_value()) << key;
  const uint64_t kth = KthCount(truth, kK);
  size_t hits = 0;
  for (const auto& item : a.Top(kK)) hits += truth.at(item.key) >= kth;
  EXPECT_GE(static_cast<double>(hits) / kK, 0.99);
}

TEST(TopK, MergeOfDisjointStreamsKeepsBounds) {
  auto a = Make<TopKU64>(100), b = Make<TopKU64>(100), big = Make<TopKU64>(300);
  Counts truth;
  std::mt19937_64 rng(10);
  for (int i = 0; i < 30000; ++i) {
    const uint64_t ka = rng() % 1000, kb = 1000 + rng() % 300, kc = 5000 + rng() % 50;
    a.Add(ka);
    b.Add(kb, 2);
    big.Add(kc);
    ++truth[ka];
    truth[kb] += 2;
    ++truth[kc];
  }
  ASSERT_TRUE(a.Merge(b).ok());
  ASSERT_TRUE(a.Merge(big).ok());  // a larger capacity merges into a smaller one
  EXPECT_EQ(a.size(), 100u);
  CheckBounds(a, truth, 120000);
}

TEST(TopK, MergeIntoItselfDoublesAndSmallIntoEmptyIsExact) {
  auto s = Make<TopKU64>(10);
  for (uint64_t k = 0; k < 5; ++k) s.Add(k, k + 1);
  ASSERT_TRUE(s.Merge(s).ok());
  EXPECT_EQ(s.Find(4)->count, 10u);
  EXPECT_EQ(s.TotalCount(), 30u);
  auto empty = Make<TopKU64>(10);
  ASSERT_TRUE(empty.Merge(s).ok());
  EXPECT_EQ(empty.Top(10), s.Top(10));
}

TEST(TopK, MergeRejectsSmallerCapacityOrOtherSeed) {
  auto a = Make<TopKU64>(100), b = Make<TopKU64>(99);
  EXPECT_THAT(a.Merge(b).message(), HasSubstr("capacity 99 is smaller"));
  std::string payload = PayloadOf(a.Serialize());
  payload[1] ^= 1;  // first seed byte
  auto other = TopKU64::Deserialize(Reseal(payload));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_THAT(a.Merge(*other).message(), HasSubstr("seeds"));
}

TEST(TopK, StringKeysAcceptViewsAndLiterals) {
  auto s = Make<TopKStr>(3);
  const std::string press7 = "press-7";
  s.Add(press7);
  s.Add(std::string_view("press-7"), 2);
  s.Add("press-7");
  s.Add("a key longer than the small-string buffer", 2);
  s.Add("b");
  s.Add("c");  // evicts "b"
  EXPECT_EQ(s.Find("press-7")->count, 4u);
  EXPECT_FALSE(s.Find("b").has_value());
  EXPECT_EQ(*s.Find("c"), (TopKStr::Item{"c", 2, 1}));
  const auto top = s.Top(1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].key, "press-7");
  EXPECT_GT(s.MemoryBytes(), 40u);
}

TEST(TopK, StringKeysKeepBoundsOnZipf) {
  auto s = Make<TopKStr>(200);
  ZipfGenerator zipf(100000, 1.1, 13);
  std::unordered_map<std::string, uint64_t> truth;
  for (int i = 0; i < 50000; ++i) {
    const std::string key = "sensor/" + std::to_string(zipf.Next());
    s.Add(key);
    ++truth[key];
  }
  for (const auto& item : s.Top(200)) {
    const uint64_t f = truth.count(item.key) ? truth.at(item.key) : 0;
    ASSERT_LE(item.count - item.error, f);
    ASSERT_GE(item.count, f);
    ASSERT_LE(item.error, 50000u / 200);
  }
  EXPECT_EQ(s.Top(1)[0].key, "sensor/1");
}

TEST(TopK, SerializationRoundTripsAndContinuesIdentically) {
  const auto stream = ZipfStream(40000, 100000, 1.1, 14);
  auto s = Make<TopKU64>(128);
  for (size_t i = 0; i < stream.size() / 2; ++i) s.Add(stream[i]);
  const std::string blob = s.Serialize();
  auto back = TopKU64::Deserialize(blob);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Serialize(), blob);
  EXPECT_EQ(back->Top(128), s.Top(128));
  EXPECT_EQ(back->capacity(), 128u);
  EXPECT_EQ(back->TotalCount(), s.TotalCount());
  // The restored sketch evicts exactly as the original would have.
  for (size_t i = stream.size() / 2; i < stream.size(); ++i) {
    s.Add(stream[i]);
    back->Add(stream[i]);
  }
  EXPECT_EQ(back->Serialize(), s.Serialize());

  auto str = Make<TopKStr>(4);
  for (const char* k : {"x", "y", "y", "", "zzz", "w", "x"}) str.Add(k);
  auto str_back = TopKStr::Deserialize(str.Serialize());
  ASSERT_TRUE(str_back.ok()) << str_back.status();
  EXPECT_EQ(str_back->Top(4), str.Top(4));
}

constexpr std::string_view kGoldenU64Hex =
    "4354504b0100000031000000000000000102eeffc0314b50540308000000000000000301000000000000"
    "000302020000000000000002000300000000000000030064f79b2ed673a780";
constexpr std::string_view kGoldenStringHex =
    "4354504b0100000023000000000000000202eeffc0314b5054020400000000000000020770726573732d"
    "3702000366616e0201ff5c9bbf9de81715";

TEST(TopK, GoldenBlobs) {
  auto u = Make<TopKU64>(3);
  for (uint64_t k : {1, 2, 2, 3, 3, 3, 4, 1}) u.Add(k);
  EXPECT_EQ(HexEncode(u.Serialize()), kGoldenU64Hex);
  auto s = Make<TopKStr>(2);
  for (const char* k : {"press-7", "press-7", "pump", "fan"}) s.Add(k);
  EXPECT_EQ(HexEncode(s.Serialize()), kGoldenStringHex);

  // Blobs of this format version keep decoding to the same sketches.
  auto u_back = TopKU64::Deserialize(HexDecode(kGoldenU64Hex).value());
  ASSERT_TRUE(u_back.ok()) << u_back.status();
  EXPECT_EQ(u_back->Top(3), (std::vector<TopKU64::Item>{{1, 3, 2}, {3, 3, 0}, {2, 2, 0}}));
  EXPECT_EQ(u_back->TotalCount(), 8u);
  auto s_back = TopKStr::Deserialize(HexDecode(kGoldenStringHex).value());
  ASSERT_TRUE(s_back.ok()) << s_back.status();
  EXPECT_EQ(s_back->Top(2), (std::vector<TopKStr::Item>{{"fan", 2, 1}, {"press-7", 2, 0}}));
}

TEST(TopK, KeyTypeTagKeepsStringAndIntegerBlobsApart) {
  auto s = Make<TopKStr>(4);
  s.Add("abc");
  EXPECT_THAT(TopKU64::Deserialize(s.Serialize()).status().message(),
              HasSubstr("holds string keys"));
  auto u = Make<TopKU64>(4);
  u.Add(uint64_t{1});
  EXPECT_THAT(TopKStr::Deserialize(u.Serialize()).status().message(),
              HasSubstr("holds uint64 keys"));
}

TEST(TopK, RejectsTruncatedCorruptedAndForeignBlobs) {
  auto s = Make<TopKStr>(8);
  for (const char* k : {"a", "b", "c", "a", "d", "e", "f", "g", "h", "i", "a"}) s.Add(k);
  const std::string blob = s.Serialize();
  ExpectEveryTruncationAndBitFlipRejected(
      blob, [](std::string_view b) { return TopKStr::Deserialize(b); });
  std::string foreign = blob;
  foreign[3] = 'X';
  EXPECT_THAT(TopKStr::Deserialize(foreign).status().message(), HasSubstr("magic"));
  EXPECT_FALSE(TopKStr::Deserialize(blob + std::string(1, '\0')).ok());
}

// Builds a u64 payload by hand: key type, seed, capacity, total, items.
std::string U64Payload(uint64_t capacity, uint64_t total,
                       const std::vector<TopKU64::Item>& items, uint64_t size_override = ~0ULL) {
  ByteWriter w;
  w.U8(1);
  w.U64(TopKU64::kSeed);
  w.Varint(capacity);
  w.U64(total);
  w.Varint(size_override != ~0ULL ? size_override : items.size());
  for (const auto& it : items) {
    w.U64(it.key);
    w.Varint(it.count);
    w.Varint(it.error);
  }
  return w.Take();
}

TEST(TopK, RejectsInconsistentPayloads) {
  auto decode = [](const std::string& payload) {
    return TopKU64::Deserialize(Reseal(payload)).status();
  };
  EXPECT_TRUE(decode(U64Payload(2, 5, {{1, 3, 0}, {2, 2, 0}})).ok());
  EXPECT_TRUE(decode(U64Payload(2, 6, {{1, 3, 0}, {2, 3, 2}})).ok());
  EXPECT_THAT(decode(U64Payload(0, 0, {})).message(), HasSubstr("capacity 0"));
  EXPECT_THAT(decode(U64Payload(1, 5, {{1, 3, 0}, {2, 2, 0}})).message(),
              HasSubstr("exceed the capacity"));
  EXPECT_THAT(decode(U64Payload(2, 5, {{1, 3, 0}, {1, 2, 0}})).message(),
              HasSubstr("repeats a key"));
  EXPECT_THAT(decode(U64Payload(2, 5, {{1, 0, 0}})).message(), HasSubstr("count 0"));
  EXPECT_THAT(decode(U64Payload(2, 5, {{1, 2, 3}})).message(), HasSubstr("error 3"));
  EXPECT_THAT(decode(U64Payload(2, 4, {{1, 3, 0}, {2, 2, 0}})).message(),
              HasSubstr("more than the total"));
  // Errors without evictions (not full), or above the current minimum (full).
  EXPECT_THAT(decode(U64Payload(3, 5, {{1, 3, 1}, {2, 2, 0}})).message(),
              HasSubstr("above the minimum"));
  EXPECT_THAT(decode(U64Payload(2, 9, {{1, 6, 3}, {2, 2, 0}})).message(),
              HasSubstr("above the minimum"));
  EXPECT_THAT(decode(U64Payload(1u << 20, 5, {}, 1u << 20)).message(), HasSubstr("cannot fit"));
  EXPECT_THAT(decode(U64Payload(2, 5, {{1, 3, 0}}) + "x").message(), HasSubstr("trailing"));
  std::string bad_type = U64Payload(2, 0, {});
  bad_type[0] = 7;
  EXPECT_THAT(decode(bad_type).message(), HasSubstr("unknown keys"));
}

// SpaceSaving written out directly: slots in the order keys first arrived; a new key
// takes over the lowest-index slot among those with the smallest count. The sketch
// must match it exactly (slot order, counts, errors), which the serialized form shows.
struct ModelTopK {
  size_t capacity;
  uint64_t total = 0;
  std::vector<TopKU64::Item> slots;
  std::unordered_map<uint64_t, size_t> slot_of;
  std::set<std::pair<uint64_t, size_t>> by_count;  // (count, slot): the first is evicted

  explicit ModelTopK(size_t capacity) : capacity(capacity) {}

  void Add(uint64_t key, uint64_t count) {
    if (count == 0) return;
    total += count;
    if (const auto it = slot_of.find(key); it != slot_of.end()) {
      auto& s = slots[it->second];
      by_count.erase({s.count, it->second});
      s.count += count;
      by_count.insert({s.count, it->second});
      return;
    }
    size_t v = slots.size();
    if (slots.size() < capacity) {
      slots.push_back({key, count, 0});
    } else {
      v = by_count.begin()->second;
      by_count.erase(by_count.begin());
      slot_of.erase(slots[v].key);
      slots[v] = {key, slots[v].count + count, slots[v].count};
    }
    slot_of[key] = v;
    by_count.insert({slots[v].count, v});
  }
  std::string Serialize() const { return Reseal(U64Payload(capacity, total, slots)); }
  // Takes over a sketch's state from its serialized form.
  static ModelTopK From(const TopKU64& s) {
    ModelTopK m(s.capacity());
    const std::string payload = PayloadOf(s.Serialize());
    ByteReader r(payload);
    r.U8();
    r.U64();
    r.Varint();
    m.total = r.U64();
    const uint64_t n = r.Varint();
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t key = r.U64();
      const uint64_t count = r.Varint();
      m.slots.push_back({key, count, r.Varint()});
      m.slot_of[key] = i;
      m.by_count.insert({count, i});
    }
    EXPECT_TRUE(r.Finish().ok());
    return m;
  }
};

void ExpectSameAsModel(const TopKU64& s, const ModelTopK& m, const std::string& where) {
  ASSERT_EQ(HexEncode(s.Serialize()), HexEncode(m.Serialize())) << where;
  for (const auto& item : m.slots) {
    const auto found = s.Find(item.key);
    ASSERT_TRUE(found.has_value()) << where << " key " << item.key;
    ASSERT_EQ(*found, item) << where;
  }
  const uint64_t expected_min =
      m.slots.size() < m.capacity ? 0 : m.by_count.begin()->first;
  ASSERT_EQ(s.MinCount(), expected_min) << where;
}

TEST(TopK, MatchesDirectSpaceSavingExactly) {
  // Capacities past 65535 use the table with 32-bit entries. The first part of each
  // stream misses rarely (adds branch on hit or miss); in the rest about 40% of the
  // adds miss (a full TopK<uint64_t> then adds without that branch, once it has seen
  // a period of such adds).
  for (size_t capacity : {1, 2, 3, 7, 64, 300, 65536}) {
    for (uint64_t seed : {1, 2}) {
      if (capacity > 1000 && seed > 1) continue;  // keeps the test quick
      const std::string where = fmt::format("capacity {} seed {}", capacity, seed);
      auto s = Make<TopKU64>(capacity);
      ModelTopK m(capacity);
      std::mt19937_64 rng(seed);
      ZipfGenerator zipf(4 * capacity + 50, 0.8, seed);
      const int n = capacity > 1000 ? 600000 : 20000;
      for (int i = 0; i < n; ++i) {
        // Mostly unit adds on a skewed stream, some weighted, some fresh keys.
        const bool first = i < n / 8;
        const uint64_t r = rng() % 16;
        const bool fresh = first ? r == 0 : r < 6;
        const uint64_t key = fresh ? rng() : Mix64(zipf.Next() % (capacity / 2 + 1));
        const uint64_t count = r == 6 ? rng() % 5 : (first && r == 7) ? 1 + rng() % 100 : 1;
        s.Add(key, count);
        m.Add(key, count);
        if (i % (n / 8) == 0) {
          ExpectSameAsModel(s, m, where);
          if (HasFatalFailure()) return;
        }
      }
      ExpectSameAsModel(s, m, where);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(TopK, MatchesDirectSpaceSavingAfterMergeAndDecode) {
  auto a = Make<TopKU64>(50), b = Make<TopKU64>(80);
  std::mt19937_64 rng(21);
  for (int i = 0; i < 5000; ++i) {
    a.Add(Mix64(rng() % 300));
    b.Add(Mix64(rng() % 200), 1 + rng() % 3);
  }
  ASSERT_TRUE(a.Merge(b).ok());
  // The merged sketch, and a decoded copy of it, keep evicting like the direct
  // algorithm started from the merged state.
  auto decoded = TopKU64::Deserialize(a.Serialize());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ModelTopK m = ModelTopK::From(a);
  for (int i = 0; i < 5000; ++i) {
    const uint64_t key = Mix64(rng() % 400), count = 1 + (rng() % 8 == 0);
    a.Add(key, count);
    decoded->Add(key, count);
    m.Add(key, count);
  }
  ExpectSameAsModel(a, m, "merged");
  ExpectSameAsModel(*decoded, m, "decoded");
}

TEST(TopK, MemoryGrowsWithKeysUpToCapacity) {
  auto s = Make<TopKU64>(1000);
  const size_t empty = s.MemoryBytes();
  for (uint64_t k = 0; k < 100000; ++k) s.Add(k);
  EXPECT_GT(s.MemoryBytes(), empty + 1000 * 24);
  EXPECT_LT(s.MemoryBytes(), 1000u * 128);
}

}  // namespace
}  // namespace cairn::sketch
