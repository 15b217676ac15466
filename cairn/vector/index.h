// cairn/vector — approximate nearest-neighbour search for RAG and agent memory.
//
// Contract shared by every index kind (flat, HNSW, quantized HNSW):
//  * Vectors are float32 of a fixed dimension, named by a caller-chosen 64-bit id.
//    `Add` with an id that is already present replaces its vector (upsert).
//  * Distances: smaller is closer. kL2 = squared Euclidean distance; kInnerProduct =
//    1 - <q, v>; kCosine = 1 - cos(q, v) (vectors and queries are normalized on the
//    way in, so a zero vector is refused for cosine).
//  * `Search` returns at most k neighbours, closest first, ties broken by smaller id.
//    A `Filter` restricts results to the ids it allows; indexes apply it during the
//    search (not afterwards), so k results come back when k matching vectors exist.
//  * Thread-safety: every method may be called from any thread at any time.
//    Searches never block each other; writers may briefly lock the nodes they touch.
//  * Errors (wrong dimension, non-finite values, unknown id) come back as Status;
//    nothing asserts on caller input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn::vector {

enum class Metric : uint8_t { kL2 = 0, kInnerProduct = 1, kCosine = 2 };

std::string_view MetricName(Metric m);                       // "l2", "ip", "cosine"
absl::StatusOr<Metric> ParseMetric(std::string_view name);   // accepts the names above

struct Neighbor {
  uint64_t id = 0;
  float distance = 0;
  friend bool operator==(const Neighbor&, const Neighbor&) = default;
};

// Which ids a search may return. Implementations must be cheap and thread-safe
// (called concurrently, many times per search).
class Filter {
 public:
  virtual ~Filter() = default;
  virtual bool Allows(uint64_t id) const = 0;
  // Optional hints for the search planner (an attribute index can answer them):
  // the fraction of ids allowed, in [0, 1], or a negative value when unknown ...
  virtual double EstimatedSelectivity() const { return -1; }
  // ... and the allowed ids themselves, when they can be listed cheaply (return
  // false when not). With both, a very selective filter is answered by an exact
  // search over the allowed ids instead of a graph traversal.
  virtual bool ListAllowed(std::vector<uint64_t>* ids) const {
    (void)ids;
    return false;
  }
};

struct SearchParams {
  size_t k = 10;
  size_t ef = 0;                    // HNSW candidate list size; 0 = the index default
  const Filter* filter = nullptr;   // nullptr = every id
};

class Index {
 public:
  virtual ~Index() = default;

  virtual size_t dim() const = 0;
  virtual Metric metric() const = 0;
  virtual size_t size() const = 0;          // live vectors
  virtual size_t MemoryBytes() const = 0;   // bytes held (vectors, codes, graph, maps)

  // Insert or replace. `v.size()` must equal dim(); values must be finite.
  [[nodiscard]] virtual absl::Status Add(uint64_t id, std::span<const float> v) = 0;
  // NotFound when the id is absent.
  [[nodiscard]] virtual absl::Status Remove(uint64_t id) = 0;
  virtual bool Contains(uint64_t id) const = 0;
  // The stored vector (after normalization for cosine; decoded for quantized-only storage).
  virtual absl::StatusOr<std::vector<float>> Get(uint64_t id) const = 0;

  [[nodiscard]] virtual absl::StatusOr<std::vector<Neighbor>> Search(
      std::span<const float> query, const SearchParams& params) const = 0;
};

}  // namespace cairn::vector
