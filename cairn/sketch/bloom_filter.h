// cairn/sketch/bloom_filter.h — split-block Bloom filter (set membership, no deletes).
//
// What it is: an approximate set. Contains(key) is true for every inserted key
// (no false negatives, ever) and true for an absent key with a small probability
// (the false positive rate, FPR). Deletion is not supported: use CuckooFilter.
//
// Layout (the "split-block" design of Putze/Sanders/Singler, as used by Impala,
// Kudu and Parquet): the bit array is cut into 256-bit blocks of eight 32-bit
// words. The upper 32 bits of a key's 64-bit hash pick one block; the lower 32
// bits, multiplied by eight fixed odd "salt" constants, pick one bit in each of
// the eight words. So every Insert and Contains touches exactly one 32-byte,
// 32-byte-aligned block (one cache line), which makes both about as fast as a
// single memory access.
//
// Accuracy and memory: a split-block filter needs more bits per key than a
// classic Bloom filter for the same FPR (keys are not spread evenly over blocks,
// and a block with more keys than average is fuller). Create() sizes the block
// count with the exact model (a block's key count is Poisson with mean
// lambda = keys / blocks, and a block holding j keys answers a false positive
// with probability (1 - (31/32)^j)^8), so the FPR at `expected_keys` is at or
// just below the target. Measured FPR tracks the model within sampling noise
// (see bloom_filter_test.cc). Bits per key, model = measured:
//     target FPR   bits/key (split-block)   classic optimum
//     5%           7.2                      6.2
//     1%           10.5                     9.6
//     0.1%         16.9                     14.4
//     0.01%        26.3                     19.2
// (measured at 1e6 keys, 1e6 absent queries: 0.993% for a 1% target, 0.098%
// for 0.1%). Below ~0.01% a classic or blocked filter with more bits per key
// per block would be more compact; this one stays correct but grows fast.
// Inserting more than expected_keys keeps working but the FPR grows; see
// EstimatedFalsePositiveRate().
//
// Speed: Insert/Contains hash inside the call with cairn::Hash64 (XXH3). The bit
// work uses AVX2 when the CPU has it (runtime dispatch, scalar fallback on other
// CPUs and on aarch64); both give identical bits.
//
// Thread-safety: not thread-safe. Concurrent const calls (Contains, Serialize,
// ...) are safe; any Insert or Merge needs exclusive access (one writer, or
// external locking). The filter owns its bit array; copies are deep.
//
// Serialized form (magic "CBLM", version 1), payload:
//     u64 seed, u32 words per block (8), u64 block count, block words (u32 LE).
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

namespace internal {
// Set once at load time: true when the CPU runs AVX2 (always false off x86-64).
extern const bool kBloomUseAvx2;
void BloomInsertAvx2(uint32_t* block, uint32_t key);
bool BloomContainsAvx2(const uint32_t* block, uint32_t key);
}  // namespace internal

class BloomFilter {
 public:
  // Hash seed of every filter made by Create(); stored in the serialized form.
  static constexpr uint64_t kSeed = 0x3675da30317d535bULL;
  static constexpr uint32_t kWordsPerBlock = 8;
  static constexpr size_t kBlockBytes = kWordsPerBlock * sizeof(uint32_t);
  // The block index comes from 32 hash bits: at most 2^32 blocks (128 GiB).
  static constexpr uint64_t kMaxBlocks = uint64_t{1} << 32;
  static constexpr double kMinFalsePositiveRate = 1e-9;
  static constexpr double kMaxFalsePositiveRate = 0.5;

  // A filter that holds `expected_keys` keys (>= 1) at a false positive rate of
  // at most `false_positive_rate` (in [1e-9, 0.5]). All bits start clear.
  static absl::StatusOr<BloomFilter> Create(uint64_t expected_keys, double false_positive_rate);

  void Insert(uint64_t key) { InsertHash(Hash64(key, seed_)); }
  void Insert(std::string_view key) { InsertHash(Hash64(key, seed_)); }
  // Inserts an already hashed key: `h` must be a well-mixed 64-bit hash, and
  // queries for the same key must pass the same value to ContainsHash.
  void InsertHash(uint64_t h) {
    uint32_t* block = BlockFor(h);
    const uint32_t key = static_cast<uint32_t>(h);
    if (internal::kBloomUseAvx2) {
      internal::BloomInsertAvx2(block, key);
      return;
    }
    for (uint32_t i = 0; i < kWordsPerBlock; ++i) block[i] |= BitFor(key, i);
  }

  bool Contains(uint64_t key) const { return ContainsHash(Hash64(key, seed_)); }
  bool Contains(std::string_view key) const { return ContainsHash(Hash64(key, seed_)); }
  bool ContainsHash(uint64_t h) const {
    const uint32_t* block = BlockFor(h);
    const uint32_t key = static_cast<uint32_t>(h);
    if (internal::kBloomUseAvx2) return internal::BloomContainsAvx2(block, key);
    uint32_t missing = 0;
    for (uint32_t i = 0; i < kWordsPerBlock; ++i) missing |= BitFor(key, i) & ~block[i];
    return missing == 0;
  }

  // Union: afterwards this filter contains every key of either filter, bit for
  // bit the filter of A ∪ B. InvalidArgument unless both have the same block
  // count and seed (make both with the same Create arguments).
  absl::Status Merge(const BloomFilter& other);

  // Model FPR after `inserted_keys` distinct keys (the sizing model above).
  double EstimatedFalsePositiveRate(uint64_t inserted_keys) const;
  // Model FPR of a split-block filter whose blocks hold `keys_per_block` keys
  // on average.
  static double FalsePositiveRateAtLoad(double keys_per_block);

  uint64_t num_blocks() const { return num_blocks_; }
  uint64_t seed() const { return seed_; }
  // Fraction of bits set (a quick fullness check).
  double FillRatio() const;
  size_t MemoryBytes() const { return sizeof(*this) + blocks_.capacity() * sizeof(Block); }

  std::string Serialize() const;
  static absl::StatusOr<BloomFilter> Deserialize(std::string_view bytes);

  // Bitwise equality of shape, seed and bits.
  friend bool operator==(const BloomFilter& a, const BloomFilter& b);

  // The eight odd multipliers that pick a key's bit in each word. Part of the
  // serialized format: never change them.
  static constexpr uint32_t kSalts[kWordsPerBlock] = {
      0x924f2277U, 0x806c7127U, 0x41866b2bU, 0xbbfe0827U,
      0xb6ef99dbU, 0x5de1f745U, 0xfdc1f0f1U, 0x8d4852dbU};

 private:
  struct alignas(kBlockBytes) Block {
    uint32_t words[kWordsPerBlock];
  };

  BloomFilter(uint64_t num_blocks, uint64_t seed) : blocks_(num_blocks), num_blocks_(num_blocks), seed_(seed) {}

  // Multiply-shift range reduction ("fastrange"): maps the upper 32 hash bits
  // onto [0, num_blocks) without a division.
  uint64_t BlockIndex(uint64_t h) const { return ((h >> 32) * num_blocks_) >> 32; }
  uint32_t* BlockFor(uint64_t h) { return blocks_[BlockIndex(h)].words; }
  const uint32_t* BlockFor(uint64_t h) const { return blocks_[BlockIndex(h)].words; }
  static uint32_t BitFor(uint32_t key, uint32_t word) {
    return uint32_t{1} << ((key * kSalts[word]) >> 27);
  }

  std::vector<Block> blocks_;
  uint64_t num_blocks_;
  uint64_t seed_;
};

}  // namespace cairn::sketch
