// Vector quantizers used by the indexes: SQ8 (one byte per dimension) and PQ.
//
// SQ8: per-dimension affine code x_i ≈ lo_i + code_i * step_i, code in 0..255,
// lo/step trained from a sample (min/max per dimension, slightly widened; values
// outside are clamped). Distances from a float query to a code are computed
// without decoding: the query is mapped once to code units (`PrepareQuery`) and
// each code costs one f32 x u8 kernel call (distance.h).
//
// PQ: the vector is cut into `m` sub-vectors, each replaced by the index of its
// nearest of 2^nbits (nbits <= 8) centroids trained by k-means; distances use a
// per-query lookup table (asymmetric distance computation).
//
// Quantizers are immutable after training and thread-safe to use.
//
// Training refuses non-finite values and malformed shapes with InvalidArgument.
// Serialize writes a versioned, checksummed blob (base/codec.h, magic "CSQ8" /
// "CPQ8"); Deserialize refuses truncated, corrupted or inconsistent blobs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/vector/index.h"

namespace cairn::vector {

class Sq8Quantizer {
 public:
  // `data` is n x dim row-major (n >= 1). For kCosine the caller passes normalized rows.
  static absl::StatusOr<Sq8Quantizer> Train(std::span<const float> data, size_t dim);

  size_t dim() const { return lo_.size(); }
  size_t code_size() const { return lo_.size(); }  // bytes per vector
  // The trained grid: x_i ~ lo_i + code_i * step_i.
  std::span<const float> lo() const { return lo_; }
  std::span<const float> step() const { return step_; }
  // Values are clamped into the trained range; inside it the reconstruction
  // error is at most step_i / 2 per dimension.
  void Encode(const float* x, uint8_t* code) const;
  void Decode(const uint8_t* code, float* x) const;

  // Per-query state; reuse one per thread to avoid allocation.
  struct Query {
    Metric metric = Metric::kL2;
    std::vector<float> q;   // query in code units (L2) or q_i*step_i (IP/cosine)
    float bias = 0;         // constant term added to the kernel result
  };
  // For kCosine the query is normalized here (a zero query is left as is); the
  // distance is then 1 - <q, decoded code>, assuming codes of normalized vectors.
  void PrepareQuery(const float* query, Metric metric, Query* out) const;
  // Same scale as index.h distances (squared L2, or 1 - dot), computed against the
  // decoded vector without decoding it.
  float Distance(const Query& q, const uint8_t* code) const;

  std::string Serialize() const;
  static absl::StatusOr<Sq8Quantizer> Deserialize(std::string_view bytes);

 private:
  std::vector<float> lo_, step_, w_;  // w = step^2
};

class PqQuantizer {
 public:
  // m must divide dim; nbits in 1..8; n >= 2^nbits training rows.
  static absl::StatusOr<PqQuantizer> Train(std::span<const float> data, size_t dim, size_t m,
                                           size_t nbits, uint64_t seed = 1);
  size_t dim() const { return dim_; }
  size_t code_size() const { return m_; }  // one byte per sub-vector
  size_t nbits() const { return nbits_; }
  size_t centroids_per_subspace() const { return size_t{1} << nbits_; }
  // m x 2^nbits x (dim/m) floats.
  std::span<const float> centroids() const { return centroids_; }
  // k-means (Lloyd) per sub-space, seeded by `seed`: at most kMaxTrainIterations
  // passes over at most kMaxTrainRowsPerCentroid * 2^nbits rows (sampled).
  static constexpr size_t kMaxTrainIterations = 20;
  static constexpr size_t kMaxTrainRowsPerCentroid = 256;
  void Encode(const float* x, uint8_t* code) const;
  void Decode(const uint8_t* code, float* x) const;

  struct Query {
    Metric metric = Metric::kL2;
    std::vector<float> table;  // m x 2^nbits
  };
  // kL2: table = squared distance per sub-vector; kInnerProduct / kCosine: dot per
  // sub-vector (cosine normalizes the query first). Distance = sum (L2) or 1 - sum.
  void PrepareQuery(const float* query, Metric metric, Query* out) const;
  float Distance(const Query& q, const uint8_t* code) const;

  std::string Serialize() const;
  static absl::StatusOr<PqQuantizer> Deserialize(std::string_view bytes);

 private:
  size_t dim_ = 0, m_ = 0, nbits_ = 0;
  std::vector<float> centroids_;  // m x 2^nbits x (dim/m)
};

}  // namespace cairn::vector
