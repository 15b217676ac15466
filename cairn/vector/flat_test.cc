#include "cairn/vector/flat.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cairn/base/random.h"
#include "gtest/gtest.h"

namespace cairn::vector {
namespace {

std::vector<float> RandomRows(size_t n, size_t dim, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> out(n * dim);
  for (float& x : out) x = static_cast<float>(rng.NextDouble() * 2 - 1);
  return out;
}

std::span<const float> Row(const std::vector<float>& m, size_t dim, size_t r) {
  return std::span<const float>(m).subspan(r * dim, dim);
}

std::unique_ptr<FlatIndex> MakeIndex(size_t dim, Metric metric,
                                     FlatStorage storage = FlatStorage::kFloat32,
                                     size_t auto_train = 1024) {
  absl::StatusOr<std::unique_ptr<FlatIndex>> index =
      FlatIndex::Create({.dim = dim, .metric = metric, .storage = storage,
                         .sq8_auto_train_size = auto_train});
  EXPECT_TRUE(index.ok()) << index.status();
  return *std::move(index);
}

// Reference distance in double precision, on the index.h scale.
double RefDistance(Metric m, std::span<const float> q, std::span<const float> v) {
  double s = 0, nq = 0, nv = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    s += m == Metric::kL2 ? (double{q[i]} - v[i]) * (double{q[i]} - v[i]) : double{q[i]} * v[i];
    nq += double{q[i]} * q[i];
    nv += double{v[i]} * v[i];
  }
  if (m == Metric::kL2) return s;
  if (m == Metric::kInnerProduct) return 1 - s;
  return 1 - s / std::sqrt(nq * nv);
}

std::vector<uint64_t> BruteForceIds(Metric m, const std::vector<float>& base, size_t dim,
                                    std::span<const float> q, size_t k,
                                    bool (*allow)(uint64_t) = nullptr) {
  std::vector<std::pair<double, uint64_t>> all;
  for (size_t r = 0; r < base.size() / dim; ++r) {
    if (allow && !allow(r)) continue;
    all.emplace_back(RefDistance(m, q, Row(base, dim, r)), r);
  }
  std::sort(all.begin(), all.end());
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < std::min(k, all.size()); ++i) ids.push_back(all[i].second);
  return ids;
}

std::vector<uint64_t> Ids(const std::vector<Neighbor>& ns) {
  std::vector<uint64_t> ids;
  for (const Neighbor& n : ns) ids.push_back(n.id);
  return ids;
}

class EvenIds : public Filter {
 public:
  bool Allows(uint64_t id) const override {
    calls.fetch_add(1, std::memory_order_relaxed);
    return id % 2 == 0;
  }
  mutable std::atomic<size_t> calls{0};
};

// Allows a short explicit list and says so through the planner hints.
class ListedIds : public Filter {
 public:
  explicit ListedIds(std::vector<uint64_t> ids, double selectivity)
      : ids_(std::move(ids)), selectivity_(selectivity) {}
  bool Allows(uint64_t id) const override {
    allows_calls.fetch_add(1, std::memory_order_relaxed);
    return std::find(ids_.begin(), ids_.end(), id) != ids_.end();
  }
  double EstimatedSelectivity() const override { return selectivity_; }
  bool ListAllowed(std::vector<uint64_t>* ids) const override {
    *ids = ids_;
    return true;
  }
  mutable std::atomic<size_t> allows_calls{0};

 private:
  std::vector<uint64_t> ids_;
  double selectivity_;
};

TEST(FlatIndex, CreateValidatesOptions) {
  EXPECT_FALSE(FlatIndex::Create({.dim = 0}).ok());
  absl::StatusOr<std::unique_ptr<FlatIndex>> ok = FlatIndex::Create({.dim = 3});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->dim(), 3u);
  EXPECT_EQ((*ok)->metric(), Metric::kL2);
  EXPECT_EQ((*ok)->size(), 0u);
  EXPECT_TRUE((*ok)->trained());
}

TEST(FlatIndex, SearchMatchesBruteForceForEveryMetric) {
  const size_t dim = 33, n = 500;
  const std::vector<float> base = RandomRows(n, dim, 1);
  const std::vector<float> queries = RandomRows(20, dim, 2);
  for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(m)));
    auto index = MakeIndex(dim, m);
    for (size_t r = 0; r < n; ++r) ASSERT_TRUE(index->Add(r, Row(base, dim, r)).ok());
    EXPECT_EQ(index->size(), n);
    for (size_t qi = 0; qi < 20; ++qi) {
      absl::StatusOr<std::vector<Neighbor>> got = index->Search(Row(queries, dim, qi), {.k = 10});
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->size(), 10u);
      EXPECT_EQ(Ids(*got), BruteForceIds(m, base, dim, Row(queries, dim, qi), 10));
      for (const Neighbor& nb : *got) {
        EXPECT_NEAR(nb.distance, RefDistance(m, Row(queries, dim, qi), Row(base, dim, nb.id)),
                    1e-4);
      }
    }
  }
}

TEST(FlatIndex, UpsertRemoveContainsGet) {
  auto index = MakeIndex(2, Metric::kL2);
  const std::vector<float> a = {1, 2}, b = {3, 4}, c = {5, 6};
  ASSERT_TRUE(index->Add(10, a).ok());
  ASSERT_TRUE(index->Add(20, b).ok());
  ASSERT_TRUE(index->Add(30, c).ok());
  ASSERT_TRUE(index->Add(10, c).ok());  // upsert
  EXPECT_EQ(index->size(), 3u);
  EXPECT_EQ(*index->Get(10), c);
  // Removing a middle row moves the last one into its place.
  ASSERT_TRUE(index->Remove(20).ok());
  EXPECT_FALSE(index->Contains(20));
  EXPECT_TRUE(index->Contains(30));
  EXPECT_EQ(*index->Get(30), c);
  EXPECT_EQ(index->size(), 2u);
  EXPECT_EQ(index->Remove(20).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(index->Get(20).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::vector<Neighbor>> got = index->Search(b, {.k = 5});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 2u);
  ASSERT_TRUE(index->Remove(10).ok());
  ASSERT_TRUE(index->Remove(30).ok());
  EXPECT_EQ(index->size(), 0u);
  got = index->Search(b, {.k = 5});
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST(FlatIndex, RejectsBadVectorsWithClearErrors) {
  auto index = MakeIndex(3, Metric::kCosine);
  const std::vector<float> two = {1, 2};
  absl::Status s = index->Add(1, two);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("2 values"), std::string_view::npos) << s;
  EXPECT_NE(s.message().find("dimension 3"), std::string_view::npos) << s;
  const std::vector<float> nan = {1, std::numeric_limits<float>::quiet_NaN(), 0};
  EXPECT_EQ(index->Add(1, nan).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> zero = {0, 0, 0};
  s = index->Add(1, zero);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("zero vector"), std::string_view::npos) << s;
  EXPECT_FALSE(index->Search(zero, {}).ok());
  EXPECT_FALSE(index->Search(two, {}).ok());
  EXPECT_FALSE(index->SearchAmong(nan, {}, 3).ok());
  EXPECT_EQ(index->size(), 0u);
  // A zero vector is fine for L2 and inner product.
  EXPECT_TRUE(MakeIndex(3, Metric::kL2)->Add(1, zero).ok());
  EXPECT_TRUE(MakeIndex(3, Metric::kInnerProduct)->Add(1, zero).ok());
}

TEST(FlatIndex, CosineStoresNormalizedVectors) {
  auto index = MakeIndex(2, Metric::kCosine);
  const std::vector<float> v = {3, 4};
  ASSERT_TRUE(index->Add(1, v).ok());
  absl::StatusOr<std::vector<float>> got = index->Get(1);
  ASSERT_TRUE(got.ok());
  EXPECT_FLOAT_EQ((*got)[0], 0.6f);
  EXPECT_FLOAT_EQ((*got)[1], 0.8f);
  const std::vector<float> q = {30, 40};
  absl::StatusOr<std::vector<Neighbor>> r = index->Search(q, {.k = 1});
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR((*r)[0].distance, 0, 1e-6);
}

TEST(FlatIndex, TiesAreBrokenBySmallerId) {
  auto index = MakeIndex(2, Metric::kL2);
  const std::vector<float> v = {1, 1};
  for (uint64_t id : {9, 3, 7, 5}) ASSERT_TRUE(index->Add(id, v).ok());
  absl::StatusOr<std::vector<Neighbor>> r = index->Search(v, {.k = 3});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Ids(*r), (std::vector<uint64_t>{3, 5, 7}));
}

TEST(FlatIndex, FilterIsAppliedDuringTheScan) {
  const size_t dim = 8, n = 200;
  const std::vector<float> base = RandomRows(n, dim, 5);
  auto index = MakeIndex(dim, Metric::kL2);
  for (size_t r = 0; r < n; ++r) ASSERT_TRUE(index->Add(r, Row(base, dim, r)).ok());
  EvenIds even;
  const std::vector<float> q = RandomRows(1, dim, 6);
  absl::StatusOr<std::vector<Neighbor>> r = index->Search(q, {.k = 15, .filter = &even});
  ASSERT_TRUE(r.ok());
  // k matching results come back, not the matching part of the unfiltered top k.
  EXPECT_EQ(Ids(*r), BruteForceIds(Metric::kL2, base, dim, q, 15,
                                   [](uint64_t id) { return id % 2 == 0; }));
  EXPECT_EQ(even.calls.load(), n);
}

TEST(FlatIndex, SelectiveListedFilterSearchesOnlyItsIds) {
  const size_t dim = 8, n = 1000;
  const std::vector<float> base = RandomRows(n, dim, 7);
  auto index = MakeIndex(dim, Metric::kL2);
  for (size_t r = 0; r < n; ++r) ASSERT_TRUE(index->Add(r, Row(base, dim, r)).ok());
  ListedIds listed({3, 50, 999, 123456, 700, 50}, 0.005);
  const std::vector<float> q = RandomRows(1, dim, 8);
  absl::StatusOr<std::vector<Neighbor>> r = index->Search(q, {.k = 10, .filter = &listed});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 4u);  // 123456 is absent, 50 counted once
  EXPECT_EQ(listed.allows_calls.load(), 0u);
  EXPECT_EQ(Ids(*r), BruteForceIds(Metric::kL2, base, dim, q, 10, [](uint64_t id) {
              return id == 3 || id == 50 || id == 999 || id == 700;
            }));
  // Unknown selectivity: the scan asks the filter instead, with the same answer.
  ListedIds unhinted({3, 50, 999, 123456, 700, 50}, -1);
  absl::StatusOr<std::vector<Neighbor>> scanned = index->Search(q, {.k = 10, .filter = &unhinted});
  ASSERT_TRUE(scanned.ok());
  EXPECT_EQ(*scanned, *r);
  EXPECT_EQ(unhinted.allows_calls.load(), n);
}

TEST(FlatIndex, SearchAmongRestrictsToTheGivenIds) {
  const size_t dim = 5, n = 100;
  const std::vector<float> base = RandomRows(n, dim, 9);
  auto index = MakeIndex(dim, Metric::kInnerProduct);
  for (size_t r = 0; r < n; ++r) ASSERT_TRUE(index->Add(r + 1000, Row(base, dim, r)).ok());
  const std::vector<float> q = RandomRows(1, dim, 10);
  const std::vector<uint64_t> among = {1005, 1010, 1010, 7, 1099, 1042};
  absl::StatusOr<std::vector<Neighbor>> r = index->SearchAmong(q, among, 3);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  std::vector<std::pair<double, uint64_t>> want;
  for (uint64_t id : {1005, 1010, 1099, 1042}) {
    want.emplace_back(RefDistance(Metric::kInnerProduct, q, Row(base, dim, id - 1000)), id);
  }
  std::sort(want.begin(), want.end());
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*r)[i].id, want[i].second);
  EXPECT_TRUE(index->SearchAmong(q, among, 0)->empty());
  EXPECT_TRUE(index->SearchAmong(q, {}, 5)->empty());
}

TEST(FlatIndex, Sq8StorageTrainsAndKeepsRecall) {
  const size_t dim = 32, n = 600;
  const std::vector<float> base = RandomRows(n, dim, 11);
  const std::vector<float> queries = RandomRows(20, dim, 12);
  for (Metric m : {Metric::kL2, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(m)));
    auto index = MakeIndex(dim, m, FlatStorage::kSq8, /*auto_train=*/500);
    auto exact = MakeIndex(dim, m);
    for (size_t r = 0; r < n; ++r) {
      ASSERT_TRUE(index->Add(r, Row(base, dim, r)).ok());
      ASSERT_TRUE(exact->Add(r, Row(base, dim, r)).ok());
      // Untrained: searches are exact over the float rows.
      if (r == 100) {
        EXPECT_FALSE(index->trained());
        EXPECT_EQ(Ids(*index->Search(Row(queries, dim, 0), {.k = 5})),
                  Ids(*exact->Search(Row(queries, dim, 0), {.k = 5})));
      }
    }
    EXPECT_TRUE(index->trained());  // trained itself at 500 vectors
    EXPECT_LT(index->MemoryBytes(), exact->MemoryBytes() / 2);
    size_t hits = 0;
    for (size_t qi = 0; qi < 20; ++qi) {
      const std::vector<uint64_t> got = Ids(*index->Search(Row(queries, dim, qi), {.k = 10}));
      const std::vector<uint64_t> want = Ids(*exact->Search(Row(queries, dim, qi), {.k = 10}));
      const std::set<uint64_t> w(want.begin(), want.end());
      for (uint64_t id : got) hits += w.count(id);
    }
    EXPECT_GE(hits, 20u * 10u * 9 / 10) << "recall@10 of SQ8 flat below 0.9";
    // Get decodes: close to the stored (normalized for cosine) vector.
    const std::vector<float> stored = *exact->Get(7);
    const std::vector<float> decoded = *index->Get(7);
    for (size_t i = 0; i < dim; ++i) EXPECT_NEAR(decoded[i], stored[i], 0.01);
    // Upsert and remove keep working on codes.
    ASSERT_TRUE(index->Add(7, Row(base, dim, 8)).ok());
    ASSERT_TRUE(index->Remove(9).ok());
    EXPECT_EQ(index->size(), n - 1);
    EXPECT_EQ((*index->Search(Row(base, dim, 8), {.k = 2}))[0].id, 7u);
  }
}

TEST(FlatIndex, Sq8ExplicitTraining) {
  const size_t dim = 4;
  auto index = MakeIndex(dim, Metric::kL2, FlatStorage::kSq8, /*auto_train=*/0);
  EXPECT_EQ(index->Train({}).code(), absl::StatusCode::kFailedPrecondition);
  const std::vector<float> bad_sample = {1, 2, 3};
  EXPECT_EQ(index->Train(bad_sample).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> rows = RandomRows(50, dim, 13);
  for (size_t r = 0; r < 50; ++r) ASSERT_TRUE(index->Add(r, Row(rows, dim, r)).ok());
  EXPECT_FALSE(index->trained());  // auto-training is off
  ASSERT_TRUE(index->Train(RandomRows(30, dim, 14)).ok());
  EXPECT_TRUE(index->trained());
  EXPECT_EQ(index->size(), 50u);
  // Retraining from the vectors present re-encodes them.
  ASSERT_TRUE(index->Train({}).ok());
  const std::vector<float> got = *index->Get(3);
  for (size_t i = 0; i < dim; ++i) EXPECT_NEAR(got[i], rows[3 * dim + i], 0.02);
  EXPECT_EQ(MakeIndex(dim, Metric::kL2)->Train({}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FlatIndex, Sq8AutoTrainingFailureKeepsTheVectors) {
  auto index = MakeIndex(1, Metric::kL2, FlatStorage::kSq8, /*auto_train=*/2);
  const std::vector<float> lo = {-3.4e38f}, hi = {3.4e38f}, mid = {0};
  ASSERT_TRUE(index->Add(1, lo).ok());
  ASSERT_TRUE(index->Add(2, hi).ok());  // training fails: range too wide for float codes
  ASSERT_TRUE(index->Add(3, mid).ok());
  EXPECT_FALSE(index->trained());
  EXPECT_EQ(index->size(), 3u);
  EXPECT_EQ(*index->Get(2), hi);
  EXPECT_EQ((*index->Search(mid, {.k = 1}))[0].id, 3u);
  EXPECT_FALSE(index->Train({}).ok());
}

TEST(FlatIndex, ConcurrentWritersAndReaders) {
  const size_t dim = 16, n = 400;
  const std::vector<float> base = RandomRows(n, dim, 15);
  auto index = MakeIndex(dim, Metric::kL2);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (size_t w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (size_t r = w; r < n; r += 2) {
        if (!index->Add(r, Row(base, dim, r)).ok()) failed = true;
        if (r % 10 == 0 && !index->Remove(r).ok()) failed = true;
      }
    });
  }
  for (size_t t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (size_t i = 0; i < 100; ++i) {
        absl::StatusOr<std::vector<Neighbor>> r = index->Search(Row(base, dim, i), {.k = 5});
        if (!r.ok() || r->size() > 5) failed = true;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(index->size(), n - n / 10);
  EXPECT_EQ((*index->Search(Row(base, dim, 11), {.k = 1}))[0].id, 11u);
}

TEST(ExactKnn, MatchesTheFlatIndex) {
  const size_t dim = 20, n = 700, nq = 70, k = 7;
  const std::vector<float> base = RandomRows(n, dim, 17);
  const std::vector<float> queries = RandomRows(nq, dim, 18);
  for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(m)));
    auto index = MakeIndex(dim, m);
    for (size_t r = 0; r < n; ++r) ASSERT_TRUE(index->Add(r, Row(base, dim, r)).ok());
    const auto one = ExactKnn(base, dim, queries, m, k, 1);
    const auto three = ExactKnn(base, dim, queries, m, k, 3);
    ASSERT_EQ(one.size(), nq);
    EXPECT_EQ(one, three);
    for (size_t qi = 0; qi < nq; ++qi) {
      const std::vector<Neighbor> want = *index->Search(Row(queries, dim, qi), {.k = k});
      ASSERT_EQ(Ids(one[qi]), Ids(want)) << qi;
      for (size_t i = 0; i < k; ++i) EXPECT_NEAR(one[qi][i].distance, want[i].distance, 1e-5);
    }
  }
}

// Far from the origin a dot-product shortcut for L2 (|b|^2 - 2<q, b>) cancels
// badly; ground truth must still find the true neighbours there.
TEST(ExactKnn, L2FarFromTheOriginStaysExact) {
  const size_t dim = 16, n = 2000, nq = 12, k = 10;
  std::vector<float> base = RandomRows(n, dim, 19), queries = RandomRows(nq, dim, 20);
  for (float& x : base) x = 1000 + x;
  for (float& x : queries) x = 1000 + x;
  auto index = MakeIndex(dim, Metric::kL2);
  for (size_t r = 0; r < n; ++r) ASSERT_TRUE(index->Add(r, Row(base, dim, r)).ok());
  const auto got = ExactKnn(base, dim, queries, Metric::kL2, k, 2);
  for (size_t qi = 0; qi < nq; ++qi) {
    const std::vector<Neighbor> want = *index->Search(Row(queries, dim, qi), {.k = k});
    EXPECT_EQ(Ids(got[qi]), Ids(want)) << qi;
    EXPECT_EQ(Ids(got[qi]), BruteForceIds(Metric::kL2, base, dim, Row(queries, dim, qi), k));
    for (size_t i = 0; i < k; ++i) EXPECT_NEAR(got[qi][i].distance, want[i].distance, 1e-4);
  }
}

TEST(ExactKnn, EdgeCases) {
  const std::vector<float> base = {0, 0, 1, 1, 2, 2};
  const std::vector<float> q = {1.1f, 1.1f};
  auto r = ExactKnn(base, 2, q, Metric::kL2, 10, 2);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(Ids(r[0]), (std::vector<uint64_t>{1, 2, 0}));
  EXPECT_TRUE(ExactKnn(base, 2, q, Metric::kL2, 0, 1)[0].empty());
  EXPECT_TRUE(ExactKnn(base, 2, {}, Metric::kL2, 3, 1).empty());
  EXPECT_TRUE(ExactKnn({}, 2, q, Metric::kL2, 3, 1)[0].empty());
}

}  // namespace
}  // namespace cairn::vector
