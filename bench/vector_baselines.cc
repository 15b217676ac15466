// The baselines of `cairn vector bench`: hnswlib (header-only; this file is built
// with the flags hnswlib's users build it with, -O3 -march=native, unless
// CAIRN_NATIVE_BASELINES is OFF) and FAISS (Debian's prebuilt library, used as is).
// Third-party exceptions are caught here and turned into Status.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "bench/vector_bench.h"

#if defined(CAIRN_HAVE_HNSWLIB)
#include <hnswlib/hnswlib.h>
#endif
#if defined(CAIRN_HAVE_FAISS)
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/index_io.h>
#include <omp.h>
#endif

namespace cairn::bench {
namespace {

absl::Status FromException(const std::string& what, const std::exception& e) {
  return absl::InternalError(what + ": " + e.what());
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto s = std::filesystem::file_size(path, ec);
  return ec ? 0 : s;
}

bool IsL2(const VectorBenchOptions& o) { return o.metric == vector::Metric::kL2; }

#if defined(CAIRN_HAVE_HNSWLIB)
class HnswlibRunner final : public AnnRunner {
 public:
  explicit HnswlibRunner(const VectorBenchOptions& o) : o_(o) {}
  std::string name() const override { return "hnswlib"; }
  std::string settings() const override {
    return "M=" + std::to_string(o_.M) + " efc=" + std::to_string(o_.ef_construction) + ", " + HnswlibBuildNote();
  }

  absl::Status Build(const VectorSet& base, int threads, const std::function<void(size_t)>& progress) override {
    try {
      MakeSpace(base.dim);
      index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(space_.get(), base.n, o_.M, o_.ef_construction);
      ParallelFor(base.n, threads, [&](size_t i) { index_->addPoint(base.row(i), i); }, progress);
    } catch (const std::exception& e) {
      return FromException("hnswlib build", e);
    }
    return absl::OkStatus();
  }

  uint64_t OwnBytes() const override {
    if (!index_) return 0;
    const auto& h = *index_;
    uint64_t upper = 0;
    for (size_t i = 0; i < h.cur_element_count; ++i) {
      if (h.element_levels_[i] > 0) upper += h.size_links_per_element_ * h.element_levels_[i];
    }
    // Level 0 block, upper-level links, per-element pointer, level, lock, and the label map.
    return h.max_elements_ * (h.size_data_per_element_ + sizeof(void*) + sizeof(int) + sizeof(std::mutex)) +
           upper + h.label_lookup_.size() * 32;
  }

  absl::StatusOr<uint64_t> Save(const std::string& dir) override {
    path_ = dir + "/hnswlib.bin";
    try {
      index_->saveIndex(path_);
    } catch (const std::exception& e) {
      return FromException("hnswlib saveIndex", e);
    }
    return FileSize(path_);
  }
  void Drop() override { index_.reset(); }
  absl::Status Load(const std::string&) override {
    try {
      index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(space_.get(), path_);
    } catch (const std::exception& e) {
      return FromException("hnswlib loadIndex", e);
    }
    return absl::OkStatus();
  }
  void SetSearchParam(size_t ef) override { index_->setEf(ef); ef_ = ef; }

  absl::Status Search(const float* q, size_t k, std::vector<uint64_t>* ids) const override {
    auto top = index_->searchKnn(q, k);
    ids->resize(top.size());
    for (size_t i = top.size(); i-- > 0;) {
      (*ids)[i] = top.top().second;
      top.pop();
    }
    return absl::OkStatus();
  }

  bool SupportsFilter() const override { return true; }
#if defined(CAIRN_HNSWLIB_HAS_FILTER)
  std::string FilterMethod() const override { return "BaseFilterFunctor during traversal, same ef"; }
  absl::Status SearchFiltered(const float* q, size_t k, std::span<const uint8_t> allowed,
                              std::span<const uint64_t>, std::vector<uint64_t>* ids) const override {
    struct MaskFilter : hnswlib::BaseFilterFunctor {
      std::span<const uint8_t> mask;
      bool operator()(hnswlib::labeltype id) override { return id < mask.size() && mask[id]; }
    } filter;
    filter.mask = allowed;
    auto top = index_->searchKnn(q, k, &filter);
    ids->resize(top.size());
    for (size_t i = top.size(); i-- > 0;) {
      (*ids)[i] = top.top().second;
      top.pop();
    }
    return absl::OkStatus();
  }
#else
  // hnswlib before 0.7 (Debian 12 ships 0.6.2) has no filter functor: the way its
  // users filter is to ask for more candidates and drop the ones that do not match.
  // At the same ef that is every candidate the search keeps (k' = ef).
  std::string FilterMethod() const override {
    return "post-filter of the ef candidates (hnswlib 0.6.2 has no BaseFilterFunctor)";
  }
  absl::Status SearchFiltered(const float* q, size_t k, std::span<const uint8_t> allowed,
                              std::span<const uint64_t>, std::vector<uint64_t>* ids) const override {
    auto top = index_->searchKnn(q, std::max(k, ef_));
    std::vector<std::pair<float, uint64_t>> keep;
    while (!top.empty()) {
      const auto [d, id] = top.top();
      top.pop();
      if (id < allowed.size() && allowed[id]) keep.emplace_back(d, id);
    }
    std::sort(keep.begin(), keep.end());
    ids->clear();
    for (size_t i = 0; i < keep.size() && i < k; ++i) ids->push_back(keep[i].second);
    return absl::OkStatus();
  }
#endif

 private:
  void MakeSpace(size_t dim) {
    if (IsL2(o_)) {
      space_ = std::make_unique<hnswlib::L2Space>(dim);
    } else {
      space_ = std::make_unique<hnswlib::InnerProductSpace>(dim);
    }
  }
  VectorBenchOptions o_;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
  std::string path_;
  size_t ef_ = 10;
};
#endif  // CAIRN_HAVE_HNSWLIB

#if defined(CAIRN_HAVE_FAISS)
using FaissIdx = faiss::Index::idx_t;

// One OpenMP thread per searching thread: FAISS parallelizes over the queries of
// one call, and a call with one query would otherwise wake a whole team.
void OneOmpThread() {
  if (omp_get_max_threads() != 1) omp_set_num_threads(1);
}

absl::Status FaissAddInChunks(faiss::Index* index, const VectorSet& base, int threads,
                              const std::function<void(size_t)>& progress) {
  omp_set_num_threads(std::max(1, threads));
  const size_t chunk = 65536;
  for (size_t i = 0; i < base.n; i += chunk) {
    const size_t m = std::min(chunk, base.n - i);
    index->add(static_cast<FaissIdx>(m), base.row(i));
    if (progress) progress(i + m);
  }
  OneOmpThread();
  return absl::OkStatus();
}

class FaissRunner : public AnnRunner {
 public:
  explicit FaissRunner(const VectorBenchOptions& o) : o_(o) {}
  absl::StatusOr<uint64_t> Save(const std::string& dir) override {
    path_ = dir + "/" + name() + ".faiss";
    try {
      faiss::write_index(index_.get(), path_.c_str());
    } catch (const std::exception& e) {
      return FromException("faiss write_index", e);
    }
    return FileSize(path_);
  }
  void Drop() override { index_.reset(); }
  absl::Status Load(const std::string&) override {
    try {
      index_.reset(faiss::read_index(path_.c_str()));
    } catch (const std::exception& e) {
      return FromException("faiss read_index", e);
    }
    return absl::OkStatus();
  }
  absl::Status Search(const float* q, size_t k, std::vector<uint64_t>* ids) const override {
    OneOmpThread();
    float dist[1024];
    FaissIdx labels[1024];
    const size_t kk = std::min<size_t>(k, 1024);
    try {
      index_->search(1, q, static_cast<FaissIdx>(kk), dist, labels, params());
    } catch (const std::exception& e) {
      return FromException("faiss search", e);
    }
    ids->clear();
    for (size_t i = 0; i < kk && labels[i] >= 0; ++i) ids->push_back(static_cast<uint64_t>(labels[i]));
    return absl::OkStatus();
  }

 protected:
  virtual const faiss::SearchParameters* params() const = 0;
  faiss::MetricType metric() const { return IsL2(o_) ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT; }
  VectorBenchOptions o_;
  std::unique_ptr<faiss::Index> index_;
  std::string path_;
};

class FaissHnswRunner final : public FaissRunner {
 public:
  using FaissRunner::FaissRunner;
  std::string name() const override { return "faiss-hnsw"; }
  std::string settings() const override {
    return "IndexHNSWFlat M=" + std::to_string(o_.M) + " efc=" + std::to_string(o_.ef_construction) + ", " +
           FaissBuildNote();
  }
  absl::Status Build(const VectorSet& base, int threads, const std::function<void(size_t)>& progress) override {
    try {
      auto index = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(base.dim), static_cast<int>(o_.M),
                                                          metric());
      index->hnsw.efConstruction = static_cast<int>(o_.ef_construction);
      index_ = std::move(index);
      return FaissAddInChunks(index_.get(), base, threads, progress);
    } catch (const std::exception& e) {
      return FromException("faiss IndexHNSWFlat build", e);
    }
  }
  uint64_t OwnBytes() const override {
    auto* h = dynamic_cast<const faiss::IndexHNSW*>(index_.get());
    if (!h) return 0;
    auto* flat = dynamic_cast<const faiss::IndexFlatCodes*>(h->storage);
    return (flat ? flat->codes.size() : 0) + h->hnsw.neighbors.size() * sizeof(h->hnsw.neighbors[0]) +
           h->hnsw.offsets.size() * sizeof(size_t) + h->hnsw.levels.size() * sizeof(int) +
           h->hnsw.assign_probas.size() * sizeof(double);
  }
  // FAISS 1.7.3 reads efSearch from the index itself (the per-call parameter is not
  // honoured by every search path), so both are set.
  void SetSearchParam(size_t ef) override {
    p_.efSearch = static_cast<int>(ef);
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(index_.get())) h->hnsw.efSearch = static_cast<int>(ef);
  }

 protected:
  const faiss::SearchParameters* params() const override { return &p_; }

 private:
  faiss::SearchParametersHNSW p_;
};

class FaissIvfPqRunner final : public FaissRunner {
 public:
  explicit FaissIvfPqRunner(const VectorBenchOptions& o) : FaissRunner(o) {
    nlist_ = std::max<size_t>(16, static_cast<size_t>(std::lround(std::sqrt(static_cast<double>(o.n)))));
    // Sub-quantizers of 4 dimensions (32 bytes per 128-d vector), a divisor of dim.
    m_ = std::max<size_t>(1, o.dim / 4);
    while (m_ > 1 && o.dim % m_ != 0) --m_;
  }
  std::string name() const override { return "faiss-ivfpq"; }
  std::string param_name() const override { return "nprobe"; }
  std::string settings() const override {
    return "IndexIVFPQ nlist=" + std::to_string(nlist_) + " m=" + std::to_string(m_) + " nbits=8, " +
           FaissBuildNote();
  }
  std::vector<size_t> SweepParams(const VectorBenchOptions&) const override {
    std::vector<size_t> out;
    for (size_t p = 1; p <= 256 && p <= nlist_; p *= 2) out.push_back(p);
    return out;
  }
  absl::Status Build(const VectorSet& base, int threads, const std::function<void(size_t)>& progress) override {
    try {
      quantizer_ = new faiss::IndexFlat(static_cast<FaissIdx>(base.dim), metric());
      auto index = std::make_unique<faiss::IndexIVFPQ>(quantizer_, base.dim, nlist_, m_, 8, metric());
      index->own_fields = true;
      index->verbose = false;
      index->cp.verbose = false;
      // A training sample: 64 points per list (FAISS asks for 39 at least), 256 codes per sub-quantizer.
      const size_t train_n = std::min(base.n, std::max<size_t>(nlist_ * 64, 256 * 64));
      omp_set_num_threads(std::max(1, threads));
      index->train(static_cast<FaissIdx>(train_n), base.data.data());
      index_ = std::move(index);
      return FaissAddInChunks(index_.get(), base, threads, progress);
    } catch (const std::exception& e) {
      return FromException("faiss IndexIVFPQ build", e);
    }
  }
  uint64_t OwnBytes() const override {
    auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(index_.get());
    if (!ivf) return 0;
    uint64_t bytes = ivf->nlist * ivf->d * sizeof(float) + ivf->pq.centroids.size() * sizeof(float);
    for (size_t l = 0; l < ivf->nlist; ++l) bytes += ivf->invlists->list_size(l) * (ivf->code_size + sizeof(FaissIdx));
    return bytes;
  }
  void SetSearchParam(size_t nprobe) override {
    p_.nprobe = nprobe;
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get())) ivf->nprobe = nprobe;
  }

 protected:
  const faiss::SearchParameters* params() const override { return &p_; }

 private:
  size_t nlist_, m_;
  faiss::IndexFlat* quantizer_ = nullptr;
  faiss::SearchParametersIVF p_;
};
#endif  // CAIRN_HAVE_FAISS

}  // namespace

std::unique_ptr<AnnRunner> MakeHnswlibRunner(const VectorBenchOptions& o) {
#if defined(CAIRN_HAVE_HNSWLIB)
  return std::make_unique<HnswlibRunner>(o);
#else
  (void)o;
  return nullptr;
#endif
}

std::unique_ptr<AnnRunner> MakeFaissHnswRunner(const VectorBenchOptions& o) {
#if defined(CAIRN_HAVE_FAISS)
  return std::make_unique<FaissHnswRunner>(o);
#else
  (void)o;
  return nullptr;
#endif
}

std::unique_ptr<AnnRunner> MakeFaissIvfPqRunner(const VectorBenchOptions& o) {
#if defined(CAIRN_HAVE_FAISS)
  return std::make_unique<FaissIvfPqRunner>(o);
#else
  (void)o;
  return nullptr;
#endif
}

std::string HnswlibBuildNote() {
#if !defined(CAIRN_HAVE_HNSWLIB)
  return "not built";
#elif defined(CAIRN_NATIVE_BASELINES)
  return "hnswlib 0.6 header-only, compiled -O3 -march=native";
#else
  return "hnswlib 0.6 header-only, compiled with the project's flags (no -march=native)";
#endif
}

std::string FaissBuildNote() {
#if defined(CAIRN_HAVE_FAISS)
  return "FAISS " + std::to_string(FAISS_VERSION_MAJOR) + "." + std::to_string(FAISS_VERSION_MINOR) + "." +
         std::to_string(FAISS_VERSION_PATCH) + " (Debian's prebuilt library)";
#else
  return "not built";
#endif
}

}  // namespace cairn::bench
