// Named, durable vector collections: points (id, vector, attributes, optional text),
// filtered vector search, BM25 text search and hybrid (reciprocal-rank fused) search.
//
// On disk a collection is one directory under the store's data directory:
//   settings.json   the CollectionSettings (written once, atomically)
//   wal.log         write-ahead log: one checksummed record per acknowledged batch
//   points.snap     snapshot: ids, vectors, attributes, the last WAL sequence it holds
//   text.db         SQLite FTS5 table of the text payloads (+ the last WAL sequence applied)
// A write is acknowledged (Upsert/Delete return OK) only after its WAL record is written
// and, with FsyncPolicy::kAlways (the default), fsync'ed: it survives kill -9 and power
// loss. Open loads the snapshot (mmap) and replays the WAL records after it. A torn last
// WAL record (crash mid-write) is cut off with a warning; any other damage (bad checksum
// in the middle, corrupt snapshot) fails Open with an error naming the file and offset.
//
// Batches are atomic: every point is validated (and its text embedded) before anything is
// logged or applied; a batch that fails validation changes nothing.
//
// Thread-safety: Collection and CollectionStore are thread-safe. Searches run
// concurrently with each other; writes (Upsert/Delete/Snapshot) are serialized and wait
// for running searches to finish their read of the attributes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/vector/filter.h"
#include "cairn/vector/index.h"

namespace cairn::vector {

class Embedder;
class TextIndex;
class WalWriter;
struct WalOp;

enum class IndexKind : uint8_t { kFlat = 0, kHnsw = 1, kHnswSq8 = 2 };
std::string_view IndexKindName(IndexKind kind);                  // "flat", "hnsw", "hnsw_sq8"
absl::StatusOr<IndexKind> ParseIndexKind(std::string_view name);

struct HnswSettings {
  size_t m = 16;                 // links per node (layer 0 has 2*m)
  size_t ef_construction = 200;
  size_t ef_search = 64;         // default ef for searches that do not set one
};

struct CollectionSettings {
  std::string name;              // 1..64 chars of [A-Za-z0-9_-], starting with a letter or digit
  size_t dim = 0;                // 1..65536
  Metric metric = Metric::kCosine;
  IndexKind index = IndexKind::kHnsw;
  HnswSettings hnsw;
  std::string embedder = "hash"; // "hash" (HashingEmbedder of `dim`) or "none"

  absl::Status Validate() const;
};
// JSON form used by settings.json and the HTTP API:
// {"name":"docs","dim":128,"metric":"cosine","index":"hnsw",
//  "hnsw":{"m":16,"ef_construction":200,"ef_search":64},"embedder":"hash"}
// Missing optional keys take the defaults above; unknown keys are errors.
std::string SettingsToJson(const CollectionSettings& settings);
absl::StatusOr<CollectionSettings> SettingsFromJson(std::string_view json_text);

struct Point {
  uint64_t id = 0;
  // May be empty when `text` is set and the collection has an embedder: the text is
  // embedded. Otherwise it must have dim() finite values (non-zero for cosine).
  std::vector<float> vector;
  Attributes attributes;
  std::optional<std::string> text;   // indexed for BM25 when present
};

struct SearchRequest {
  std::vector<float> vector;         // the query vector, or empty
  std::optional<std::string> text;   // a text query, or none
  size_t k = 10;                     // 1..10000
  size_t ef = 0;                     // HNSW ef; 0 = the collection's ef_search
  std::optional<Predicate> filter;   // restricts every side of the search
  // Hybrid weights for reciprocal-rank fusion: score = sum_side w / (60 + rank).
  // Which sides run: the vector side when `vector` is given, or when only `text` is
  // given and the collection has an embedder (the text is embedded); the BM25 side
  // when `text` is given. A side with weight 0 is skipped; at least one must run.
  double vector_weight = 1.0;
  double text_weight = 1.0;
  bool with_vectors = false;         // fill SearchHit::vector
};

struct SearchHit {
  uint64_t id = 0;
  // Higher is better. Vector side only: similarity (1 - distance for ip/cosine,
  // -distance for l2). BM25 side only: the BM25 score. Both: the fused RRF score.
  double score = 0;
  std::optional<float> distance;     // set when the vector side found the point
  std::optional<double> bm25;        // set when the text side found the point
  std::optional<std::string> text;
  Attributes attributes;
  std::vector<float> vector;         // only with SearchRequest::with_vectors
};

enum class FsyncPolicy : uint8_t {
  kAlways = 0,  // fsync the WAL before acknowledging every batch (default)
  kNever = 1,   // leave it to the OS: survives kill -9, not power loss
};

// Builds the index for a collection. The default creates FlatIndex / HnswIndex per the
// settings; tests may substitute their own.
using IndexFactory = std::function<absl::StatusOr<std::unique_ptr<Index>>(const CollectionSettings&)>;

struct CollectionOptions {
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  // Take a snapshot (and start a fresh WAL) once the WAL holds this many bytes.
  uint64_t snapshot_wal_bytes = 64ull << 20;
  IndexFactory index_factory;        // empty = the default
};

class Collection {
 public:
  // Creates a new collection in `dir` (which must not exist yet).
  static absl::StatusOr<std::unique_ptr<Collection>> Create(const std::string& dir,
                                                            const CollectionSettings& settings,
                                                            const CollectionOptions& options = {});
  // Opens an existing collection directory, recovering from its snapshot and WAL.
  static absl::StatusOr<std::unique_ptr<Collection>> Open(const std::string& dir,
                                                          const CollectionOptions& options = {});
  ~Collection();
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;

  const CollectionSettings& settings() const { return settings_; }
  const std::string& name() const { return settings_.name; }
  const std::string& dir() const { return dir_; }

  // Inserts or replaces the points, all or nothing (see the file comment). Ids must be
  // distinct within a batch.
  [[nodiscard]] absl::Status Upsert(std::span<const Point> points);
  // Removes the points; NotFound (and nothing removed) when any id is absent.
  [[nodiscard]] absl::Status Delete(std::span<const uint64_t> ids);
  [[nodiscard]] absl::Status Delete(uint64_t id) { return Delete(std::span<const uint64_t>(&id, 1)); }
  // The point (vector as stored: normalized for cosine). NotFound when absent.
  absl::StatusOr<Point> Get(uint64_t id) const;
  absl::StatusOr<std::vector<SearchHit>> Search(const SearchRequest& request) const;
  size_t Count() const;

  // Writes a snapshot holding everything acknowledged so far and starts a fresh WAL.
  [[nodiscard]] absl::Status Snapshot();
  // Forces buffered WAL bytes to disk (useful with FsyncPolicy::kNever).
  [[nodiscard]] absl::Status Flush();

  // Recovery facts from Open, for logs and tests.
  struct OpenStats {
    uint64_t snapshot_seq = 0;       // last WAL sequence in the snapshot
    uint64_t replayed_records = 0;   // WAL records applied after it
    uint64_t truncated_bytes = 0;    // torn tail cut off the WAL
    double seconds = 0;              // wall time of Open
  };
  const OpenStats& open_stats() const { return open_stats_; }

 private:
  Collection(std::string dir, CollectionSettings settings, CollectionOptions options);
  absl::Status Init();
  absl::Status LoadSnapshot();
  absl::Status ReplayWal();
  absl::StatusOr<std::vector<WalOp>> Prepare(std::span<const Point> points) const;
  absl::Status Commit(std::vector<WalOp> ops);
  absl::Status ApplyToMemory(const std::vector<WalOp>& ops);
  absl::Status ApplyToText(uint64_t seq, const std::vector<WalOp>& ops);
  absl::Status SnapshotLocked();
  friend class CollectionStore;
  absl::Status CheckNotDropped() const;

  std::string dir_;
  CollectionSettings settings_;
  CollectionOptions options_;
  std::unique_ptr<Embedder> embedder_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<TextIndex> text_;
  std::unique_ptr<WalWriter> wal_;

  mutable std::mutex write_mu_;         // serializes writers (Upsert, Delete, Snapshot)
  mutable std::shared_mutex state_mu_;  // attributes_ vs. searches
  AttributeIndex attributes_;           // guarded by state_mu_
  uint64_t last_seq_ = 0;               // guarded by write_mu_
  uint64_t snapshot_seq_ = 0;           // guarded by write_mu_
  OpenStats open_stats_;
  std::atomic<bool> dropped_{false};    // set by CollectionStore::Drop: writes are refused
};

// All collections under one data directory (one subdirectory each).
class CollectionStore {
 public:
  // Opens every collection found in `data_dir` (created when missing).
  static absl::StatusOr<std::unique_ptr<CollectionStore>> Open(const std::string& data_dir,
                                                               const CollectionOptions& options = {});
  // AlreadyExists when the name is taken; InvalidArgument for bad settings.
  absl::StatusOr<std::shared_ptr<Collection>> Create(const CollectionSettings& settings);
  // NotFound when absent.
  absl::StatusOr<std::shared_ptr<Collection>> Get(std::string_view name) const;
  // Removes the collection and its files. Holders of the shared_ptr may keep searching
  // it until they let go; its writes fail with FailedPrecondition.
  absl::Status Drop(std::string_view name);
  // Sorted by name.
  std::vector<CollectionSettings> List() const;

 private:
  CollectionStore(std::string data_dir, CollectionOptions options)
      : data_dir_(std::move(data_dir)), options_(std::move(options)) {}
  std::string data_dir_;
  CollectionOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Collection>, std::less<>> collections_;  // guarded by mu_
};

}  // namespace cairn::vector
