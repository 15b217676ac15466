// In-memory state handles (the kMemory backend). Included by state.h only.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace cairn::stream {
class KeyedStateStore;
namespace internal {

int64_t StoreNowMs(const KeyedStateStore* store);
const StateKey& StoreCurrent(const KeyedStateStore* store);

inline constexpr int64_t kNeverExpires = std::numeric_limits<int64_t>::max();

// Shared machinery: a map from (key, namespace) to an entry with an expiry.
template <class Payload>
class MemTable : public StateTable {
 public:
  MemTable(KeyedStateStore* store, StateTtl ttl) : store_(store), ttl_(ttl) {}

  void Snapshot(ByteWriter& w) override {
    int64_t now = ttl_.enabled() ? StoreNowMs(store_) : 0;
    uint64_t live = 0;
    for (auto& [k, e] : map_)
      if (!Expired(e, now)) ++live;
    w.Varint(live);
    for (auto& [k, e] : map_) {
      if (Expired(e, now)) continue;
      w.String(k.key);
      w.I64(k.ns);
      w.I64(e.expire);
      Serde<Payload>::Write(w, e.payload);
    }
  }
  bool Restore(ByteReader& r) override {
    map_.clear();
    uint64_t n = r.Varint();
    if (!r.ok() || n > r.remaining()) {
      r.Fail("state entry count exceeds the input");
      return false;
    }
    for (uint64_t i = 0; i < n; ++i) {
      StateKey k;
      k.key = std::string(r.String());
      k.ns = r.I64();
      Entry e;
      e.expire = r.I64();
      if (!Serde<Payload>::Read(r, &e.payload) || !r.ok()) return false;
      map_.emplace(std::move(k), std::move(e));
    }
    return r.ok();
  }
  uint64_t ApproximateBytes() const override {
    return map_.size() * (sizeof(StateKey) + sizeof(Entry) + 16);
  }
  uint64_t entries() const override { return map_.size(); }

 protected:
  struct Entry {
    Payload payload{};
    int64_t expire = kNeverExpires;
  };
  bool Expired(const Entry& e, int64_t now) const { return ttl_.enabled() && e.expire <= now; }
  int64_t NewExpiry() const { return ttl_.enabled() ? StoreNowMs(store_) + ttl_.ttl.count() : kNeverExpires; }

  // The live entry of the current (key, namespace), or nullptr (an expired one is erased).
  Entry* Find() {
    auto it = map_.find(StoreCurrent(store_));
    if (it == map_.end()) return nullptr;
    if (ttl_.enabled() && Expired(it->second, StoreNowMs(store_))) {
      map_.erase(it);
      return nullptr;
    }
    return &it->second;
  }
  Entry& FindOrCreate() {
    auto [it, inserted] = map_.try_emplace(StoreCurrent(store_));
    if (!inserted && ttl_.enabled() && Expired(it->second, StoreNowMs(store_))) it->second = Entry{};
    it->second.expire = NewExpiry();
    return it->second;
  }
  void Erase() { map_.erase(StoreCurrent(store_)); }

  KeyedStateStore* store_;
  StateTtl ttl_;
  absl::flat_hash_map<StateKey, Entry> map_;
};

template <class V>
class MemValueState final : public ValueState<V>, public MemTable<V> {
 public:
  using MemTable<V>::MemTable;
  std::optional<V> Value() override {
    auto* e = this->Find();
    if (!e) return std::nullopt;
    return e->payload;
  }
  void Update(V v) override { this->FindOrCreate().payload = std::move(v); }
  void Clear() override { this->Erase(); }
  V* Mutable() override {
    auto* e = this->Find();
    return e ? &e->payload : nullptr;
  }
};

template <class V>
class MemListState final : public ListState<V>, public MemTable<std::vector<V>> {
 public:
  using MemTable<std::vector<V>>::MemTable;
  void Add(V v) override { this->FindOrCreate().payload.push_back(std::move(v)); }
  std::vector<V> Get() override {
    auto* e = this->Find();
    return e ? e->payload : std::vector<V>{};
  }
  void Update(std::vector<V> values) override {
    if (values.empty()) return this->Erase();
    this->FindOrCreate().payload = std::move(values);
  }
  void Clear() override { this->Erase(); }
};

// Map entries expire individually; the (key, namespace) entry holds the map.
template <class K, class V>
struct MemMapPayload {
  absl::flat_hash_map<K, std::pair<V, int64_t>> items;  // value, expiry
  void Encode(ByteWriter& w) const {
    w.Varint(items.size());
    for (auto& [k, v] : items) {
      Serde<K>::Write(w, k);
      Serde<V>::Write(w, v.first);
      w.I64(v.second);
    }
  }
  static bool Decode(ByteReader& r, MemMapPayload* out) {
    uint64_t n = r.Varint();
    if (!r.ok() || n > r.remaining()) return false;
    for (uint64_t i = 0; i < n; ++i) {
      K k{};
      V v{};
      if (!Serde<K>::Read(r, &k) || !Serde<V>::Read(r, &v)) return false;
      int64_t expire = r.I64();
      out->items.emplace(std::move(k), std::make_pair(std::move(v), expire));
    }
    return r.ok();
  }
};

template <class K, class V>
class MemMapState final : public MapState<K, V>, public MemTable<MemMapPayload<K, V>> {
  using Base = MemTable<MemMapPayload<K, V>>;

 public:
  using Base::Base;
  std::optional<V> Get(const K& k) override {
    auto* e = this->Find();
    if (!e) return std::nullopt;
    auto it = e->payload.items.find(k);
    if (it == e->payload.items.end() || ItemExpired(it->second.second)) return std::nullopt;
    return it->second.first;
  }
  void Put(const K& k, V v) override {
    auto& e = this->FindOrCreate();
    e.expire = kNeverExpires;  // the map itself lives as long as any item
    e.payload.items[k] = {std::move(v), this->NewExpiry()};
  }
  bool Contains(const K& k) override { return Get(k).has_value(); }
  void Remove(const K& k) override {
    auto* e = this->Find();
    if (!e) return;
    e->payload.items.erase(k);
    if (e->payload.items.empty()) this->Erase();
  }
  void ForEach(const std::function<void(const K&, const V&)>& fn) override {
    auto* e = this->Find();
    if (!e) return;
    for (auto& [k, v] : e->payload.items)
      if (!ItemExpired(v.second)) fn(k, v.first);
  }
  bool Empty() override {
    bool any = false;
    ForEach([&](const K&, const V&) { any = true; });
    return !any;
  }
  void Clear() override { this->Erase(); }

 private:
  bool ItemExpired(int64_t expire) const {
    return this->ttl_.enabled() && expire <= StoreNowMs(this->store_);
  }
};

template <class V>
class MemReducingState final : public ReducingState<V>, public MemTable<V> {
 public:
  MemReducingState(KeyedStateStore* store, std::function<V(const V&, const V&)> reduce, StateTtl ttl)
      : MemTable<V>(store, ttl), reduce_(std::move(reduce)) {}
  void Add(const V& v) override {
    auto* e = this->Find();
    if (!e) {
      this->FindOrCreate().payload = v;
      return;
    }
    e->payload = reduce_(e->payload, v);
    e->expire = this->NewExpiry();
  }
  std::optional<V> Get() override {
    auto* e = this->Find();
    if (!e) return std::nullopt;
    return e->payload;
  }
  void Clear() override { this->Erase(); }

 private:
  std::function<V(const V&, const V&)> reduce_;
};

}  // namespace internal
}  // namespace cairn::stream
