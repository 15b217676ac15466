#include "cairn/vector/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "cairn/base/codec.h"
#include "cairn/base/random.h"
#include "cairn/vector/distance.h"

namespace cairn::vector {
namespace {

constexpr uint32_t kSq8Magic = MakeMagic("CSQ8");
constexpr uint32_t kPqMagic = MakeMagic("CPQ8");
constexpr uint16_t kSq8Version = 1;
constexpr uint16_t kPqVersion = 1;
// A dimension beyond this is certainly a corrupt header, not a real embedding.
constexpr uint64_t kMaxDim = uint64_t{1} << 20;

absl::Status CheckShape(std::span<const float> data, size_t dim, std::string_view what) {
  if (dim == 0) return absl::InvalidArgumentError(fmt::format("{}: dimension must be >= 1", what));
  if (data.empty() || data.size() % dim != 0) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: training data has {} values, not a positive multiple of dimension {}", what,
        data.size(), dim));
  }
  for (size_t i = 0; i < data.size(); ++i) {
    if (!std::isfinite(data[i])) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: training row {} has a non-finite value at dimension {}", what, i / dim, i % dim));
    }
  }
  return absl::OkStatus();
}

// Scales `q` to unit length into `out` (a zero vector stays zero).
void Normalized(const float* q, size_t dim, float* out) {
  const float norm2 = Kernels().dot(q, q, dim);
  const float inv = norm2 > 0 ? 1.0f / std::sqrt(norm2) : 0.0f;
  for (size_t i = 0; i < dim; ++i) out[i] = norm2 > 0 ? q[i] * inv : q[i];
}

}  // namespace

// ---------------------------------------------------------------------------- SQ8

absl::StatusOr<Sq8Quantizer> Sq8Quantizer::Train(std::span<const float> data, size_t dim) {
  if (absl::Status s = CheckShape(data, dim, "SQ8 training"); !s.ok()) return s;
  const size_t n = data.size() / dim;
  std::vector<double> lo(dim, std::numeric_limits<double>::infinity());
  std::vector<double> hi(dim, -std::numeric_limits<double>::infinity());
  for (size_t r = 0; r < n; ++r) {
    const float* row = data.data() + r * dim;
    for (size_t i = 0; i < dim; ++i) {
      lo[i] = std::min(lo[i], double{row[i]});
      hi[i] = std::max(hi[i], double{row[i]});
    }
  }
  Sq8Quantizer q;
  q.lo_.resize(dim);
  q.step_.resize(dim);
  q.w_.resize(dim);
  for (size_t i = 0; i < dim; ++i) {
    // Widen by 1% of the range (half on each side) so values slightly outside the
    // sample still get distinct codes; a constant dimension gets a tiny range so
    // the step stays positive.
    double margin = (hi[i] - lo[i]) * 0.005;
    if (margin <= 0) margin = std::max(1e-6, std::fabs(lo[i]) * 1e-6);
    const double l = lo[i] - margin;
    const double step = (hi[i] + margin - l) / 255.0;
    if (!std::isfinite(static_cast<float>(l)) || !std::isfinite(static_cast<float>(step)) ||
        !(static_cast<float>(step) > 0)) {
      return absl::InvalidArgumentError(fmt::format(
          "SQ8 training: dimension {} spans [{}, {}], too wide for float codes", i, lo[i], hi[i]));
    }
    q.lo_[i] = static_cast<float>(l);
    q.step_[i] = static_cast<float>(step);
    q.w_[i] = q.step_[i] * q.step_[i];
  }
  return q;
}

void Sq8Quantizer::Encode(const float* x, uint8_t* code) const {
  const size_t d = dim();
  for (size_t i = 0; i < d; ++i) {
    float v = std::nearbyint((x[i] - lo_[i]) / step_[i]);
    // Written so that NaN maps to 0 instead of an undefined conversion.
    if (!(v > 0)) v = 0;
    if (v > 255) v = 255;
    code[i] = static_cast<uint8_t>(v);
  }
}

void Sq8Quantizer::Decode(const uint8_t* code, float* x) const {
  const size_t d = dim();
  for (size_t i = 0; i < d; ++i) x[i] = lo_[i] + static_cast<float>(code[i]) * step_[i];
}

// L2: |q - x|^2 = sum step_i^2 ((q_i - lo_i) / step_i - c_i)^2, so the query moves
// to code units once and each code costs one weighted f32 x u8 kernel call.
// IP: <q, x> = sum q_i lo_i + sum (q_i step_i) c_i: a constant plus an f32 x u8 dot.
void Sq8Quantizer::PrepareQuery(const float* query, Metric metric, Query* out) const {
  const size_t d = dim();
  out->metric = metric;
  out->q.resize(d);
  out->bias = 0;
  if (metric == Metric::kL2) {
    for (size_t i = 0; i < d; ++i) out->q[i] = (query[i] - lo_[i]) / step_[i];
    return;
  }
  const float* src = query;
  std::vector<float> unit;
  if (metric == Metric::kCosine) {
    unit.resize(d);
    Normalized(query, d, unit.data());
    src = unit.data();
  }
  double bias = 0;
  for (size_t i = 0; i < d; ++i) {
    bias += double{src[i]} * lo_[i];
    out->q[i] = src[i] * step_[i];
  }
  out->bias = static_cast<float>(bias);
}

float Sq8Quantizer::Distance(const Query& q, const uint8_t* code) const {
  const KernelTable& k = Kernels();
  if (q.metric == Metric::kL2) return k.l2sq_f32_u8(q.q.data(), code, w_.data(), dim());
  return 1.0f - (q.bias + k.dot_f32_u8(q.q.data(), code, dim()));
}

std::string Sq8Quantizer::Serialize() const {
  ByteWriter w;
  w.U32(static_cast<uint32_t>(dim()));
  w.Array<float>(lo_);
  w.Array<float>(step_);
  return SealEnvelope(kSq8Magic, kSq8Version, w.data());
}

absl::StatusOr<Sq8Quantizer> Sq8Quantizer::Deserialize(std::string_view bytes) {
  absl::StatusOr<Envelope> env = OpenEnvelope(bytes, kSq8Magic, kSq8Version, "SQ8 quantizer");
  if (!env.ok()) return env.status();
  ByteReader r(env->payload, "SQ8 quantizer");
  const uint32_t dim = r.U32();
  if (r.ok() && (dim == 0 || dim > kMaxDim)) r.Fail(fmt::format("dimension {} out of range", dim));
  Sq8Quantizer q;
  r.Array(dim, &q.lo_);
  r.Array(dim, &q.step_);
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  q.w_.resize(dim);
  for (size_t i = 0; i < dim; ++i) {
    const float top = q.lo_[i] + 255.0f * q.step_[i];
    if (!std::isfinite(q.lo_[i]) || !std::isfinite(q.step_[i]) || !(q.step_[i] > 0) ||
        !std::isfinite(top)) {
      return absl::InvalidArgumentError(fmt::format(
          "SQ8 quantizer: dimension {} has an invalid range (lo {}, step {})", i, q.lo_[i],
          q.step_[i]));
    }
    q.w_[i] = q.step_[i] * q.step_[i];
  }
  return q;
}

// ---------------------------------------------------------------------------- PQ

namespace {

// Lloyd's k-means on `n` rows of `d` floats (row-major in x) into `k` centroids.
// Deterministic for a seed: initial centroids are distinct random rows; an empty
// cluster takes the row farthest from its centroid, which splits the worst-fitted
// cluster instead of leaving a dead code.
void KMeans(const std::vector<float>& x, size_t n, size_t d, size_t k, size_t max_iter,
            SplitMix64& rng, float* centroids) {
  const KernelTable& kt = Kernels();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = 0; i < k; ++i) {
    std::swap(order[i], order[i + rng.Next() % (n - i)]);
    std::copy_n(x.data() + order[i] * d, d, centroids + i * d);
  }
  std::vector<uint32_t> assign(n, UINT32_MAX);
  std::vector<float> dist(n);
  std::vector<double> sum(k * d);
  std::vector<size_t> count(k);
  for (size_t iter = 0; iter < max_iter; ++iter) {
    bool changed = false;
    for (size_t p = 0; p < n; ++p) {
      const float* row = x.data() + p * d;
      uint32_t best = 0;
      float best_d = kt.l2sq(row, centroids, d);
      for (size_t c = 1; c < k; ++c) {
        const float dc = kt.l2sq(row, centroids + c * d, d);
        if (dc < best_d) best_d = dc, best = static_cast<uint32_t>(c);
      }
      changed |= assign[p] != best;
      assign[p] = best;
      dist[p] = best_d;
    }
    if (!changed) break;
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(count.begin(), count.end(), 0);
    for (size_t p = 0; p < n; ++p) {
      const float* row = x.data() + p * d;
      double* s = sum.data() + size_t{assign[p]} * d;
      for (size_t i = 0; i < d; ++i) s[i] += row[i];
      ++count[assign[p]];
    }
    for (size_t c = 0; c < k; ++c) {
      float* cen = centroids + c * d;
      if (count[c] > 0) {
        for (size_t i = 0; i < d; ++i) cen[i] = static_cast<float>(sum[c * d + i] / count[c]);
        continue;
      }
      const size_t far = static_cast<size_t>(std::max_element(dist.begin(), dist.end()) - dist.begin());
      std::copy_n(x.data() + far * d, d, cen);
      dist[far] = 0;
    }
  }
}

}  // namespace

absl::StatusOr<PqQuantizer> PqQuantizer::Train(std::span<const float> data, size_t dim, size_t m,
                                               size_t nbits, uint64_t seed) {
  if (absl::Status s = CheckShape(data, dim, "PQ training"); !s.ok()) return s;
  if (m == 0 || dim % m != 0) {
    return absl::InvalidArgumentError(
        fmt::format("PQ training: m = {} must be >= 1 and divide dimension {}", m, dim));
  }
  if (nbits < 1 || nbits > 8) {
    return absl::InvalidArgumentError(fmt::format("PQ training: nbits = {} not in 1..8", nbits));
  }
  const size_t n = data.size() / dim;
  const size_t ksub = size_t{1} << nbits;
  if (n < ksub) {
    return absl::InvalidArgumentError(fmt::format(
        "PQ training: {} rows for {} centroids per sub-space; need at least {}", n, ksub, ksub));
  }
  SplitMix64 rng(seed);
  // Bound the cost: k-means on a random sample of rows.
  std::vector<size_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  const size_t ns = std::min(n, kMaxTrainRowsPerCentroid * ksub);
  for (size_t i = 0; i < ns; ++i) std::swap(rows[i], rows[i + rng.Next() % (n - i)]);
  rows.resize(ns);
  std::sort(rows.begin(), rows.end());

  PqQuantizer q;
  q.dim_ = dim;
  q.m_ = m;
  q.nbits_ = nbits;
  const size_t dsub = dim / m;
  q.centroids_.resize(m * ksub * dsub);
  std::vector<float> sub(ns * dsub);
  for (size_t j = 0; j < m; ++j) {
    for (size_t r = 0; r < ns; ++r) {
      std::copy_n(data.data() + rows[r] * dim + j * dsub, dsub, sub.data() + r * dsub);
    }
    KMeans(sub, ns, dsub, ksub, kMaxTrainIterations, rng, q.centroids_.data() + j * ksub * dsub);
  }
  return q;
}

void PqQuantizer::Encode(const float* x, uint8_t* code) const {
  const KernelTable& k = Kernels();
  const size_t ksub = centroids_per_subspace(), dsub = dim_ / m_;
  for (size_t j = 0; j < m_; ++j) {
    const float* cen = centroids_.data() + j * ksub * dsub;
    const float* xs = x + j * dsub;
    size_t best = 0;
    float best_d = k.l2sq(xs, cen, dsub);
    for (size_t c = 1; c < ksub; ++c) {
      const float dc = k.l2sq(xs, cen + c * dsub, dsub);
      if (dc < best_d) best_d = dc, best = c;
    }
    code[j] = static_cast<uint8_t>(best);
  }
}

// Codes are read modulo 2^nbits, so a corrupt code cannot index past the tables.
void PqQuantizer::Decode(const uint8_t* code, float* x) const {
  const size_t ksub = centroids_per_subspace(), dsub = dim_ / m_;
  for (size_t j = 0; j < m_; ++j) {
    const size_t c = code[j] & (ksub - 1);
    std::copy_n(centroids_.data() + (j * ksub + c) * dsub, dsub, x + j * dsub);
  }
}

void PqQuantizer::PrepareQuery(const float* query, Metric metric, Query* out) const {
  const KernelTable& k = Kernels();
  const size_t ksub = centroids_per_subspace(), dsub = dim_ / m_;
  out->metric = metric;
  out->table.resize(m_ * ksub);
  std::vector<float> unit;
  if (metric == Metric::kCosine) {
    unit.resize(dim_);
    Normalized(query, dim_, unit.data());
    query = unit.data();
  }
  for (size_t j = 0; j < m_; ++j) {
    const float* qs = query + j * dsub;
    const float* cen = centroids_.data() + j * ksub * dsub;
    float* t = out->table.data() + j * ksub;
    for (size_t c = 0; c < ksub; ++c) {
      t[c] = metric == Metric::kL2 ? k.l2sq(qs, cen + c * dsub, dsub) : k.dot(qs, cen + c * dsub, dsub);
    }
  }
}

float PqQuantizer::Distance(const Query& q, const uint8_t* code) const {
  const size_t ksub = centroids_per_subspace();
  const float* t = q.table.data();
  float s = 0;
  for (size_t j = 0; j < m_; ++j, t += ksub) s += t[code[j] & (ksub - 1)];
  return q.metric == Metric::kL2 ? s : 1.0f - s;
}

std::string PqQuantizer::Serialize() const {
  ByteWriter w;
  w.U32(static_cast<uint32_t>(dim_));
  w.U32(static_cast<uint32_t>(m_));
  w.U8(static_cast<uint8_t>(nbits_));
  w.Array<float>(centroids_);
  return SealEnvelope(kPqMagic, kPqVersion, w.data());
}

absl::StatusOr<PqQuantizer> PqQuantizer::Deserialize(std::string_view bytes) {
  absl::StatusOr<Envelope> env = OpenEnvelope(bytes, kPqMagic, kPqVersion, "PQ quantizer");
  if (!env.ok()) return env.status();
  ByteReader r(env->payload, "PQ quantizer");
  const uint32_t dim = r.U32();
  const uint32_t m = r.U32();
  const uint8_t nbits = r.U8();
  if (r.ok()) {
    if (dim == 0 || dim > kMaxDim) {
      r.Fail(fmt::format("dimension {} out of range", dim));
    } else if (m == 0 || dim % m != 0) {
      r.Fail(fmt::format("m = {} does not divide dimension {}", m, dim));
    } else if (nbits < 1 || nbits > 8) {
      r.Fail(fmt::format("nbits = {} not in 1..8", nbits));
    }
  }
  PqQuantizer q;
  q.dim_ = dim;
  q.m_ = m;
  q.nbits_ = nbits;
  // m * 2^nbits * (dim / m) = 2^nbits * dim centroid values.
  if (r.ok()) r.Array(uint64_t{dim} << nbits, &q.centroids_);
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  for (size_t i = 0; i < q.centroids_.size(); ++i) {
    if (!std::isfinite(q.centroids_[i])) {
      return absl::InvalidArgumentError(
          fmt::format("PQ quantizer: centroid value {} is not finite", i));
    }
  }
  return q;
}

}  // namespace cairn::vector
