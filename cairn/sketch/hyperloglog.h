// cairn/sketch/hyperloglog.h — HyperLogLog distinct-count sketch.
//
// What it is: an estimate of the number of distinct keys added, in memory that
// does not grow with the stream. Keys are hashed with cairn::Hash64 (XXH3) and a
// per-sketch seed; AddHash() takes an already well-mixed 64-bit hash directly.
//
// Accuracy and memory: with precision p (4..18) the sketch has m = 2^p one-byte
// registers, so it holds m bytes once dense, and the relative standard error of
// Estimate() is about 1.04 / sqrt(m) (1.6% at p = 12, 0.2% at p = 18). Estimates
// use Ertl's improved estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017), with no empirical bias tables, valid from 0 to
// far beyond 10^12. It is scaled by the exact constant alpha_m for m registers
// rather than its limit, which removes a bias of about 1.079/m (7% at p = 4).
//
// Small cardinalities: a new sketch starts sparse. It keeps one 32-bit entry per
// distinct 26-bit hash prefix (the rank of the rest of the hash beside it), which
// is a HyperLogLog with 2^26 registers, so estimates are near-exact (error well
// below 0.1%) while it is sparse. It turns dense once its table would need more
// than m bytes, i.e. past 3m/16 distinct prefixes (768 at p = 12). Whether a
// sketch is sparse depends only on the set of hashes it has seen, never on the
// order of adds and merges.
//
// Merging: Merge() gives exactly the sketch of the union of both inputs. Sketches
// of different precisions merge too: the result takes the lower precision, and
// it is exactly the sketch that the lower precision would have built from the
// union. Reduce() lowers the precision the same way. Both sides must have the
// same seed.
//
// Serialization: Serialize() writes a cairn envelope with magic "CHLL", version 1;
// Deserialize() validates every field and rejects bad input with a clear error.
//
// Thread-safety: not thread-safe. One writer at a time (or external locking);
// concurrent const calls (Estimate, Serialize, ...) on an unchanging sketch are
// fine. The sketch owns its memory; copies are deep and independent.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/hash.h"

namespace cairn::sketch {

class HyperLogLog {
 public:
  static constexpr int kMinPrecision = 4;
  static constexpr int kMaxPrecision = 18;
  // Seed of Hash64 for Add(); part of the serialized form.
  static constexpr uint64_t kSeed = 0x9c3a1f5e7d2b4861ULL;

  // A sparse, empty sketch with 2^precision registers. InvalidArgument unless
  // precision is in kMinPrecision..kMaxPrecision.
  [[nodiscard]] static absl::StatusOr<HyperLogLog> Create(int precision);

  // Adds a key (hashed with Hash64 and the sketch's seed).
  void Add(uint64_t key) { AddHash(Hash64(key, seed_)); }
  void Add(std::string_view key) { AddHash(Hash64(key, seed_)); }
  // Adds a 64-bit hash value. Its bits must look uniformly random.
  inline void AddHash(uint64_t hash);

  // Estimated number of distinct keys added.
  double Estimate() const;
  // 1.04 / sqrt(2^precision): the relative standard error once dense.
  double RelativeStandardError() const;

  int precision() const { return precision_; }
  bool is_sparse() const { return !dense_; }
  uint64_t seed() const { return seed_; }

  // Merges `other` into this sketch, which becomes the sketch of the union. If
  // the precisions differ this sketch takes the lower one. InvalidArgument when
  // the seeds differ (the sketch is then unchanged).
  [[nodiscard]] absl::Status Merge(const HyperLogLog& other);

  // The same sketch at a lower (or equal) precision. InvalidArgument when
  // lower_precision is above precision() or below kMinPrecision.
  [[nodiscard]] absl::StatusOr<HyperLogLog> Reduce(int lower_precision) const;

  // Bytes held: the object and its heap allocations.
  size_t MemoryBytes() const;

  std::string Serialize() const;
  [[nodiscard]] static absl::StatusOr<HyperLogLog> Deserialize(std::string_view bytes);

  // Sparse entries use a fixed precision of 26 bits: entry = index << 6 | rank.
  static constexpr int kSparsePrecision = 26;
  static constexpr int kSparseMaxRank = 64 - kSparsePrecision + 1;  // 39
  // Largest dense register value at `precision`.
  static constexpr int MaxRank(int precision) { return 64 - precision + 1; }
  // Most distinct sparse entries a sketch of this precision holds before it turns dense.
  static constexpr size_t SparseLimit(int precision) { return (size_t{3} << precision) / 16; }

 private:
  HyperLogLog(int precision, uint64_t seed);

  void AddSparse(uint64_t hash);
  void InsertSparseEntry(uint32_t entry);
  void GrowSparse();
  void ConvertToDense();
  void MergeEntryIntoDense(uint32_t entry);
  std::vector<uint32_t> SortedSparseEntries() const;
  double EstimateDense() const;
  double EstimateSparse() const;

  int precision_;
  bool dense_ = false;
  uint64_t seed_;
  size_t sparse_count_ = 0;
  // Dense: 2^precision registers, each 0 (empty) or a rank 1..MaxRank(precision).
  std::vector<uint8_t> registers_;
  // Sparse: open-addressing table of entries (0 = empty slot), power-of-two size.
  std::vector<uint32_t> sparse_;
};

inline void HyperLogLog::AddHash(uint64_t hash) {
  if (dense_) [[likely]] {
    // Index = the top p bits; rank = 1 + leading zeros of the other 64 - p bits,
    // the sentinel bit capping it at 65 - p.
    const uint64_t index = hash >> (64 - precision_);
    const uint64_t rest = (hash << precision_) | (uint64_t{1} << (precision_ - 1));
    const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
    uint8_t& reg = registers_[index];
    if (rank > reg) reg = rank;
  } else {
    AddSparse(hash);
  }
}

}  // namespace cairn::sketch
