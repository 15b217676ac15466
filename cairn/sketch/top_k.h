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
// Cost: Add is O(1) amortized — one hash and usually one table probe. On a miss, the
// minimum counter comes from a lazily rebuilt bitmap of the counters sharing the
// minimum count (the minimum only grows, so the O(m) rebuild happens at most once per
// unit of growth, at most N / m times). Ties for the minimum go to the counter first
// used earliest, so a decoded sketch evicts exactly as the original would. A full
// TopK<uint64_t> whose adds often both hit and miss (a third to three quarters miss)
// adds without branching on the outcome; every >= m evictions it re-decides and
// rehashes, in O(m), the table entries those adds leave behind. Memory grows with the
// number of distinct keys seen, up to about m * (sizeof(Key) + 52) bytes (m *
// (sizeof(Key) + 84) when 16m is just above a power of two) plus string contents
// (MemoryBytes()).
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

#include <algorithm>
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
  size_t size() const { return keys_.size(); }
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
  explicit TopK(size_t capacity);

  // x += b, saturating: an add to memory and a branch never taken in practice (a
  // call, so that the compiler does not turn it into a conditional move).
  static void AddTo(uint64_t& x, uint64_t b) {
    if (__builtin_add_overflow(x, b, &x)) [[unlikely]] Saturate(x);
  }
  [[gnu::noinline, gnu::cold]] static void Saturate(uint64_t& x) { x = ~uint64_t{0}; }
  static uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
    uint64_t s;
    if (__builtin_add_overflow(a, b, &s)) [[unlikely]] return ~uint64_t{0};
    return s;
  }
  // x, hidden from the optimizer, so that arithmetic meant to be branch-free is not
  // turned back into branches.
  template <typename T>
  static T Opaque(T x) {
#if defined(__GNUC__)
    asm("" : "+r"(x));
#endif
    return x;
  }
  // High 32 bits of the key's hash: its home position in the table (tag & mask_); for
  // string keys also a quick compare before the string compare.
  uint32_t TagOf(KeyView key) const {
    // The default seed as a constant lets the compiler fold the hash's seed setup.
    if (seed_ == kSeed) [[likely]] return static_cast<uint32_t>(HashKey(key, kSeed) >> 32);
    return static_cast<uint32_t>(HashKey(key, seed_) >> 32);
  }
  bool SlotHolds(uint32_t slot, KeyView key, uint32_t tag) const {
    if constexpr (kStringKey) {
      return tags_[slot] == tag && keys_[slot] == key;
    } else {
      (void)tag;
      return keys_[slot] == key;
    }
  }

  // The table's entries are uint16_t up to kWideCapacity slots, else uint32_t; the
  // code that touches them is written once, for Entry = either.
  template <typename Entry>
  Entry* Table() {
    if constexpr (sizeof(Entry) == 2) {
      return narrow_table_.data();
    } else {
      return wide_table_.data();
    }
  }
  template <typename Entry>
  const Entry* Table() const {
    return const_cast<TopK*>(this)->Table<Entry>();
  }

  void AddView(KeyView key, uint64_t count);
  template <typename Entry>
  void AddIn(KeyView key, uint32_t tag, uint64_t count);
  // AddIn for a full TopK<uint64_t>, without a branch on hit or miss.
  template <typename Entry>
  void AddWhenFull(uint64_t key, uint32_t tag, uint64_t count)
    requires(!kStringKey);
  // The miss path: monitors a new key at the empty table position `pos` where its
  // lookup ended, evicting the minimum when full.
  template <typename Entry>
  void Insert(KeyView key, uint32_t tag, size_t pos, uint64_t count) {
    if (keys_.size() < capacity_) [[unlikely]] {
      Append(key, tag, pos, count);
    } else {
      Replace<Entry>(key, tag, pos, count);
    }
  }
  void Append(KeyView key, uint32_t tag, size_t pos, uint64_t count);
  template <typename Entry>
  void Replace(KeyView key, uint32_t tag, size_t pos, uint64_t count);
  // Empties table position `hole` and shifts later entries of its run back so that
  // every key stays reachable from its home without tombstones.
  template <typename Entry>
  void EraseAt(size_t hole);
  void AppendSlot(KeyView key, uint64_t count, uint64_t error, uint32_t tag);
  // The lowest-index slot among those with the smallest count. kTake = false leaves
  // it in place (its bit stays the lowest of min_bits_now_); kTake = true takes it
  // out of the minimum's slots, popping each bit before its check, which is
  // measurably faster on the branching miss path.
  template <bool kTake>
  uint32_t NextMinimum() {
    for (;;) {
      while (min_bits_now_ == 0) [[unlikely]] {
        if (++min_word_ < min_bits_.size()) {
          min_bits_now_ = min_bits_[min_word_];
        } else {
          RebuildMinimum();
        }
      }
      const uint32_t s = static_cast<uint32_t>(min_word_ * 64 + __builtin_ctzll(min_bits_now_));
      if constexpr (kTake) min_bits_now_ &= min_bits_now_ - 1;
      // Counts only grow and a replacing key starts above min_count_, so a slot still
      // at min_count_ is a true minimum; the others rose since the rebuild.
      if (counts_[s] == min_count_) [[likely]] return s;
      if constexpr (!kTake) min_bits_now_ &= min_bits_now_ - 1;
    }
  }
  uint32_t PeekMinimum() { return NextMinimum<false>(); }
  uint32_t PopMinimum() { return NextMinimum<true>(); }
  void RebuildMinimum();
  // Forgets the minimum's slots (after the counts changed other than by Add).
  void ResetMinimum() {
    min_bits_.clear();
    min_word_ = 0;
    min_bits_now_ = 0;
    min_count_ = 0;
  }
  // Counts evictions; every eviction_period_ of them, Reconsider() picks the add path
  // and purges the stale entries.
  void CountEvictions(uint32_t n) {
    evictions_ += n;
    if (evictions_ > eviction_period_) [[unlikely]] Reconsider();
  }
  void Reconsider();
  // Slot index of the key, or -1.
  int64_t FindSlot(KeyView key, uint32_t tag) const;
  template <typename Entry>
  int64_t FindSlotIn(KeyView key, uint32_t tag) const;
  // Sets the table to `table_size` entries and enters every slot (no stale entries).
  void Rehash(size_t table_size);
  // The table size for n keys.
  size_t TableSizeFor(size_t n) const;
  // Enters slot `slot` (holding `tag`) at the first empty position of its probe.
  void Enter(uint32_t slot, uint32_t tag);

  size_t capacity_;
  uint64_t seed_ = kSeed;
  uint64_t total_ = 0;
  // Slot i (0 <= i < size()) monitors keys_[i] with counts_[i], errors_[i], and
  // tags_[i] = TagOf(keys_[i]). Slots keep their index for life: a replacing key
  // takes over the evicted slot, and the serialized order is the slot order.
  std::vector<Key> keys_;
  std::vector<uint64_t> counts_;
  std::vector<uint64_t> errors_;
  std::vector<uint32_t> tags_;
  // Open addressing with linear probing. Entry: slot + 1; 0 = empty. Live keys fill
  // at most 1/16 of a narrow table and 1/8 of a wide one (32 bytes per key either
  // way). Replace() deletes the evicted key's entry by backward shift; the branch-
  // free AddWhenFull() leaves it behind, stale: it points at a slot that now holds
  // another key, so lookups pass it by the key comparison they make anyway (or find
  // that slot's key through it, which is as good). Stale entries are at most the
  // evictions since the last Reconsider(), which purges them: eviction_period_ keeps
  // the load below 1/8 (narrow) or 1/4 (wide).
  static constexpr size_t kWideCapacity = 65535;
  std::vector<uint16_t> narrow_table_;
  std::vector<uint32_t> wide_table_;
  size_t mask_ = 0;
  bool wide_;
  // Whether a full TopK<uint64_t> adds through AddWhenFull(): chosen by Reconsider()
  // from the share of adds that missed in the last period (the branch-free path pays
  // for a miss's bookkeeping on every add, which only wins when hits and misses are
  // both common). Only ever true when the sketch is full.
  bool branch_free_ = false;
  size_t evictions_ = 0;
  size_t eviction_period_ = 0;
  uint64_t total_at_period_ = 0;
  // Bit i of min_bits_: slot i had count min_count_ at the last rebuild. Pops go
  // through the bits in ascending order: min_bits_now_ holds the unpopped bits of
  // word min_word_ (earlier words are spent). Invariant: once every bit is spent,
  // every count exceeds min_count_.
  std::vector<uint64_t> min_bits_;
  size_t min_word_ = 0;
  uint64_t min_bits_now_ = 0;
  uint64_t min_count_ = 0;
};

template <typename Key>
inline void TopK<Key>::AddView(KeyView key, uint64_t count) {
  if (count == 0) return;
  AddTo(total_, count);
  const uint32_t tag = TagOf(key);
  if (wide_) [[unlikely]] {
    if constexpr (!kStringKey) {
      if (branch_free_) {
        AddWhenFull<uint32_t>(key, tag, count);
        return;
      }
    }
    AddIn<uint32_t>(key, tag, count);
    return;
  }
  if constexpr (!kStringKey) {
    if (branch_free_) [[likely]] {
      AddWhenFull<uint16_t>(key, tag, count);
      return;
    }
  }
  AddIn<uint16_t>(key, tag, count);
}

template <typename Key>
template <typename Entry>
inline void TopK<Key>::AddIn(KeyView key, uint32_t tag, uint64_t count) {
  const Entry* const table = Table<Entry>();
  const size_t mask = mask_;
  size_t pos = tag & mask;
  for (uint32_t e; (e = table[pos]) != 0; pos = (pos + 1) & mask) {
    if (SlotHolds(e - 1, key, tag)) {
      AddTo(counts_[e - 1], count);
      return;
    }
  }
  Insert<Entry>(key, tag, pos, count);
}

// On skewed streams hits and misses interleave unpredictably (38% of the adds miss
// on Zipf(1.1) with capacity 1000), and a mispredicted branch on the outcome costs
// more than the miss's bookkeeping. So when the key's home entry decides (it is
// empty, or its slot holds the key: all but a few percent of the adds), both
// outcomes are computed and one slot is written: the key's on a hit, the minimum's
// on a miss, where a hit writes back the key, tag and entry already there.
template <typename Key>
template <typename Entry>
inline void TopK<Key>::AddWhenFull(uint64_t key, uint32_t tag, uint64_t count)
  requires(!kStringKey)
{
  Entry* const table = Table<Entry>();
  uint64_t* const keys = keys_.data();
  uint64_t* const counts = counts_.data();
  uint64_t* const errors = errors_.data();
  const size_t mask = mask_;
  const size_t pos = tag & mask;
  const uint32_t e = table[pos];
  const uint32_t s = e - (e != 0);  // the entry's slot, or slot 0 when it is empty
  const uint32_t occupied = Opaque(static_cast<uint32_t>(e != 0));
  const uint32_t hit = occupied & static_cast<uint32_t>(keys[s] == key);
  if (Opaque(occupied & ~hit) != 0) [[unlikely]] {
    AddIn<Entry>(key, tag, count);  // the home holds another key: probe on
    return;
  }
  const uint32_t victim = PeekMinimum();
  const uint32_t miss = hit ^ 1;
  const uint64_t miss_mask = Opaque(uint64_t{0} - miss);
  const uint32_t slot = s ^ ((s ^ victim) & static_cast<uint32_t>(miss_mask));
  const uint64_t hit_count = counts[s];
  const uint64_t hit_error = errors[s];
  // On a miss the victim's count is min_count_ (PeekMinimum checked).
  counts[slot] = SaturatingAdd(hit_count ^ ((hit_count ^ min_count_) & miss_mask), count);
  errors[slot] = hit_error ^ ((hit_error ^ min_count_) & miss_mask);
  keys[slot] = key;
  tags_[slot] = tag;
  table[pos] = static_cast<Entry>(slot + 1);
  min_bits_now_ &= min_bits_now_ - miss;  // a miss takes the victim's bit
  // The victim's old entry stays behind, stale (see table_).
  CountEvictions(miss);
}

template <typename Key>
template <typename Entry>
inline void TopK<Key>::EraseAt(size_t hole) {
  Entry* const table = Table<Entry>();
  const uint32_t* const tags = tags_.data();
  const size_t mask = mask_;
  const size_t j1 = (hole + 1) & mask;
  const uint32_t e1 = table[j1];
  const uint32_t e2 = table[(hole + 2) & mask];
  if (std::min(e1, e2) == 0) [[likely]] {  // one branch, not two
    // The common case, without a data-dependent branch: at most one entry follows
    // the hole in its run, and it moves into the hole unless it sits at its home.
    const uint32_t s1 = e1 - (e1 != 0);  // any valid slot if e1 is empty
    const uint32_t move =
        static_cast<uint32_t>(e1 != 0) & static_cast<uint32_t>((tags[s1] & mask) != j1);
    table[hole] = static_cast<Entry>(e1 & (0u - move));
    table[j1] = static_cast<Entry>(e1 & (move - 1u));
    return;
  }
  for (size_t j = j1;; j = (j + 1) & mask) {
    const uint32_t e = table[j];
    if (e == 0) break;
    // The entry at j may fill the hole unless its home lies cyclically in (hole, j]:
    // moving it before its home would hide it from lookups. (A stale entry's "home"
    // is its slot's current key's: it may move anywhere, nothing looks for it.)
    const size_t home = tags[e - 1] & mask;
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      table[hole] = static_cast<Entry>(e);
      hole = j;
    }
  }
  table[hole] = 0;
}

template <typename Key>
template <typename Entry>
inline void TopK<Key>::Replace(KeyView key, uint32_t tag, size_t pos, uint64_t count) {
  const uint32_t victim = PopMinimum();
  // Find the victim's entry before the new key's entry (also victim + 1) is written;
  // the probe from the victim's home reaches it (or a stale entry of the same slot,
  // as good to erase) without passing `pos`, which was empty.
  Entry* const table = Table<Entry>();
  const size_t mask = mask_;
  size_t old = tags_[victim] & mask;
  while (table[old] != victim + 1) old = (old + 1) & mask;
  const uint64_t floor = counts_[victim];
  if constexpr (kStringKey) {
    keys_[victim].assign(key.data(), key.size());  // reuses the evicted key's buffer
  } else {
    keys_[victim] = key;
  }
  counts_[victim] = SaturatingAdd(floor, count);
  errors_[victim] = floor;
  tags_[victim] = tag;
  // The new entry goes in first: the shift that closes the old entry's hole may then
  // move it like any other entry (its home comes from the updated tag).
  table[pos] = static_cast<Entry>(victim + 1);
  EraseAt<Entry>(old);
  CountEvictions(1);
}

extern template class TopK<uint64_t>;
extern template class TopK<std::string>;

}  // namespace cairn::sketch
