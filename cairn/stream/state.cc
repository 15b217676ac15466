#include "cairn/stream/state.h"

#include <filesystem>
#include <fstream>

#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "cairn/base/hash.h"
#include "cairn/stream/internal/sealed_file.h"

namespace cairn::stream {
namespace internal {

int64_t StoreNowMs(const KeyedStateStore* store) { return store->NowMs(); }
const StateKey& StoreCurrent(const KeyedStateStore* store) { return store->current(); }
KvStore* StoreKv(KeyedStateStore* store) { return store->kv(); }

std::string RocksPrefix(uint32_t table_id, const StateKey& k) {
  std::string out;
  out.reserve(4 + 2 + k.key.size() + 8);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((table_id >> shift) & 0xff));
  ByteWriter w;
  w.Varint(k.key.size());
  out += w.data();
  out += k.key;
  uint64_t ns = static_cast<uint64_t>(k.ns) ^ (uint64_t{1} << 63);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((ns >> shift) & 0xff));
  return out;
}

void RocksFatal(const absl::Status& s) {
  spdlog::critical("keyed state storage failed: {}", s.ToString());
  std::abort();
}

}  // namespace internal

namespace {
constexpr uint32_t kStateMagic = MakeMagic("CSTA");
}  // namespace

KeyedStateStore::KeyedStateStore(StateBackendOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock) {}
KeyedStateStore::~KeyedStateStore() = default;

absl::StatusOr<std::unique_ptr<KeyedStateStore>> KeyedStateStore::Create(StateBackendOptions options,
                                                                         const Clock* clock) {
  std::unique_ptr<KeyedStateStore> store(new KeyedStateStore(std::move(options), clock));
  if (store->options_.kind == StateBackendKind::kRocksDb) {
    if (store->options_.rocksdb_dir.empty())
      return absl::InvalidArgumentError("the rocksdb state backend needs a directory");
    CAIRN_ASSIGN_OR_RETURN(store->kv_, KvStore::OpenRocksDb(store->options_.rocksdb_dir, std::nullopt));
  }
  return store;
}

int64_t KeyedStateStore::NowMs() const { return clock_->NowNanos() / 1'000'000; }

uint32_t KeyedStateStore::TableId(const std::string& name) {
  // Ids come from the name, so they are the same after a restart.
  auto it = table_ids_.find(name);
  if (it != table_ids_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(HashKey(name));
  table_ids_[name] = id;
  return id;
}

absl::Status KeyedStateStore::Snapshot(const std::string& dir) {
  if (options_.kind == StateBackendKind::kRocksDb) return kv_->Checkpoint(dir + "/rocksdb");
  ByteWriter w;
  uint64_t tables = handles_.size() + pending_restore_.size();
  w.Varint(tables);
  for (auto& [name, entry] : handles_) {
    w.String(name);
    ByteWriter t;
    entry.table->Snapshot(t);
    w.String(t.data());
  }
  for (auto& [name, bytes] : pending_restore_) {
    w.String(name);
    w.String(bytes);
  }
  return internal::WriteSealedFile(dir + "/state.bin", kStateMagic, w.data());
}

absl::Status KeyedStateStore::Restore(const std::string& dir) {
  if (options_.kind == StateBackendKind::kRocksDb) {
    kv_.reset();
    CAIRN_ASSIGN_OR_RETURN(kv_, KvStore::OpenRocksDb(options_.rocksdb_dir, dir + "/rocksdb"));
    return absl::OkStatus();
  }
  std::string path = dir + "/state.bin";
  CAIRN_ASSIGN_OR_RETURN(std::string payload, internal::ReadSealedFile(path, kStateMagic, "keyed state"));
  ByteReader r(payload, path);
  uint64_t tables = r.Varint();
  if (!r.ok() || tables > r.remaining()) return absl::DataLossError(fmt::format("{}: bad table count", path));
  for (uint64_t i = 0; i < tables; ++i) {
    std::string name(r.String());
    std::string bytes(r.String());
    if (!r.ok()) break;
    auto it = handles_.find(name);
    if (it == handles_.end()) {
      pending_restore_[name] = std::move(bytes);
      continue;
    }
    ByteReader tr(bytes, name);
    if (!it->second.table->Restore(tr) || !tr.ok())
      return absl::DataLossError(fmt::format("{}: state '{}': {}", path, name, std::string(tr.status().message())));
  }
  return r.Finish();
}

uint64_t KeyedStateStore::ApproximateBytes() const {
  if (kv_) return kv_->ApproximateBytes();
  uint64_t total = 0;
  std::lock_guard<std::mutex> lock(handles_mu_);
  for (auto& [name, entry] : handles_) total += entry.table->ApproximateBytes();
  return total;
}

}  // namespace cairn::stream
