#include "cairn/sketch/kll.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "cairn/base/codec.h"

namespace cairn::sketch {
namespace {

constexpr uint32_t kMagic = MakeMagic("CKLL");
constexpr uint16_t kVersion = 1;
constexpr uint32_t kMinLevelWidth = 8;

// Item type tags of the serialized form.
constexpr uint8_t kTagFloat = 1;
constexpr uint8_t kTagDouble = 2;

template <typename T>
constexpr uint8_t TypeTag() {
  return std::is_same_v<T, float> ? kTagFloat : kTagDouble;
}

const char* TypeTagName(uint8_t tag) {
  switch (tag) {
    case kTagFloat: return "float";
    case kTagDouble: return "double";
    default: return "unknown";
  }
}

template <typename T>
const char* TypeName() {
  return TypeTagName(TypeTag<T>());
}

constexpr std::array<uint64_t, 31> PowersOfThree() {
  std::array<uint64_t, 31> p{};
  p[0] = 1;
  for (size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 3;
  return p;
}
constexpr std::array<uint64_t, 31> kPowersOfThree = PowersOfThree();

// splitmix64: one 64-bit step per compaction is plenty, and its whole state is
// one word that the serialized form carries.
uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Items per compaction are few: under lazy compaction level 0 is mostly
// compacted at one to two times the minimum width (8..30 items), into a level
// above holding a handful. At those sizes the usual sort and merge loops
// mispredict a branch per item, so small cases instead count each item's final
// position (more comparisons, but branch-free, independent and vectorizable).
constexpr uint32_t kSmallSort = 32;

// Sorts items[0, n) into out[0, n), n <= kSmallSort; ties keep input order.
template <typename T>
void SmallSortInto(const T* items, uint32_t n, T* out) {
  for (uint32_t i = 0; i < n; ++i) {
    const T x = items[i];
    uint32_t pos = 0;
    for (uint32_t j = 0; j < i; ++j) pos += items[j] <= x;
    for (uint32_t j = i + 1; j < n; ++j) pos += items[j] < x;
    out[pos] = x;
  }
}

// Merges the sorted run a[0, na) (outside `out`) with the sorted run that sits
// at out[na, na + nb) into out[0, na + nb). Equal items: a's come first.
template <typename T>
void MergeIntoPlace(const T* a, uint32_t na, T* out, uint32_t nb) {
  T* b = out + na;
  if (nb <= kSmallSort && na * nb <= 128) {
    T b_copy[kSmallSort];
    for (uint32_t j = 0; j < nb; ++j) b_copy[j] = b[j];  // tiny: no memmove call
    for (uint32_t i = 0; i < na; ++i) {
      const T x = a[i];
      uint32_t pos = i;
      for (uint32_t j = 0; j < nb; ++j) pos += b_copy[j] < x;
      out[pos] = x;
    }
    for (uint32_t j = 0; j < nb; ++j) {
      const T y = b_copy[j];
      uint32_t pos = j;
      for (uint32_t i = 0; i < na; ++i) pos += a[i] <= y;
      out[pos] = y;
    }
    return;
  }
  // Forward merge: the write position out + ia + ib never passes b's read
  // position out + na + ib, so b needs no scratch copy. The steps are
  // branch-free: which run supplies the next item is a coin flip.
  const T* a_end = a + na;
  const T* b_end = b + nb;
  while (a != a_end && b != b_end) {
    const T x = *a;
    const T y = *b;
    const bool take_b = y < x;
    *out++ = take_b ? y : x;
    a += !take_b;
    b += take_b;
  }
  while (a != a_end) *out++ = *a++;
  // The rest of b is already in place.
}

}  // namespace

template <typename T>
double KllSketch<T>::NormalizedRankError(uint16_t k, bool pmf) {
  // Apache DataSketches' published fit (KllSketch.getNormalizedRankError in
  // datasketches-java, get_normalized_rank_error in datasketches-cpp): the
  // constants are "the best fit to 99 percentile empirically measured max error
  // in thousands of trials". k = 200: 1.33% single-sided, 1.65% for PMF/CDF.
  return pmf ? 2.446 / std::pow(static_cast<double>(k), 0.9433)
             : 2.296 / std::pow(static_cast<double>(k), 0.9723);
}

// round(k·(2/3)^depth) in integers, so that every platform derives identical
// capacities (they decide when compaction happens and so the serialized state).
// Beyond depth 22 the result is below the minimum width for every k ≤ 65535.
template <typename T>
uint32_t KllSketch<T>::LevelCapacity(uint16_t k, uint32_t num_levels, uint32_t level) {
  assert(level < num_levels);
  const uint32_t depth = num_levels - 1 - level;
  if (depth >= kPowersOfThree.size()) return kMinLevelWidth;
  const uint64_t twice = (uint64_t{2} * k << depth) / kPowersOfThree[depth];
  const uint32_t cap = static_cast<uint32_t>((twice + 1) >> 1);
  return std::max(cap, kMinLevelWidth);
}

template <typename T>
uint32_t KllSketch<T>::TotalCapacity(uint16_t k, uint32_t num_levels) {
  uint32_t total = 0;
  for (uint32_t h = 0; h < num_levels; ++h) total += LevelCapacity(k, num_levels, h);
  return total;
}

template <typename T>
KllSketch<T>::KllSketch(uint16_t k, uint64_t seed) : k_(k), min_k_(k), rng_state_(seed) {
  for (uint32_t d = 0; d < depth_caps_.size(); ++d) {
    depth_caps_[d] = static_cast<uint16_t>(LevelCapacity(k, d + 1, 0));
  }
  items_.resize(k);
  levels_[0] = k;
  levels_[1] = k;
}

template <typename T>
absl::StatusOr<KllSketch<T>> KllSketch<T>::Create(uint16_t k, uint64_t seed) {
  if (k < kMinK) {
    return absl::InvalidArgumentError(
        fmt::format("KLL sketch k {} is out of range {}..65535", k, kMinK));
  }
  return KllSketch(k, seed);
}

template <typename T>
bool KllSketch<T>::NextRandomBit() {
  return SplitMix64(&rng_state_) >> 63;
}

// The buffer is full: compact the lowest level that is at or over its capacity
// (one must be, since the capacities sum to the buffer size). Compacting only
// that level, rather than every level, is what makes the amortized Update cost
// small: most compactions touch a short level 0 and the level above it.
template <typename T>
void KllSketch<T>::MakeRoom() {
  uint32_t level = 0;
  while (levels_[level + 1] - levels_[level] < CachedCapacity(level)) {
    ++level;
    assert(level < num_levels_);
  }
  if (level == num_levels_ - 1) AddEmptyTopLevel();
  CompactLevel(level);
  assert(levels_[0] > 0);
}

// Growing by a level raises the total capacity; the items keep their place at
// the end of a larger buffer and the new room opens at the front.
template <typename T>
void KllSketch<T>::AddEmptyTopLevel() {
  if (num_levels_ >= kMaxLevels) std::abort();  // unreachable while n ≤ kMaxN
  const uint32_t old_capacity = static_cast<uint32_t>(items_.size());
  const uint32_t new_capacity = TotalCapacity(k_, num_levels_ + 1);
  const uint32_t delta = new_capacity - old_capacity;
  std::vector<T> grown(new_capacity);
  std::copy(items_.begin() + levels_[0], items_.end(), grown.begin() + levels_[0] + delta);
  items_ = std::move(grown);
  for (uint32_t h = 0; h <= num_levels_; ++h) levels_[h] += delta;
  levels_[num_levels_ + 1] = levels_[num_levels_];
  ++num_levels_;
}

// Halves `level` into level + 1: sorts it if it is level 0 (the only level
// kept unsorted), keeps every other item from a random offset, and merges those
// into the sorted level above. With an odd population the first item stays
// behind (for level 0 an arbitrary one; sorted levels keep their smallest).
// The merged level grows downwards over the compacted items, and the levels
// below are slid up over the freed gap so the free space stays at the front.
template <typename T>
void KllSketch<T>::CompactLevel(uint32_t level) {
  assert(level + 1 < num_levels_);
  T* items = items_.data();
  const uint32_t raw_begin = levels_[level];
  const uint32_t raw_end = levels_[level + 1];
  const uint32_t pop = raw_end - raw_begin;
  const uint32_t odd = pop & 1;
  const uint32_t begin = raw_begin + odd;
  const uint32_t len = pop - odd;
  const uint32_t half = len / 2;
  const uint32_t pop_above = levels_[level + 2] - raw_end;
  const uint32_t offset = NextRandomBit() ? 1 : 0;

  // The kept half, sorted, goes to kept[0, half), which lies outside the merge
  // output [raw_end - half, raw_end + pop_above).
  T small_sorted[kSmallSort];
  T* kept = items + begin;
  if (level == 0 && len <= kSmallSort) {
    SmallSortInto(items + begin, len, small_sorted);
    kept = small_sorted;
  } else if (level == 0) {
    std::sort(items + begin, items + raw_end);
  }
  for (uint32_t i = 0; i < half; ++i) kept[i] = kept[offset + 2 * i];
  MergeIntoPlace(kept, half, items + raw_end - half, pop_above);

  levels_[level + 1] -= half;
  // Usually a handful of items (the levels below are under capacity): a
  // backward copy loop beats a memmove call.
  const uint32_t below_begin = levels_[0];
  const uint32_t below_end = raw_begin + odd;
  for (uint32_t i = below_end; i-- > below_begin;) items[i + half] = items[i];
  for (uint32_t h = 0; h <= level; ++h) levels_[h] += half;
}

template <typename T>
void KllSketch<T>::BuildSortedView() const {
  const uint32_t retained = num_retained();
  std::vector<std::pair<T, uint64_t>> tmp;
  tmp.reserve(retained);
  auto by_item = [](const auto& x, const auto& y) { return x.first < y.first; };
  for (uint32_t h = 0; h < num_levels_; ++h) {
    const size_t start = tmp.size();
    const uint64_t weight = uint64_t{1} << h;
    for (uint32_t i = levels_[h]; i < levels_[h + 1]; ++i) tmp.emplace_back(items_[i], weight);
    if (h == 0) std::sort(tmp.begin(), tmp.end(), by_item);
    else std::inplace_merge(tmp.begin(), tmp.begin() + start, tmp.end(), by_item);
  }
  view_items_.resize(retained);
  view_cum_.resize(retained);
  uint64_t cum = 0;
  for (uint32_t i = 0; i < retained; ++i) {
    cum += tmp[i].second;
    view_items_[i] = tmp[i].first;
    view_cum_[i] = cum;
  }
  view_n_ = n_;
}

template <typename T>
const std::vector<uint64_t>& KllSketch<T>::SortedView() const {
  if (view_n_ != n_ || view_cum_.empty()) BuildSortedView();
  return view_cum_;
}

template <typename T>
T KllSketch<T>::Quantile(double rank) const {
  if (n_ == 0 || !(rank >= 0.0 && rank <= 1.0)) return std::numeric_limits<T>::quiet_NaN();
  if (rank == 0.0) return min_;
  if (rank == 1.0) return max_;
  const std::vector<uint64_t>& cum = SortedView();
  // rank·n is meant as an exact count when rank = i/n; absorb the rounding of
  // that product so that ceil() does not step to the next item.
  double target = rank * static_cast<double>(n_);
  const double nearest = std::nearbyint(target);
  if (std::fabs(target - nearest) <= target * 1e-12) target = nearest;
  const uint64_t weight = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(target)));
  auto it = std::lower_bound(cum.begin(), cum.end(), weight);
  if (it == cum.end()) --it;
  return view_items_[it - cum.begin()];
}

template <typename T>
std::vector<T> KllSketch<T>::Quantiles(std::span<const double> ranks) const {
  std::vector<T> out;
  out.reserve(ranks.size());
  for (double r : ranks) out.push_back(Quantile(r));
  return out;
}

template <typename T>
double KllSketch<T>::Rank(T value) const {
  if (n_ == 0 || value != value) return std::numeric_limits<double>::quiet_NaN();
  const std::vector<uint64_t>& cum = SortedView();
  const size_t i = std::upper_bound(view_items_.begin(), view_items_.end(), value) -
                   view_items_.begin();
  return i == 0 ? 0.0 : static_cast<double>(cum[i - 1]) / static_cast<double>(n_);
}

template <typename T>
absl::StatusOr<std::vector<double>> KllSketch<T>::Cdf(std::span<const T> split_points) const {
  for (size_t i = 0; i < split_points.size(); ++i) {
    if (split_points[i] != split_points[i]) {
      return absl::InvalidArgumentError(
          fmt::format("KLL sketch: split point {} is NaN", i));
    }
    if (i > 0 && !(split_points[i - 1] < split_points[i])) {
      return absl::InvalidArgumentError(fmt::format(
          "KLL sketch: split points must be strictly increasing, but point {} ({}) follows {}",
          i, split_points[i], split_points[i - 1]));
    }
  }
  std::vector<double> out(split_points.size() + 1, std::numeric_limits<double>::quiet_NaN());
  if (n_ == 0) return out;
  for (size_t i = 0; i < split_points.size(); ++i) out[i] = Rank(split_points[i]);
  out.back() = 1.0;
  return out;
}

template <typename T>
absl::StatusOr<std::vector<double>> KllSketch<T>::Pmf(std::span<const T> split_points) const {
  absl::StatusOr<std::vector<double>> cdf = Cdf(split_points);
  if (!cdf.ok() || n_ == 0) return cdf;
  std::vector<double>& v = *cdf;
  for (size_t i = v.size() - 1; i > 0; --i) v[i] -= v[i - 1];
  return cdf;
}

// Merging concatenates the two level-0 buffers and merges each pair of sorted
// levels, then restores the capacity bound in one bottom-up pass: while the
// total is over capacity, every level at or over its own capacity is compacted
// into the next (growing a level at the top when needed). A level only grows
// from below, after its own turn, so one pass leaves every level under its
// capacity or compacted, which is within the total.
template <typename T>
absl::Status KllSketch<T>::Merge(const KllSketch& other) {
  if (&other == this) {
    const KllSketch copy = other;
    return Merge(copy);
  }
  if (other.n_ == 0) {
    nan_count_ += other.nan_count_;
    return absl::OkStatus();
  }
  if (n_ > kMaxN || other.n_ > kMaxN - n_) {
    return absl::OutOfRangeError(fmt::format(
        "KLL sketch merge: {} + {} items exceeds the limit of {}", n_, other.n_, kMaxN));
  }
  const uint32_t in_levels = std::max(num_levels_, other.num_levels_);
  std::vector<std::vector<T>> levels(in_levels);
  for (uint32_t h = 0; h < in_levels; ++h) {
    const T* a = h < num_levels_ ? items_.data() + levels_[h] : nullptr;
    const T* a_end = h < num_levels_ ? items_.data() + levels_[h + 1] : nullptr;
    const T* b = h < other.num_levels_ ? other.items_.data() + other.levels_[h] : nullptr;
    const T* b_end = h < other.num_levels_ ? other.items_.data() + other.levels_[h + 1] : nullptr;
    std::vector<T>& out = levels[h];
    out.resize((a_end - a) + (b_end - b));
    if (h == 0) {
      std::copy(b, b_end, std::copy(a, a_end, out.begin()));
    } else {
      std::merge(a, a_end, b, b_end, out.begin());
    }
  }

  size_t total = 0;
  for (const auto& l : levels) total += l.size();
  for (uint32_t h = 0; h < levels.size(); ++h) {
    const uint32_t num = static_cast<uint32_t>(levels.size());
    if (total <= TotalCapacity(k_, num)) break;
    if (levels[h].size() < LevelCapacity(k_, num, h)) continue;
    if (h + 1 == levels.size()) {
      if (levels.size() >= static_cast<size_t>(kMaxLevels)) std::abort();  // n ≤ kMaxN
      levels.emplace_back();
    }
    std::vector<T>& cur = levels[h];
    std::vector<T>& above = levels[h + 1];
    const size_t odd = cur.size() & 1;
    if (h == 0) std::sort(cur.begin() + odd, cur.end());
    const size_t half = (cur.size() - odd) / 2;
    const size_t offset = NextRandomBit() ? 1 : 0;
    std::vector<T> merged(half + above.size());
    auto out = merged.begin();
    auto b = above.begin();
    for (size_t i = 0; i < half; ++i) {
      const T a = cur[odd + offset + 2 * i];
      while (b != above.end() && *b < a) *out++ = *b++;
      *out++ = a;
    }
    std::copy(b, above.end(), out);
    above = std::move(merged);
    cur.resize(odd);
    total -= half;
  }

  num_levels_ = static_cast<uint32_t>(levels.size());
  const uint32_t capacity = TotalCapacity(k_, num_levels_);
  std::vector<T> items(capacity);
  levels_.fill(0);
  levels_[num_levels_] = capacity;
  for (uint32_t h = num_levels_; h-- > 0;) {
    levels_[h] = levels_[h + 1] - static_cast<uint32_t>(levels[h].size());
    std::copy(levels[h].begin(), levels[h].end(), items.begin() + levels_[h]);
  }
  items_ = std::move(items);

  n_ += other.n_;
  nan_count_ += other.nan_count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  min_k_ = std::min(min_k_, other.min_k_);
  return absl::OkStatus();
}

template <typename T>
size_t KllSketch<T>::MemoryBytes() const {
  return sizeof(*this) + items_.capacity() * sizeof(T) + view_items_.capacity() * sizeof(T) +
         view_cum_.capacity() * sizeof(uint64_t);
}

// Payload (little-endian):
//   u8  item type (1 = float32, 2 = float64)
//   u16 k, u16 min_k, u8 num_levels
//   u64 n, u64 nan_count, u64 rng_state
//   T min, T max                      only when n > 0
//   u32 count[num_levels]             items per level
//   T items[sum of counts]            level 0 first; levels ≥ 1 sorted
template <typename T>
std::string KllSketch<T>::Serialize() const {
  ByteWriter w;
  w.U8(TypeTag<T>());
  w.U16(k_);
  w.U16(min_k_);
  w.U8(static_cast<uint8_t>(num_levels_));
  w.U64(n_);
  w.U64(nan_count_);
  w.U64(rng_state_);
  if (n_ > 0) {
    w.Array<T>(std::span<const T>(&min_, 1));
    w.Array<T>(std::span<const T>(&max_, 1));
  }
  for (uint32_t h = 0; h < num_levels_; ++h) w.U32(levels_[h + 1] - levels_[h]);
  w.Array<T>(std::span<const T>(items_.data() + levels_[0], num_retained()));
  return SealEnvelope(kMagic, kVersion, w.data());
}

template <typename T>
absl::StatusOr<KllSketch<T>> KllSketch<T>::Deserialize(std::string_view bytes) {
  absl::StatusOr<Envelope> env = OpenEnvelope(bytes, kMagic, kVersion, "KLL sketch");
  if (!env.ok()) return env.status();
  ByteReader r(env->payload, "KLL sketch");
  auto fail = [&r](std::string message) {
    r.Fail(std::move(message));
    return r.status();
  };

  const uint8_t tag = r.U8();
  const uint16_t k = r.U16();
  const uint16_t min_k = r.U16();
  const uint8_t num_levels = r.U8();
  const uint64_t n = r.U64();
  const uint64_t nan_count = r.U64();
  const uint64_t rng_state = r.U64();
  if (!r.ok()) return r.status();
  if (tag != TypeTag<T>()) {
    return fail(fmt::format("blob holds {} items (type tag {}); it cannot be read as a {} sketch",
                            TypeTagName(tag), tag, TypeName<T>()));
  }
  if (k < kMinK) return fail(fmt::format("k {} is out of range {}..65535", k, kMinK));
  if (min_k < kMinK || min_k > k) {
    return fail(fmt::format("min_k {} is out of range {}..{} (k)", min_k, kMinK, k));
  }
  if (num_levels < 1 || num_levels > kMaxLevels) {
    return fail(fmt::format("{} levels is out of range 1..{}", num_levels, kMaxLevels));
  }
  if (n > kMaxN) return fail(fmt::format("n {} exceeds the limit of {}", n, kMaxN));

  T min = std::numeric_limits<T>::infinity();
  T max = -std::numeric_limits<T>::infinity();
  if (n > 0) {
    if constexpr (std::is_same_v<T, float>) {
      min = r.F32();
      max = r.F32();
    } else {
      min = r.F64();
      max = r.F64();
    }
    if (!r.ok()) return r.status();
    if (std::isnan(min) || std::isnan(max) || !(min <= max)) {
      return fail(fmt::format("min {} and max {} are not an ordered pair", min, max));
    }
  }

  std::array<uint32_t, kMaxLevels> counts{};
  uint64_t total = 0;
  uint64_t weight_sum = 0;
  for (uint32_t h = 0; h < num_levels; ++h) {
    counts[h] = r.U32();
    total += counts[h];
    // h ≤ 61 and counts < 2^32: each term < 2^93 could overflow, so compare
    // against the limit first.
    if (counts[h] > (kMaxN >> h)) return fail(fmt::format("level {} weight exceeds the limit", h));
    weight_sum += uint64_t{counts[h]} << h;
    if (weight_sum > kMaxN) return fail("total weight exceeds the limit");
  }
  if (!r.ok()) return r.status();
  const uint32_t capacity = TotalCapacity(k, num_levels);
  if (total > capacity) {
    return fail(fmt::format("{} items exceed the capacity {} of {} levels at k {}", total,
                            capacity, num_levels, k));
  }
  if (weight_sum != n) {
    return fail(fmt::format("level weights sum to {} but n is {}", weight_sum, n));
  }
  if (num_levels > 1 && counts[num_levels - 1] == 0) {
    return fail(fmt::format("top level {} is empty", num_levels - 1));
  }

  std::vector<T> retained;
  if (!r.Array<T>(total, &retained)) return r.status();
  if (absl::Status done = r.Finish(); !done.ok()) return done;
  size_t pos = 0;
  for (uint32_t h = 0; h < num_levels; ++h) {
    for (uint32_t i = 0; i < counts[h]; ++i, ++pos) {
      const T v = retained[pos];
      if (!(v >= min && v <= max)) {
        return absl::InvalidArgumentError(fmt::format(
            "KLL sketch: item {} of level {} ({}) is NaN or outside [min {}, max {}]", i, h, v,
            min, max));
      }
      if (h > 0 && i > 0 && v < retained[pos - 1]) {
        return absl::InvalidArgumentError(
            fmt::format("KLL sketch: level {} is not sorted at item {}", h, i));
      }
    }
  }

  KllSketch sketch(k, rng_state);
  sketch.min_k_ = min_k;
  sketch.num_levels_ = num_levels;
  sketch.n_ = n;
  sketch.nan_count_ = nan_count;
  sketch.min_ = min;
  sketch.max_ = max;
  sketch.items_.assign(capacity, T{});
  sketch.levels_.fill(0);
  sketch.levels_[num_levels] = capacity;
  for (uint32_t h = num_levels; h-- > 0;) sketch.levels_[h] = sketch.levels_[h + 1] - counts[h];
  std::copy(retained.begin(), retained.end(), sketch.items_.begin() + sketch.levels_[0]);
  return sketch;
}

template class KllSketch<float>;
template class KllSketch<double>;

}  // namespace cairn::sketch
