#include "cairn/vector/flat.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cairn/vector/distance.h"

namespace cairn::vector {
namespace {

// Closest first; ties by smaller id.
bool Closer(const Neighbor& a, const Neighbor& b) {
  return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}

// The k best seen so far, as a max-heap on Closer (the worst on top), so a
// candidate costs one comparison unless it beats the current worst.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }
  // Worth calling Push only when this is true.
  bool Accepts(float d) const { return heap_.size() < k_ || d <= heap_.front().distance; }
  void Push(uint64_t id, float d) {
    const Neighbor n{id, d};
    if (heap_.size() < k_) {
      heap_.push_back(n);
      std::push_heap(heap_.begin(), heap_.end(), Closer);
    } else if (k_ > 0 && Closer(n, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Closer);
      heap_.back() = n;
      std::push_heap(heap_.begin(), heap_.end(), Closer);
    }
  }
  std::vector<Neighbor> Sorted() && {
    std::sort_heap(heap_.begin(), heap_.end(), Closer);
    return std::move(heap_);
  }

 private:
  size_t k_;
  std::vector<Neighbor> heap_;
};

// A filter this selective is answered from its id list rather than by a scan.
constexpr double kListFilterSelectivity = 0.05;

}  // namespace

absl::StatusOr<std::unique_ptr<FlatIndex>> FlatIndex::Create(const FlatOptions& options) {
  if (options.dim == 0) return absl::InvalidArgumentError("flat index: dimension must be >= 1");
  if (options.storage != FlatStorage::kFloat32 && options.storage != FlatStorage::kSq8) {
    return absl::InvalidArgumentError("flat index: unknown storage kind");
  }
  return std::unique_ptr<FlatIndex>(new FlatIndex(options));
}

size_t FlatIndex::size() const {
  std::shared_lock lock(mu_);
  return ids_.size();
}

size_t FlatIndex::MemoryBytes() const {
  std::shared_lock lock(mu_);
  size_t bytes = sizeof(*this) + ids_.capacity() * sizeof(uint64_t) +
                 floats_.capacity() * sizeof(float) + codes_.capacity();
  // flat_hash_map: one control byte plus one slot per bucket.
  bytes += slot_of_.capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
  if (sq8_) bytes += 3 * sq8_->dim() * sizeof(float);
  return bytes;
}

absl::Status FlatIndex::Prepare(std::span<const float> v, std::vector<float>* out) const {
  if (v.size() != options_.dim) {
    return absl::InvalidArgumentError(fmt::format(
        "vector has {} values; the flat index has dimension {}", v.size(), options_.dim));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(
          fmt::format("vector value {} at dimension {} is not finite", v[i], i));
    }
  }
  out->assign(v.begin(), v.end());
  if (options_.metric == Metric::kCosine) {
    // Accumulate in double so huge-but-finite values do not overflow to inf.
    double norm2 = 0;
    for (float x : v) norm2 += double{x} * x;
    if (!(norm2 > 0)) {
      return absl::InvalidArgumentError("a zero vector has no direction for the cosine metric");
    }
    const double inv = 1.0 / std::sqrt(norm2);
    for (float& x : *out) x = static_cast<float>(x * inv);
  }
  return absl::OkStatus();
}

absl::Status FlatIndex::Add(uint64_t id, std::span<const float> v) {
  std::vector<float> row;
  if (absl::Status s = Prepare(v, &row); !s.ok()) return s;
  std::unique_lock lock(mu_);
  const size_t dim = options_.dim;
  size_t slot = FindSlot(id);
  if (slot == kNoSlot) {
    if (ids_.size() >= UINT32_MAX) return absl::ResourceExhaustedError("flat index is full (2^32 - 1 vectors)");
    slot = ids_.size();
    slot_of_.emplace(id, static_cast<uint32_t>(slot));
    ids_.push_back(id);
    if (sq8_) {
      codes_.resize(codes_.size() + dim);
    } else {
      ResizeOwned(ids_.size());
    }
  }
  if (sq8_) {
    sq8_->Encode(row.data(), codes_.data() + slot * dim);
  } else {
    std::copy(row.begin(), row.end(), Row(slot));
  }
  if (options_.storage == FlatStorage::kSq8 && !sq8_ && !auto_train_failed_ &&
      options_.sq8_auto_train_size > 0 && ids_.size() >= options_.sq8_auto_train_size) {
    // The vector is stored either way; if training fails (a range too wide for
    // float codes) the index stays exact on floats until an explicit Train.
    if (absl::Status s = TrainLocked({}); !s.ok()) {
      auto_train_failed_ = true;
      spdlog::warn("flat index: SQ8 auto-training failed, keeping float32 rows: {}",
                   std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status FlatIndex::AddBatch(std::span<const uint64_t> ids, std::span<const float> rows) {
  const size_t dim = options_.dim;
  if (rows.size() != ids.size() * dim) {
    return absl::InvalidArgumentError(fmt::format("{} values for {} ids of dimension {}", rows.size(), ids.size(), dim));
  }
  // Check every row before anything is stored (a bad row adds nothing); cosine rows
  // are scaled by their inverse norm on the way into the storage.
  const bool cosine = options_.metric == Metric::kCosine;
  std::vector<float> scale(cosine ? ids.size() : 0);
  // The SIMD dot product screens a row at once: a NaN or infinity anywhere makes it
  // non-finite (so does overflow of huge finite values: then the exact check decides).
  // Cosine rows take the exact loop: their scale must not depend on the kernel.
  const KernelTable& kernels = Kernels();
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* r = rows.data() + i * dim;
    double norm2 = cosine ? 0.0 : kernels.dot(r, r, dim);
    if (cosine || !std::isfinite(norm2)) {
      norm2 = 0;
      for (size_t j = 0; j < dim; ++j) {
        if (!std::isfinite(r[j])) {
          return absl::InvalidArgumentError(
              fmt::format("row {} (id {}): vector value {} at dimension {} is not finite", i, ids[i], r[j], j));
        }
        norm2 += double{r[j]} * r[j];
      }
    }
    if (cosine) {
      if (!(norm2 > 0)) {
        return absl::InvalidArgumentError(
            fmt::format("row {} (id {}): a zero vector has no direction for the cosine metric", i, ids[i]));
      }
      scale[i] = static_cast<float>(1.0 / std::sqrt(norm2));
    }
  }
  std::vector<float> row(dim);
  std::unique_lock lock(mu_);
  if (ids_.size() + ids.size() >= UINT32_MAX) {
    return absl::ResourceExhaustedError("flat index is full (2^32 - 1 vectors)");
  }
  slot_of_.reserve(slot_of_.size() + ids.size());
  ids_.reserve(ids_.size() + ids.size());
  if (sq8_) {
    codes_.reserve(codes_.size() + rows.size());
  } else {
    floats_.reserve(floats_.size() + rows.size());
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* r = rows.data() + i * dim;
    size_t slot = FindSlot(ids[i]);
    if (slot == kNoSlot) {
      slot = ids_.size();
      slot_of_.emplace(ids[i], static_cast<uint32_t>(slot));
      ids_.push_back(ids[i]);
      if (sq8_) {
        codes_.resize(codes_.size() + dim);
      } else {
        floats_.insert(floats_.end(), r, r + dim);  // appended as is: no zero fill first
        if (!cosine) continue;
      }
    }
    float* out = sq8_ ? row.data() : Row(slot);
    if (cosine) {
      for (size_t j = 0; j < dim; ++j) out[j] = r[j] * scale[i];
    } else {
      std::copy(r, r + dim, out);
    }
    if (sq8_) sq8_->Encode(row.data(), codes_.data() + slot * dim);
  }
  if (options_.storage == FlatStorage::kSq8 && !sq8_ && !auto_train_failed_ &&
      options_.sq8_auto_train_size > 0 && ids_.size() >= options_.sq8_auto_train_size) {
    if (absl::Status s = TrainLocked({}); !s.ok()) {
      auto_train_failed_ = true;
      spdlog::warn("flat index: SQ8 auto-training failed, keeping float32 rows: {}", std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status FlatIndex::Adopt(std::span<const uint64_t> ids, std::span<float> rows, std::shared_ptr<void> owner) {
  const size_t dim = options_.dim;
  if (rows.size() != ids.size() * dim) {
    return absl::InvalidArgumentError(fmt::format("{} values for {} ids of dimension {}", rows.size(), ids.size(), dim));
  }
  for (size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] <= ids[i - 1]) return absl::InvalidArgumentError("flat index: adopted ids must be strictly ascending");
  }
  if (ids.size() >= UINT32_MAX) return absl::ResourceExhaustedError("flat index is full (2^32 - 1 vectors)");
  std::unique_lock lock(mu_);
  if (options_.storage != FlatStorage::kFloat32 || !ids_.empty()) {
    return absl::FailedPreconditionError("flat index: Adopt needs an empty float32 index");
  }
  ids_.assign(ids.begin(), ids.end());
  sorted_n_ = ids.size();
  base_rows_ = rows.data();
  base_n_ = ids.size();
  base_owner_ = std::move(owner);
  return absl::OkStatus();
}

size_t FlatIndex::FindSlot(uint64_t id) const {
  if (sorted_n_ > 0 && id <= ids_[sorted_n_ - 1]) {
    auto it = std::lower_bound(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(sorted_n_), id);
    if (*it == id) return static_cast<size_t>(it - ids_.begin());
  }
  if (slot_of_.empty()) return kNoSlot;
  auto it = slot_of_.find(id);
  return it == slot_of_.end() ? kNoSlot : it->second;
}

absl::Status FlatIndex::Remove(uint64_t id) {
  std::unique_lock lock(mu_);
  const size_t slot = FindSlot(id);
  if (slot == kNoSlot) {
    return absl::NotFoundError(fmt::format("id {} is not in the flat index", id));
  }
  // Move the last row into the hole so rows stay dense.
  const size_t last = ids_.size() - 1, dim = options_.dim;
  if (slot < sorted_n_) {
    // The sorted run ends here: the ids after it go to the hash map (each id moves once).
    slot_of_.reserve(slot_of_.size() + (sorted_n_ - slot - 1));
    for (size_t j = slot + 1; j < sorted_n_; ++j) slot_of_.emplace(ids_[j], static_cast<uint32_t>(j));
    sorted_n_ = slot;
  } else {
    slot_of_.erase(id);
  }
  if (slot != last) {
    ids_[slot] = ids_[last];
    slot_of_[ids_[slot]] = static_cast<uint32_t>(slot);
    if (sq8_) {
      std::copy_n(codes_.begin() + last * dim, dim, codes_.begin() + slot * dim);
    } else {
      std::copy_n(Row(last), dim, Row(slot));
    }
  }
  ids_.pop_back();
  if (sq8_) {
    codes_.resize(last * dim);
  } else {
    ResizeOwned(last);
  }
  return absl::OkStatus();
}

bool FlatIndex::Contains(uint64_t id) const {
  std::shared_lock lock(mu_);
  return FindSlot(id) != kNoSlot;
}

absl::StatusOr<std::vector<float>> FlatIndex::Get(uint64_t id) const {
  std::shared_lock lock(mu_);
  const size_t slot = FindSlot(id);
  if (slot == kNoSlot) {
    return absl::NotFoundError(fmt::format("id {} is not in the flat index", id));
  }
  const size_t dim = options_.dim;
  std::vector<float> out(dim);
  if (sq8_) {
    sq8_->Decode(codes_.data() + slot * dim, out.data());
  } else {
    std::copy_n(Row(slot), dim, out.begin());
  }
  return out;
}

float FlatIndex::DistanceToSlot(const KernelTable& k, const float* q,
                                const Sq8Quantizer::Query* sq, size_t slot) const {
  const size_t dim = options_.dim;
  if (sq8_) return sq8_->Distance(*sq, codes_.data() + slot * dim);
  const float* row = Row(slot);
  if (options_.metric == Metric::kL2) return k.l2sq(q, row, dim);
  return 1.0f - k.dot(q, row, dim);
}

absl::StatusOr<std::vector<Neighbor>> FlatIndex::Search(std::span<const float> query,
                                                        const SearchParams& params) const {
  const Filter* filter = params.filter;
  if (filter != nullptr) {
    const double selectivity = filter->EstimatedSelectivity();
    std::vector<uint64_t> allowed;
    if (selectivity >= 0 && selectivity < kListFilterSelectivity && filter->ListAllowed(&allowed)) {
      return SearchAmong(query, allowed, params.k);
    }
  }
  std::vector<float> q;
  if (absl::Status s = Prepare(query, &q); !s.ok()) return s;
  std::shared_lock lock(mu_);
  Sq8Quantizer::Query sq;
  if (sq8_) sq8_->PrepareQuery(q.data(), options_.metric, &sq);
  const KernelTable& kernels = Kernels();
  TopK top(params.k);
  if (params.k == 0) return std::move(top).Sorted();
  for (size_t slot = 0; slot < ids_.size(); ++slot) {
    const uint64_t id = ids_[slot];
    if (filter != nullptr && !filter->Allows(id)) continue;
    const float d = DistanceToSlot(kernels, q.data(), &sq, slot);
    if (top.Accepts(d)) top.Push(id, d);
  }
  return std::move(top).Sorted();
}

absl::StatusOr<std::vector<Neighbor>> FlatIndex::SearchAmong(std::span<const float> query,
                                                             std::span<const uint64_t> ids,
                                                             size_t k) const {
  std::vector<float> q;
  if (absl::Status s = Prepare(query, &q); !s.ok()) return s;
  std::vector<uint64_t> unique(ids.begin(), ids.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::shared_lock lock(mu_);
  Sq8Quantizer::Query sq;
  if (sq8_) sq8_->PrepareQuery(q.data(), options_.metric, &sq);
  const KernelTable& kernels = Kernels();
  TopK top(k);
  if (k == 0) return std::move(top).Sorted();
  // Two passes so the cache misses overlap: ids -> slots (the sorted run walked
  // forward, since `unique` is ascending; hash groups prefetched a few ids ahead), then
  // the rows in address order, prefetched ahead.
  constexpr size_t kAhead = 8;
  std::vector<uint32_t> slots;
  slots.reserve(unique.size());
  const auto sorted_begin = ids_.begin(), sorted_end = ids_.begin() + static_cast<ptrdiff_t>(sorted_n_);
  auto pos = sorted_begin;
  for (size_t i = 0; i < unique.size(); ++i) {
    const uint64_t id = unique[i];
    if (pos != sorted_end && *pos <= id) {
      // Gallop from the last position, then binary search the bracket.
      size_t step = 1;
      auto hi = pos;
      while (sorted_end - hi > static_cast<ptrdiff_t>(step) && hi[step] < id) {
        hi += static_cast<ptrdiff_t>(step);
        step *= 2;
      }
      pos = std::lower_bound(hi, std::min(hi + static_cast<ptrdiff_t>(step) + 1, sorted_end), id);
      if (pos != sorted_end && *pos == id) {
        slots.push_back(static_cast<uint32_t>(pos - sorted_begin));
        continue;
      }
    }
    if (slot_of_.empty()) continue;
    if (i + kAhead < unique.size()) slot_of_.prefetch(unique[i + kAhead]);
    auto it = slot_of_.find(id);
    if (it != slot_of_.end()) slots.push_back(it->second);
  }
  std::sort(slots.begin(), slots.end());
  const size_t row_bytes = sq8_ ? options_.dim : options_.dim * sizeof(float);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (i + kAhead < slots.size()) {
      const char* p = sq8_ ? reinterpret_cast<const char*>(codes_.data() + size_t{slots[i + kAhead]} * row_bytes)
                           : reinterpret_cast<const char*>(Row(slots[i + kAhead]));
      for (size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
    }
    const float d = DistanceToSlot(kernels, q.data(), &sq, slots[i]);
    if (top.Accepts(d)) top.Push(ids_[slots[i]], d);
  }
  return std::move(top).Sorted();
}

absl::Status FlatIndex::Train(std::span<const float> sample) {
  if (options_.storage != FlatStorage::kSq8) {
    return absl::FailedPreconditionError("flat index: Train applies only to SQ8 storage");
  }
  std::unique_lock lock(mu_);
  return TrainLocked(sample);
}

bool FlatIndex::trained() const {
  if (options_.storage == FlatStorage::kFloat32) return true;
  std::shared_lock lock(mu_);
  return sq8_.has_value();
}

absl::Status FlatIndex::TrainLocked(std::span<const float> sample) {
  const size_t dim = options_.dim;
  // Rows currently stored, as floats (decoded when already trained).
  std::vector<float> present = floats_;
  if (sq8_) {
    present.resize(ids_.size() * dim);
    for (size_t i = 0; i < ids_.size(); ++i) {
      sq8_->Decode(codes_.data() + i * dim, present.data() + i * dim);
    }
  }
  std::vector<float> rows;
  if (sample.empty()) {
    if (ids_.empty()) {
      return absl::FailedPreconditionError(
          "flat index: no vectors to train SQ8 from (add vectors or pass a sample)");
    }
    rows = present;
  } else {
    if (sample.size() % dim != 0) {
      return absl::InvalidArgumentError(fmt::format(
          "training sample has {} values, not a multiple of dimension {}", sample.size(), dim));
    }
    rows.reserve(sample.size());
    std::vector<float> row;
    for (size_t r = 0; r < sample.size() / dim; ++r) {
      if (absl::Status s = Prepare(sample.subspan(r * dim, dim), &row); !s.ok()) {
        return absl::InvalidArgumentError(fmt::format("training row {}: {}", r, std::string(s.message())));
      }
      rows.insert(rows.end(), row.begin(), row.end());
    }
  }
  absl::StatusOr<Sq8Quantizer> q = Sq8Quantizer::Train(rows, dim);
  if (!q.ok()) return q.status();
  sq8_ = *std::move(q);
  codes_.assign(ids_.size() * dim, 0);
  for (size_t i = 0; i < ids_.size(); ++i) {
    sq8_->Encode(present.data() + i * dim, codes_.data() + i * dim);
  }
  floats_.clear();
  floats_.shrink_to_fit();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------- ExactKnn

std::vector<std::vector<Neighbor>> ExactKnn(std::span<const float> base, size_t dim,
                                            std::span<const float> queries, Metric metric,
                                            size_t k, size_t threads) {
  assert(dim > 0 && base.size() % dim == 0 && queries.size() % dim == 0);
  const size_t n = base.size() / dim, nq = queries.size() / dim;
  std::vector<std::vector<Neighbor>> out(nq);
  if (nq == 0 || k == 0) return out;
  const KernelTable& kt = Kernels();
  // Cosine without copying the base: 1 - <q, b> / (|q| |b|), norms computed once.
  // (L2 stays on squared differences: ranking by |b|^2 - 2<q, b> would halve the
  // arithmetic but cancels badly far from the origin, and this is ground truth.)
  std::vector<float> base_inv_norm, query_inv_norm;
  if (metric == Metric::kCosine) {
    auto inv_norms = [&](std::span<const float> m, size_t rows) {
      std::vector<float> out_norms(rows);
      for (size_t r = 0; r < rows; ++r) {
        const float* p = m.data() + r * dim;
        const float n2 = kt.dot(p, p, dim);
        out_norms[r] = n2 > 0 ? 1.0f / std::sqrt(n2) : 0.0f;
      }
      return out_norms;
    };
    base_inv_norm = inv_norms(base, n);
    query_inv_norm = inv_norms(queries, nq);
  }

  // Work unit: a block of queries against the whole base, walked in blocks of rows
  // small enough (~256 KiB) to stay in L2 while the block's queries visit them. The
  // x4 kernel loads each row once for four queries of the block.
  constexpr size_t kQueryBlock = 32;
  const size_t base_block = std::max<size_t>(64, (256 << 10) / (dim * sizeof(float)));
  const size_t nblocks = (nq + kQueryBlock - 1) / kQueryBlock;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    std::vector<TopK> tops;
    for (size_t qb; (qb = next.fetch_add(1)) < nblocks;) {
      const size_t q0 = qb * kQueryBlock, q1 = std::min(nq, q0 + kQueryBlock);
      tops.assign(q1 - q0, TopK(k));
      for (size_t b0 = 0; b0 < n; b0 += base_block) {
        const size_t b1 = std::min(n, b0 + base_block);
        for (size_t g = q0; g < q1; g += 4) {
          // A short last group repeats its last query; the extra results are dropped.
          const size_t lanes = std::min<size_t>(4, q1 - g);
          const float* qs[4];
          for (size_t j = 0; j < 4; ++j) qs[j] = queries.data() + (g + std::min(j, lanes - 1)) * dim;
          float d[4];
          for (size_t r = b0; r < b1; ++r) {
            const float* row = base.data() + r * dim;
            if (metric == Metric::kL2) {
              kt.l2sq_x4(qs, row, dim, d);
            } else {
              kt.dot_x4(qs, row, dim, d);
              for (size_t j = 0; j < lanes; ++j) {
                d[j] = metric == Metric::kInnerProduct
                           ? 1.0f - d[j]
                           : 1.0f - d[j] * query_inv_norm[g + j] * base_inv_norm[r];
              }
            }
            for (size_t j = 0; j < lanes; ++j) {
              TopK& top = tops[g + j - q0];
              if (top.Accepts(d[j])) top.Push(r, d[j]);
            }
          }
        }
      }
      for (size_t qi = q0; qi < q1; ++qi) out[qi] = std::move(tops[qi - q0]).Sorted();
    }
  };
  const size_t nthreads = std::max<size_t>(1, std::min(threads, nblocks));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < nthreads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  return out;
}

}  // namespace cairn::vector
