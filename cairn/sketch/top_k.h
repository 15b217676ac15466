// cairn/sketch/top_k.h — heavy hitters: the most frequent keys of a stream, with error bounds.
//
// SpaceSaving (A. Metwally, D. Agrawal and A. El Abbadi, 2005) with `capacity` = m
// counters. A key that is monitored has its counter incremented; an unmonitored key
// takes over the counter with the smallest count c_min, starting at c_min + count and
// recording c_min as its error.
//
// Guarantee, with N = TotalCount(): every reported Item satisfies
//     count - error <= true frequency <= count,   and   error <= N / m;
// every key with true frequency > N / m is present; an absent key's frequency is at
// most MinCount() <= N / m. The guarantees survive Merge (see there).
//
// Cost: Add is O(1) amortized — a hash-table lookup on a hit; on a miss, the minimum
// counter comes from a lazily rebuilt list of the counters sharing the minimum count
// (the minimum only grows, so the O(m) rebuild happens at most once per unit of
// growth, at most N / m times). Memory grows with the number of distinct keys seen, up
// to about m * (sizeof(Key) + 60) bytes (m * (sizeof(Key) + 90) when 4m is just above a
// power of two) plus string contents (MemoryBytes()).
//
// Key types: uint64_t and std::string (both instantiated in top_k.cc). TopK<std::string>
// also takes std::string_view (and C strings) and does not allocate when the key is
// already monitored.
//
// Thread-safety: not thread-safe; one writer, or external locking. Concurrent const
// calls are safe when nothing writes. The sketch owns copies of its keys; copies of
// the sketch are deep.
//
// Serialized form: magic "CTPK", version 1; payload = key type u8 (1: uint64,
// 2: string), seed u64, capacity varint, total u64, size varint, then per item: key
// (u64, or varint length + bytes), count varint, error varint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/hash.h"

namespace cairn::sketch {

template <typename Key>
class TopK {
  static_assert(std::is_same_v<Key, uint64_t> || std::is_same_v<Key, std::string>,
                "TopK supports uint64_t and std::string keys");

 public:
  static constexpr bool kStringKey = std::is_same_v<Key, std::string>;
  // How a key is passed without copying: uint64_t, or std::string_view.
  using KeyView = std::conditional_t<kStringKey, std::string_view, uint64_t>;

  // Seed of the internal key hash; stored in the serialized form.
  static constexpr uint64_t kSeed = 0x54504b31c0ffee02ULL;
  static constexpr size_t kMaxCapacity = size_t{1} << 24;

  struct Item {
    Key key;
    uint64_t count;  // upper bound on the key's frequency
    uint64_t error;  // count - error is a lower bound
    bool operator==(const Item&) const = default;
  };

  // capacity in 1..kMaxCapacity. Memory is allocated as keys arrive, not up front.
  static absl::StatusOr<TopK> Create(size_t capacity);

  TopK(const TopK&) = default;
  TopK& operator=(const TopK&) = default;
  TopK(TopK&&) noexcept = default;
  TopK& operator=(TopK&&) noexcept = default;

  // Adds `count` occurrences of the key (count 0 is a no-op).
  void Add(const Key& key, uint64_t count = 1) { AddView(KeyView(key), count); }
  // TopK<std::string> only: adds a std::string_view, C string or anything else that
  // converts to std::string_view, without allocating when the key is monitored.
  template <typename S>
    requires(kStringKey && !std::is_same_v<std::remove_cvref_t<S>, Key> &&
             std::is_convertible_v<const S&, std::string_view>)
  void Add(const S& key, uint64_t count = 1) {
    AddView(std::string_view(key), count);
  }

  // The k (or fewer) items with the largest counts, by count descending, ties by key
  // ascending.
  std::vector<Item> Top(size_t k) const;

  // The key's item if it is monitored.
  std::optional<Item> Find(KeyView key) const;

  // Upper bound on the frequency of any key that is not monitored: the smallest
  // counter once all `capacity` counters are in use, else 0.
  uint64_t MinCount() const;

  uint64_t TotalCount() const { return total_; }
  size_t capacity() const { return capacity_; }
  // Number of monitored keys (<= capacity).
  size_t size() const { return slots_.size(); }
  uint64_t seed() const { return seed_; }

  // Merges other into this (P. K. Agarwal et al., "Mergeable summaries", 2012): each
  // key's count and error become the sums of its counts and errors in both sketches,
  // where a sketch that does not monitor the key contributes its MinCount() to both;
  // then the `capacity` largest counts are kept. Bounds stay valid and error stays
  // <= (N_this + N_other) / capacity. InvalidArgument when the seeds differ or when
  // other.capacity() < capacity() (the bound would not hold).
  absl::Status Merge(const TopK& other);

  // Bytes held: the object, its tables and the heap bytes of its string keys.
  size_t MemoryBytes() const;

  std::string Serialize() const;
  static absl::StatusOr<TopK> Deserialize(std::string_view bytes);

 private:
  struct Slot {
    Key key;
    uint64_t count;
    uint64_t error;
    uint32_t tag;  // high 32 bits of the key's hash: table position and quick compare
  };

  explicit TopK(size_t capacity);

  static uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
    uint64_t s;
    return __builtin_add_overflow(a, b, &s) ? ~uint64_t{0} : s;
  }
  static uint64_t Entry(uint32_t tag, uint32_t slot) {
    return (static_cast<uint64_t>(tag) << 32) | (slot + 1);
  }
  uint32_t TagOf(KeyView key) const { return static_cast<uint32_t>(HashKey(key, seed_) >> 32); }

  void AddView(KeyView key, uint64_t count);
  // The miss path: monitor a new key, evicting the minimum when full. `pos` is the
  // empty table position where the lookup ended.
  void Insert(KeyView key, uint32_t tag, size_t pos, uint64_t count);
  uint32_t PopMinimum() {
    for (;;) {
      while (min_top_ > 0) {
        const uint32_t s = min_slots_[--min_top_];
        // Counts only grow and a replacing key starts above min_count_, so a slot
        // still at min_count_ is a true minimum; the others rose since the rebuild.
        if (slots_[s].count == min_count_) return s;
      }
      RebuildMinimum();
    }
  }
  void RebuildMinimum();
  // Slot index of the key, or -1.
  int64_t FindSlot(KeyView key, uint32_t tag) const;
  size_t FindEmpty(uint32_t tag) const;
  void Rehash(size_t table_size);

  size_t capacity_;
  uint64_t seed_ = kSeed;
  uint64_t total_ = 0;
  std::vector<Slot> slots_;
  // Open addressing, linear probing; live keys fill at most 1/4, live and stale
  // entries at most 1/2. Entry: tag << 32 | (slot + 1); 0 = empty.
  std::vector<uint64_t> table_;
  size_t mask_ = 0;
  size_t table_entries_ = 0;  // non-empty entries, live and stale
  // min_slots_[0, min_top_): slots whose count was min_count_ at the last rebuild
  // (stale ones are skipped when popped).
  std::vector<uint32_t> min_slots_;
  uint32_t min_top_ = 0;
  uint64_t min_count_ = 0;
};

template <typename Key>
inline void TopK<Key>::AddView(KeyView key, uint64_t count) {
  if (count == 0) return;
  total_ = SaturatingAdd(total_, count);
  const uint32_t tag = TagOf(key);
  size_t pos = tag & mask_;
  for (;;) {
    const uint64_t e = table_[pos];
    if (e == 0) break;
    if (static_cast<uint32_t>(e >> 32) == tag) {
      Slot& s = slots_[static_cast<uint32_t>(e) - 1];
      if (s.key == key) {
        s.count = SaturatingAdd(s.count, count);
        return;
      }
    }
    pos = (pos + 1) & mask_;
  }
  Insert(key, tag, pos, count);
}

extern template class TopK<uint64_t>;
extern template class TopK<std::string>;

}  // namespace cairn::sketch
