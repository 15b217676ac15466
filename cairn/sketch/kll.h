// cairn/sketch/kll.h — KLL quantiles sketch for float and double streams.
//
// What it is: a mergeable summary of a stream of numbers that answers rank and
// quantile questions ("what is the p99?", "what fraction of readings is ≤ 7.5?")
// from a few kilobytes, after Karnin, Lang and Liberty, "Optimal Quantile
// Approximation in Streams" (FOCS 2016), in the practical form of Apache
// DataSketches' KLL sketch: a stack of compactors, level h holding items of weight
// 2^h, with capacities k·(2/3)^depth (never below 8), compacted lazily (only when
// the whole buffer is full, and then only the lowest level that is over its
// capacity) by sorting it and keeping every other item, starting at a random
// odd/even offset drawn from a seedable deterministic generator.
//
// Accuracy: with probability ≈ 99% the rank of every value is within
// NormalizedRankError(k) of the truth (about 1.33% of n for k = 200, 0.68% for
// k = 400); PMF/CDF intervals within NormalizedRankError(k, true). The error does
// not grow with n. While n ≤ k nothing has been compacted and answers are exact.
// After Merge the error is that of the smaller k of the merged sketches (min_k).
//
// Memory: about 3k items plus a small log(n/k) term once n ≫ k (k = 200 float:
// ≈ 2.7 KiB of items), and a cached sorted view of the retained items (built by
// the first query after a change) of 12 (float) or 16 (double) bytes per item.
//
// Conventions:
//   * NaN values are not items: Update ignores them and counts them (nan_count).
//   * Ranks are INCLUSIVE: Rank(v) is the estimated fraction of items ≤ v, and
//     Quantile(r) is the smallest retained item whose inclusive cumulative weight
//     reaches ceil(r·n), with Quantile(0) = min() and Quantile(1) = max() (the
//     exact extremes, tracked apart from the retained items).
//   * Queries on an empty sketch, a NaN value or a rank outside [0, 1] return NaN.
//
// Thread-safety: NOT thread-safe. One writer, or external locking. Note that the
// const queries (Quantile, Rank, Cdf, Pmf, Quantiles) fill the mutable sorted-view
// cache, so even concurrent readers of one sketch need a lock; copies are
// independent.
// Ownership: a value type; copies are deep and independent.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn::sketch {

template <typename T>
class KllSketch {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "KllSketch is instantiated for float and double only");

 public:
  static constexpr uint16_t kMinK = 8;
  static constexpr uint16_t kDefaultK = 200;
  static constexpr uint64_t kDefaultSeed = 0x6b6c6c;  // "kll"
  // Streams longer than this are refused by Merge and Deserialize (unreachable
  // in practice: 2^62 items; it keeps every weight and level count far from
  // overflow). Update does not check it.
  static constexpr uint64_t kMaxN = uint64_t{1} << 62;

  // k in 8..65535 trades memory for accuracy (error ≈ 2.3/k). The seed drives the
  // random compaction offsets: equal seeds and equal input give equal sketches.
  [[nodiscard]] static absl::StatusOr<KllSketch> Create(uint16_t k = kDefaultK,
                                                       uint64_t seed = kDefaultSeed);

  // Adds one item. NaN is not added; it increments nan_count(). Amortized O(1):
  // about 16 ns for float at k = 200 (one compaction per ~6 items, each sorting
  // and halving a dozen level-0 items into the level above).
  void Update(T value) {
    if (value != value) [[unlikely]] {
      ++nan_count_;
      return;
    }
    if (levels_[0] == 0) [[unlikely]] MakeRoom();
    min_ = value < min_ ? value : min_;
    max_ = value > max_ ? value : max_;
    items_[--levels_[0]] = value;
    ++n_;
  }

  // Items added (NaN excluded), and NaN values seen.
  uint64_t n() const { return n_; }
  uint64_t nan_count() const { return nan_count_; }
  bool empty() const { return n_ == 0; }
  // Exact smallest and largest item; NaN when empty.
  T min() const { return n_ ? min_ : std::numeric_limits<T>::quiet_NaN(); }
  T max() const { return n_ ? max_ : std::numeric_limits<T>::quiet_NaN(); }

  // Approximate quantile (see the conventions above).
  T Quantile(double rank) const;
  // Quantile of each rank, in order, sharing one sorted view.
  std::vector<T> Quantiles(std::span<const double> ranks) const;
  // Estimated fraction of items ≤ value (inclusive), in [0, 1].
  double Rank(T value) const;

  // With m split points s_0 < s_1 < ... < s_{m-1} (strictly increasing, no NaN),
  // Cdf returns m+1 values: Rank(s_i) for each split, then 1.0; Pmf returns the
  // m+1 masses of the intervals (-inf, s_0], (s_0, s_1], ..., (s_{m-1}, +inf),
  // which sum to 1. InvalidArgument for bad splits; m+1 NaNs when empty.
  [[nodiscard]] absl::StatusOr<std::vector<double>> Cdf(std::span<const T> split_points) const;
  [[nodiscard]] absl::StatusOr<std::vector<double>> Pmf(std::span<const T> split_points) const;

  // Adds other's items (and NaN count) to this sketch. k may differ: this sketch
  // keeps its k (memory) and its accuracy becomes that of min(k, other.min_k()).
  // OutOfRange if the combined n would exceed kMaxN. Merging a sketch into itself
  // doubles every count.
  [[nodiscard]] absl::Status Merge(const KllSketch& other);

  // DataSketches' empirical fit of the 99th-percentile worst rank error over
  // many trials, as a fraction of n (single-sided rank, or PMF/CDF intervals).
  static double NormalizedRankError(uint16_t k, bool pmf = false);
  // The same for this sketch (uses min_k()).
  double normalized_rank_error(bool pmf = false) const { return NormalizedRankError(min_k_, pmf); }

  uint16_t k() const { return k_; }
  // Smallest k among this sketch and everything merged into it.
  uint16_t min_k() const { return min_k_; }
  uint32_t num_retained() const { return levels_[num_levels_] - levels_[0]; }
  uint32_t num_levels() const { return num_levels_; }
  // True once anything has been compacted (answers are estimates).
  bool is_estimation_mode() const { return num_levels_ > 1; }
  // Bytes held: the object, the item buffer and the sorted-view cache.
  size_t MemoryBytes() const;

  // Binary form: envelope magic "CKLL", version 1. The payload records the item
  // type, so a float sketch's blob is refused by KllSketch<double> and vice versa.
  std::string Serialize() const;
  [[nodiscard]] static absl::StatusOr<KllSketch> Deserialize(std::string_view bytes);

 private:
  // n ≤ kMaxN = 2^62 bounds the levels: a new top level h receives ≥ 4 items of
  // weight 2^h, so h < 60.
  static constexpr int kMaxLevels = 62;

  KllSketch(uint16_t k, uint64_t seed);

  static uint32_t LevelCapacity(uint16_t k, uint32_t num_levels, uint32_t level);
  static uint32_t TotalCapacity(uint16_t k, uint32_t num_levels);
  // LevelCapacity(k_, num_levels_, level) without the division.
  uint32_t CachedCapacity(uint32_t level) const {
    const uint32_t depth = num_levels_ - 1 - level;
    return depth < depth_caps_.size() ? depth_caps_[depth] : 8;
  }

  bool NextRandomBit();
  void MakeRoom();  // called by Update when the buffer is full
  void AddEmptyTopLevel();
  void CompactLevel(uint32_t level);
  void BuildSortedView() const;
  const std::vector<uint64_t>& SortedView() const;  // returns the cumulative weights

  uint16_t k_;
  uint16_t min_k_;
  // Capacity of a level by its depth below the top; from depth 23 on every k
  // gives the minimum width 8.
  std::array<uint16_t, 23> depth_caps_;
  uint32_t num_levels_ = 1;
  uint64_t rng_state_;
  uint64_t n_ = 0;
  uint64_t nan_count_ = 0;
  T min_ = std::numeric_limits<T>::infinity();
  T max_ = -std::numeric_limits<T>::infinity();
  // All levels live in items_: level h is [levels_[h], levels_[h+1]); the free
  // space is [0, levels_[0]), so Update writes at --levels_[0]. Level 0 is in
  // arrival order, levels ≥ 1 are sorted ascending.
  std::array<uint32_t, kMaxLevels + 1> levels_{};
  std::vector<T> items_;

  // Sorted view of the retained items with inclusive cumulative weights; valid
  // while view_n_ == n_ (every change to the items changes n_).
  mutable uint64_t view_n_ = 0;
  mutable std::vector<T> view_items_;
  mutable std::vector<uint64_t> view_cum_;
};

extern template class KllSketch<float>;
extern template class KllSketch<double>;

}  // namespace cairn::sketch
