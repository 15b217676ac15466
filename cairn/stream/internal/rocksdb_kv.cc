// KvStore over RocksDB: the storage of the kRocksDb keyed-state backend.
#include <filesystem>
#include <memory>

#include "cairn/stream/state.h"
#include "fmt/format.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"

namespace cairn::stream {
namespace {

namespace fs = std::filesystem;

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(fmt::format("rocksdb {}: {}", what, s.ToString()));
}

class RocksKvStore final : public KvStore {
 public:
  explicit RocksKvStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {
    // State is rebuilt from checkpoints after a crash, so the WAL is not needed.
    write_options_.disableWAL = true;
  }

  absl::Status Put(std::string_view key, std::string_view value) override {
    return FromRocks(db_->Put(write_options_, ToSlice(key), ToSlice(value)), "put");
  }
  absl::StatusOr<bool> Get(std::string_view key, std::string* value) override {
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ToSlice(key), value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "get");
    return true;
  }
  absl::Status Delete(std::string_view key) override {
    return FromRocks(db_->Delete(write_options_, ToSlice(key)), "delete");
  }
  absl::Status Scan(std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(ToSlice(prefix)); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      if (k.size() < prefix.size() || std::string_view(k.data(), prefix.size()) != prefix) break;
      if (!fn(std::string_view(k.data(), k.size()), std::string_view(it->value().data(), it->value().size())))
        break;
    }
    return FromRocks(it->status(), "scan");
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    rocksdb::WriteBatch batch;
    CAIRN_RETURN_IF_ERROR(Scan(prefix, [&](std::string_view k, std::string_view) {
      batch.Delete(ToSlice(k));
      return true;
    }));
    return FromRocks(db_->Write(write_options_, &batch), "delete prefix");
  }
  absl::Status Checkpoint(const std::string& dir) override {
    rocksdb::Checkpoint* raw = nullptr;
    CAIRN_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    // Memtables are flushed so the checkpoint holds everything (there is no WAL).
    CAIRN_RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush"));
    return FromRocks(cp->CreateCheckpoint(dir), "checkpoint");
  }
  uint64_t ApproximateBytes() override {
    uint64_t sst = 0, mem = 0;
    db_->GetIntProperty("rocksdb.total-sst-files-size", &sst);
    db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
    return sst + mem;
  }

 private:
  static rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvStore>> KvStore::OpenRocksDb(const std::string& dir,
                                                              std::optional<std::string> restore_from) {
  std::error_code ec;
  if (restore_from) {
    fs::remove_all(dir, ec);
    fs::create_directories(fs::path(dir).parent_path(), ec);
    fs::copy(*restore_from, dir, fs::copy_options::recursive, ec);
    if (ec) return absl::InternalError(fmt::format("cannot copy state {} to {}: {}", *restore_from, dir, ec.message()));
  } else {
    // A fresh start: whatever an earlier run left behind is not ours.
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(1);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return absl::InternalError(fmt::format("cannot open rocksdb state in {}: {}", dir, s.ToString()));
  return std::unique_ptr<KvStore>(new RocksKvStore(std::unique_ptr<rocksdb::DB>(raw)));
}

}  // namespace cairn::stream
