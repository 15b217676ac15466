// cairn/sketch/cuckoo_filter.h — cuckoo filter: approximate set with deletion.
//
// What it is: an approximate multiset of keys (Fan, Andersen, Kaminsky,
// Mitzenmacher, "Cuckoo Filter: Practically Better Than Bloom", CoNEXT 2014).
// Each key is stored as a short fingerprint in one of two buckets of four
// slots. Contains(key) is true for every inserted, not yet erased key (no false
// negatives) and true for other keys with a small probability (FPR).
// Erase(key) removes one copy of the key's fingerprint.
//
// Contract details:
//   * Insert adds one fingerprint per call, also for a key already present
//     (multiset): a key inserted twice must be erased twice. At most 9 copies
//     of one fingerprint fit (two buckets of four, plus the stash).
//   * Erase only keys that were inserted: erasing a never-inserted key that
//     happens to be a false positive removes another key's fingerprint and
//     creates a false negative for that key.
//   * Insert fails with ResourceExhausted "cuckoo filter is full (load X%)"
//     when no room can be found. A failed Insert leaves the filter unchanged:
//     when the bounded eviction walk (kMaxKicks steps, each looking one move
//     ahead from the current bucket; see the .cc) ends with a homeless
//     fingerprint, that fingerprint is parked in a one-entry victim stash
//     (still found by Contains/Erase), and while the stash is occupied any
//     insert that would need to kick fails. Erase re-homes the stash entry.
//
// Layout: fingerprints of 12 or 16 bits (chosen by Create from the target FPR),
// four per bucket, packed into 6- or 8-byte buckets. The first bucket comes from
// the upper 32 hash bits, the fingerprint from the lower 32. The alternate
// bucket is found from the fingerprint alone (partial-key cuckoo hashing) as
//     alt(i, fp) = (H(fp) - i) mod num_buckets,
// an involution for any bucket count, so the table need not be a power of two
// and Create() can size it to the capacity asked for (with XOR, as in the
// paper, the table would round up to a power of two, up to 2x the memory).
//
// Sizing and accuracy: Create(capacity, fpr) allocates ceil(capacity / (4 *
// kSizingLoad)) buckets, i.e. `capacity` keys fill the slots to 90%; inserts
// keep succeeding to about 97% slot load, so `capacity` keys always fit (see
// CuckooFilter.FillsBeyondCapacityBeforeFailing: the first failure came at
// 96.7-97.9% slot load, 1.07-1.09x capacity, for capacities 1000..100000). A query
// compares its fingerprint with 8 slots, so FPR ~= 8 * load / (2^bits - 1).
// Measured with 2e6 (12-bit) / 8e6 (16-bit) absent queries (model in brackets;
// CuckooFilter.DocumentedFprAtLoad):
//     slot load     12-bit fingerprints     16-bit fingerprints
//     50%           0.099%  (0.098%)        0.0057%  (0.0061%)
//     90%           0.179%  (0.176%)        0.0114%  (0.0110%)
//     95%           0.188%  (0.185%)        0.0116%  (0.0116%)
//     100% (bound)          (0.195%)                 (0.0122%)
// Create picks 12 bits when the target is >= 0.2%, 16 bits when it is >=
// 0.0125%, and refuses smaller targets (use a BloomFilter). Memory per slot is
// 12 or 16 bits; per key at `capacity` 13.3 or 17.8 bits.
//
// Thread-safety: not thread-safe. Concurrent const calls (Contains, Serialize,
// ...) are safe; Insert, Erase and Merge need exclusive access. The filter owns
// its table; copies are deep.
//
// Serialized form (magic "CCKO", version 1), payload:
//     u64 seed, u8 fingerprint bits, u64 bucket count, u64 size,
//     u8 stash used, u32 stash fingerprint, u64 stash bucket,
//     bucket bytes (6 or 8 per bucket, little-endian slots).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/hash.h"

namespace cairn::sketch {

class CuckooFilter {
 public:
  // Hash seed of every filter made by Create(); stored in the serialized form.
  static constexpr uint64_t kSeed = 0x0987d2b59620efd1ULL;
  static constexpr int kSlotsPerBucket = 4;
  static constexpr int kMaxKicks = 500;
  // Create() sizes the table so that `capacity` keys fill this share of slots.
  static constexpr double kSizingLoad = 0.90;
  // The bucket index comes from 32 hash bits.
  static constexpr uint64_t kMaxBuckets = uint64_t{1} << 32;
  static constexpr double kMinFpr12 = 0.002;
  static constexpr double kMinFpr16 = 0.000125;

  // A filter that holds at least `capacity` keys (>= 1) with FPR at most
  // `false_positive_rate` at that load.
  static absl::StatusOr<CuckooFilter> Create(uint64_t capacity,
                                             double false_positive_rate = 0.001);

  absl::Status Insert(uint64_t key) { return InsertHash(Hash64(key, seed_)); }
  absl::Status Insert(std::string_view key) { return InsertHash(Hash64(key, seed_)); }
  // Already hashed keys: `h` must be a well-mixed 64-bit hash.
  absl::Status InsertHash(uint64_t h) {
    const uint32_t fp = Fingerprint(h);
    const uint64_t i1 = Index(h);
    const uint64_t i2 = AltIndex(i1, fp);
    // Start the second bucket's load now: near full load it is needed often.
    __builtin_prefetch(table_.data() + i2 * bucket_bytes_);
    if (TryStore(i1, fp) || TryStore(i2, fp)) {
      ++size_;
      return absl::OkStatus();
    }
    return InsertWithKicks(i1, fp);
  }

  bool Contains(uint64_t key) const { return ContainsHash(Hash64(key, seed_)); }
  bool Contains(std::string_view key) const { return ContainsHash(Hash64(key, seed_)); }
  bool ContainsHash(uint64_t h) const {
    const uint32_t fp = Fingerprint(h);
    const uint64_t i1 = Index(h);
    const uint64_t i2 = AltIndex(i1, fp);
    // Both buckets tested with integer ops, no branch between the two loads.
    const uint64_t pattern = fp * lane_low_;
    const uint64_t hits = ZeroSlots(LoadBucket(i1) ^ pattern) | ZeroSlots(LoadBucket(i2) ^ pattern);
    return hits != 0 || StashHas(fp, i1, i2);
  }

  // Removes one copy of the key's fingerprint; false if none was found.
  bool Erase(uint64_t key) { return EraseHash(Hash64(key, seed_)); }
  bool Erase(std::string_view key) { return EraseHash(Hash64(key, seed_)); }
  bool EraseHash(uint64_t h) {
    const uint32_t fp = Fingerprint(h);
    const uint64_t i1 = Index(h);
    return RemoveFingerprint(i1, fp);
  }

  // Inserts every fingerprint of `other` (a multiset union: the result
  // contains all keys of both). Needs the same bucket count, fingerprint size
  // and seed (InvalidArgument otherwise). If it does not fit, returns
  // ResourceExhausted and this filter is left as it was.
  absl::Status Merge(const CuckooFilter& other);

  // Fingerprints stored (inserts minus erases), stash included.
  uint64_t size() const { return size_; }
  // size() / num_slots().
  double LoadFactor() const {
    return static_cast<double>(size_) / static_cast<double>(num_slots());
  }
  uint64_t num_buckets() const { return num_buckets_; }
  uint64_t num_slots() const { return num_buckets_ * kSlotsPerBucket; }
  int fingerprint_bits() const { return bits_; }
  uint64_t seed() const { return seed_; }
  // FPR model at the current load: 1 - (1 - 1/(2^bits - 1))^(8 * load).
  double EstimatedFalsePositiveRate() const;
  size_t MemoryBytes() const { return sizeof(*this) + table_.capacity(); }

  std::string Serialize() const;
  static absl::StatusOr<CuckooFilter> Deserialize(std::string_view bytes);

  // Same shape, seed, size, stash and slot contents.
  friend bool operator==(const CuckooFilter& a, const CuckooFilter& b);

 private:
  CuckooFilter(uint64_t num_buckets, int bits, uint64_t seed);

  // Fingerprints are 1..2^bits-1 (0 marks an empty slot), spread over the
  // lower 32 hash bits by multiply-shift.
  uint32_t Fingerprint(uint64_t h) const {
    return static_cast<uint32_t>(((h & 0xffffffffULL) * fp_range_) >> 32) + 1;
  }
  uint64_t Index(uint64_t h) const { return ((h >> 32) * num_buckets_) >> 32; }
  uint64_t AltIndex(uint64_t i, uint32_t fp) const {
    const uint64_t mixed = (fp * 0x9E3779B97F4A7C15ULL) >> 32;
    const uint64_t c = (mixed * num_buckets_) >> 32;
    const uint64_t j = c + num_buckets_ - i;
    return j >= num_buckets_ ? j - num_buckets_ : j;
  }

  // A bucket as one little-endian word: slot s holds bits [s*bits, (s+1)*bits).
  // The table has padding after the last bucket so 8-byte loads stay inside.
  uint64_t LoadBucket(uint64_t i) const {
    uint64_t w;
    std::memcpy(&w, table_.data() + i * bucket_bytes_, 8);
    return w & bucket_mask_;
  }
  // Rewrites the 8 bytes at the bucket, keeping those past its end: one fixed
  // size store for both bucket sizes.
  void StoreBucket(uint64_t i, uint64_t w) {
    uint8_t* p = table_.data() + i * bucket_bytes_;
    uint64_t old;
    std::memcpy(&old, p, 8);
    w |= old & ~bucket_mask_;
    std::memcpy(p, &w, 8);
  }
  // Nonzero iff some slot of `w` is zero: the classic SWAR zero-lane test,
  // exact for "any" (borrows only run upward from the lowest zero lane).
  uint64_t ZeroSlots(uint64_t w) const { return (w - lane_low_) & ~w & lane_high_; }
  bool StashHas(uint32_t fp, uint64_t i1, uint64_t i2) const {
    return stash_used_ && stash_fp_ == fp && (stash_index_ == i1 || stash_index_ == i2);
  }
  // Puts fp into an empty slot of bucket i, if it has one.
  bool TryStore(uint64_t i, uint32_t fp) {
    const uint64_t w = LoadBucket(i);
    const uint64_t empty = ZeroSlots(w);
    if (empty == 0) return false;
    const int shift = FirstLaneShift(empty);
    StoreBucket(i, w | (static_cast<uint64_t>(fp) << shift));
    return true;
  }
  // Bit offset of the lowest flagged lane (flags sit at each lane's top bit).
  int FirstLaneShift(uint64_t flags) const {
    const int top = __builtin_ctzll(flags);
    return top - (bits_ - 1);
  }

  absl::Status InsertWithKicks(uint64_t i1, uint32_t fp);
  // Removes one copy of fp from the pair {i, alt(i)} or the stash.
  bool RemoveFingerprint(uint64_t i, uint32_t fp);
  absl::Status FullError() const;
  uint64_t NextRandom();

  std::vector<uint8_t> table_;
  uint64_t num_buckets_;
  uint64_t seed_;
  uint64_t size_ = 0;
  uint64_t bucket_mask_;
  uint64_t lane_low_;
  uint64_t lane_high_;
  uint64_t fp_range_;
  uint64_t rng_state_ = 0x853c49e6748fea9bULL;
  uint64_t stash_index_ = 0;
  uint32_t stash_fp_ = 0;
  bool stash_used_ = false;
  int bits_;
  size_t bucket_bytes_;
};

}  // namespace cairn::sketch
