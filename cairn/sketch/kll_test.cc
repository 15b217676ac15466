#include "cairn/sketch/kll.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cairn/base/codec.h"
#include "cairn/base/codec_testing.h"

namespace cairn::sketch {
namespace {

using ::testing::HasSubstr;

template <typename T>
KllSketch<T> Make(uint16_t k = 200, uint64_t seed = KllSketch<T>::kDefaultSeed) {
  absl::StatusOr<KllSketch<T>> s = KllSketch<T>::Create(k, seed);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}


// ---------------------------------------------------------------------------
// Streams for the accuracy tests. Values are integers in [0, n), exactly
// representable in float, so true inclusive ranks come from a counting pass.
// KLL only compares items, so any strictly monotone transform of these values
// (normal, exponential, log-normal data...) behaves identically: what matters
// is the arrival order and the ties, which is what the kinds below vary.
enum class Order { kRandom, kSorted, kReverse, kZoomIn, kFewDistinct };

const char* OrderName(Order o) {
  switch (o) {
    case Order::kRandom: return "random";
    case Order::kSorted: return "sorted";
    case Order::kReverse: return "reverse";
    case Order::kZoomIn: return "zoom-in";
    case Order::kFewDistinct: return "few-distinct";
  }
  return "?";
}

std::vector<uint32_t> MakeStream(Order order, uint32_t n, std::mt19937_64& rng) {
  std::vector<uint32_t> v(n);
  switch (order) {
    case Order::kRandom:
      std::iota(v.begin(), v.end(), 0u);
      std::shuffle(v.begin(), v.end(), rng);
      break;
    case Order::kSorted:
      std::iota(v.begin(), v.end(), 0u);
      break;
    case Order::kReverse:
      for (uint32_t i = 0; i < n; ++i) v[i] = n - 1 - i;
      break;
    case Order::kZoomIn:  // 0, n-1, 1, n-2, ...: extremes first, the middle last
      for (uint32_t i = 0; i < n; ++i) v[i] = (i % 2 == 0) ? i / 2 : n - 1 - i / 2;
      break;
    case Order::kFewDistinct: {  // heavy ties: 100 distinct values, skewed
      std::geometric_distribution<uint32_t> g(0.05);
      for (uint32_t i = 0; i < n; ++i) v[i] = std::min<uint32_t>(g(rng), 99) * (n / 100);
      break;
    }
  }
  return v;
}

// Largest |estimated − true| inclusive rank over 999 evaluation points (the true
// 0.1%..99.9% quantiles), and the same for the true rank of Quantile(q).
template <typename T>
struct RankErrors {
  double rank = 0;
  double quantile = 0;
};

template <typename T>
RankErrors<T> MeasureErrors(const KllSketch<T>& sketch, const std::vector<uint32_t>& stream) {
  const uint32_t n = static_cast<uint32_t>(stream.size());
  std::vector<uint32_t> at_most(n, 0);  // at_most[v] = #items ≤ v
  for (uint32_t v : stream) ++at_most[v];
  for (uint32_t v = 1; v < n; ++v) at_most[v] += at_most[v - 1];
  RankErrors<T> e;
  uint32_t value = 0;
  for (int j = 1; j < 1000; ++j) {
    const double q = j / 1000.0;
    // True q-quantile (inclusive): smallest v with at_most[v] ≥ q·n.
    while (at_most[value] < q * n) ++value;
    const double truth = static_cast<double>(at_most[value]) / n;
    e.rank = std::max(e.rank, std::fabs(sketch.Rank(static_cast<T>(value)) - truth));
    const T estimate = sketch.Quantile(q);
    const uint32_t est = static_cast<uint32_t>(estimate);
    // The item's rank interval is (at_most[est-1], at_most[est]]: the error is
    // the distance from q to that interval.
    const double hi = static_cast<double>(at_most[est]) / n;
    const double lo = est == 0 ? 0.0 : static_cast<double>(at_most[est - 1]) / n;
    const double qerr = q > hi ? q - hi : (q < lo ? lo - q : 0.0);
    e.quantile = std::max(e.quantile, qerr);
  }
  return e;
}

double Percentile99(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t idx = static_cast<size_t>(std::ceil(0.99 * v.size())) - 1;
  return v[idx];
}

// ---------------------------------------------------------------------------

template <typename T>
class KllTypedTest : public ::testing::Test {};
using ItemTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(KllTypedTest, ItemTypes);

TEST(KllSketchTest, CreateValidatesK) {
  absl::StatusOr<KllSketch<float>> bad = KllSketch<float>::Create(7);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("k 7 is out of range 8..65535"));
  EXPECT_FALSE(KllSketch<double>::Create(0).ok());
  ASSERT_TRUE(KllSketch<float>::Create(8).ok());
  absl::StatusOr<KllSketch<double>> big = KllSketch<double>::Create(65535);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->k(), 65535);
}

TEST(KllSketchTest, NormalizedRankErrorMatchesPublishedFit) {
  EXPECT_NEAR(KllSketch<float>::NormalizedRankError(200), 0.0133, 0.0001);
  EXPECT_NEAR(KllSketch<float>::NormalizedRankError(200, true), 0.0165, 0.0001);
  EXPECT_NEAR(KllSketch<double>::NormalizedRankError(100), 0.0261, 0.0001);
  EXPECT_GT(KllSketch<float>::NormalizedRankError(8), KllSketch<float>::NormalizedRankError(9));
}

TYPED_TEST(KllTypedTest, EmptySketch) {
  using T = TypeParam;
  KllSketch<T> s = Make<T>();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.n(), 0u);
  EXPECT_EQ(s.num_retained(), 0u);
  EXPECT_FALSE(s.is_estimation_mode());
  EXPECT_TRUE(std::isnan(s.min()));
  EXPECT_TRUE(std::isnan(s.max()));
  EXPECT_TRUE(std::isnan(s.Quantile(0.5)));
  EXPECT_TRUE(std::isnan(s.Quantile(0.0)));
  EXPECT_TRUE(std::isnan(s.Rank(1)));
  const T splits[] = {1, 2};
  absl::StatusOr<std::vector<double>> cdf = s.Cdf(splits);
  ASSERT_TRUE(cdf.ok());
  ASSERT_EQ(cdf->size(), 3u);
  for (double v : *cdf) EXPECT_TRUE(std::isnan(v));
  absl::StatusOr<std::vector<double>> pmf = s.Pmf(splits);
  ASSERT_TRUE(pmf.ok());
  ASSERT_EQ(pmf->size(), 3u);
  for (double v : *pmf) EXPECT_TRUE(std::isnan(v));
}

// Nothing is compacted while n ≤ k, so every answer is exact: Quantile(i/n) is
// the i-th smallest item and Rank(x) the exact inclusive fraction.
TYPED_TEST(KllTypedTest, ExactWhileNAtMostK) {
  using T = TypeParam;
  std::mt19937_64 rng(7);
  for (uint32_t n : {1u, 2u, 3u, 10u, 57u, 199u, 200u}) {
    SCOPED_TRACE(n);
    KllSketch<T> s = Make<T>(200);
    std::vector<T> values;
    std::uniform_int_distribution<int> dist(-50, 50);  // with ties
    for (uint32_t i = 0; i < n; ++i) values.push_back(static_cast<T>(dist(rng)) / 4);
    for (T v : values) s.Update(v);
    std::vector<T> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_FALSE(s.is_estimation_mode());
    EXPECT_EQ(s.num_retained(), n);
    EXPECT_EQ(s.min(), sorted.front());
    EXPECT_EQ(s.max(), sorted.back());
    EXPECT_EQ(s.Quantile(0.0), sorted.front());
    EXPECT_EQ(s.Quantile(1.0), sorted.back());
    for (uint32_t i = 1; i <= n; ++i) {
      EXPECT_EQ(s.Quantile(static_cast<double>(i) / n), sorted[i - 1]) << i;
      // Between item boundaries the inclusive quantile rounds up.
      EXPECT_EQ(s.Quantile((i - 0.5) / n), sorted[i - 1]) << i;
    }
    for (T x : sorted) {
      const double truth =
          static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), x) - sorted.begin()) /
          n;
      EXPECT_DOUBLE_EQ(s.Rank(x), truth);
      EXPECT_DOUBLE_EQ(s.Rank(x + static_cast<T>(0.125)),
                       static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(),
                                                            x + static_cast<T>(0.125)) -
                                           sorted.begin()) /
                           n);
    }
    EXPECT_EQ(s.Rank(sorted.front() - 1), 0.0);
    EXPECT_EQ(s.Rank(sorted.back()), 1.0);
  }
}

TYPED_TEST(KllTypedTest, NanIsIgnoredAndCounted) {
  using T = TypeParam;
  KllSketch<T> s = Make<T>();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  s.Update(nan);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.nan_count(), 1u);
  for (int i = 0; i < 1000; ++i) {
    s.Update(static_cast<T>(i));
    if (i % 10 == 0) s.Update(-nan);
  }
  EXPECT_EQ(s.n(), 1000u);
  EXPECT_EQ(s.nan_count(), 101u);
  EXPECT_EQ(s.min(), 0);
  EXPECT_EQ(s.max(), 999);
  EXPECT_TRUE(std::isnan(s.Rank(nan)));
  // NaN never enters the retained items, so quantiles stay numbers.
  for (double q : {0.0, 0.1, 0.5, 0.9, 1.0}) EXPECT_FALSE(std::isnan(s.Quantile(q)));
}

TYPED_TEST(KllTypedTest, InfinitiesAreItems) {
  using T = TypeParam;
  const T inf = std::numeric_limits<T>::infinity();
  KllSketch<T> s = Make<T>();
  s.Update(-inf);
  s.Update(0);
  s.Update(inf);
  EXPECT_EQ(s.n(), 3u);
  EXPECT_EQ(s.min(), -inf);
  EXPECT_EQ(s.max(), inf);
  EXPECT_EQ(s.Quantile(0.5), 0);
  EXPECT_DOUBLE_EQ(s.Rank(-inf), 1.0 / 3);
  EXPECT_DOUBLE_EQ(s.Rank(inf), 1.0);
}

TYPED_TEST(KllTypedTest, QuantileArgumentsOutsideUnitIntervalGiveNan) {
  using T = TypeParam;
  KllSketch<T> s = Make<T>();
  for (int i = 0; i < 100; ++i) s.Update(static_cast<T>(i));
  EXPECT_TRUE(std::isnan(s.Quantile(-0.01)));
  EXPECT_TRUE(std::isnan(s.Quantile(1.01)));
  EXPECT_TRUE(std::isnan(s.Quantile(std::numeric_limits<double>::quiet_NaN())));
  const double ranks[] = {0.0, 0.25, 0.5, 2.0, 1.0};
  std::vector<T> q = s.Quantiles(ranks);
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(q[1], 24);
  EXPECT_EQ(q[2], 49);
  EXPECT_TRUE(std::isnan(q[3]));
  EXPECT_EQ(q[4], 99);
}

TYPED_TEST(KllTypedTest, CdfAndPmfAreConsistent) {
  using T = TypeParam;
  KllSketch<T> s = Make<T>(200, 11);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(10.0, 3.0);
  for (int i = 0; i < 200000; ++i) s.Update(static_cast<T>(normal(rng)));
  ASSERT_TRUE(s.is_estimation_mode());
  std::vector<T> splits;
  for (int i = 0; i <= 40; ++i) splits.push_back(static_cast<T>(i * 0.5));
  absl::StatusOr<std::vector<double>> cdf = s.Cdf(splits);
  absl::StatusOr<std::vector<double>> pmf = s.Pmf(splits);
  ASSERT_TRUE(cdf.ok()) << cdf.status();
  ASSERT_TRUE(pmf.ok()) << pmf.status();
  ASSERT_EQ(cdf->size(), splits.size() + 1);
  ASSERT_EQ(pmf->size(), splits.size() + 1);
  EXPECT_EQ(cdf->back(), 1.0);
  double sum = 0;
  for (size_t i = 0; i < cdf->size(); ++i) {
    if (i > 0) {
      EXPECT_GE((*cdf)[i], (*cdf)[i - 1]);
    }
    EXPECT_GE((*pmf)[i], 0.0);
    sum += (*pmf)[i];
    EXPECT_NEAR(sum, (*cdf)[i], 1e-12);
    if (i < splits.size()) {
      EXPECT_DOUBLE_EQ((*cdf)[i], s.Rank(splits[i]));
    }
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // The CDF of N(10, 3) at 10 is 0.5; at 13 about 0.8413.
  const double eps = KllSketch<T>::NormalizedRankError(200, true);
  EXPECT_NEAR((*cdf)[20], 0.5, eps);
  EXPECT_NEAR((*cdf)[26], 0.8413, eps);
  // No splits: one bin holding everything.
  absl::StatusOr<std::vector<double>> one = s.Pmf({});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, std::vector<double>{1.0});
}

TYPED_TEST(KllTypedTest, CdfRejectsBadSplitPoints) {
  using T = TypeParam;
  KllSketch<T> s = Make<T>();
  s.Update(1);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  {
    const T splits[] = {1, nan, 3};
    absl::StatusOr<std::vector<double>> r = s.Cdf(splits);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("split point 1 is NaN"));
  }
  {
    const T splits[] = {1, 2, 2};
    absl::StatusOr<std::vector<double>> r = s.Pmf(splits);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("strictly increasing"));
  }
  {
    const T splits[] = {3, 2};
    EXPECT_FALSE(s.Cdf(splits).ok());
  }
  // Also on an empty sketch.
  KllSketch<T> e = Make<T>();
  const T splits[] = {nan};
  EXPECT_FALSE(e.Pmf(splits).ok());
}

TYPED_TEST(KllTypedTest, RetainedItemsAndMemoryStayBounded) {
  using T = TypeParam;
  KllSketch<T> s = Make<T>(200);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 1000000; ++i) s.Update(static_cast<T>(u(rng)));
  EXPECT_EQ(s.n(), 1000000u);
  EXPECT_TRUE(s.is_estimation_mode());
  EXPECT_GT(s.num_levels(), 10u);
  EXPECT_LE(s.num_retained(), 700u);
  EXPECT_GT(s.num_retained(), 300u);
  (void)s.Quantile(0.5);  // builds the sorted view
  EXPECT_GE(s.MemoryBytes(), sizeof(s) + s.num_retained() * sizeof(T));
  EXPECT_LE(s.MemoryBytes(), sizeof(s) + 700 * (2 * sizeof(T) + 8));
}

TYPED_TEST(KllTypedTest, SameSeedSameSketchDifferentSeedDifferentSketch) {
  using T = TypeParam;
  KllSketch<T> a = Make<T>(100, 1);
  KllSketch<T> b = Make<T>(100, 1);
  KllSketch<T> c = Make<T>(100, 2);
  for (int i = 0; i < 50000; ++i) {
    const T v = static_cast<T>((i * 7919) % 50000);
    a.Update(v);
    b.Update(v);
    c.Update(v);
  }
  EXPECT_EQ(a.Serialize(), b.Serialize());
  EXPECT_NE(a.Serialize(), c.Serialize());
}

// ---------------------------------------------------------------------------
// Accuracy: the 99th percentile across trials of the worst rank error over the
// quantile grid must be within NormalizedRankError(k), the figure DataSketches
// publishes for exactly this statistic.

template <typename T>
void CheckSingleStreamAccuracy(Order order, uint16_t k, uint32_t n, int trials, uint64_t seed) {
  SCOPED_TRACE(OrderName(order));
  std::mt19937_64 rng(seed);
  std::vector<double> rank_errors;
  std::vector<double> quantile_errors;
  for (int t = 0; t < trials; ++t) {
    std::vector<uint32_t> stream = MakeStream(order, n, rng);
    KllSketch<T> s = Make<T>(k, rng());
    for (uint32_t v : stream) s.Update(static_cast<T>(v));
    RankErrors<T> e = MeasureErrors(s, stream);
    rank_errors.push_back(e.rank);
    quantile_errors.push_back(e.quantile);
  }
  const double eps = KllSketch<T>::NormalizedRankError(k);
  const double p99 = Percentile99(rank_errors);
  const double q99 = Percentile99(quantile_errors);
  ::testing::Test::RecordProperty(std::string("p99_rank_error_") + OrderName(order),
                                 std::to_string(p99));
  std::printf("KLL %s k=%d n=%u trials=%d: p99 rank error %.5f, p99 quantile error %.5f, "
              "bound %.5f\n",
              OrderName(order), k, n, trials, p99, q99, eps);
  EXPECT_LE(p99, eps) << "k " << k << " n " << n << " bound " << eps;
  EXPECT_LE(q99, eps) << "k " << k << " n " << n << " bound " << eps;
}

TEST(KllAccuracyTest, RandomOrderWithinBound) {
  CheckSingleStreamAccuracy<float>(Order::kRandom, 200, 100000, 100, 101);
}
TEST(KllAccuracyTest, SortedWithinBound) {
  CheckSingleStreamAccuracy<float>(Order::kSorted, 200, 100000, 100, 102);
}
TEST(KllAccuracyTest, ReverseSortedWithinBound) {
  CheckSingleStreamAccuracy<float>(Order::kReverse, 200, 100000, 100, 103);
}
TEST(KllAccuracyTest, ZoomInWithinBound) {
  CheckSingleStreamAccuracy<float>(Order::kZoomIn, 200, 100000, 100, 104);
}
TEST(KllAccuracyTest, FewDistinctValuesWithinBound) {
  CheckSingleStreamAccuracy<float>(Order::kFewDistinct, 200, 100000, 100, 105);
}
TEST(KllAccuracyTest, DoubleAndOtherKWithinBound) {
  CheckSingleStreamAccuracy<double>(Order::kRandom, 100, 100000, 100, 106);
  CheckSingleStreamAccuracy<double>(Order::kSorted, 400, 100000, 100, 107);
}
// A longer stream: n = 1e6, fewer trials, so the check is the maximum.
TEST(KllAccuracyTest, MillionItemsWithinBound) {
  CheckSingleStreamAccuracy<float>(Order::kRandom, 200, 1000000, 8, 108);
}

// ---------------------------------------------------------------------------
// Merge

template <typename T>
void CheckMergeAccuracy(bool contiguous_parts, int trials, uint64_t seed) {
  constexpr uint32_t kN = 100000;
  constexpr int kParts = 10;
  std::mt19937_64 rng(seed);
  std::vector<double> errors;
  for (int t = 0; t < trials; ++t) {
    // Contiguous parts of a sorted stream give each part a disjoint range, the
    // hardest case for merging; otherwise parts are random slices.
    std::vector<uint32_t> stream = MakeStream(contiguous_parts ? Order::kSorted : Order::kRandom,
                                              kN, rng);
    KllSketch<T> merged = Make<T>(200, rng());
    for (int p = 0; p < kParts; ++p) {
      KllSketch<T> part = Make<T>(200, rng());
      for (uint32_t i = p * (kN / kParts); i < (p + 1) * (kN / kParts); ++i) {
        part.Update(static_cast<T>(stream[i]));
      }
      ASSERT_TRUE(merged.Merge(part).ok());
    }
    ASSERT_EQ(merged.n(), kN);
    ASSERT_EQ(merged.min(), 0);
    ASSERT_EQ(merged.max(), kN - 1);
    ASSERT_LE(merged.num_retained(), 700u);
    errors.push_back(MeasureErrors(merged, stream).rank);
  }
  const double eps = KllSketch<T>::NormalizedRankError(200);
  EXPECT_LE(Percentile99(errors), eps);
}

TEST(KllMergeTest, TenRandomPartsWithinBound) { CheckMergeAccuracy<float>(false, 100, 201); }
TEST(KllMergeTest, TenDisjointRangePartsWithinBound) { CheckMergeAccuracy<double>(true, 100, 202); }

TEST(KllMergeTest, DifferentKKeepsSmallerKAccuracy) {
  constexpr uint32_t kN = 100000;
  std::mt19937_64 rng(301);
  std::vector<double> big_into_small;
  std::vector<double> small_into_big;
  for (int t = 0; t < 100; ++t) {
    std::vector<uint32_t> stream = MakeStream(Order::kRandom, kN, rng);
    KllSketch<float> k100 = Make<float>(100, rng());
    KllSketch<float> k200 = Make<float>(200, rng());
    for (uint32_t i = 0; i < kN; ++i) {
      (i < kN / 2 ? k100 : k200).Update(static_cast<float>(stream[i]));
    }
    KllSketch<float> a = k100;
    ASSERT_TRUE(a.Merge(k200).ok());
    KllSketch<float> b = k200;
    ASSERT_TRUE(b.Merge(k100).ok());
    ASSERT_EQ(a.k(), 100);
    ASSERT_EQ(a.min_k(), 100);
    ASSERT_EQ(b.k(), 200);
    ASSERT_EQ(b.min_k(), 100);
    ASSERT_EQ(a.n(), kN);
    ASSERT_EQ(b.n(), kN);
    big_into_small.push_back(MeasureErrors(a, stream).rank);
    small_into_big.push_back(MeasureErrors(b, stream).rank);
  }
  const double eps100 = KllSketch<float>::NormalizedRankError(100);
  EXPECT_LE(Percentile99(big_into_small), eps100);
  EXPECT_LE(Percentile99(small_into_big), eps100);
  KllSketch<float> x = Make<float>(300);
  KllSketch<float> y = Make<float>(100);
  y.Update(1);
  ASSERT_TRUE(x.Merge(y).ok());
  EXPECT_EQ(x.normalized_rank_error(), KllSketch<float>::NormalizedRankError(100));
}

TYPED_TEST(KllTypedTest, MergeSmallSketchesIsExact) {
  using T = TypeParam;
  KllSketch<T> a = Make<T>(200);
  KllSketch<T> b = Make<T>(200);
  for (int i = 0; i < 80; ++i) a.Update(static_cast<T>(2 * i));
  for (int i = 0; i < 80; ++i) b.Update(static_cast<T>(2 * i + 1));
  b.Update(std::numeric_limits<T>::quiet_NaN());
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.n(), 160u);
  EXPECT_EQ(a.nan_count(), 1u);
  EXPECT_FALSE(a.is_estimation_mode());
  for (int i = 0; i < 160; ++i) {
    EXPECT_DOUBLE_EQ(a.Rank(static_cast<T>(i)), (i + 1) / 160.0);
    EXPECT_EQ(a.Quantile((i + 1) / 160.0), i);
  }
  // Past k the merge compacts, keeping the items' total weight.
  for (int i = 0; i < 100; ++i) b.Update(static_cast<T>(1000 + i));
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.n(), 340u);
  EXPECT_TRUE(a.is_estimation_mode());
  EXPECT_EQ(a.max(), 1099);
  EXPECT_EQ(a.min(), 0);
}

TYPED_TEST(KllTypedTest, MergeEmptySelfAndIntoEmpty) {
  using T = TypeParam;
  KllSketch<T> a = Make<T>(50);
  for (int i = 0; i < 10000; ++i) a.Update(static_cast<T>(i));
  const std::string before = a.Serialize();
  KllSketch<T> empty = Make<T>(8);
  ASSERT_TRUE(a.Merge(empty).ok());
  EXPECT_EQ(a.Serialize(), before);  // also min_k unchanged
  EXPECT_EQ(a.min_k(), 50);

  KllSketch<T> fresh = Make<T>(50);
  ASSERT_TRUE(fresh.Merge(a).ok());
  EXPECT_EQ(fresh.n(), a.n());
  EXPECT_EQ(fresh.min(), 0);
  EXPECT_EQ(fresh.max(), 9999);
  EXPECT_NEAR(fresh.Quantile(0.5), 5000, 10000 * KllSketch<T>::NormalizedRankError(50));

  ASSERT_TRUE(a.Merge(a).ok());
  EXPECT_EQ(a.n(), 20000u);
  EXPECT_NEAR(a.Rank(5000), 0.5, KllSketch<T>::NormalizedRankError(50));
}

// ---------------------------------------------------------------------------
// Serialization

TYPED_TEST(KllTypedTest, SerializeRoundTrip) {
  using T = TypeParam;
  for (uint32_t n : {0u, 1u, 150u, 5000u, 300000u}) {
    SCOPED_TRACE(n);
    KllSketch<T> s = Make<T>(120, n);
    for (uint32_t i = 0; i < n; ++i) s.Update(static_cast<T>((i * 2654435761u) % 1000003));
    s.Update(std::numeric_limits<T>::quiet_NaN());
    const std::string blob = s.Serialize();
    absl::StatusOr<KllSketch<T>> back = KllSketch<T>::Deserialize(blob);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->Serialize(), blob);
    EXPECT_EQ(back->n(), s.n());
    EXPECT_EQ(back->nan_count(), 1u);
    EXPECT_EQ(back->k(), 120);
    EXPECT_EQ(back->num_retained(), s.num_retained());
    for (double q : {0.0, 0.01, 0.3, 0.5, 0.99, 1.0}) {
      if (n == 0) {
        EXPECT_TRUE(std::isnan(back->Quantile(q)));
      } else {
        EXPECT_EQ(back->Quantile(q), s.Quantile(q));
      }
    }
    // The random state travels too: both continue identically.
    for (uint32_t i = 0; i < 20000; ++i) {
      s.Update(static_cast<T>(i));
      back->Update(static_cast<T>(i));
    }
    EXPECT_EQ(back->Serialize(), s.Serialize());
  }
}

template <typename T>
std::string GoldenBlob() {
  KllSketch<T> s = Make<T>(8, 42);
  for (int i = 1; i <= 40; ++i) s.Update(static_cast<T>((i * 7) % 41) / 2);
  s.Update(std::numeric_limits<T>::quiet_NaN());
  return s.Serialize();
}

TEST(KllSerializeTest, GoldenBlobFloat) {
  const std::string blob = GoldenBlob<float>();
  EXPECT_EQ(HexEncode(blob),
      "434b4c4c010000007200000000000000010800080003280000000000000001000000000000007ef0"
      "29fde5e6dd780000003f0000a0410200000009000000050000000000884100005841000000400000"
      "40400000c040000010410000204100004841000078410000844100009c410000803f000090400000"
      "00410000304100008c417cd232c90d6de827");
  absl::StatusOr<KllSketch<float>> s = KllSketch<float>::Deserialize(blob);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->n(), 40u);
  EXPECT_EQ(s->min(), 0.5f);
  EXPECT_EQ(s->max(), 20.0f);
}

TEST(KllSerializeTest, GoldenBlobDouble) {
  const std::string blob = GoldenBlob<double>();
  EXPECT_EQ(HexEncode(blob),
      "434b4c4c01000000ba00000000000000020800080003280000000000000001000000000000007ef0"
      "29fde5e6dd78000000000000e03f0000000000003440020000000900000005000000000000000000"
      "31400000000000002b40000000000000004000000000000008400000000000001840000000000000"
      "2240000000000000244000000000000029400000000000002f400000000000803040000000000080"
      "3340000000000000f03f000000000000124000000000000020400000000000002640000000000080"
      "3140123dcf335fb32158");
  absl::StatusOr<KllSketch<double>> s = KllSketch<double>::Deserialize(blob);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->n(), 40u);
  EXPECT_EQ(s->nan_count(), 1u);
}

TEST(KllSerializeTest, FloatBlobIsNotReadAsDouble) {
  absl::StatusOr<KllSketch<double>> d = KllSketch<double>::Deserialize(GoldenBlob<float>());
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(), HasSubstr("holds float items"));
  absl::StatusOr<KllSketch<float>> f = KllSketch<float>::Deserialize(GoldenBlob<double>());
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("holds double items"));
}

TYPED_TEST(KllTypedTest, DeserializeRejectsTruncatedFlippedAndForeignBytes) {
  using T = TypeParam;
  const std::string blob = GoldenBlob<T>();
  ExpectEveryTruncationAndBitFlipRejected(
      blob, [](std::string_view b) { return KllSketch<T>::Deserialize(b); });
  std::string wrong_magic = blob;
  wrong_magic[0] = 'X';
  absl::StatusOr<KllSketch<T>> r = KllSketch<T>::Deserialize(wrong_magic);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not a KLL sketch blob"));
  EXPECT_FALSE(KllSketch<T>::Deserialize(blob + "x").ok());
  EXPECT_FALSE(KllSketch<T>::Deserialize("").ok());
}

// Payloads with a valid envelope but inconsistent content, built field by field.
struct Payload {
  uint8_t tag = 1;
  uint16_t k = 8;
  uint16_t min_k = 8;
  uint8_t num_levels = 2;
  uint64_t n = 0;
  uint64_t nan_count = 0;
  uint64_t rng = 0;
  bool with_min_max = true;
  float min = 0;
  float max = 100;
  std::vector<uint32_t> counts;
  std::vector<float> items;
  std::string extra;

  std::string Seal() const {
    ByteWriter w;
    w.U8(tag);
    w.U16(k);
    w.U16(min_k);
    w.U8(num_levels);
    w.U64(n);
    w.U64(nan_count);
    w.U64(rng);
    if (with_min_max) {
      w.F32(min);
      w.F32(max);
    }
    for (uint32_t c : counts) w.U32(c);
    for (float f : items) w.F32(f);
    w.Bytes(extra);
    return SealEnvelope(MakeMagic("CKLL"), 1, w.data());
  }
};

// A valid two-level payload: 3 items at level 0, 4 sorted items of weight 2.
Payload ValidPayload() {
  Payload p;
  p.n = 3 + 4 * 2;
  p.counts = {3, 4};
  p.items = {5, 1, 3, 10, 20, 30, 40};
  p.min = 1;
  p.max = 40;
  return p;
}

absl::Status Decode(const Payload& p) { return KllSketch<float>::Deserialize(p.Seal()).status(); }

TEST(KllSerializeTest, HandBuiltValidPayloadDecodes) {
  absl::StatusOr<KllSketch<float>> s = KllSketch<float>::Deserialize(ValidPayload().Seal());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->n(), 11u);
  EXPECT_EQ(s->num_retained(), 7u);
  EXPECT_EQ(s->Quantile(1.0 / 11), 1.0f);
  EXPECT_DOUBLE_EQ(s->Rank(10), 5.0 / 11);
  // It keeps working after decoding.
  for (int i = 0; i < 1000; ++i) s->Update(static_cast<float>(i));
  EXPECT_EQ(s->n(), 1011u);
}

// A sketch at the n limit (two items of weight 2^61 on level 61) decodes,
// merges into an empty sketch, and refuses to grow past the limit by merging.
TEST(KllMergeTest, RefusesToExceedMaxN) {
  Payload p;
  p.num_levels = 62;
  p.counts.assign(62, 0);
  p.counts[61] = 2;
  p.items = {1, 2};
  p.min = 1;
  p.max = 2;
  p.n = uint64_t{1} << 62;
  absl::StatusOr<KllSketch<float>> big = KllSketch<float>::Deserialize(p.Seal());
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->Quantile(0.5), 1.0f);
  KllSketch<float> empty = Make<float>(8);
  ASSERT_TRUE(empty.Merge(*big).ok());
  EXPECT_EQ(empty.n(), KllSketch<float>::kMaxN);
  KllSketch<float> one = Make<float>(8);
  one.Update(3);
  absl::Status st = big->Merge(one);
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(st.message(), HasSubstr("exceeds the limit"));
  EXPECT_EQ(big->n(), KllSketch<float>::kMaxN);
}

TEST(KllSerializeTest, RejectsInconsistentPayloads) {
  auto expect_error = [](const Payload& p, const std::string& text) {
    absl::Status st = Decode(p);
    EXPECT_FALSE(st.ok()) << text;
    EXPECT_THAT(st.message(), HasSubstr(text));
  };
  Payload p = ValidPayload();
  p.tag = 9;
  expect_error(p, "unknown items");
  p = ValidPayload();
  p.k = 7;
  expect_error(p, "k 7 is out of range");
  p = ValidPayload();
  p.min_k = 9;
  expect_error(p, "min_k 9 is out of range");
  p = ValidPayload();
  p.num_levels = 0;
  expect_error(p, "0 levels is out of range");
  p = ValidPayload();
  p.num_levels = 63;
  expect_error(p, "63 levels is out of range");
  p = ValidPayload();
  p.n = 12;
  expect_error(p, "level weights sum to 11 but n is 12");
  p = ValidPayload();
  p.n = (uint64_t{1} << 62) + 1;
  expect_error(p, "exceeds the limit");
  p = ValidPayload();
  p.min = 50;
  expect_error(p, "not an ordered pair");
  p = ValidPayload();
  p.min = std::numeric_limits<float>::quiet_NaN();
  expect_error(p, "not an ordered pair");
  p = ValidPayload();
  p.items[0] = 41;
  expect_error(p, "outside [min");
  p = ValidPayload();
  p.items[1] = std::numeric_limits<float>::quiet_NaN();
  expect_error(p, "is NaN or outside");
  p = ValidPayload();
  std::swap(p.items[4], p.items[5]);
  expect_error(p, "level 1 is not sorted");
  p = ValidPayload();
  p.counts = {3, 4, 0};
  p.num_levels = 3;
  expect_error(p, "top level 2 is empty");
  p = ValidPayload();
  p.counts = {3, 4000000};
  p.n = 3 + 8000000;
  expect_error(p, "exceed the capacity");
  p = ValidPayload();
  p.counts = {3, 5};
  p.n = 13;
  expect_error(p, "runs past the end");
  p = ValidPayload();
  p.extra = "z";
  expect_error(p, "unexpected trailing bytes");
  p = ValidPayload();
  p.counts = {3, 0xffffffff};
  expect_error(p, "");
  // An empty sketch carries no min/max and no items.
  Payload e;
  e.num_levels = 1;
  e.with_min_max = false;
  e.counts = {0};
  EXPECT_TRUE(Decode(e).ok()) << Decode(e);
  e.with_min_max = true;
  expect_error(e, "unexpected trailing bytes");
  e = Payload();
  e.num_levels = 1;
  e.with_min_max = false;
  e.counts = {1};
  e.items = {1};
  expect_error(e, "level weights sum to 1 but n is 0");
}

}  // namespace
}  // namespace cairn::sketch
