// cairn/sketch/count_min.h — Count-Min sketch: approximate per-key frequencies of a stream.
//
// A depth x width matrix of counters (G. Cormode and S. Muthukrishnan, 2005). Add
// increments one counter per row, chosen by a hash of the key; Estimate returns the
// minimum of the key's counters.
//
// Accuracy: an estimate never under-counts (f <= Estimate), and with probability at
// least 1 - delta it over-counts by at most epsilon * N, where N = TotalCount(),
// epsilon = e / width and delta = e^-depth. Create(epsilon, delta) picks
// width = ceil(e / epsilon) and depth = ceil(ln(1 / delta)).
//
// Conservative update (C. Estan and G. Varghese, 2002), chosen at creation, raises
// only the counters that are below the key's new estimate: estimates stay upper
// bounds, are never larger than the plain sketch's, and are usually much smaller for
// skewed streams. It costs one extra pass over the rows per Add.
//
// Counters are uint64 and saturate at 2^64 - 1 (they never wrap); TotalCount
// saturates the same way. Memory: 8 * depth * width bytes (MemoryBytes()).
//
// Merging: sketches with the same shape and seed merge by adding counters, so
// Merge(A, B) equals the sketch of A's stream followed by B's stream exactly (plain
// mode). Conservative sketches merge too (also with plain ones): the result is still
// an over-estimate of every key, though larger than a conservative sketch of the
// union would be.
//
// Decay: Scale(f) multiplies every counter (and TotalCount) by f, rounding down,
// which turns the sketch into an exponentially decayed one when called periodically.
// After scaling, estimates bound floor(f * count) rather than the exact decayed count.
//
// Thread-safety: not thread-safe; one writer, or external locking. Concurrent const
// calls (Estimate, Serialize) are safe when nothing writes. The sketch owns its
// counters; copies are deep.
//
// Serialized form: magic "CCMS", version 1; payload = seed u64, depth u32, width u32,
// flags u8 (bit 0: conservative), total u64, then depth * width counters as varints
// in row-major order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/hash.h"

namespace cairn::sketch {

class CountMinSketch {
 public:
  // The hash seed of every sketch created by this build; stored in the serialized
  // form so that sketches hashed differently refuse to merge.
  static constexpr uint64_t kSeed = 0x434d5331c0ffee01ULL;
  static constexpr uint32_t kMaxDepth = 32;
  static constexpr uint32_t kMaxWidth = uint32_t{1} << 28;
  // At most 2^28 counters (2 GiB) in one sketch.
  static constexpr uint64_t kMaxCounters = uint64_t{1} << 28;

  // epsilon in (0, 1], delta in (0, 1).
  static absl::StatusOr<CountMinSketch> Create(double epsilon, double delta,
                                               bool conservative_update = false);
  // depth in 1..kMaxDepth, width in 1..kMaxWidth, depth * width <= kMaxCounters.
  static absl::StatusOr<CountMinSketch> CreateWithShape(uint32_t depth, uint32_t width,
                                                        bool conservative_update = false);

  CountMinSketch(const CountMinSketch&) = default;
  CountMinSketch& operator=(const CountMinSketch&) = default;
  CountMinSketch(CountMinSketch&&) noexcept = default;
  CountMinSketch& operator=(CountMinSketch&&) noexcept = default;

  // Adds `count` occurrences of the key. The key is hashed with Hash64(key, seed()).
  void Add(uint64_t key, uint64_t count = 1) { AddHash(Hash64(key, seed_), count); }
  void Add(std::string_view key, uint64_t count = 1) { AddHash(Hash64(key, seed_), count); }
  // Adds by a precomputed 64-bit hash (callers that hash themselves must use the same
  // hash for Add and Estimate; mixing with the key overloads needs Hash64(key, seed())).
  void AddHash(uint64_t h, uint64_t count = 1);

  // An upper bound on the key's count: see the accuracy contract above.
  uint64_t Estimate(uint64_t key) const { return EstimateHash(Hash64(key, seed_)); }
  uint64_t Estimate(std::string_view key) const { return EstimateHash(Hash64(key, seed_)); }
  uint64_t EstimateHash(uint64_t h) const;

  // Sum of all counts added (and merged, and scaled), saturating.
  uint64_t TotalCount() const { return total_; }
  // e / width: the error bound is epsilon() * TotalCount().
  double epsilon() const;
  // e^-depth: the probability that one estimate exceeds the error bound.
  double delta() const;
  uint32_t depth() const { return depth_; }
  uint32_t width() const { return width_; }
  bool conservative_update() const { return conservative_; }
  uint64_t seed() const { return seed_; }

  // Adds other's counters to this sketch's. InvalidArgument unless depth, width and
  // seed are equal. Merging a sketch into itself doubles it.
  absl::Status Merge(const CountMinSketch& other);

  // Multiplies every counter and TotalCount by `factor` (>= 0), rounding down;
  // values that would exceed 2^64 - 1 saturate.
  void Scale(double factor);

  // Resets every counter and TotalCount to zero, keeping the shape.
  void Clear();

  // Bytes held: the object and its counters.
  size_t MemoryBytes() const;

  std::string Serialize() const;
  static absl::StatusOr<CountMinSketch> Deserialize(std::string_view bytes);

  // Counters in row-major order (depth rows of width counters); for tests and tools.
  const std::vector<uint64_t>& counters() const { return counters_; }

 private:
  CountMinSketch(uint32_t depth, uint32_t width, bool conservative, uint64_t seed);

  static uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
    uint64_t s;
    return __builtin_add_overflow(a, b, &s) ? ~uint64_t{0} : s;
  }
  // Column of row `row` for a key whose hash halves are h1, h2. The d row hashes
  // come from one 64-bit hash by double hashing (g_i = h1 + i * h2, Kirsch and
  // Mitzenmacher), mapped onto [0, width) by a multiply-shift instead of a modulo.
  uint64_t Column(uint32_t g) const { return (static_cast<uint64_t>(g) * width_) >> 32; }

  uint32_t depth_;
  uint32_t width_;
  bool conservative_;
  uint64_t seed_;
  uint64_t total_ = 0;
  std::vector<uint64_t> counters_;
};

inline void CountMinSketch::AddHash(uint64_t h, uint64_t count) {
  total_ = SaturatingAdd(total_, count);
  const uint32_t h1 = static_cast<uint32_t>(h);
  const uint32_t h2 = static_cast<uint32_t>(h >> 32);
  uint64_t* row = counters_.data();
  if (!conservative_) {
    uint32_t g = h1;
    for (uint32_t i = 0; i < depth_; ++i, row += width_, g += h2) {
      uint64_t& c = row[Column(g)];
      c = SaturatingAdd(c, count);
    }
    return;
  }
  // Conservative update: new estimate = old estimate + count; raise each of the
  // key's counters to it, never lower any.
  uint64_t* cells[kMaxDepth];
  uint64_t estimate = ~uint64_t{0};
  uint32_t g = h1;
  for (uint32_t i = 0; i < depth_; ++i, row += width_, g += h2) {
    cells[i] = row + Column(g);
    estimate = *cells[i] < estimate ? *cells[i] : estimate;
  }
  const uint64_t target = SaturatingAdd(estimate, count);
  for (uint32_t i = 0; i < depth_; ++i) *cells[i] = *cells[i] < target ? target : *cells[i];
}

inline uint64_t CountMinSketch::EstimateHash(uint64_t h) const {
  const uint32_t h1 = static_cast<uint32_t>(h);
  const uint32_t h2 = static_cast<uint32_t>(h >> 32);
  const uint64_t* row = counters_.data();
  uint64_t best = ~uint64_t{0};
  uint32_t g = h1;
  for (uint32_t i = 0; i < depth_; ++i, row += width_, g += h2) {
    const uint64_t c = row[Column(g)];
    best = c < best ? c : best;
  }
  return best;
}

}  // namespace cairn::sketch
