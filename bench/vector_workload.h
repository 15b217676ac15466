// bench/vector_workload.h — data for the vector benchmark and the `cairn vector`
// tools: a generator of realistic synthetic embeddings, readers and writers of the
// standard .fvecs/.ivecs/.bvecs files, readers of the formats `cairn vector build`
// accepts (.fvecs, .npy, CSV, JSON lines), exact ground truth with an on-disk
// cache, and recall.
//
// Generator model (deterministic by seed; see GenerateEmbeddings): `clusters`
// centres; each cluster owns a random `intrinsic_dim`-dimensional subspace of the
// full space; a point is centre + (Gaussian in that subspace, with decaying
// per-axis scales) + small isotropic noise, normalized for cosine. Cluster sizes
// are log-normal, so some clusters are dense and some sparse, as with real text
// embeddings. Queries come from the same model with a different stream, never
// from the base set.
//
// Every function is re-entrant; none keeps global state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/vector/index.h"

namespace cairn::bench {

// n x dim float32, row-major.
struct VectorSet {
  size_t n = 0;
  size_t dim = 0;
  std::vector<float> data;
  const float* row(size_t i) const { return data.data() + i * dim; }
  float* row(size_t i) { return data.data() + i * dim; }
};

struct EmbeddingOptions {
  size_t dim = 128;
  size_t clusters = 2000;      // cluster centres (capped at the number of points)
  size_t intrinsic_dim = 12;   // dimension of each cluster's subspace
  double spread = 0.55;        // within-cluster std-dev, relative to the centres' (per coordinate)
  double noise = 0.08;         // isotropic noise std-dev, relative to the centres'
  bool normalize = false;      // unit length (for cosine)
  uint64_t seed = 42;          // the model: centres, subspaces, cluster sizes
};

// The model is fixed by `options`; `stream` picks which points are drawn (0 = base
// set, 1 = queries, ...). Same (options, count, stream) -> same bytes.
VectorSet GenerateEmbeddings(const EmbeddingOptions& options, size_t count, uint64_t stream);

// .fvecs / .bvecs / .ivecs: per row a little-endian int32 dimension then that many
// float32 / uint8 / int32 values. `max_rows` = 0 reads all. Errors name the file, the
// row and what was wrong (truncated row, dimension change, empty file).
absl::StatusOr<VectorSet> ReadFvecs(const std::string& path, size_t max_rows = 0);
absl::StatusOr<VectorSet> ReadBvecs(const std::string& path, size_t max_rows = 0);
// .fvecs or .bvecs by extension.
absl::StatusOr<VectorSet> ReadVecs(const std::string& path, size_t max_rows = 0);
// Rows of neighbour ids; every row must have the same length.
absl::StatusOr<std::vector<std::vector<uint32_t>>> ReadIvecs(const std::string& path, size_t max_rows = 0);
absl::Status WriteFvecs(const std::string& path, const VectorSet& set);
absl::Status WriteIvecs(const std::string& path, const std::vector<std::vector<uint32_t>>& rows);

void NormalizeRows(VectorSet* set);  // rows of zero length are left as they are

// Exact k nearest base rows (ids = row numbers) of each query, closest first, ties by
// smaller id: vector::ExactKnn (flat.h) on `threads` threads.
// Distances as in cairn/vector/index.h (cosine: the caller passes normalized rows).
// When `allowed` is not empty only rows with allowed[id] != 0 are candidates.
std::vector<std::vector<uint32_t>> ExactGroundTruth(const VectorSet& base, const VectorSet& queries,
                                                    vector::Metric metric, size_t k, int threads,
                                                    std::span<const uint8_t> allowed = {});

// Key of a ground-truth cache file: a hash of the base and query bytes, the metric and k.
uint64_t GroundTruthKey(const VectorSet& base, const VectorSet& queries, vector::Metric metric, size_t k);

// ExactGroundTruth, cached in `cache_dir`/gt-<key>.ivecs (the directory is created;
// an unreadable or mismatching cache file is recomputed). `*cached` tells which.
absl::StatusOr<std::vector<std::vector<uint32_t>>> CachedGroundTruth(const VectorSet& base,
                                                                     const VectorSet& queries,
                                                                     vector::Metric metric, size_t k,
                                                                     int threads, const std::string& cache_dir,
                                                                     bool* cached = nullptr);

// recall@k of one result list against the true neighbours (first k of `truth`).
double RecallAtK(std::span<const uint64_t> found, std::span<const uint32_t> truth, size_t k);

// The benchmark's filter attribute: a pseudo-random value per id (deterministic by
// seed); an id passes the filter "attribute < selectivity * 2^32".
uint32_t FilterAttribute(uint64_t id, uint64_t seed);
std::vector<uint8_t> AllowedMask(size_t n, double selectivity, uint64_t seed);

// One input record of `cairn vector build`.
struct VectorRecord {
  uint64_t id = 0;
  std::vector<float> vector;
  std::string text;
  // Attributes as JSON text per name (string, number, bool or array of strings).
  std::map<std::string, std::string> attributes;
};

enum class RecordFormat { kAuto, kFvecs, kNpy, kCsv, kJsonLines };
absl::StatusOr<RecordFormat> ParseRecordFormat(const std::string& name);  // fvecs, npy, csv, jsonl
RecordFormat DetectRecordFormat(const std::string& path);                 // by extension; CSV otherwise

// Reads every record. Formats:
//   .fvecs          ids are row numbers;
//   .npy            float32 (little-endian), C order, 2-D; ids are row numbers;
//   CSV             "id,v1,...,vn" per line; a first line whose id is not an integer is a header;
//   JSON lines      {"id": <uint>, "vector": [...], "text": "...", "attributes": {...}}.
// Errors name the file and the line (text) or row (binary): "docs.csv:17: has 3 values,
// expected 128". `progress` (may be empty) is called now and then with the bytes read.
absl::StatusOr<std::vector<VectorRecord>> ReadRecords(const std::string& path, RecordFormat format,
                                                      const std::function<void(uint64_t)>& progress = {});

// Calls fn(i) for i in [0, n) on `threads` threads (dynamic chunks of 64); `progress`
// (may be empty) gets the count done now and then, from any of them.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn,
                 const std::function<void(size_t)>& progress);

// Parses "0.1, 0.2,0.3" into floats (a clear error names the bad value).
absl::StatusOr<std::vector<float>> ParseVectorText(const std::string& text);

}  // namespace cairn::bench
