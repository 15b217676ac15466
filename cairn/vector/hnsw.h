// HNSW (hierarchical navigable small world) approximate nearest-neighbour index.
//
// Implements the Index contract of index.h (upsert by id, Remove, Contains, Get,
// Search with the filter applied during traversal, cosine normalization on the way
// in) plus a parallel bulk loader, compaction and an mmap-loaded file format.
//
// Storage (HnswOptions::storage):
//  * kFloat32: each node's float vector lives in the level-0 block right next to its
//    links, so one node's data is a few contiguous cache lines.
//  * kSq8: the level-0 block holds one byte per dimension (an Sq8Quantizer code,
//    quantize.h); the graph is traversed on codes and the best `rerank` candidates
//    are re-scored on full-precision vectors. Those full-precision vectors are NOT
//    kept in the process's anonymous memory: they are appended to a side file
//    (HnswOptions::sq8_vector_path, or an unlinked temporary file when empty) and read
//    back with pread for re-ranking, so they sit in the OS page cache, which the
//    kernel can evict under pressure; resident (anonymous) memory is ~1/4 of the float
//    index plus the graph. Save() copies the vectors into the index file; Open() of
//    an SQ8 file copies that section into a fresh side file (copy_file_range, a
//    kernel-side copy) so the opened index stays writable.
//    The quantizer must be trained before the first vector goes in: call
//    Train(sample) with representative rows, or let the first AddBatch() train on
//    its own rows. Add() on an untrained SQ8 index returns FailedPrecondition.
//
// Deletes really remove: Remove() unlinks the node, reconnects each former
// neighbour to good candidates among the removed node's neighbours (pruned with the
// HNSW heuristic) and moves the entry point if needed. The freed slot is reused by
// a later insert once no link can point at it: links into removed nodes from nodes
// that were not their neighbours are swept in one O(N·M) pass after every
// max(64, size()/16) removals (amortized O(M) per removal). Compact() sweeps,
// renumbers slots densely and releases the memory of removed nodes.
//
// Filtered search: SearchParams::filter is applied during the graph walk (nodes it
// rejects still route the search but never enter the results). When the filter
// reports its selectivity and can list its ids (index.h), the planner answers with
// an exact search over the listed ids whenever that is cheaper than the filtered
// walk (always under 2,000 matches; under ~3.6% selectivity at 1M points, ef 64),
// so very selective filters get exact results. The exact path looks ids up under
// a short mutex shared with inserts.
//
// Thread-safety: all methods may be called concurrently. Searches take no lock that
// another search holds exclusively (a shared lock on the storage, plus lock-free
// atomic reads of link lists), so they never block each other. Add/AddBatch lock
// single nodes briefly while relinking; growing the storage, Remove, Compact, Train
// and Save take the storage lock exclusively for their duration (searches wait for
// them; a waiting writer is not starved by a stream of searches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/vector/index.h"

namespace cairn::vector {

enum class HnswStorage : uint8_t { kFloat32 = 0, kSq8 = 1 };

struct HnswOptions {
  size_t dim = 0;                    // required, 1..65536
  Metric metric = Metric::kL2;
  size_t M = 16;                     // links per node on levels >= 1; level 0 keeps 2*M
  size_t ef_construction = 200;      // candidate list size while inserting
  size_t ef_search = 64;             // default SearchParams::ef
  HnswStorage storage = HnswStorage::kFloat32;
  // SQ8 only: candidates re-ranked on full-precision vectors per search
  // (0 = max(2 * k, 10)); each costs one pread of the vector file.
  size_t rerank = 0;
  // SQ8 only: file that holds the full-precision vectors (created/truncated).
  // Empty = an anonymous temporary file in $TMPDIR (unlinked at once).
  std::string sq8_vector_path;
  size_t initial_capacity = 1024;    // slots allocated up front (grows by doubling)
  uint64_t seed = 42;                // level generator
};

class HnswIndex : public Index {
 public:
  // InvalidArgument for dim == 0, M < 2 or M > 64, ef_construction == 0.
  static absl::StatusOr<std::unique_ptr<HnswIndex>> Create(const HnswOptions& options);

  // Loads a file written by Save(). The file is memory-mapped and checked (magic,
  // version, sizes, XXH3 checksum); corrupt or truncated files give InvalidArgument
  // naming the failed check, a missing file NotFound. The result is a normal,
  // writable index.
  static absl::StatusOr<std::unique_ptr<HnswIndex>> Open(const std::string& path);

  ~HnswIndex() override;
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;

  // --- Index ---
  size_t dim() const override;
  Metric metric() const override;
  size_t size() const override;
  // Anonymous memory held (blocks, upper links, maps, locks); for SQ8 excludes the
  // page-cache-resident full-precision vector file.
  size_t MemoryBytes() const override;
  absl::Status Add(uint64_t id, std::span<const float> v) override;
  absl::Status Remove(uint64_t id) override;
  bool Contains(uint64_t id) const override;
  absl::StatusOr<std::vector<float>> Get(uint64_t id) const override;
  absl::StatusOr<std::vector<Neighbor>> Search(std::span<const float> query,
                                               const SearchParams& params) const override;

  // --- HNSW specific ---
  const HnswOptions& options() const;
  // How many of `ids` are present: Contains for a whole list under one lock, with the
  // lookups overlapped (for checking an opened index against its collection's ids).
  size_t CountPresent(std::span<const uint64_t> ids) const;

  // SQ8: trains the quantizer on `sample` (n x dim rows, normalized here for cosine).
  // FailedPrecondition when vectors are already stored or storage is kFloat32.
  absl::Status Train(std::span<const float> sample);
  bool trained() const;

  // Inserts rows.size() / dim vectors (row i gets ids[i]) with `threads` worker
  // threads (0 = hardware concurrency). Upserts like Add. Validates every row before
  // inserting any. An untrained SQ8 index is first trained on (up to 100K of) these rows.
  absl::Status AddBatch(std::span<const uint64_t> ids, std::span<const float> rows,
                        size_t threads);

  // Renumbers live nodes densely, drops removed ones and shrinks the storage to fit.
  // Also re-attaches any live node that is no longer reachable from the entry point.
  absl::Status Compact();

  // Writes the index to `path` (atomically: a temporary file renamed into place).
  absl::Status Save(const std::string& path) const;

  // Diagnostics for tests: live nodes reachable from the entry point over level 0.
  size_t CountReachable() const;
  // Slots allocated (live + removed-not-yet-reused).
  size_t capacity() const;

  class Impl;
  // Internal (used by the file decoder).
  static std::unique_ptr<HnswIndex> FromImpl(std::unique_ptr<Impl> impl);

 private:
  explicit HnswIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::vector
