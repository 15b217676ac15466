#include "cairn/vector/collection.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "cairn/base/status.h"
#include "cairn/vector/embedder.h"
#include "cairn/vector/flat.h"
#include "cairn/vector/fusion.h"
#include "cairn/vector/hnsw.h"
#include "cairn/vector/snapshot.h"
#include "cairn/vector/text_index.h"
#include "cairn/vector/wal.h"

namespace cairn::vector {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxDim = 65536;
constexpr size_t kMaxK = 10000;
constexpr size_t kMaxTextBytes = 1 << 20;
constexpr char kSettingsFile[] = "settings.json";
constexpr char kWalFile[] = "wal.log";
constexpr char kSnapshotFile[] = "points.snap";
constexpr char kTextFile[] = "text.db";
// Hybrid search asks each side for more than k so that a point ranked modestly by
// both sides can still make the fused top k.
constexpr size_t kFusionDepthFactor = 4;
constexpr size_t kFusionMinDepth = 40;
// Batches of at least this many points go through HnswIndex::AddBatch (parallel).
constexpr size_t kParallelBatch = 256;

std::string IndexFileName(uint64_t seq) { return fmt::format("index-{}.hnsw", seq); }

absl::StatusOr<std::unique_ptr<Index>> DefaultIndexFactory(const CollectionSettings& s) {
  if (s.index == IndexKind::kFlat) {
    FlatOptions o;
    o.dim = s.dim;
    o.metric = s.metric;
    CAIRN_ASSIGN_OR_RETURN(auto flat, FlatIndex::Create(o));
    return std::unique_ptr<Index>(std::move(flat));
  }
  HnswOptions o;
  o.dim = s.dim;
  o.metric = s.metric;
  o.M = s.hnsw.m;
  o.ef_construction = s.hnsw.ef_construction;
  o.ef_search = s.hnsw.ef_search;
  o.storage = s.index == IndexKind::kHnswSq8 ? HnswStorage::kSq8 : HnswStorage::kFloat32;
  CAIRN_ASSIGN_OR_RETURN(auto hnsw, HnswIndex::Create(o));
  return std::unique_ptr<Index>(std::move(hnsw));
}

absl::Status CheckVector(std::span<const float> v, const CollectionSettings& s, std::string_view what) {
  if (v.size() != s.dim) {
    return absl::InvalidArgumentError(fmt::format("{}: vector has {} values; collection '{}' has dimension {}",
                                                  what, v.size(), s.name, s.dim));
  }
  double norm = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(fmt::format("{}: vector value {} is not finite", what, i));
    }
    norm += static_cast<double>(v[i]) * v[i];
  }
  if (s.metric == Metric::kCosine && norm == 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: zero vector in cosine collection '{}'", what, s.name));
  }
  return absl::OkStatus();
}

double ScoreFromDistance(Metric m, float distance) {
  return m == Metric::kL2 ? -static_cast<double>(distance) : 1.0 - static_cast<double>(distance);
}

}  // namespace

// ---------------------------------------------------------------------------------
// Settings

std::string_view IndexKindName(IndexKind kind) {
  switch (kind) {
    case IndexKind::kFlat: return "flat";
    case IndexKind::kHnsw: return "hnsw";
    case IndexKind::kHnswSq8: return "hnsw_sq8";
  }
  return "unknown";
}

absl::StatusOr<IndexKind> ParseIndexKind(std::string_view name) {
  if (name == "flat") return IndexKind::kFlat;
  if (name == "hnsw") return IndexKind::kHnsw;
  if (name == "hnsw_sq8") return IndexKind::kHnswSq8;
  return absl::InvalidArgumentError(
      fmt::format("unknown index kind '{}' (expected flat, hnsw or hnsw_sq8)", std::string(name)));
}

absl::Status CollectionSettings::Validate() const {
  bool name_ok = !name.empty() && name.size() <= 64;
  for (size_t i = 0; name_ok && i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    name_ok = alnum || (i > 0 && (c == '_' || c == '-'));
  }
  if (!name_ok) {
    return absl::InvalidArgumentError(fmt::format(
        "collection name '{}' must be 1..64 characters of [A-Za-z0-9_-] starting with a letter or digit",
        name));
  }
  if (dim == 0 || dim > kMaxDim) {
    return absl::InvalidArgumentError(
        fmt::format("collection '{}': dimension {} out of range 1..{}", name, dim, kMaxDim));
  }
  if (index != IndexKind::kFlat) {
    if (hnsw.m < 2 || hnsw.m > 64) {
      return absl::InvalidArgumentError(fmt::format("collection '{}': hnsw.m {} out of range 2..64", name, hnsw.m));
    }
    if (hnsw.ef_construction == 0 || hnsw.ef_construction > 10000 || hnsw.ef_search == 0 ||
        hnsw.ef_search > 10000) {
      return absl::InvalidArgumentError(fmt::format(
          "collection '{}': hnsw.ef_construction and hnsw.ef_search must be in 1..10000", name));
    }
  }
  if (embedder != "hash" && embedder != "none") {
    return absl::InvalidArgumentError(
        fmt::format("collection '{}': unknown embedder '{}' (expected hash or none)", name, embedder));
  }
  return absl::OkStatus();
}

std::string SettingsToJson(const CollectionSettings& s) {
  nlohmann::json j = {{"name", s.name},
                      {"dim", s.dim},
                      {"metric", std::string(MetricName(s.metric))},
                      {"index", std::string(IndexKindName(s.index))},
                      {"embedder", s.embedder}};
  if (s.index != IndexKind::kFlat) {
    j["hnsw"] = {{"m", s.hnsw.m}, {"ef_construction", s.hnsw.ef_construction}, {"ef_search", s.hnsw.ef_search}};
  }
  return j.dump();
}

absl::StatusOr<CollectionSettings> SettingsFromJson(std::string_view json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("collection settings: not a JSON object");
  }
  CollectionSettings s;
  auto size_field = [](const nlohmann::json& obj, const char* key, size_t* out,
                       std::string_view where) -> absl::Status {
    if (!obj.contains(key)) return absl::OkStatus();
    const auto& v = obj.at(key);
    if (!v.is_number_unsigned()) {
      return absl::InvalidArgumentError(fmt::format("{}'{}' must be a non-negative integer", where, key));
    }
    *out = v.get<size_t>();
    return absl::OkStatus();
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "name" || key == "metric" || key == "index" || key == "embedder") {
      if (!v.is_string()) {
        return absl::InvalidArgumentError(fmt::format("collection settings: '{}' must be a string", key));
      }
      const std::string str = v.get<std::string>();
      if (key == "name") {
        s.name = str;
      } else if (key == "metric") {
        CAIRN_ASSIGN_OR_RETURN(s.metric, ParseMetric(str));
      } else if (key == "index") {
        CAIRN_ASSIGN_OR_RETURN(s.index, ParseIndexKind(str));
      } else {
        s.embedder = str;
      }
    } else if (key == "dim") {
      CAIRN_RETURN_IF_ERROR(size_field(j, "dim", &s.dim, "collection settings: "));
    } else if (key == "hnsw") {
      if (!v.is_object()) return absl::InvalidArgumentError("collection settings: 'hnsw' must be an object");
      for (auto h = v.begin(); h != v.end(); ++h) {
        if (h.key() != "m" && h.key() != "ef_construction" && h.key() != "ef_search") {
          return absl::InvalidArgumentError(fmt::format(
              "collection settings: unknown key 'hnsw.{}' (expected m, ef_construction, ef_search)", h.key()));
        }
      }
      CAIRN_RETURN_IF_ERROR(size_field(v, "m", &s.hnsw.m, "collection settings: hnsw."));
      CAIRN_RETURN_IF_ERROR(size_field(v, "ef_construction", &s.hnsw.ef_construction, "collection settings: hnsw."));
      CAIRN_RETURN_IF_ERROR(size_field(v, "ef_search", &s.hnsw.ef_search, "collection settings: hnsw."));
    } else {
      return absl::InvalidArgumentError(fmt::format(
          "collection settings: unknown key '{}' (expected name, dim, metric, index, hnsw, embedder)", key));
    }
  }
  if (!j.contains("dim")) return absl::InvalidArgumentError("collection settings: 'dim' is required");
  CAIRN_RETURN_IF_ERROR(s.Validate());
  return s;
}

// ---------------------------------------------------------------------------------
// Collection: open and recovery

Collection::Collection(std::string dir, CollectionSettings settings, CollectionOptions options)
    : dir_(std::move(dir)), settings_(std::move(settings)), options_(std::move(options)) {}

Collection::~Collection() = default;

absl::StatusOr<std::unique_ptr<Collection>> Collection::Create(const std::string& dir,
                                                               const CollectionSettings& settings,
                                                               const CollectionOptions& options) {
  CAIRN_RETURN_IF_ERROR(settings.Validate());
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::AlreadyExistsError(fmt::format("collection directory {} already exists", dir));
  }
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(fmt::format("cannot create {}: {}", dir, std::string(ec.message())));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / kSettingsFile).string(), SettingsToJson(settings)));
  CAIRN_RETURN_IF_ERROR(SyncDirectory(fs::path(dir).parent_path().string()));
  std::unique_ptr<Collection> c(new Collection(dir, settings, options));
  CAIRN_RETURN_IF_ERROR(c->Init());
  return c;
}

absl::StatusOr<std::unique_ptr<Collection>> Collection::Open(const std::string& dir,
                                                             const CollectionOptions& options) {
  const std::string settings_path = (fs::path(dir) / kSettingsFile).string();
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(settings_path));
  auto settings = SettingsFromJson(text);
  if (!settings.ok()) {
    return absl::DataLossError(fmt::format("{}: {}", settings_path, std::string(settings.status().message())));
  }
  std::unique_ptr<Collection> c(new Collection(dir, *settings, options));
  CAIRN_RETURN_IF_ERROR(c->Init());
  return c;
}

absl::Status Collection::CheckNotDropped() const {
  if (dropped_.load()) {
    return absl::FailedPreconditionError(fmt::format("collection '{}' was dropped", settings_.name));
  }
  return absl::OkStatus();
}

absl::Status Collection::Init() {
  const auto t0 = std::chrono::steady_clock::now();
  CAIRN_ASSIGN_OR_RETURN(embedder_, MakeEmbedder(settings_.embedder, settings_.dim));
  CAIRN_ASSIGN_OR_RETURN(text_, TextIndex::Open((fs::path(dir_) / kTextFile).string()));
  CAIRN_RETURN_IF_ERROR(LoadSnapshot());
  auto t_wal = std::chrono::steady_clock::now();
  CAIRN_RETURN_IF_ERROR(ReplayWal());
  open_stats_.wal_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_wal).count();
  CAIRN_ASSIGN_OR_RETURN(wal_, WalWriter::Open((fs::path(dir_) / kWalFile).string(),
                                               options_.fsync == FsyncPolicy::kAlways));
  open_stats_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return absl::OkStatus();
}

namespace {
double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

absl::Status Collection::LoadSnapshot() {
  auto t = std::chrono::steady_clock::now();
  const std::string path = (fs::path(dir_) / kSnapshotFile).string();
  // Verification (checksum, ids, values) is deferred so that the attribute indexes,
  // whose decoding is bounds-checked and safe on any bytes, are built on a second
  // thread meanwhile: open time is the longer of the two paths, not the sum.
  auto snap = SnapshotFile::Open(path, /*deferred_verify=*/true);
  if (!snap.ok() && !absl::IsNotFound(snap.status())) return snap.status();
  const bool have_snapshot = snap.ok();
  const uint64_t seq = have_snapshot ? (*snap)->header().seq : 0;
  std::shared_ptr<SnapshotFile> shared_snap;
  if (have_snapshot) shared_snap = std::move(*snap);

  double attribute_seconds = 0;
  absl::Status attribute_status;
  std::thread attribute_loader;
  if (have_snapshot) {
    attribute_loader = std::thread([&] {
      auto ta = std::chrono::steady_clock::now();
      SnapshotFile& s = *shared_snap;
      auto attrs = s.DecodeAttributes();
      if (attrs.ok()) {
        std::vector<uint64_t> ids(s.header().count);
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = s.id(i);
        attributes_.BulkLoad(ids, std::move(*attrs));
      } else {
        attribute_status = attrs.status();
      }
      attribute_seconds = SecondsSince(ta);
    });
  }
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{attribute_loader};
  // Failures return through the joiner (Open then discards this collection).
  auto fail = [](absl::Status st) { return st; };
  if (have_snapshot) {
    if (auto st = shared_snap->Verify(); !st.ok()) return fail(st);
  }

  // Index files left by a snapshot that crashed before points.snap named them.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("index-") && name.ends_with(".hnsw") &&
        !(have_snapshot && name == IndexFileName(seq))) {
      fs::remove(entry.path(), ec);
    }
  }

  if (have_snapshot) {
    const SnapshotHeader& h = shared_snap->header();
    if (h.dim != settings_.dim || h.metric != settings_.metric) {
      return fail(absl::DataLossError(fmt::format(
          "{}: snapshot has dimension {} and metric {}; settings.json says {} and {}", path, h.dim,
          MetricName(h.metric), settings_.dim, MetricName(settings_.metric))));
    }
  }
  open_stats_.snapshot_seconds = SecondsSince(t);
  t = std::chrono::steady_clock::now();
  const bool custom = static_cast<bool>(options_.index_factory);
  if (have_snapshot && !shared_snap->header().vectors_inline) {
    if (custom || settings_.index == IndexKind::kFlat) {
      return fail(absl::DataLossError(fmt::format("{}: snapshot keeps no vectors but the index is not HNSW", path)));
    }
    const std::string index_path = (fs::path(dir_) / IndexFileName(seq)).string();
    auto hnsw = HnswIndex::Open(index_path);
    if (!hnsw.ok()) {
      return fail(absl::DataLossError(
          fmt::format("collection '{}': index file: {}", settings_.name, std::string(hnsw.status().message()))));
    }
    if ((*hnsw)->dim() != settings_.dim || (*hnsw)->metric() != settings_.metric) {
      return fail(absl::DataLossError(fmt::format("{}: dimension or metric differs from settings.json", index_path)));
    }
    index_ = std::move(*hnsw);
  } else {
    auto index = custom ? options_.index_factory(settings_) : DefaultIndexFactory(settings_);
    if (!index.ok()) return fail(index.status());
    index_ = std::move(*index);
  }
  if (!have_snapshot) return absl::OkStatus();

  SnapshotFile& s = *shared_snap;
  const size_t n = s.header().count;
  std::vector<uint64_t> id_copy;
  if (s.Ids().size() != n) {  // version 1 file: ids not aligned in the mapping
    id_copy.resize(n);
    for (size_t i = 0; i < n; ++i) id_copy[i] = s.id(i);
  }
  const std::span<const uint64_t> snap_ids = id_copy.empty() ? s.Ids() : std::span<const uint64_t>(id_copy);
  auto load_index = [&]() -> absl::Status {
    if (s.header().vectors_inline) {
      auto* hnsw = dynamic_cast<HnswIndex*>(index_.get());
      auto* flat = dynamic_cast<FlatIndex*>(index_.get());
      if (flat != nullptr && n > 0 && flat->storage() == FlatStorage::kFloat32 && !s.MutableVectors().empty()) {
        // The rows stay in the snapshot's copy-on-write mapping: nothing is copied.
        return flat->Adopt(snap_ids, s.MutableVectors(), shared_snap);
      }
      if ((hnsw != nullptr || flat != nullptr) && n > 0) {
        const std::span<const uint64_t> ids = snap_ids;
        std::span<const float> block = s.Vectors();
        std::vector<float> rows;
        if (block.size() != n * settings_.dim) {  // not aligned in the mapping: copy
          rows.resize(n * settings_.dim);
          for (size_t i = 0; i < n; ++i) s.Vector(i, std::span<float>(rows.data() + i * settings_.dim, settings_.dim));
          block = rows;
        }
        return hnsw != nullptr ? hnsw->AddBatch(ids, block, 0) : flat->AddBatch(ids, block);
      }
      std::vector<float> v(settings_.dim);
      for (size_t i = 0; i < n; ++i) {
        s.Vector(i, v);
        CAIRN_RETURN_IF_ERROR(index_->Add(s.id(i), v));
      }
      return absl::OkStatus();
    }
    if (index_->size() != n) {
      return absl::DataLossError(fmt::format("collection '{}': index file holds {} vectors, {} holds {} points",
                                             settings_.name, index_->size(), path, n));
    }
    auto* hnsw = dynamic_cast<HnswIndex*>(index_.get());
    if (hnsw != nullptr && hnsw->CountPresent(snap_ids) == n) return absl::OkStatus();
    for (size_t i = 0; i < n; ++i) {
      if (!index_->Contains(s.id(i))) {
        return absl::DataLossError(fmt::format("collection '{}': point {} of {} is missing from the index file",
                                               settings_.name, s.id(i), path));
      }
    }
    return absl::OkStatus();
  };
  absl::Status index_status = load_index();
  open_stats_.index_seconds = SecondsSince(t);
  if (!index_status.ok()) return fail(index_status);
  attribute_loader.join();
  open_stats_.attribute_seconds = attribute_seconds;
  if (!attribute_status.ok()) return fail(attribute_status);
  snapshot_seq_ = last_seq_ = seq;
  open_stats_.snapshot_seq = seq;
  return absl::OkStatus();
}

absl::Status Collection::ReplayWal() {
  const std::string path = (fs::path(dir_) / kWalFile).string();
  auto bytes = ReadWholeFile(path);
  if (absl::IsNotFound(bytes.status())) return absl::OkStatus();
  if (!bytes.ok()) return bytes.status();
  CAIRN_ASSIGN_OR_RETURN(WalScan scan, ScanWal(*bytes, path));
  const uint64_t text_seq = text_->applied_seq();
  uint64_t expected = 0;
  uint64_t first_seq = 0;
  for (const WalRecordRef& rec : scan.records) {
    auto batch = DecodeWalBatch(rec.payload);
    if (!batch.ok()) {
      return absl::DataLossError(
          fmt::format("{}: record at offset {}: {}", path, rec.offset, std::string(batch.status().message())));
    }
    if (expected != 0 && batch->seq != expected) {
      return absl::DataLossError(fmt::format("{}: record at offset {} has sequence {}, expected {}", path,
                                             rec.offset, batch->seq, expected));
    }
    if (expected == 0 && batch->seq > snapshot_seq_ + 1) {
      return absl::DataLossError(fmt::format(
          "{}: first record (offset {}) has sequence {} but the snapshot ends at {}: records are missing",
          path, rec.offset, batch->seq, snapshot_seq_));
    }
    if (first_seq == 0) first_seq = batch->seq;
    expected = batch->seq + 1;
    if (batch->seq > snapshot_seq_) {
      for (const WalOp& op : batch->ops) {
        if (op.kind == WalOp::Kind::kUpsert && op.vector.size() != settings_.dim) {
          return absl::DataLossError(fmt::format("{}: record at offset {}: vector of {} values in a collection of dimension {}",
                                                 path, rec.offset, op.vector.size(), settings_.dim));
        }
      }
      CAIRN_RETURN_IF_ERROR(ApplyToMemory(batch->ops));
      last_seq_ = batch->seq;
      ++open_stats_.replayed_records;
    }
    if (batch->seq > text_seq) CAIRN_RETURN_IF_ERROR(ApplyToText(batch->seq, batch->ops));
  }
  if (text_seq > std::max(last_seq_, snapshot_seq_)) {
    spdlog::warn("collection '{}': text index is at sequence {} but the WAL ends at {} (WAL tail lost with "
                 "fsync=never?); texts of those batches may linger",
                 settings_.name, text_seq, last_seq_);
  } else if (text_seq < snapshot_seq_ && (first_seq == 0 || first_seq > text_seq + 1)) {
    // The snapshot's Checkpoint() made text durable up to snapshot_seq_ before the WAL
    // was emptied, so this means text.db was replaced or lost its last commits.
    return absl::DataLossError(fmt::format("collection '{}': text index {} is at sequence {}, behind the snapshot ({})",
                                           settings_.name, (fs::path(dir_) / kTextFile).string(), text_seq, snapshot_seq_));
  }
  if (scan.torn_bytes > 0) {
    spdlog::warn("{}; cutting {} torn bytes off the end of the log (a crash during a write; that batch "
                 "was never acknowledged)",
                 scan.torn_reason, scan.torn_bytes);
    CAIRN_RETURN_IF_ERROR(TruncateFile(path, scan.valid_bytes));
    open_stats_.truncated_bytes = scan.torn_bytes;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------
// Writes

absl::StatusOr<std::vector<WalOp>> Collection::Prepare(std::span<const Point> points) const {
  std::vector<WalOp> ops;
  ops.reserve(points.size());
  absl::flat_hash_set<uint64_t> seen;
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    const std::string what = fmt::format("point {} (id {})", i, p.id);
    if (!seen.insert(p.id).second) {
      return absl::InvalidArgumentError(fmt::format("{}: id appears twice in the batch", what));
    }
    WalOp op;
    op.kind = WalOp::Kind::kUpsert;
    op.id = p.id;
    if (p.text && p.text->size() > kMaxTextBytes) {
      return absl::InvalidArgumentError(
          fmt::format("{}: text has {} bytes; the limit is {}", what, p.text->size(), kMaxTextBytes));
    }
    if (p.vector.empty()) {
      if (!p.text) {
        return absl::InvalidArgumentError(fmt::format("{}: needs a vector or a text", what));
      }
      if (!embedder_) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: has no vector and collection '{}' has no embedder (embedder: none)", what, settings_.name));
      }
      op.vector.resize(settings_.dim);
      auto st = embedder_->Embed(*p.text, op.vector);
      if (!st.ok()) return absl::InvalidArgumentError(fmt::format("{}: {}", what, std::string(st.message())));
    } else {
      CAIRN_RETURN_IF_ERROR(CheckVector(p.vector, settings_, what));
      op.vector = p.vector;
    }
    auto st = ValidateAttributes(p.attributes);
    if (!st.ok()) return absl::InvalidArgumentError(fmt::format("{}: {}", what, std::string(st.message())));
    op.attributes = p.attributes;
    op.text = p.text;
    ops.push_back(std::move(op));
  }
  return ops;
}

std::shared_lock<std::shared_mutex> Collection::ReadLock() const {
  { std::lock_guard pass(turnstile_); }
  return std::shared_lock(state_mu_);
}

std::unique_lock<std::shared_mutex> Collection::WriteLock() {
  std::lock_guard hold(turnstile_);
  return std::unique_lock(state_mu_);
}

absl::Status Collection::ApplyToMemory(const std::vector<WalOp>& ops) {
  auto lock = WriteLock();
  auto* hnsw = dynamic_cast<HnswIndex*>(index_.get());
  size_t upserts = 0;
  for (const WalOp& op : ops) upserts += op.kind == WalOp::Kind::kUpsert;
  if (hnsw != nullptr && (upserts >= kParallelBatch || !hnsw->trained()) && upserts == ops.size()) {
    // Big batches insert in parallel; an untrained SQ8 index trains on its first batch.
    std::vector<uint64_t> ids;
    std::vector<float> rows;
    ids.reserve(ops.size());
    rows.reserve(ops.size() * settings_.dim);
    for (const WalOp& op : ops) {
      ids.push_back(op.id);
      rows.insert(rows.end(), op.vector.begin(), op.vector.end());
    }
    const size_t threads = std::max<size_t>(1, std::min<size_t>(4, std::thread::hardware_concurrency()));
    auto st = hnsw->AddBatch(ids, rows, threads);
    if (!st.ok()) return absl::InternalError(fmt::format("collection '{}': {}", settings_.name, std::string(st.message())));
  } else {
    for (const WalOp& op : ops) {
      if (op.kind == WalOp::Kind::kUpsert) {
        auto st = index_->Add(op.id, op.vector);
        if (!st.ok()) return absl::InternalError(fmt::format("collection '{}': {}", settings_.name, std::string(st.message())));
      } else if (index_->Contains(op.id)) {
        auto st = index_->Remove(op.id);
        if (!st.ok()) return absl::InternalError(fmt::format("collection '{}': {}", settings_.name, std::string(st.message())));
      }
    }
  }
  for (const WalOp& op : ops) {
    if (op.kind == WalOp::Kind::kUpsert) {
      attributes_.Put(op.id, op.attributes);
    } else {
      attributes_.Erase(op.id);
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::ApplyToText(uint64_t seq, const std::vector<WalOp>& ops) {
  std::vector<TextChange> changes;
  changes.reserve(ops.size());
  for (const WalOp& op : ops) changes.push_back({op.id, op.kind == WalOp::Kind::kUpsert ? op.text : std::nullopt});
  return text_->Apply(seq, changes);
}

absl::Status Collection::Commit(std::vector<WalOp> ops) {
  CAIRN_RETURN_IF_ERROR(CheckNotDropped());
  if (ops.empty()) return absl::OkStatus();
  const uint64_t seq = last_seq_ + 1;
  // Durable first: once the record is in the log the batch is acknowledged; applying it
  // below cannot fail on input (Prepare validated everything the index checks).
  CAIRN_RETURN_IF_ERROR(wal_->Append(EncodeWalRecord(seq, ops)));
  last_seq_ = seq;
  auto st = ApplyToMemory(ops);
  if (st.ok()) st = ApplyToText(seq, ops);
  if (!st.ok()) {
    spdlog::error("collection '{}': batch {} is in the WAL but applying it failed: {}", settings_.name, seq,
                  std::string(st.message()));
    return absl::InternalError(fmt::format(
        "batch {} is logged and will be applied when collection '{}' is reopened, but applying it now failed: {}",
        seq, settings_.name, std::string(st.message())));
  }
  if (wal_->size() >= options_.snapshot_wal_bytes) {
    auto snap = SnapshotLocked();
    if (!snap.ok()) spdlog::warn("collection '{}': automatic snapshot failed: {}", settings_.name, std::string(snap.message()));
  }
  return absl::OkStatus();
}

absl::Status Collection::Upsert(std::span<const Point> points) {
  // Validation and embedding run outside the write lock: they only read settings.
  CAIRN_ASSIGN_OR_RETURN(std::vector<WalOp> ops, Prepare(points));
  std::lock_guard lock(write_mu_);
  return Commit(std::move(ops));
}

absl::Status Collection::Delete(std::span<const uint64_t> ids) {
  std::lock_guard lock(write_mu_);
  std::vector<WalOp> ops;
  absl::flat_hash_set<uint64_t> seen;
  {
    auto state = ReadLock();
    for (uint64_t id : ids) {
      if (!seen.insert(id).second) continue;
      if (attributes_.Find(id) == nullptr) {
        return absl::NotFoundError(fmt::format("collection '{}' has no point {}", settings_.name, id));
      }
      WalOp op;
      op.kind = WalOp::Kind::kDelete;
      op.id = id;
      ops.push_back(std::move(op));
    }
  }
  return Commit(std::move(ops));
}

absl::Status Collection::Flush() {
  std::lock_guard lock(write_mu_);
  return wal_->Sync();
}

absl::Status Collection::Snapshot() {
  std::lock_guard lock(write_mu_);
  CAIRN_RETURN_IF_ERROR(CheckNotDropped());
  return SnapshotLocked();
}

absl::Status Collection::SnapshotLocked() {
  // Text first: after this checkpoint the text index durably holds every batch up to
  // last_seq_, so the WAL records may go once the snapshot is in place.
  CAIRN_RETURN_IF_ERROR(text_->Checkpoint());
  auto state = ReadLock();
  std::vector<uint64_t> ids;
  ids.reserve(attributes_.size());
  attributes_.ForEach([&](uint64_t id, const Attributes&) { ids.push_back(id); });
  std::sort(ids.begin(), ids.end());
  const uint64_t seq = last_seq_;
  auto* hnsw = dynamic_cast<HnswIndex*>(index_.get());
  SnapshotHeader h;
  h.seq = seq;
  h.dim = static_cast<uint32_t>(settings_.dim);
  h.metric = settings_.metric;
  h.vectors_inline = hnsw == nullptr;
  if (hnsw != nullptr) {
    CAIRN_RETURN_IF_ERROR(hnsw->Save((fs::path(dir_) / IndexFileName(seq)).string()));
  }
  auto source = [&](size_t i, std::span<float> vec, const Attributes** attrs) -> absl::Status {
    *attrs = attributes_.Find(ids[i]);
    if (!vec.empty()) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<float> v, index_->Get(ids[i]));
      if (v.size() != vec.size()) return absl::InternalError("index returned a vector of the wrong size");
      std::copy(v.begin(), v.end(), vec.begin());
    }
    return absl::OkStatus();
  };
  CAIRN_RETURN_IF_ERROR(WriteSnapshot((fs::path(dir_) / kSnapshotFile).string(), h, ids, source));
  // The snapshot is durable: the old index file and the WAL's records are redundant.
  std::error_code ec;
  if (snapshot_seq_ != seq) fs::remove(fs::path(dir_) / IndexFileName(snapshot_seq_), ec);
  snapshot_seq_ = seq;
  return wal_->Reset();
}

// ---------------------------------------------------------------------------------
// Reads

size_t Collection::Count() const {
  auto state = ReadLock();
  return attributes_.size();
}

absl::StatusOr<Point> Collection::Get(uint64_t id) const {
  Point p;
  p.id = id;
  {
    auto state = ReadLock();
    const Attributes* a = attributes_.Find(id);
    if (a == nullptr) return absl::NotFoundError(fmt::format("collection '{}' has no point {}", settings_.name, id));
    p.attributes = *a;
    CAIRN_ASSIGN_OR_RETURN(p.vector, index_->Get(id));
  }
  CAIRN_ASSIGN_OR_RETURN(p.text, text_->Get(id));
  return p;
}

absl::StatusOr<std::vector<SearchHit>> Collection::Search(const SearchRequest& req) const {
  if (req.k == 0 || req.k > kMaxK) {
    return absl::InvalidArgumentError(fmt::format("k must be in 1..{}, got {}", kMaxK, req.k));
  }
  if (!std::isfinite(req.vector_weight) || !std::isfinite(req.text_weight) || req.vector_weight < 0 ||
      req.text_weight < 0) {
    return absl::InvalidArgumentError("vector_weight and text_weight must be finite and >= 0");
  }
  const bool has_vector = !req.vector.empty();
  const bool has_text = req.text.has_value() && !req.text->empty();
  if (!has_vector && !has_text) return absl::InvalidArgumentError("a search needs a vector or a text");
  if (has_vector) CAIRN_RETURN_IF_ERROR(CheckVector(req.vector, settings_, "query"));
  const bool text_side = has_text && req.text_weight > 0;
  bool vector_side = req.vector_weight > 0 && (has_vector || (has_text && embedder_ != nullptr));
  std::vector<float> query = req.vector;
  if (vector_side && !has_vector) {
    query.resize(settings_.dim);
    if (!embedder_->Embed(*req.text, query).ok()) {
      vector_side = false;  // no words to embed: the text side alone decides (and finds nothing)
    }
  }
  if (!vector_side && !text_side) {
    return absl::InvalidArgumentError(fmt::format(
        "nothing to search with: give a vector, or a text with text_weight > 0{}",
        embedder_ ? "" : fmt::format(" (collection '{}' has no embedder to embed text)", settings_.name)));
  }
  const bool fused = vector_side && text_side;
  const size_t depth = fused ? std::max(req.k * kFusionDepthFactor, kFusionMinDepth) : req.k;

  auto state = ReadLock();
  std::unique_ptr<Filter> filter;
  if (req.filter) filter = attributes_.Bind(*req.filter);
  std::vector<Neighbor> neighbors;
  std::vector<TextHit> text_hits;
  if (vector_side) {
    SearchParams params;
    params.k = depth;
    params.ef = req.ef != 0 ? std::max(req.ef, depth) : (settings_.index == IndexKind::kFlat ? 0 : std::max(settings_.hnsw.ef_search, depth));
    params.filter = filter.get();
    CAIRN_ASSIGN_OR_RETURN(neighbors, index_->Search(query, params));
  }
  if (text_side) {
    CAIRN_ASSIGN_OR_RETURN(text_hits, text_->Search(*req.text, depth, filter.get()));
  }

  std::vector<SearchHit> hits;
  absl::flat_hash_map<uint64_t, float> distance_of;
  absl::flat_hash_map<uint64_t, double> bm25_of;
  for (const Neighbor& n : neighbors) distance_of.emplace(n.id, n.distance);
  for (const TextHit& t : text_hits) bm25_of.emplace(t.id, t.score);
  if (fused) {
    RankedList lists[2];
    lists[0].weight = req.vector_weight;
    for (const Neighbor& n : neighbors) lists[0].ids.push_back(n.id);
    lists[1].weight = req.text_weight;
    for (const TextHit& t : text_hits) lists[1].ids.push_back(t.id);
    for (const FusedHit& f : FuseReciprocalRank(lists, req.k)) hits.push_back({.id = f.id, .score = f.score});
  } else if (vector_side) {
    for (size_t i = 0; i < neighbors.size() && i < req.k; ++i) {
      hits.push_back({.id = neighbors[i].id, .score = ScoreFromDistance(settings_.metric, neighbors[i].distance)});
    }
  } else {
    for (size_t i = 0; i < text_hits.size() && i < req.k; ++i) {
      hits.push_back({.id = text_hits[i].id, .score = text_hits[i].score});
    }
  }
  for (SearchHit& h : hits) {
    if (auto it = distance_of.find(h.id); it != distance_of.end()) h.distance = it->second;
    if (auto it = bm25_of.find(h.id); it != bm25_of.end()) h.bm25 = it->second;
    if (const Attributes* a = attributes_.Find(h.id)) h.attributes = *a;
    CAIRN_ASSIGN_OR_RETURN(h.text, text_->Get(h.id));
    if (req.with_vectors) {
      CAIRN_ASSIGN_OR_RETURN(h.vector, index_->Get(h.id));
    }
  }
  return hits;
}

// ---------------------------------------------------------------------------------
// CollectionStore

absl::StatusOr<std::unique_ptr<CollectionStore>> CollectionStore::Open(const std::string& data_dir,
                                                                       const CollectionOptions& options) {
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return absl::InternalError(fmt::format("cannot create data directory {}: {}", data_dir, std::string(ec.message())));
  std::unique_ptr<CollectionStore> store(new CollectionStore(data_dir, options));
  for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory()) continue;
    if (name.starts_with(".")) {
      fs::remove_all(entry.path(), ec);  // a Drop interrupted by a crash
      continue;
    }
    if (!fs::exists(entry.path() / kSettingsFile)) {
      spdlog::warn("{}: no {}; not a collection, skipped", entry.path().string(), kSettingsFile);
      continue;
    }
    auto c = Collection::Open(entry.path().string(), options);
    if (!c.ok()) {
      return absl::Status(c.status().code(), fmt::format("collection '{}': {}", name, std::string(c.status().message())));
    }
    if ((*c)->name() != name) {
      return absl::DataLossError(fmt::format("{}: settings name '{}' differs from the directory name",
                                             entry.path().string(), (*c)->name()));
    }
    store->collections_.emplace(name, std::shared_ptr<Collection>(std::move(*c)));
  }
  if (ec) return absl::InternalError(fmt::format("cannot list {}: {}", data_dir, std::string(ec.message())));
  return store;
}

absl::StatusOr<std::shared_ptr<Collection>> CollectionStore::Create(const CollectionSettings& settings) {
  CAIRN_RETURN_IF_ERROR(settings.Validate());
  std::lock_guard lock(mu_);
  if (collections_.contains(settings.name)) {
    return absl::AlreadyExistsError(fmt::format("collection '{}' already exists", settings.name));
  }
  CAIRN_ASSIGN_OR_RETURN(auto c, Collection::Create((fs::path(data_dir_) / settings.name).string(), settings, options_));
  std::shared_ptr<Collection> shared(std::move(c));
  collections_.emplace(settings.name, shared);
  return shared;
}

absl::StatusOr<std::shared_ptr<Collection>> CollectionStore::Get(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    return absl::NotFoundError(fmt::format("no collection named '{}'", std::string(name)));
  }
  return it->second;
}

absl::Status CollectionStore::Drop(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    return absl::NotFoundError(fmt::format("no collection named '{}'", std::string(name)));
  }
  // Rename first (atomic): a crash mid-removal leaves a dot-directory that Open deletes,
  // never a half-removed collection.
  const fs::path dir = fs::path(data_dir_) / std::string(name);
  const fs::path trash = fs::path(data_dir_) / fmt::format(".dropped-{}", std::string(name));
  std::error_code ec;
  {
    // Wait for a running write to finish, then refuse later ones: none may land in a
    // directory that a new collection of the same name could take over.
    std::lock_guard writes(it->second->write_mu_);
    it->second->dropped_ = true;
  }
  fs::remove_all(trash, ec);
  fs::rename(dir, trash, ec);
  if (ec) return absl::InternalError(fmt::format("cannot drop {}: {}", dir.string(), std::string(ec.message())));
  collections_.erase(it);
  CAIRN_RETURN_IF_ERROR(SyncDirectory(data_dir_));
  fs::remove_all(trash, ec);
  return absl::OkStatus();
}

std::vector<CollectionSettings> CollectionStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<CollectionSettings> out;
  for (const auto& [name, c] : collections_) out.push_back(c->settings());
  return out;
}

}  // namespace cairn::vector
