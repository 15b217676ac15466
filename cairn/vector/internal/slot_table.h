// SlotTable: the id -> slot map of HnswIndex, as a set of slots whose ids live in the
// index's own storage (read through an accessor), so an entry costs its 4-byte slot
// plus one byte of hash tag.
//
// Why not absl::flat_hash_set (which HnswIndex used): its bucket count is a power of
// two with at most 7/8 of it used, so right after a doubling it holds ~2x the buckets
// it needs (at 1 M ids: 2 M buckets, 10 MB). Here the bucket count is any number,
// sized to 8/7 of the entries when reserved and grown by 1.5x, and a bucket is found
// by a multiply-shift of the hash. Probing is linear over the one-byte tags (7 bits of
// the hash, or empty/deleted), so a lookup scans a few contiguous bytes and reads a
// slot's id only when its tag matches.
//
// Thread-safety: none; the owner serializes access.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cairn::vector::internal {

template <typename IdOf>  // uint64_t IdOf::operator()(uint32_t slot) const
class SlotTable {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};

  explicit SlotTable(IdOf id_of) : id_of_(id_of) {}

  size_t size() const { return size_; }
  size_t capacity() const { return tags_.size(); }
  size_t Bytes() const { return tags_.capacity() + slots_.capacity() * sizeof(uint32_t); }

  // Room for n entries without growing.
  void Reserve(size_t n) {
    if (n > MaxUsed(capacity())) Rehash(n);
  }
  void Clear() {
    tags_.assign(tags_.size(), kEmpty);
    size_ = used_ = 0;
  }

  // The slot holding `id`, or kNone.
  uint32_t Find(uint64_t id) const {
    if (size_ == 0) return kNone;
    const uint64_t h = Hash(id);
    const uint8_t tag = Tag(h);
    for (size_t i = Home(h);; i = Next(i)) {
      const uint8_t t = tags_[i];
      if (t == kEmpty) return kNone;
      if (t == tag && id_of_(slots_[i]) == id) return slots_[i];
    }
  }
  void Prefetch(uint64_t id) const {
    if (!tags_.empty()) __builtin_prefetch(&tags_[Home(Hash(id))]);
  }

  // Adds `slot` under the id it holds; false (nothing added) when that id is present.
  bool Insert(uint32_t slot) {
    if (used_ + 1 > MaxUsed(capacity())) Rehash(size_ + 1 > MaxUsed(capacity()) ? (size_ + 1) * 3 / 2 : size_ + 1);
    const uint64_t id = id_of_(slot);
    const uint64_t h = Hash(id);
    const uint8_t tag = Tag(h);
    size_t reuse = kNoBucket, i = Home(h);
    for (;; i = Next(i)) {
      const uint8_t t = tags_[i];
      if (t == kEmpty) break;
      if (t == kDeleted) {
        if (reuse == kNoBucket) reuse = i;
      } else if (t == tag && id_of_(slots_[i]) == id) {
        return false;
      }
    }
    if (reuse != kNoBucket) {
      i = reuse;
    } else {
      ++used_;
    }
    tags_[i] = tag;
    slots_[i] = slot;
    ++size_;
    return true;
  }

  // Removes `slot` (found by the id it holds); false when absent.
  bool Erase(uint32_t slot) {
    if (size_ == 0) return false;
    const uint64_t h = Hash(id_of_(slot));
    const uint8_t tag = Tag(h);
    for (size_t i = Home(h);; i = Next(i)) {
      const uint8_t t = tags_[i];
      if (t == kEmpty) return false;
      if (t == tag && slots_[i] == slot) {
        tags_[i] = kDeleted;
        --size_;
        return true;
      }
    }
  }

 private:
  static constexpr uint8_t kEmpty = 0x80, kDeleted = 0xfe;
  static constexpr size_t kNoBucket = ~size_t{0};

  static uint64_t Hash(uint64_t x) {  // splitmix64's finalizer
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  static uint8_t Tag(uint64_t h) { return static_cast<uint8_t>(h & 0x7f); }
  size_t Home(uint64_t h) const {
    return static_cast<size_t>((static_cast<unsigned __int128>(h >> 7) * tags_.size()) >> 57);
  }
  size_t Next(size_t i) const { return i + 1 == tags_.size() ? 0 : i + 1; }
  // Buckets in use (live or deleted) allowed: 7/8, and always one empty bucket.
  static size_t MaxUsed(size_t buckets) { return buckets == 0 ? 0 : std::min(buckets - 1, buckets / 8 * 7); }

  void Rehash(size_t n) {
    size_t buckets = 16;
    while (MaxUsed(buckets) < n) buckets = std::max(buckets + 1, n + n / 7 + 1);
    std::vector<uint8_t> old_tags(buckets, kEmpty);
    std::vector<uint32_t> old_slots(buckets);
    old_tags.swap(tags_);
    old_slots.swap(slots_);
    size_ = used_ = 0;
    for (size_t i = 0; i < old_tags.size(); ++i) {
      if (old_tags[i] != kEmpty && old_tags[i] != kDeleted) Insert(old_slots[i]);
    }
  }

  IdOf id_of_;
  std::vector<uint8_t> tags_;
  std::vector<uint32_t> slots_;
  size_t size_ = 0;  // live entries
  size_t used_ = 0;  // live + deleted buckets
};

}  // namespace cairn::vector::internal
