// FlatIndex: exact (brute-force) nearest-neighbour search, and ExactKnn, the ground
// truth used by tests and benchmarks.
//
// FlatIndex implements the Index contract (index.h): upsert by id, Remove, Contains,
// Get, and Search that scans every stored vector with the dispatched distance
// kernels (distance.h), applying the Filter during the scan. For kCosine, vectors
// and queries are normalized on the way in and a zero vector is refused.
//
// Storage:
//  * kFloat32 — the vectors as given (normalized for cosine); distances are exact.
//  * kSq8 — one byte per dimension (quantize.h). SQ8 needs a trained quantizer:
//      - `Train(sample)` trains it explicitly (sample is n x dim row-major; for cosine
//        the rows are normalized first). An empty sample trains it from the vectors
//        present. Training again re-encodes every stored vector.
//      - Until then vectors are kept as float32 and searched exactly; the index trains
//        itself from the vectors present once `sq8_auto_train_size` of them have
//        been added (0 = only explicit Train; a failed automatic training is not
//        retried until an explicit Train).
//    After training, distances are SQ8 approximations and `Get` returns the decoded
//    vector.
//
// Adopt() takes a block of rows owned by someone else (a collection snapshot's
// copy-on-write mapping) as the first slots instead of copying it, so a large index
// opens without touching its vectors. Those rows are written only when their points
// are replaced or removed (a mapping's copy-on-write then copies just that page); new
// points go to owned memory after them. Their ids, sorted, are found by binary search;
// removing an adopted point moves the ids after it into the hash map once.
//
// Thread-safety: every method may be called concurrently. Searches take a shared
// lock and never block each other; Add/Remove/Train take an exclusive lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/vector/distance.h"
#include "cairn/vector/index.h"
#include "cairn/vector/quantize.h"

namespace cairn::vector {

enum class FlatStorage : uint8_t { kFloat32 = 0, kSq8 = 1 };

struct FlatOptions {
  size_t dim = 0;  // required, >= 1
  Metric metric = Metric::kL2;
  FlatStorage storage = FlatStorage::kFloat32;
  // kSq8 only: train automatically once this many vectors are present (0 = never).
  size_t sq8_auto_train_size = 1024;
};

class FlatIndex final : public Index {
 public:
  // InvalidArgument for dim == 0.
  static absl::StatusOr<std::unique_ptr<FlatIndex>> Create(const FlatOptions& options);

  size_t dim() const override { return options_.dim; }
  Metric metric() const override { return options_.metric; }
  FlatStorage storage() const { return options_.storage; }
  size_t size() const override;
  size_t MemoryBytes() const override;

  [[nodiscard]] absl::Status Add(uint64_t id, std::span<const float> v) override;
  // Inserts or replaces rows.size() / dim() vectors (row i gets ids[i]) under one
  // lock, with the storage reserved up front: the bulk path of loading a snapshot.
  // Every row is checked first; when one is bad nothing is added.
  [[nodiscard]] absl::Status AddBatch(std::span<const uint64_t> ids, std::span<const float> rows);
  // Makes `rows` (ids.size() x dim, row-major, finite, already normalized for cosine)
  // the index's first slots without copying them; `owner` keeps them alive and is
  // released with the index. `ids` strictly ascending. The rows are written in place
  // when their points are replaced or removed. FailedPrecondition unless the index is
  // empty and kFloat32; InvalidArgument for mismatched sizes or unsorted ids.
  [[nodiscard]] absl::Status Adopt(std::span<const uint64_t> ids, std::span<float> rows,
                                   std::shared_ptr<void> owner);
  [[nodiscard]] absl::Status Remove(uint64_t id) override;
  bool Contains(uint64_t id) const override;
  absl::StatusOr<std::vector<float>> Get(uint64_t id) const override;

  // Exact scan (SQ8 storage: over codes). params.ef is ignored.
  [[nodiscard]] absl::StatusOr<std::vector<Neighbor>> Search(
      std::span<const float> query, const SearchParams& params) const override;

  // Exact search restricted to `ids` (ids not present are skipped, duplicates count
  // once); at most k results, closest first, ties by smaller id.
  [[nodiscard]] absl::StatusOr<std::vector<Neighbor>> SearchAmong(
      std::span<const float> query, std::span<const uint64_t> ids, size_t k) const;

  // kSq8 only (FailedPrecondition otherwise): see the header comment.
  [[nodiscard]] absl::Status Train(std::span<const float> sample);
  // True for kFloat32, and for kSq8 once trained.
  bool trained() const;

  FlatIndex(const FlatIndex&) = delete;
  FlatIndex& operator=(const FlatIndex&) = delete;

 private:
  explicit FlatIndex(const FlatOptions& options) : options_(options) {}

  // Checks dim and finiteness, normalizes for cosine; writes the vector to use.
  absl::Status Prepare(std::span<const float> v, std::vector<float>* out) const;
  absl::Status TrainLocked(std::span<const float> sample) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  float DistanceToSlot(const KernelTable& k, const float* q, const Sq8Quantizer::Query* sq,
                       size_t slot) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static constexpr size_t kNoSlot = ~size_t{0};
  size_t FindSlot(uint64_t id) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Float row of a slot: adopted rows first, then floats_.
  float* Row(size_t slot) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return slot < base_n_ ? base_rows_ + slot * options_.dim
                          : const_cast<float*>(floats_.data()) + (slot - base_n_) * options_.dim;
  }
  // Rows owned by floats_ for `slots` slots in all.
  void ResizeOwned(size_t slots) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    floats_.resize((slots > base_n_ ? slots - base_n_ : 0) * options_.dim);
    if (slots < base_n_) base_n_ = slots;
  }

  const FlatOptions options_;
  mutable std::shared_mutex mu_;
  // Slot i holds ids_[i]; rows are either float32 (slots below base_n_ in the adopted
  // block, the rest in floats_) or SQ8 codes (codes_). The ids of slots below
  // sorted_n_ are ascending and found by binary search; the others are in slot_of_.
  std::vector<uint64_t> ids_ ABSL_GUARDED_BY(mu_);
  std::vector<float> floats_ ABSL_GUARDED_BY(mu_);
  std::vector<uint8_t> codes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint32_t> slot_of_ ABSL_GUARDED_BY(mu_);
  size_t sorted_n_ ABSL_GUARDED_BY(mu_) = 0;
  float* base_rows_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t base_n_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<void> base_owner_;
  std::optional<Sq8Quantizer> sq8_ ABSL_GUARDED_BY(mu_);
  bool auto_train_failed_ ABSL_GUARDED_BY(mu_) = false;
};

// Exact k nearest neighbours of each query among the rows of `base` (n x dim,
// row-major); ids are row numbers, distances as in index.h (cosine divides by both
// norms; a zero vector is at distance 1 from everything). Runs on `threads` threads
// (0 = 1), blocked over queries x base rows for cache reuse. Returns one list per
// query, closest first, ties by smaller row. dim must be >= 1 and divide both spans' sizes (programmer error).
std::vector<std::vector<Neighbor>> ExactKnn(std::span<const float> base, size_t dim,
                                            std::span<const float> queries, Metric metric,
                                            size_t k, size_t threads);

}  // namespace cairn::vector
