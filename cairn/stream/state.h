// Keyed state: what a keyed operator remembers per key, checkpointed with the
// pipeline.
//
// A KeyedStateStore belongs to one subtask of one keyed operator. Before it
// calls user code for a record or a timer, the engine sets the current key (the
// key's Serde bytes) and, for windows, the current namespace (the window); every
// state handle then reads and writes the entry of that (key, namespace).
//
// State kinds: ValueState<V>, ListState<V>, MapState<K, V>, ReducingState<V>.
// Each may carry a time-to-live: an entry not written for `ttl` (processing
// time, the store's clock) reads as absent and is dropped from snapshots.
//
// Backends:
//  * kMemory: typed hash maps in memory; a checkpoint serializes them (Serde).
//  * kRocksDb: entries serialized into RocksDB under `rocksdb_dir`, for state
//    larger than memory; a checkpoint is a RocksDB checkpoint (hard links).
//
// Thread-safety: none; a store and its handles are used by the one thread that
// runs their subtask. Handles stay valid for the life of the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cairn/base/clock.h"
#include "cairn/base/status.h"
#include "cairn/stream/record.h"

namespace cairn::stream {

enum class StateBackendKind { kMemory, kRocksDb };

struct StateBackendOptions {
  StateBackendKind kind = StateBackendKind::kMemory;
  // kRocksDb: working directory of this subtask's database (created if missing).
  std::string rocksdb_dir;
};

// (key, namespace): the unit every state entry belongs to.
struct StateKey {
  std::string key;     // Serde bytes of the record key
  int64_t ns = 0;      // namespace: 0, or a window's identity
  bool operator==(const StateKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const StateKey& k) {
    return H::combine(std::move(h), k.key, k.ns);
  }
};

struct StateTtl {
  std::chrono::milliseconds ttl{0};  // 0 = entries never expire
  bool enabled() const { return ttl.count() > 0; }
};

// ---- handles --------------------------------------------------------------

template <class V>
class ValueState {
 public:
  virtual ~ValueState() = default;
  virtual std::optional<V> Value() = 0;
  virtual void Update(V v) = 0;
  virtual void Clear() = 0;
  // In-place access for backends that hold live objects (kMemory): the stored
  // value of the current entry, or nullptr when absent or not supported. A
  // change through the pointer is the same as Update (it refreshes no TTL).
  virtual V* Mutable() { return nullptr; }
  // Like Mutable, but creates a value-initialized entry when absent and says so
  // in *inserted. nullptr when not supported (kRocksDb).
  virtual V* MutableOrInsert(bool* /*inserted*/) { return nullptr; }
};

template <class V>
class ListState {
 public:
  virtual ~ListState() = default;
  virtual void Add(V v) = 0;
  virtual std::vector<V> Get() = 0;  // empty when absent
  virtual void Update(std::vector<V> values) = 0;
  virtual void Clear() = 0;
};

template <class K, class V>
class MapState {
 public:
  virtual ~MapState() = default;
  virtual std::optional<V> Get(const K& k) = 0;
  virtual void Put(const K& k, V v) = 0;
  virtual bool Contains(const K& k) = 0;
  virtual void Remove(const K& k) = 0;
  // Visits every live entry of the current (key, namespace); order unspecified.
  virtual void ForEach(const std::function<void(const K&, const V&)>& fn) = 0;
  virtual bool Empty() = 0;
  virtual void Clear() = 0;
};

template <class V>
class ReducingState {
 public:
  virtual ~ReducingState() = default;
  virtual void Add(const V& v) = 0;       // combines with the current value
  virtual std::optional<V> Get() = 0;
  virtual void Clear() = 0;
};

// ---- byte-level store (RocksDB backend) -----------------------------------

// Ordered key-value bytes; implemented over RocksDB. Not thread-safe.
class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual absl::Status Put(std::string_view key, std::string_view value) = 0;
  // false when absent.
  virtual absl::StatusOr<bool> Get(std::string_view key, std::string* value) = 0;
  virtual absl::Status Delete(std::string_view key) = 0;
  // Visits keys starting with `prefix` in byte order until fn returns false.
  virtual absl::Status Scan(std::string_view prefix,
                            const std::function<bool(std::string_view key, std::string_view value)>& fn) = 0;
  virtual absl::Status DeletePrefix(std::string_view prefix) = 0;
  // A consistent copy of the whole store in `dir` (which must not exist).
  virtual absl::Status Checkpoint(const std::string& dir) = 0;
  virtual uint64_t ApproximateBytes() = 0;

  // Opens (creating) the database in `dir`. When `restore_from` names a
  // directory written by Checkpoint, `dir` is first replaced by a copy of it.
  static absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksDb(
      const std::string& dir, std::optional<std::string> restore_from);
};

// ---- the store --------------------------------------------------------------

// One named state of a store, as the store sees it (type-erased).
class StateTable {
 public:
  virtual ~StateTable() = default;
  // Memory backend: serialize live entries / restore them. RocksDB tables hold
  // nothing in memory and write nothing here.
  virtual void Snapshot(ByteWriter& w) = 0;
  virtual bool Restore(ByteReader& r) = 0;
  virtual uint64_t ApproximateBytes() const = 0;
  virtual uint64_t entries() const = 0;
};

class KeyedStateStore {
 public:
  // `clock` drives TTL (processing time); not owned, must outlive the store.
  static absl::StatusOr<std::unique_ptr<KeyedStateStore>> Create(StateBackendOptions options,
                                                                 const Clock* clock);
  ~KeyedStateStore();
  KeyedStateStore(const KeyedStateStore&) = delete;
  KeyedStateStore& operator=(const KeyedStateStore&) = delete;

  void SetCurrentKey(std::string key) { current_.key = std::move(key); }
  void SetCurrentNamespace(int64_t ns) { current_.ns = ns; }
  const StateKey& current() const { return current_; }

  // Handles are created once (by name) and reused; asking again for the same
  // name returns the same handle. The value types must stay the same.
  template <class V>
  ValueState<V>* GetValueState(const std::string& name, StateTtl ttl = {});
  template <class V>
  ListState<V>* GetListState(const std::string& name, StateTtl ttl = {});
  template <class K, class V>
  MapState<K, V>* GetMapState(const std::string& name, StateTtl ttl = {});
  template <class V>
  ReducingState<V>* GetReducingState(const std::string& name, std::function<V(const V&, const V&)> reduce,
                                     StateTtl ttl = {});

  // Writes this store's state for a checkpoint into directory `dir` (created by
  // the caller): `state.bin` (memory) or `rocksdb/` (RocksDB checkpoint).
  absl::Status Snapshot(const std::string& dir);
  // Loads what Snapshot wrote. Call after every handle has been created (state
  // of a name nobody asked for is kept and handed to the handle created later).
  absl::Status Restore(const std::string& dir);

  uint64_t ApproximateBytes() const;
  StateBackendKind kind() const { return options_.kind; }
  int64_t NowMs() const;
  KvStore* kv() { return kv_.get(); }

  // Implementation detail shared with the backends' handle templates.
  template <class H>
  H* Register(const std::string& name, std::unique_ptr<H> handle, StateTable* table);
  uint32_t TableId(const std::string& name);

 private:
  KeyedStateStore(StateBackendOptions options, const Clock* clock);

  StateBackendOptions options_;
  const Clock* clock_;
  StateKey current_;
  std::unique_ptr<KvStore> kv_;
  struct Entry {
    std::shared_ptr<void> handle;  // the typed handle
    StateTable* table = nullptr;   // the same object, seen as a table
  };
  // Written by the operator's thread when it creates a handle; ApproximateBytes
  // (pipeline statistics) reads it from other threads, so both take this lock.
  mutable std::mutex handles_mu_;
  absl::flat_hash_map<std::string, Entry> handles_;
  absl::flat_hash_map<std::string, uint32_t> table_ids_;
  // Snapshot bytes restored for names not created yet.
  absl::flat_hash_map<std::string, std::string> pending_restore_;
};

}  // namespace cairn::stream

#include "cairn/stream/internal/state_memory.h"   // IWYU pragma: export
#include "cairn/stream/internal/state_rocksdb.h"  // IWYU pragma: export

namespace cairn::stream {

template <class H>
H* KeyedStateStore::Register(const std::string& name, std::unique_ptr<H> handle, StateTable* table) {
  H* raw = handle.get();
  {
    std::lock_guard<std::mutex> lock(handles_mu_);
    handles_[name] = Entry{std::shared_ptr<void>(std::move(handle)), table};
  }
  auto it = pending_restore_.find(name);
  if (it != pending_restore_.end()) {
    ByteReader r(it->second, name);
    table->Restore(r);
    pending_restore_.erase(it);
  }
  return raw;
}

template <class V>
ValueState<V>* KeyedStateStore::GetValueState(const std::string& name, StateTtl ttl) {
  if (auto it = handles_.find(name); it != handles_.end()) return static_cast<ValueState<V>*>(it->second.handle.get());
  if (options_.kind == StateBackendKind::kMemory) {
    auto h = std::make_unique<internal::MemValueState<V>>(this, ttl);
    StateTable* t = h.get();
    return Register<ValueState<V>>(name, std::move(h), t);
  }
  auto h = std::make_unique<internal::RocksValueState<V>>(this, TableId(name), ttl);
  StateTable* t = h.get();
  return Register<ValueState<V>>(name, std::move(h), t);
}

template <class V>
ListState<V>* KeyedStateStore::GetListState(const std::string& name, StateTtl ttl) {
  if (auto it = handles_.find(name); it != handles_.end()) return static_cast<ListState<V>*>(it->second.handle.get());
  if (options_.kind == StateBackendKind::kMemory) {
    auto h = std::make_unique<internal::MemListState<V>>(this, ttl);
    StateTable* t = h.get();
    return Register<ListState<V>>(name, std::move(h), t);
  }
  auto h = std::make_unique<internal::RocksListState<V>>(this, TableId(name), ttl);
  StateTable* t = h.get();
  return Register<ListState<V>>(name, std::move(h), t);
}

template <class K, class V>
MapState<K, V>* KeyedStateStore::GetMapState(const std::string& name, StateTtl ttl) {
  if (auto it = handles_.find(name); it != handles_.end())
    return static_cast<MapState<K, V>*>(it->second.handle.get());
  if (options_.kind == StateBackendKind::kMemory) {
    auto h = std::make_unique<internal::MemMapState<K, V>>(this, ttl);
    StateTable* t = h.get();
    return Register<MapState<K, V>>(name, std::move(h), t);
  }
  auto h = std::make_unique<internal::RocksMapState<K, V>>(this, TableId(name), ttl);
  StateTable* t = h.get();
  return Register<MapState<K, V>>(name, std::move(h), t);
}

template <class V>
ReducingState<V>* KeyedStateStore::GetReducingState(const std::string& name,
                                                    std::function<V(const V&, const V&)> reduce, StateTtl ttl) {
  if (auto it = handles_.find(name); it != handles_.end())
    return static_cast<ReducingState<V>*>(it->second.handle.get());
  if (options_.kind == StateBackendKind::kMemory) {
    auto h = std::make_unique<internal::MemReducingState<V>>(this, std::move(reduce), ttl);
    StateTable* t = h.get();
    return Register<ReducingState<V>>(name, std::move(h), t);
  }
  auto h = std::make_unique<internal::RocksReducingState<V>>(this, TableId(name), std::move(reduce), ttl);
  StateTable* t = h.get();
  return Register<ReducingState<V>>(name, std::move(h), t);
}

}  // namespace cairn::stream
