#include "cairn/sketch/top_k.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cassert>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cairn/base/codec.h"

namespace cairn::sketch {
namespace {

constexpr uint32_t kMagic = MakeMagic("CTPK");
constexpr uint16_t kVersion = 1;
constexpr uint8_t kKeyTypeU64 = 1;
constexpr uint8_t kKeyTypeString = 2;
constexpr size_t kMinTableSize = 16;

// Bit i of the result: counts[i] == m, for i < n <= 64.
uint64_t EqualBits(const uint64_t* counts, size_t n, uint64_t m) {
  uint64_t bits = 0;
  size_t i = 0;
#if defined(__SSE2__)
  // Four counts per step with SSE2 (x86-64 baseline): a 64-bit lane is equal when
  // both of its 32-bit halves are.
  const __m128i mv = _mm_set1_epi64x(static_cast<long long>(m));
  for (; i + 4 <= n; i += 4) {
    __m128i a = _mm_cmpeq_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(counts + i)), mv);
    __m128i b =
        _mm_cmpeq_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(counts + i + 2)), mv);
    a = _mm_and_si128(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1)));
    b = _mm_and_si128(b, _mm_shuffle_epi32(b, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m128 lanes =
        _mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _MM_SHUFFLE(2, 0, 2, 0));
    bits |= static_cast<uint64_t>(_mm_movemask_ps(lanes)) << i;
  }
#endif
  for (; i < n; ++i) bits |= static_cast<uint64_t>(counts[i] == m) << i;
  return bits;
}

const char* KeyTypeName(uint8_t type) {
  switch (type) {
    case kKeyTypeU64: return "uint64";
    case kKeyTypeString: return "string";
    default: return "unknown";
  }
}

}  // namespace

template <typename Key>
TopK<Key>::TopK(size_t capacity) : capacity_(capacity), wide_(capacity > kWideCapacity) {
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
template <typename Entry>
int64_t TopK<Key>::FindSlotIn(KeyView key, uint32_t tag) const {
  const Entry* const table = Table<Entry>();
  for (size_t pos = tag & mask_;; pos = (pos + 1) & mask_) {
    const uint32_t e = table[pos];
    if (e == 0) return -1;
    if (SlotHolds(e - 1, key, tag)) return e - 1;
  }
}

template <typename Key>
int64_t TopK<Key>::FindSlot(KeyView key, uint32_t tag) const {
  return wide_ ? FindSlotIn<uint32_t>(key, tag) : FindSlotIn<uint16_t>(key, tag);
}

template <typename Key>
void TopK<Key>::Reconsider() {
  const bool had_stale = branch_free_;
  if constexpr (!kStringKey) {
    // Branch-free adds pay off while misses are between about a third and three
    // quarters of the adds (measured on Zipf streams: with fewer misses the hits'
    // extra work dominates, with more the outcome is predictable again). Adds are
    // counted by their weights, which is close enough for a choice of code path.
    const uint64_t adds = total_ - total_at_period_;
    const uint64_t misses = evictions_;
    branch_free_ = total_ > total_at_period_ && keys_.size() == capacity_ &&
                   misses * 3 >= adds && misses * 4 <= adds * 3;
  }
  total_at_period_ = total_;
  evictions_ = 0;
  if (had_stale) Rehash(mask_ + 1);
}

template <typename Key>
size_t TopK<Key>::TableSizeFor(size_t n) const {
  // Misses probe to an empty entry, and on skewed streams misses are frequent: a
  // sparse table keeps most probes at one entry (and the branches predictable).
  return std::max(kMinTableSize, std::bit_ceil(n * (wide_ ? 8 : 16)));
}

template <typename Key>
void TopK<Key>::Enter(uint32_t slot, uint32_t tag) {
  auto enter = [&](auto* table) {
    size_t pos = tag & mask_;
    while (table[pos] != 0) pos = (pos + 1) & mask_;
    table[pos] = static_cast<std::remove_reference_t<decltype(*table)>>(slot + 1);
  };
  if (wide_) {
    enter(wide_table_.data());
  } else {
    enter(narrow_table_.data());
  }
}

template <typename Key>
void TopK<Key>::Rehash(size_t table_size) {
  assert(std::has_single_bit(table_size));
  if (wide_) {
    wide_table_.assign(table_size, 0);
  } else {
    narrow_table_.assign(table_size, 0);
  }
  mask_ = table_size - 1;
  for (uint32_t i = 0; i < keys_.size(); ++i) Enter(i, tags_[i]);
  // Stale entries may fill the table up to a load of 1/8 (narrow) or 1/4 (wide) with
  // all `capacity` keys live: at least `capacity` evictions between purges once the
  // table is sized for a full sketch (TableSizeFor; evictions start when it is), so
  // a purge's O(table) is O(1) per eviction.
  const size_t max_entries = table_size / (wide_ ? 4 : 8);
  eviction_period_ = max_entries > capacity_ ? max_entries - capacity_ : 0;
}

template <typename Key>
void TopK<Key>::RebuildMinimum() {
  // Runs once every slot has risen above min_count_, so the minimum grows by at least
  // one per rebuild: at most N / capacity rebuilds of O(capacity). The new minimum is
  // usually min_count_ + 1 (replacing keys start there on unit adds): marking the
  // slots that hold it needs no separate pass for the minimum. When no slot holds it
  // (or it wrapped to 0: counts saturated), the true minimum is marked instead.
  const uint64_t* const counts = counts_.data();
  const size_t n = counts_.size();
  min_bits_.resize((n + 63) / 64);
  auto mark = [&](uint64_t m) {
    uint64_t any = 0;
    for (size_t w = 0; w < min_bits_.size(); ++w) {
      const size_t base = w * 64;
      min_bits_[w] = EqualBits(counts + base, std::min<size_t>(64, n - base), m);
      any |= min_bits_[w];
    }
    return any != 0;
  };
  min_count_ += 1;
  if (!mark(min_count_)) {
    min_count_ = *std::min_element(counts, counts + n);
    mark(min_count_);
  }
  min_word_ = 0;
  min_bits_now_ = min_bits_[0];
}

template <typename Key>
void TopK<Key>::AppendSlot(KeyView key, uint64_t count, uint64_t error, uint32_t tag) {
  if (keys_.size() == keys_.capacity()) {
    const size_t n = std::min(capacity_, std::max<size_t>(16, keys_.size() * 2));
    keys_.reserve(n);
    counts_.reserve(n);
    errors_.reserve(n);
    tags_.reserve(n);
  }
  keys_.emplace_back(key);
  counts_.push_back(count);
  errors_.push_back(error);
  tags_.push_back(tag);
}

template <typename Key>
void TopK<Key>::Append(KeyView key, uint32_t tag, size_t pos, uint64_t count) {
  const uint32_t slot = static_cast<uint32_t>(size());
  if (TableSizeFor(slot + 1) > mask_ + 1) {
    Rehash(TableSizeFor(slot + 1));
    AppendSlot(key, count, 0, tag);
    Enter(slot, tag);
    return;
  }
  if (wide_) {
    wide_table_[pos] = slot + 1;
  } else {
    narrow_table_[pos] = static_cast<uint16_t>(slot + 1);
  }
  AppendSlot(key, count, 0, tag);
}

template <typename Key>
std::vector<typename TopK<Key>::Item> TopK<Key>::Top(size_t k) const {
  std::vector<uint32_t> order(keys_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](uint32_t a, uint32_t b) {
    if (counts_[a] != counts_[b]) return counts_[a] > counts_[b];
    return keys_[a] < keys_[b];
  });
  std::vector<Item> items;
  items.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    const uint32_t s = order[i];
    items.push_back(Item{keys_[s], counts_[s], errors_[s]});
  }
  return items;
}

template <typename Key>
std::optional<typename TopK<Key>::Item> TopK<Key>::Find(KeyView key) const {
  const int64_t slot = FindSlot(key, TagOf(key));
  if (slot < 0) return std::nullopt;
  return Item{keys_[slot], counts_[slot], errors_[slot]};
}

template <typename Key>
uint64_t TopK<Key>::MinCount() const {
  if (keys_.size() < capacity_) return 0;
  uint64_t m = ~uint64_t{0};
  for (uint64_t c : counts_) m = std::min(m, c);
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
    const TopK* from;
    uint32_t slot;
    uint64_t count;
    uint64_t error;
  };
  std::vector<Candidate> candidates;
  candidates.reserve(size() + other.size());
  for (uint32_t i = 0; i < size(); ++i) {
    const int64_t j = other.FindSlot(KeyView(keys_[i]), tags_[i]);
    const uint64_t oc = j >= 0 ? other.counts_[j] : min_other;
    const uint64_t oe = j >= 0 ? other.errors_[j] : min_other;
    candidates.push_back(
        {this, i, SaturatingAdd(counts_[i], oc), SaturatingAdd(errors_[i], oe)});
  }
  for (uint32_t i = 0; i < other.size(); ++i) {
    if (FindSlot(KeyView(other.keys_[i]), other.tags_[i]) >= 0) continue;
    candidates.push_back({&other, i, SaturatingAdd(min_this, other.counts_[i]),
                          SaturatingAdd(min_this, other.errors_[i])});
  }
  const size_t keep = std::min(capacity_, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(),
                    [](const Candidate& a, const Candidate& b) {
                      if (a.count != b.count) return a.count > b.count;
                      return a.from->keys_[a.slot] < b.from->keys_[b.slot];
                    });
  std::vector<Key> keys;
  std::vector<uint64_t> counts, errors;
  std::vector<uint32_t> tags;
  keys.reserve(keep);
  counts.reserve(keep);
  errors.reserve(keep);
  tags.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    const Candidate& c = candidates[i];
    keys.push_back(c.from->keys_[c.slot]);
    counts.push_back(c.count);
    errors.push_back(c.error);
    tags.push_back(c.from->tags_[c.slot]);
  }
  keys_ = std::move(keys);
  counts_ = std::move(counts);
  errors_ = std::move(errors);
  tags_ = std::move(tags);
  total_ = SaturatingAdd(total_, other.total_);
  total_at_period_ = total_;
  ResetMinimum();
  branch_free_ = false;  // also: the sketch may no longer be full
  evictions_ = 0;
  Rehash(TableSizeFor(size()));
  return absl::OkStatus();
}

template <typename Key>
size_t TopK<Key>::MemoryBytes() const {
  size_t bytes = sizeof(*this) + keys_.capacity() * sizeof(Key) +
                 (counts_.capacity() + errors_.capacity()) * sizeof(uint64_t) +
                 (tags_.capacity() + wide_table_.capacity()) * sizeof(uint32_t) +
                 narrow_table_.capacity() * sizeof(uint16_t) +
                 min_bits_.capacity() * sizeof(uint64_t);
  if constexpr (kStringKey) {
    const size_t inline_capacity = std::string().capacity();
    for (const std::string& key : keys_) {
      if (key.capacity() > inline_capacity) bytes += key.capacity() + 1;
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
  w.Varint(size());
  for (size_t i = 0; i < size(); ++i) {
    if constexpr (kStringKey) {
      w.String(keys_[i]);
    } else {
      w.U64(keys_[i]);
    }
    w.Varint(counts_[i]);
    w.Varint(errors_[i]);
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
  sketch.total_at_period_ = total;
  sketch.keys_.reserve(size);
  sketch.counts_.reserve(size);
  sketch.errors_.reserve(size);
  sketch.tags_.reserve(size);
  sketch.Rehash(sketch.TableSizeFor(static_cast<size_t>(size)));
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
    sketch.Enter(static_cast<uint32_t>(sketch.size()), tag);
    sketch.AppendSlot(key, count, error, tag);
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
  for (size_t i = 0; i < sketch.size(); ++i) {
    if (sketch.errors_[i] > min_count) {
      return absl::InvalidArgumentError(fmt::format(
          "TopK blob: item {} has error {} above the minimum count {}: corrupted", i,
          sketch.errors_[i], min_count));
    }
  }
  return sketch;
}

template class TopK<uint64_t>;
template class TopK<std::string>;

}  // namespace cairn::sketch
