#include "cairn/sketch/top_k.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cassert>

#include "cairn/base/codec.h"

namespace cairn::sketch {
namespace {

constexpr uint32_t kMagic = MakeMagic("CTPK");
constexpr uint16_t kVersion = 1;
constexpr uint8_t kKeyTypeU64 = 1;
constexpr uint8_t kKeyTypeString = 2;
constexpr size_t kMinTableSize = 16;
// Table entries per monitored key (at least): live keys fill at most 1/4 of the table
// and live plus stale entries at most 1/2, which keeps probe sequences short — a miss
// probes to an empty entry, and on skewed streams misses are frequent.
constexpr size_t kTableSlotsPerKey = 4;

const char* KeyTypeName(uint8_t type) {
  switch (type) {
    case kKeyTypeU64: return "uint64";
    case kKeyTypeString: return "string";
    default: return "unknown";
  }
}

}  // namespace

template <typename Key>
TopK<Key>::TopK(size_t capacity) : capacity_(capacity) {
  Rehash(kMinTableSize);
}

template <typename Key>
absl::StatusOr<TopK<Key>> TopK<Key>::Create(size_t capacity) {
  if (capacity < 1 || capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(
        fmt::format("TopK capacity {} is out of range 1..{}", capacity, kMaxCapacity));
  }
  return TopK(capacity);
}

template <typename Key>
int64_t TopK<Key>::FindSlot(KeyView key, uint32_t tag) const {
  for (size_t pos = tag & mask_;; pos = (pos + 1) & mask_) {
    const uint64_t e = table_[pos];
    if (e == 0) return -1;
    if (static_cast<uint32_t>(e >> 32) == tag) {
      const uint32_t slot = static_cast<uint32_t>(e) - 1;
      if (slots_[slot].key == key) return slot;
    }
  }
}

template <typename Key>
size_t TopK<Key>::FindEmpty(uint32_t tag) const {
  size_t pos = tag & mask_;
  while (table_[pos] != 0) pos = (pos + 1) & mask_;
  return pos;
}

template <typename Key>
void TopK<Key>::Rehash(size_t table_size) {
  assert(std::has_single_bit(table_size));
  table_.assign(table_size, 0);
  mask_ = table_size - 1;
  table_entries_ = slots_.size();
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    table_[FindEmpty(slots_[i].tag)] = Entry(slots_[i].tag, i);
  }
}

template <typename Key>
void TopK<Key>::RebuildMinimum() {
  // Runs only when every slot has risen above the previous minimum, so the minimum
  // grows by at least one per rebuild: at most N / capacity rebuilds of O(capacity).
  const Slot* const slots = slots_.data();
  const uint32_t n = static_cast<uint32_t>(slots_.size());
  uint64_t m = ~uint64_t{0};
  for (uint32_t i = 0; i < n; ++i) m = std::min(m, slots[i].count);
  if (min_slots_.size() < n) min_slots_.resize(n);
  // Branch-free collection, highest index first, so that slots pop in ascending order.
  uint32_t* const out = min_slots_.data();
  uint32_t k = 0;
  for (uint32_t i = n; i-- > 0;) {
    out[k] = i;
    k += slots[i].count == m;
  }
  min_top_ = k;
  min_count_ = m;
}

template <typename Key>
void TopK<Key>::Insert(KeyView key, uint32_t tag, size_t pos, uint64_t count) {
  if (slots_.size() < capacity_) {
    if ((slots_.size() + 1) * kTableSlotsPerKey > table_.size()) {
      Rehash(table_.size() * 2);
      pos = FindEmpty(tag);
    }
    if (slots_.size() == slots_.capacity()) {
      slots_.reserve(std::min(capacity_, std::max<size_t>(16, slots_.size() * 2)));
    }
    const uint32_t index = static_cast<uint32_t>(slots_.size());
    slots_.push_back(Slot{Key(key), count, 0, tag});
    table_[pos] = Entry(tag, index);
    ++table_entries_;
    return;
  }
  const uint32_t victim = PopMinimum();
  Slot& s = slots_[victim];
  const uint64_t floor = s.count;
  if constexpr (kStringKey) {
    s.key.assign(key.data(), key.size());  // reuses the evicted key's buffer
  } else {
    s.key = key;
  }
  s.count = SaturatingAdd(floor, count);
  s.error = floor;
  s.tag = tag;
  // The victim's old entry stays in the table: it points at a slot that now holds
  // another key, so lookups skip it by the key comparison they make anyway. Stale
  // entries are purged by a rehash once live and stale entries fill half the table
  // (every ~capacity evictions), which costs less than erasing with backward shifts
  // on every eviction.
  table_[pos] = Entry(tag, victim);
  if (++table_entries_ * 2 > table_.size()) Rehash(table_.size());
}

template <typename Key>
std::vector<typename TopK<Key>::Item> TopK<Key>::Top(size_t k) const {
  std::vector<uint32_t> order(slots_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](uint32_t a, uint32_t b) {
    if (slots_[a].count != slots_[b].count) return slots_[a].count > slots_[b].count;
    return slots_[a].key < slots_[b].key;
  });
  std::vector<Item> items;
  items.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    const Slot& s = slots_[order[i]];
    items.push_back(Item{s.key, s.count, s.error});
  }
  return items;
}

template <typename Key>
std::optional<typename TopK<Key>::Item> TopK<Key>::Find(KeyView key) const {
  const int64_t slot = FindSlot(key, TagOf(key));
  if (slot < 0) return std::nullopt;
  const Slot& s = slots_[slot];
  return Item{s.key, s.count, s.error};
}

template <typename Key>
uint64_t TopK<Key>::MinCount() const {
  if (slots_.size() < capacity_) return 0;
  uint64_t m = ~uint64_t{0};
  for (const Slot& s : slots_) m = std::min(m, s.count);
  return m;
}

template <typename Key>
absl::Status TopK<Key>::Merge(const TopK& other) {
  if (&other == this) {
    const TopK copy(other);
    return Merge(copy);
  }
  if (seed_ != other.seed_) {
    return absl::InvalidArgumentError(
        fmt::format("TopK merge needs equal seeds: this has {:016x}, the other {:016x}", seed_,
                    other.seed_));
  }
  if (other.capacity_ < capacity_) {
    return absl::InvalidArgumentError(fmt::format(
        "TopK merge: the other sketch's capacity {} is smaller than this one's {}; merge the "
        "smaller sketch into the larger one",
        other.capacity_, capacity_));
  }
  // A sketch that does not monitor a key bounds its count by its minimum counter
  // (0 when it never evicted), so it contributes that to both count and error.
  // Why the bounds hold: with d(x) = count - minimum in each sketch, the d's of one
  // sketch sum to at most N - m * minimum, so the capacity-th largest merged count
  // is at most (N_this + N_other) / capacity, and every kept count is at least
  // min_this + min_other, the bound for keys absent from both.
  const uint64_t min_this = MinCount();
  const uint64_t min_other = other.MinCount();
  struct Candidate {
    const Slot* slot;
    bool from_other;
    uint64_t count;
    uint64_t error;
  };
  std::vector<Candidate> candidates;
  candidates.reserve(slots_.size() + other.slots_.size());
  for (const Slot& s : slots_) {
    const int64_t j = other.FindSlot(KeyView(s.key), s.tag);
    const uint64_t oc = j >= 0 ? other.slots_[j].count : min_other;
    const uint64_t oe = j >= 0 ? other.slots_[j].error : min_other;
    candidates.push_back({&s, false, SaturatingAdd(s.count, oc), SaturatingAdd(s.error, oe)});
  }
  for (const Slot& s : other.slots_) {
    if (FindSlot(KeyView(s.key), s.tag) >= 0) continue;
    candidates.push_back(
        {&s, true, SaturatingAdd(min_this, s.count), SaturatingAdd(min_this, s.error)});
  }
  const size_t keep = std::min(capacity_, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(),
                    [](const Candidate& a, const Candidate& b) {
                      if (a.count != b.count) return a.count > b.count;
                      return a.slot->key < b.slot->key;
                    });
  std::vector<Slot> merged;
  merged.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    const Candidate& c = candidates[i];
    merged.push_back(Slot{c.slot->key, c.count, c.error, c.slot->tag});
  }
  slots_ = std::move(merged);
  total_ = SaturatingAdd(total_, other.total_);
  min_top_ = 0;
  Rehash(std::max(kMinTableSize, std::bit_ceil(slots_.size() * kTableSlotsPerKey)));
  return absl::OkStatus();
}

template <typename Key>
size_t TopK<Key>::MemoryBytes() const {
  size_t bytes = sizeof(*this) + slots_.capacity() * sizeof(Slot) +
                 table_.capacity() * sizeof(uint64_t) + min_slots_.capacity() * sizeof(uint32_t);
  if constexpr (kStringKey) {
    const size_t inline_capacity = std::string().capacity();
    for (const Slot& s : slots_) {
      if (s.key.capacity() > inline_capacity) bytes += s.key.capacity() + 1;
    }
  }
  return bytes;
}

template <typename Key>
std::string TopK<Key>::Serialize() const {
  ByteWriter w;
  w.U8(kStringKey ? kKeyTypeString : kKeyTypeU64);
  w.U64(seed_);
  w.Varint(capacity_);
  w.U64(total_);
  w.Varint(slots_.size());
  for (const Slot& s : slots_) {
    if constexpr (kStringKey) {
      w.String(s.key);
    } else {
      w.U64(s.key);
    }
    w.Varint(s.count);
    w.Varint(s.error);
  }
  return SealEnvelope(kMagic, kVersion, w.data());
}

template <typename Key>
absl::StatusOr<TopK<Key>> TopK<Key>::Deserialize(std::string_view bytes) {
  auto envelope = OpenEnvelope(bytes, kMagic, kVersion, "TopK");
  if (!envelope.ok()) return envelope.status();
  ByteReader r(envelope->payload, "TopK");
  const uint8_t key_type = r.U8();
  const uint64_t seed = r.U64();
  const uint64_t capacity = r.Varint();
  const uint64_t total = r.U64();
  const uint64_t size = r.Varint();
  if (!r.ok()) return r.status();
  const uint8_t want_type = kStringKey ? kKeyTypeString : kKeyTypeU64;
  if (key_type != want_type) {
    return absl::InvalidArgumentError(fmt::format(
        "TopK blob holds {} keys (type {}), but this is TopK<{}>", KeyTypeName(key_type),
        key_type, KeyTypeName(want_type)));
  }
  if (capacity < 1 || capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(
        fmt::format("TopK blob: capacity {} is out of range 1..{}", capacity, kMaxCapacity));
  }
  if (size > capacity) {
    return absl::InvalidArgumentError(
        fmt::format("TopK blob: {} items exceed the capacity {}", size, capacity));
  }
  // Smallest encoding of one item: key (8 bytes, or a 1-byte empty string), count
  // and error (1 byte each). Checked before allocating by the decoded size.
  const size_t min_item_bytes = kStringKey ? 3 : 10;
  if (size > r.remaining() / min_item_bytes) {
    return absl::InvalidArgumentError(fmt::format(
        "TopK blob: {} items cannot fit in the {} bytes that remain", size, r.remaining()));
  }
  TopK sketch(capacity);
  sketch.seed_ = seed;
  sketch.total_ = total;
  sketch.slots_.reserve(size);
  sketch.Rehash(std::max(kMinTableSize, std::bit_ceil(static_cast<size_t>(size) * kTableSlotsPerKey)));
  uint64_t sum = 0;
  for (uint64_t i = 0; i < size; ++i) {
    KeyView key;
    if constexpr (kStringKey) {
      key = r.String();
    } else {
      key = r.U64();
    }
    const uint64_t count = r.Varint();
    const uint64_t error = r.Varint();
    if (!r.ok()) return r.status();
    if (count == 0 || error > count) {
      return absl::InvalidArgumentError(fmt::format(
          "TopK blob: item {} has count {} and error {} (need 1 <= count, error <= count)", i,
          count, error));
    }
    const uint32_t tag = sketch.TagOf(key);
    if (sketch.FindSlot(key, tag) >= 0) {
      return absl::InvalidArgumentError(fmt::format("TopK blob: item {} repeats a key", i));
    }
    const uint32_t index = static_cast<uint32_t>(sketch.slots_.size());
    sketch.slots_.push_back(Slot{Key(key), count, error, tag});
    sketch.table_[sketch.FindEmpty(tag)] = Entry(tag, index);
    ++sketch.table_entries_;
    sum = SaturatingAdd(sum, count);
  }
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  // Internal consistency: counts sum to at most the total (each Add adds exactly
  // its count to the sum; merges keep the sum within the merged total), a sketch
  // that never filled up never evicted (no errors), and an error is the minimum of
  // the moment it was recorded, so it cannot exceed today's minimum.
  if (sum > total) {
    return absl::InvalidArgumentError(fmt::format(
        "TopK blob: counts sum to {}, more than the total count {}: corrupted", sum, total));
  }
  const uint64_t min_count = sketch.MinCount();
  for (size_t i = 0; i < sketch.slots_.size(); ++i) {
    if (sketch.slots_[i].error > min_count) {
      return absl::InvalidArgumentError(fmt::format(
          "TopK blob: item {} has error {} above the minimum count {}: corrupted", i,
          sketch.slots_[i].error, min_count));
    }
  }
  return sketch;
}

template class TopK<uint64_t>;
template class TopK<std::string>;

}  // namespace cairn::sketch
