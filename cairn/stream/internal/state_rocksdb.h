// RocksDB-backed state handles (the kRocksDb backend). Included by state.h only.
//
// Layout of a RocksDB key: table id (4 bytes, big-endian) | key length (varint)
// | key bytes | namespace (8 bytes, big-endian, sign bit flipped so byte order is
// numeric order) | for maps: the user key's Serde bytes. A value is the expiry
// (8 bytes) followed by the Serde bytes of the payload. All entries of one
// (key, namespace) are therefore contiguous and found by one prefix scan.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

namespace cairn::stream {
class KeyedStateStore;
namespace internal {

KvStore* StoreKv(KeyedStateStore* store);

// Builds the prefix of the current (key, namespace) for table `id`.
std::string RocksPrefix(uint32_t table_id, const StateKey& k);
// Reports a RocksDB failure inside a state access: state accesses have no
// status to return, so a storage failure is fatal for the subtask (logged,
// then the process aborts: continuing would silently lose state).
[[noreturn]] void RocksFatal(const absl::Status& s);

template <class Payload>
class RocksTable : public StateTable {
 public:
  RocksTable(KeyedStateStore* store, uint32_t id, StateTtl ttl) : store_(store), id_(id), ttl_(ttl) {}
  void Snapshot(ByteWriter&) override {}
  bool Restore(ByteReader&) override { return true; }
  uint64_t ApproximateBytes() const override { return 0; }  // counted once, by the store
  uint64_t entries() const override { return 0; }

 protected:
  int64_t Expiry() const { return ttl_.enabled() ? StoreNowMs(store_) + ttl_.ttl.count() : kNeverExpires; }
  bool Expired(int64_t expire) const { return ttl_.enabled() && expire <= StoreNowMs(store_); }
  std::string Prefix() const { return RocksPrefix(id_, StoreCurrent(store_)); }

  bool GetAt(const std::string& key, Payload* out) {
    std::string raw;
    auto found = StoreKv(store_)->Get(key, &raw);
    if (!found.ok()) RocksFatal(found.status());
    if (!*found) return false;
    ByteReader r(raw, "state value");
    int64_t expire = r.I64();
    if (Expired(expire)) {
      Check(StoreKv(store_)->Delete(key));
      return false;
    }
    if (!Serde<Payload>::Read(r, out)) RocksFatal(r.status());
    return true;
  }
  void PutAt(const std::string& key, const Payload& p) {
    ByteWriter w;
    w.I64(Expiry());
    Serde<Payload>::Write(w, p);
    Check(StoreKv(store_)->Put(key, w.data()));
  }
  static void Check(const absl::Status& s) {
    if (!s.ok()) RocksFatal(s);
  }

  KeyedStateStore* store_;
  uint32_t id_;
  StateTtl ttl_;
};

template <class V>
class RocksValueState final : public ValueState<V>, public RocksTable<V> {
 public:
  using RocksTable<V>::RocksTable;
  std::optional<V> Value() override {
    V v{};
    if (!this->GetAt(this->Prefix(), &v)) return std::nullopt;
    return v;
  }
  void Update(V v) override { this->PutAt(this->Prefix(), v); }
  void Clear() override { this->Check(StoreKv(this->store_)->Delete(this->Prefix())); }
};

template <class V>
class RocksListState final : public ListState<V>, public RocksTable<std::vector<V>> {
 public:
  using RocksTable<std::vector<V>>::RocksTable;
  void Add(V v) override {
    std::vector<V> all = Get();
    all.push_back(std::move(v));
    this->PutAt(this->Prefix(), all);
  }
  std::vector<V> Get() override {
    std::vector<V> all;
    if (!this->GetAt(this->Prefix(), &all)) all.clear();
    return all;
  }
  void Update(std::vector<V> values) override {
    if (values.empty()) return Clear();
    this->PutAt(this->Prefix(), values);
  }
  void Clear() override { this->Check(StoreKv(this->store_)->Delete(this->Prefix())); }
};

template <class K, class V>
class RocksMapState final : public MapState<K, V>, public RocksTable<V> {
 public:
  using RocksTable<V>::RocksTable;
  std::optional<V> Get(const K& k) override {
    V v{};
    if (!this->GetAt(ItemKey(k), &v)) return std::nullopt;
    return v;
  }
  void Put(const K& k, V v) override { this->PutAt(ItemKey(k), v); }
  bool Contains(const K& k) override { return Get(k).has_value(); }
  void Remove(const K& k) override { this->Check(StoreKv(this->store_)->Delete(ItemKey(k))); }
  void ForEach(const std::function<void(const K&, const V&)>& fn) override {
    std::string prefix = this->Prefix() + '\x01';
    this->Check(StoreKv(this->store_)->Scan(prefix, [&](std::string_view key, std::string_view value) {
      ByteReader kr(key.substr(prefix.size()), "state map key");
      ByteReader vr(value, "state map value");
      K k{};
      V v{};
      int64_t expire = vr.I64();
      if (!Serde<K>::Read(kr, &k) || !Serde<V>::Read(vr, &v)) RocksFatal(vr.ok() ? kr.status() : vr.status());
      if (!this->Expired(expire)) fn(k, v);
      return true;
    }));
  }
  bool Empty() override {
    bool any = false;
    ForEach([&](const K&, const V&) { any = true; });
    return !any;
  }
  void Clear() override { this->Check(StoreKv(this->store_)->DeletePrefix(this->Prefix() + '\x01')); }

 private:
  std::string ItemKey(const K& k) const {
    std::string key = this->Prefix();
    key += '\x01';
    ByteWriter w;
    Serde<K>::Write(w, k);
    key += w.data();
    return key;
  }
};

template <class V>
class RocksReducingState final : public ReducingState<V>, public RocksTable<V> {
 public:
  RocksReducingState(KeyedStateStore* store, uint32_t id, std::function<V(const V&, const V&)> reduce,
                     StateTtl ttl)
      : RocksTable<V>(store, id, ttl), reduce_(std::move(reduce)) {}
  void Add(const V& v) override {
    std::string key = this->Prefix();
    V cur{};
    if (this->GetAt(key, &cur))
      this->PutAt(key, reduce_(cur, v));
    else
      this->PutAt(key, v);
  }
  std::optional<V> Get() override {
    V v{};
    if (!this->GetAt(this->Prefix(), &v)) return std::nullopt;
    return v;
  }
  void Clear() override { this->Check(StoreKv(this->store_)->Delete(this->Prefix())); }

 private:
  std::function<V(const V&, const V&)> reduce_;
};

}  // namespace internal
}  // namespace cairn::stream
