#include "bench/vector_bench.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "cairn/vector/distance.h"
#include "cairn/vector/hnsw.h"

namespace cairn::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Frees what the allocator keeps after a large index is dropped, so the next
// index's resident-memory delta starts from a clean baseline.
void ReturnFreedMemory() { malloc_trim(0); }

std::string Commas(uint64_t n) {
  std::string d = std::to_string(n), out;
  const int lead = static_cast<int>(d.size() % 3);
  for (size_t i = 0; i < d.size(); ++i) {
    if (i != 0 && (static_cast<int>(i) - lead) % 3 == 0) out.push_back(',');
    out.push_back(d[i]);
  }
  return out;
}

std::string Mib(int64_t bytes) { return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 20)); }

// Progress lines on stderr, at most one every two seconds per step.
class Progress {
 public:
  Progress(bool on, std::string what, size_t total) : on_(on), what_(std::move(what)), total_(total) {}
  void Update(size_t done) {
    if (!on_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (Since(last_) < 2.0 || done >= total_) return;
    last_ = Clock::now();
    fmt::print(stderr, "  {}: {:.0f}% ({} of {}), {:.0f} s\n", what_, 100.0 * done / std::max<size_t>(1, total_),
               Commas(done), Commas(total_), Since(start_));
  }

 private:
  bool on_;
  std::string what_;
  size_t total_;
  std::mutex mu_;
  Clock::time_point start_ = Clock::now(), last_ = Clock::now();
};

// The filter of the filtered-search step, as an index.h Filter: a mask by id, its
// selectivity and the list of allowed ids (what an attribute index would answer).
class MaskFilter final : public vector::Filter {
 public:
  MaskFilter(std::span<const uint8_t> mask, std::span<const uint64_t> ids) : mask_(mask), ids_(ids) {}
  bool Allows(uint64_t id) const override { return id < mask_.size() && mask_[id]; }
  double EstimatedSelectivity() const override {
    return mask_.empty() ? 0 : static_cast<double>(ids_.size()) / static_cast<double>(mask_.size());
  }
  bool ListAllowed(std::vector<uint64_t>* ids) const override {
    ids->assign(ids_.begin(), ids_.end());
    return true;
  }

 private:
  std::span<const uint8_t> mask_;
  std::span<const uint64_t> ids_;
};

class CairnRunner final : public AnnRunner {
 public:
  CairnRunner(const VectorBenchOptions& o, bool sq8) : o_(o), sq8_(sq8) {}
  std::string name() const override { return sq8_ ? "cairn-sq8" : "cairn"; }
  std::string settings() const override {
    return fmt::format("HnswIndex M={} efc={}{}, kernels {}", o_.M, o_.ef_construction,
                       sq8_ ? " SQ8 codes, re-rank max(ef, 4k) on float vectors" : " float32",
                       vector::Kernels().isa);
  }
  absl::Status Build(const VectorSet& base, int threads, const std::function<void(size_t)>& progress) override {
    vector::HnswOptions h;
    h.dim = base.dim;
    h.metric = o_.metric;
    h.M = o_.M;
    h.ef_construction = o_.ef_construction;
    h.storage = sq8_ ? vector::HnswStorage::kSq8 : vector::HnswStorage::kFloat32;
    h.initial_capacity = std::max<size_t>(base.n, 1);
    auto index = vector::HnswIndex::Create(h);
    if (!index.ok()) return index.status();
    index_ = std::move(*index);
    if (sq8_) {
      const size_t sample = std::min<size_t>(base.n, 100'000);
      auto st = index_->Train(std::span<const float>(base.data.data(), sample * base.dim));
      if (!st.ok()) return st;
    }
    // Batches of ~5% so progress shows; each batch runs on `threads` threads.
    const size_t chunk = std::max<size_t>(10'000, base.n / 20);
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < base.n; i += chunk) {
      const size_t m = std::min(chunk, base.n - i);
      ids.resize(m);
      for (size_t j = 0; j < m; ++j) ids[j] = i + j;
      auto st = index_->AddBatch(ids, std::span<const float>(base.row(i), m * base.dim),
                                 static_cast<size_t>(threads));
      if (!st.ok()) return st;
      if (progress) progress(i + m);
    }
    return absl::OkStatus();
  }
  uint64_t OwnBytes() const override { return index_ ? index_->MemoryBytes() : 0; }
  absl::StatusOr<uint64_t> Save(const std::string& dir) override {
    path_ = dir + "/" + name() + ".hnsw";
    auto st = index_->Save(path_);
    if (!st.ok()) return st;
    std::error_code ec;
    return std::filesystem::file_size(path_, ec);
  }
  void Drop() override { index_.reset(); }
  absl::Status Load(const std::string&) override {
    auto index = vector::HnswIndex::Open(path_);
    if (!index.ok()) return index.status();
    index_ = std::move(*index);
    return absl::OkStatus();
  }
  void SetSearchParam(size_t ef) override { ef_ = ef; }
  absl::Status Search(const float* q, size_t k, std::vector<uint64_t>* ids) const override {
    return Run(q, k, nullptr, ids);
  }
  bool SupportsFilter() const override { return true; }
  std::string FilterMethod() const override {
    return "Filter applied during traversal; planner goes exact over the listed ids when selective";
  }
  absl::Status SearchFiltered(const float* q, size_t k, std::span<const uint8_t> allowed,
                              std::span<const uint64_t> allowed_ids, std::vector<uint64_t>* ids) const override {
    const MaskFilter filter(allowed, allowed_ids);
    return Run(q, k, &filter, ids);
  }

 private:
  absl::Status Run(const float* q, size_t k, const vector::Filter* filter, std::vector<uint64_t>* ids) const {
    vector::SearchParams p;
    p.k = k;
    p.ef = ef_;
    p.filter = filter;
    auto r = index_->Search(std::span<const float>(q, index_->dim()), p);
    if (!r.ok()) return r.status();
    ids->resize(r->size());
    for (size_t i = 0; i < r->size(); ++i) (*ids)[i] = (*r)[i].id;
    return absl::OkStatus();
  }
  VectorBenchOptions o_;
  bool sq8_;
  std::unique_ptr<vector::HnswIndex> index_;
  std::string path_;
  size_t ef_ = 64;
};

struct Data {
  VectorSet base, queries;
  std::vector<std::vector<uint32_t>> gt;
  std::vector<uint8_t> allowed;
  std::vector<uint64_t> allowed_ids;
  std::vector<std::vector<uint32_t>> filtered_gt;
};

std::string DefaultCacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/cairn/vector-bench";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/cairn/vector-bench";
  return (std::filesystem::temp_directory_path() / "cairn-vector-bench").string();
}

// One pass over the queries at the current parameter: mean recall and QPS.
absl::StatusOr<SweepPoint> Pass(const AnnRunner& r, const Data& d, size_t k, size_t param, bool filtered,
                                bool cpu_clock) {
  std::vector<uint64_t> ids;
  const auto& gt = filtered ? d.filtered_gt : d.gt;
  double recall = 0;
  const auto t = Clock::now();
  const double cpu0 = ThreadCpuSeconds();
  for (size_t q = 0; q < d.queries.n; ++q) {
    absl::Status st = filtered ? r.SearchFiltered(d.queries.row(q), k, d.allowed, d.allowed_ids, &ids)
                               : r.Search(d.queries.row(q), k, &ids);
    if (!st.ok()) return st;
    recall += RecallAtK(ids, gt[q], k);
  }
  const double s = cpu_clock ? ThreadCpuSeconds() - cpu0 : Since(t);
  SweepPoint p;
  p.param = param;
  p.recall = recall / static_cast<double>(d.queries.n);
  p.qps = static_cast<double>(d.queries.n) / s;
  p.mean_us = 1e6 * s / static_cast<double>(d.queries.n);
  return p;
}

// Every thread searches all queries (each from its own offset); QPS over the wall time.
double ConcurrentQps(const AnnRunner& r, const Data& d, size_t k, int threads) {
  std::atomic<bool> failed{false};
  const auto t = Clock::now();
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      std::vector<uint64_t> ids;
      const size_t n = d.queries.n, start = n * static_cast<size_t>(i) / static_cast<size_t>(threads);
      for (size_t j = 0; j < n; ++j) {
        if (!r.Search(d.queries.row((start + j) % n), k, &ids).ok()) failed = true;
      }
    });
  }
  for (auto& th : pool) th.join();
  if (failed) return 0;
  return static_cast<double>(d.queries.n) * threads / Since(t);
}

RunnerReport RunOne(AnnRunner& r, const VectorBenchOptions& o, const Data& d, const std::string& work_dir) {
  RunnerReport rep;
  rep.name = r.name();
  rep.settings = r.settings();
  rep.param_name = r.param_name();
  auto fail = [&](const absl::Status& st) {
    rep.ok = false;
    rep.error = std::string(st.message());
    fmt::print(stderr, "  {}: failed: {}\n", rep.name, rep.error);
    r.Drop();
    ReturnFreedMemory();
    return rep;
  };
  if (o.progress) fmt::print(stderr, "{}: building {} vectors on {} threads ({})\n", rep.name, Commas(d.base.n),
                             o.threads, rep.settings);
  ReturnFreedMemory();
  const int64_t rss0 = ResidentBytes(), anon0 = ResidentAnonBytes();
  Progress progress(o.progress, rep.name + " build", d.base.n);
  auto t = Clock::now();
  if (auto st = r.Build(d.base, o.threads, [&](size_t done) { progress.Update(done); }); !st.ok()) return fail(st);
  rep.build_seconds = Since(t);
  rep.build_rss_bytes = ResidentBytes() - rss0;
  rep.build_anon_bytes = ResidentAnonBytes() - anon0;
  rep.own_bytes = r.OwnBytes();

  const std::string dir = work_dir + "/" + rep.name;
  std::filesystem::create_directories(dir);
  auto saved = r.Save(dir);
  if (!saved.ok()) return fail(saved.status());
  rep.file_bytes = *saved;
  r.Drop();
  ReturnFreedMemory();
  const int64_t rss1 = ResidentBytes(), anon1 = ResidentAnonBytes();
  t = Clock::now();
  if (auto st = r.Load(dir); !st.ok()) return fail(st);
  rep.load_seconds = Since(t);
  if (o.progress) fmt::print(stderr, "  {}: built in {:.1f} s, opened in {:.3f} s; searching\n", rep.name,
                             rep.build_seconds, rep.load_seconds);

  const std::vector<size_t> params = r.SweepParams(o);
  for (size_t p : params) {
    r.SetSearchParam(p);
    auto point = Pass(r, d, o.k, p, false, o.cpu_clock);
    if (!point.ok()) return fail(point.status());
    rep.sweep.push_back(*point);
  }
  rep.loaded_rss_bytes = ResidentBytes() - rss1;
  rep.loaded_anon_bytes = ResidentAnonBytes() - anon1;

  // Concurrency at the first parameter that reaches the recall target (else the best).
  if (o.threads > 1 && !rep.sweep.empty()) {
    const SweepPoint* at = nullptr;
    for (const auto& p : rep.sweep) {
      if (p.recall >= o.recall_target) {
        at = &p;
        break;
      }
    }
    if (!at) at = &*std::max_element(rep.sweep.begin(), rep.sweep.end(),
                                     [](const auto& a, const auto& b) { return a.recall < b.recall; });
    rep.concurrent_param = at->param;
    rep.concurrent_threads = o.threads;
    r.SetSearchParam(at->param);
    rep.qps_one_thread = ConcurrentQps(r, d, o.k, 1);
    rep.qps_concurrent = ConcurrentQps(r, d, o.k, o.threads);
  }

  if (!d.allowed_ids.empty() && r.SupportsFilter()) {
    rep.filter_supported = true;
    rep.filter_method = r.FilterMethod();
    for (size_t p : params) {
      r.SetSearchParam(p);
      auto point = Pass(r, d, o.k, p, true, o.cpu_clock);
      if (!point.ok()) return fail(point.status());
      rep.filtered.push_back(*point);
    }
  }
  r.Drop();
  ReturnFreedMemory();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rep;
}

// The best QPS among the sweep points at or above the recall target (nullptr if none).
const SweepPoint* BestAtRecall(const std::vector<SweepPoint>& sweep, double target) {
  const SweepPoint* best = nullptr;
  for (const auto& p : sweep) {
    if (p.recall >= target && (!best || p.qps > best->qps)) best = &p;
  }
  return best;
}

const RunnerReport* Find(const VectorBenchReport& r, const std::string& name) {
  for (const auto& x : r.runners) {
    if (x.name == name && x.ok) return &x;
  }
  return nullptr;
}

}  // namespace

int64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * sysconf(_SC_PAGESIZE);
}

int64_t ResidentAnonBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::atoll(line.c_str() + 8) * 1024;
  }
  return 0;
}

std::unique_ptr<AnnRunner> MakeCairnRunner(const VectorBenchOptions& o, bool sq8) {
  return std::make_unique<CairnRunner>(o, sq8);
}

absl::StatusOr<VectorBenchReport> RunVectorBench(const VectorBenchOptions& o) {
  VectorBenchReport rep;
  rep.kernels_isa = std::string(vector::Kernels().isa);
  Data d;
  const bool cosine = o.metric != vector::Metric::kL2;
  auto t = Clock::now();
  std::string cache_dir = o.cache_dir;
  if (!o.base_file.empty()) {
    if (o.query_file.empty()) return absl::InvalidArgumentError("--base needs --query (a .fvecs of queries)");
    auto base = ReadVecs(o.base_file, o.n);
    if (!base.ok()) return base.status();
    auto queries = ReadVecs(o.query_file, o.queries);
    if (!queries.ok()) return queries.status();
    if (queries->dim != base->dim) {
      return absl::InvalidArgumentError(fmt::format("queries have dimension {}, the base vectors {}",
                                                    queries->dim, base->dim));
    }
    d.base = std::move(*base);
    d.queries = std::move(*queries);
    if (cosine) {
      NormalizeRows(&d.base);
      NormalizeRows(&d.queries);
    }
    rep.data = fmt::format("{} ({} vectors) and {}", o.base_file, Commas(d.base.n), o.query_file);
    if (cache_dir.empty()) cache_dir = std::filesystem::path(o.base_file).parent_path().string();
    if (cache_dir.empty()) cache_dir = ".";
  } else {
    EmbeddingOptions g = o.generator;
    g.dim = o.dim;
    g.normalize = cosine;
    g.seed = o.seed;
    if (o.progress) fmt::print(stderr, "generating {} x {} embeddings and {} queries\n", Commas(o.n), o.dim,
                               Commas(o.queries));
    d.base = GenerateEmbeddings(g, o.n, 0);
    d.queries = GenerateEmbeddings(g, o.queries, 1);
    rep.data = fmt::format("generated: {} clusters, intrinsic dim {}, spread {}, noise {}, seed {}{}", g.clusters,
                           g.intrinsic_dim, g.spread, g.noise, g.seed, cosine ? ", normalized" : "");
    if (cache_dir.empty()) cache_dir = DefaultCacheDir();
  }
  rep.n = d.base.n;
  rep.dim = d.base.dim;
  rep.queries = d.queries.n;
  rep.generate_seconds = Since(t);
  if (d.base.n == 0 || d.queries.n == 0) return absl::InvalidArgumentError("no base vectors or no queries");

  t = Clock::now();
  bool from_file = false;
  if (!o.gt_file.empty()) {
    auto gt = ReadIvecs(o.gt_file, d.queries.n);
    if (!gt.ok()) return gt.status();
    if (gt->size() < d.queries.n || (*gt)[0].size() < std::min(o.k, d.base.n)) {
      return absl::InvalidArgumentError(fmt::format("'{}' has {} rows of {} neighbours; need {} rows of {}",
                                                    o.gt_file, gt->size(), gt->empty() ? 0 : (*gt)[0].size(),
                                                    d.queries.n, o.k));
    }
    d.gt = std::move(*gt);
    from_file = true;
    rep.ground_truth_cached = true;
  }
  if (!from_file) {
    if (o.progress) fmt::print(stderr, "ground truth: exact {}-NN of {} queries over {} vectors (cache: {})\n", o.k,
                               Commas(d.queries.n), Commas(d.base.n), cache_dir);
    auto gt = CachedGroundTruth(d.base, d.queries, o.metric, o.k, std::max(1, o.threads), cache_dir,
                                &rep.ground_truth_cached);
    if (!gt.ok()) return gt.status();
    d.gt = std::move(*gt);
  }
  if (o.filter_selectivity > 0) {
    d.allowed = AllowedMask(d.base.n, o.filter_selectivity, o.seed + 7);
    for (size_t i = 0; i < d.base.n; ++i) {
      if (d.allowed[i]) d.allowed_ids.push_back(i);
    }
    rep.filter_selectivity_actual = static_cast<double>(d.allowed_ids.size()) / static_cast<double>(d.base.n);
    if (!d.allowed_ids.empty()) {
      d.filtered_gt = ExactGroundTruth(d.base, d.queries, o.metric, o.k, std::max(1, o.threads), d.allowed);
    }
  }
  rep.ground_truth_seconds = Since(t);

  std::string work_dir = o.work_dir;
  bool own_work_dir = false;
  if (work_dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-vector-bench-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return absl::InternalError("cannot create a temporary directory");
    work_dir = tmpl;
    own_work_dir = true;
  }
  auto wanted = [&](const std::string& name) {
    return o.only.empty() || std::find(o.only.begin(), o.only.end(), name) != o.only.end();
  };
  struct Entry {
    std::string name;
    std::function<std::unique_ptr<AnnRunner>()> make;
  };
  const std::vector<Entry> entries = {
      {"cairn", [&] { return MakeCairnRunner(o, false); }},
      {"cairn-sq8", [&] { return MakeCairnRunner(o, true); }},
      {"hnswlib", [&] { return MakeHnswlibRunner(o); }},
      {"faiss-hnsw", [&] { return MakeFaissHnswRunner(o); }},
      {"faiss-ivfpq", [&] { return MakeFaissIvfPqRunner(o); }},
  };
  for (const auto& e : entries) {
    if (!wanted(e.name)) continue;
    auto runner = e.make();
    if (!runner && o.only.empty()) {
      // A baseline left out of this build (CMake options, or a sanitized build) is
      // skipped when nobody asked for it by name; asked for, it is a failure.
      fmt::print(stderr, "cairn vector bench: {} is not built into this binary; skipped\n", e.name);
      continue;
    }
    if (!runner) {
      RunnerReport r;
      r.name = e.name;
      r.ok = false;
      r.error = "not built into this binary (see the CMake options CAIRN_WITH_HNSWLIB / CAIRN_WITH_FAISS)";
      rep.runners.push_back(r);
      continue;
    }
    rep.runners.push_back(RunOne(*runner, o, d, work_dir));
  }
  if (own_work_dir) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir, ec);
  }
  return rep;
}

std::string FormatVectorBench(const VectorBenchOptions& o, const VectorBenchReport& r) {
  std::string s;
  s += fmt::format("cairn vector bench: {} x {} {}, {} queries, k={}, builds on {} threads, cairn kernels {}\n",
                   Commas(r.n), r.dim, vector::MetricName(o.metric), Commas(r.queries), o.k, o.threads,
                   r.kernels_isa);
  s += fmt::format("data: {}\n", r.data);
  s += fmt::format("ground truth: exact, {:.1f} s{}\n\n", r.ground_truth_seconds,
                   r.ground_truth_cached ? " (unfiltered part read from cache/file)" : "");
  for (const auto& x : r.runners) s += fmt::format("{:<12} {}\n", x.name, x.settings);
  s += "\n";
  s += fmt::format("{:<12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}\n", "index", "build s", "build MiB",
                   "anon MiB", "own MiB", "load MiB", "file MiB", "open s");
  for (const auto& x : r.runners) {
    if (!x.ok) {
      s += fmt::format("{:<12} failed: {}\n", x.name, x.error);
      continue;
    }
    s += fmt::format("{:<12} {:>9.2f} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8.3f}\n", x.name, x.build_seconds,
                     Mib(x.build_rss_bytes), Mib(x.build_anon_bytes),
                     x.own_bytes ? Mib(static_cast<int64_t>(x.own_bytes)) : "-", Mib(x.loaded_rss_bytes),
                     Mib(static_cast<int64_t>(x.file_bytes)), x.load_seconds);
  }
  s += "  (build/anon MiB: resident growth over the build, all pages / anonymous only; own: the index's count;\n"
       "   load MiB: resident growth from opening the saved file and running the sweep)\n";
  s += fmt::format("\nrecall@{} vs single-thread QPS ({})\n{:<12} {:>8} {:>8} {:>10} {:>9}\n", o.k, o.cpu_clock ? "per CPU second of the searching thread" : "wall clock", "index", "param",
                   "recall", "QPS", "mean us");
  for (const auto& x : r.runners) {
    for (const auto& p : x.sweep) {
      s += fmt::format("{:<12} {:>8} {:>8.4f} {:>10.0f} {:>9.1f}\n", x.name, fmt::format("{}={}", x.param_name == "ef" ? "ef" : "np", p.param),
                       p.recall, p.qps, p.mean_us);
    }
  }
  if (o.threads > 1) {
    s += fmt::format("\nconcurrent search ({} threads, at the first param with recall >= {}, else the most accurate)\n",
                     o.threads, o.recall_target);
    s += fmt::format("{:<12} {:>8} {:>12} {:>12} {:>8}\n", "index", "param", "QPS 1 thr", "QPS N thr", "scaling");
    for (const auto& x : r.runners) {
      if (!x.ok || x.concurrent_threads == 0) continue;
      s += fmt::format("{:<12} {:>8} {:>12.0f} {:>12.0f} {:>7.2f}x\n", x.name, x.concurrent_param,
                       x.qps_one_thread, x.qps_concurrent,
                       x.qps_one_thread > 0 ? x.qps_concurrent / x.qps_one_thread : 0);
    }
  }
  if (o.filter_selectivity > 0) {
    s += fmt::format("\nfiltered search, selectivity {:.2f}% (actual {:.2f}%)\n", 100 * o.filter_selectivity,
                     100 * r.filter_selectivity_actual);
    s += fmt::format("{:<12} {:>8} {:>8} {:>10}\n", "index", "ef", "recall", "QPS");
    for (const auto& x : r.runners) {
      if (!x.filter_supported) continue;
      for (const auto& p : x.filtered) {
        s += fmt::format("{:<12} {:>8} {:>8.4f} {:>10.0f}\n", x.name, p.param, p.recall, p.qps);
      }
    }
    for (const auto& x : r.runners) {
      if (x.filter_supported) {
        s += fmt::format("  {}: {}\n", x.name, x.filter_method);
      } else if (x.ok) {
        s += fmt::format("  {}: not measured (no filtered search in this runner)\n", x.name);
      }
    }
  }
  // Same-run ratios against hnswlib.
  const RunnerReport* c = Find(r, "cairn");
  const RunnerReport* q = Find(r, "cairn-sq8");
  const RunnerReport* h = Find(r, "hnswlib");
  s += fmt::format("\nsummary (same run)\n");
  auto qps_line = [&](const RunnerReport* x) {
    if (!x) return;
    const SweepPoint* b = BestAtRecall(x->sweep, o.recall_target);
    const SweepPoint* hb = h ? BestAtRecall(h->sweep, o.recall_target) : nullptr;
    if (!b) {
      s += fmt::format("  {}: no ef reached recall {}\n", x->name, o.recall_target);
      return;
    }
    s += fmt::format("  {}: {:.0f} QPS at recall {:.4f} (ef={})", x->name, b->qps, b->recall, b->param);
    if (hb && x != h) s += fmt::format("; hnswlib {:.0f} QPS (ef={}): {:.2f}x", hb->qps, hb->param, b->qps / hb->qps);
    s += "\n";
  };
  qps_line(c);
  qps_line(q);
  qps_line(h);
  if (c && h && h->build_seconds > 0) {
    s += fmt::format("  build time cairn / hnswlib: {:.2f}x ({:.1f} s vs {:.1f} s)\n", c->build_seconds / h->build_seconds,
                     c->build_seconds, h->build_seconds);
  }
  if (c && q && c->own_bytes > 0) {
    s += fmt::format("  memory cairn-sq8 / cairn: own {:.2f}x, anon build growth {:.2f}x\n",
                     static_cast<double>(q->own_bytes) / static_cast<double>(c->own_bytes),
                     c->build_anon_bytes > 0 ? static_cast<double>(q->build_anon_bytes) / c->build_anon_bytes : 0);
  }
  if (c && c->qps_one_thread > 0) {
    s += fmt::format("  cairn concurrent scaling on {} threads: {:.2f}x\n", o.threads, c->qps_concurrent / c->qps_one_thread);
  }
  return s;
}

nlohmann::json VectorBenchToJson(const VectorBenchOptions& o, const VectorBenchReport& r) {
  nlohmann::json j;
  j["benchmark"] = "vector";
  j["config"] = {{"n", r.n},
                 {"dim", r.dim},
                 {"metric", std::string(vector::MetricName(o.metric))},
                 {"queries", r.queries},
                 {"k", o.k},
                 {"ef", o.ef},
                 {"M", o.M},
                 {"ef_construction", o.ef_construction},
                 {"threads", o.threads},
                 {"seed", o.seed},
                 {"filter_selectivity", o.filter_selectivity},
                 {"recall_target", o.recall_target},
                 {"qps_clock", o.cpu_clock ? "thread_cpu" : "wall"}};
  j["data"] = r.data;
  j["kernels_isa"] = r.kernels_isa;
  j["generate_seconds"] = r.generate_seconds;
  j["ground_truth_seconds"] = r.ground_truth_seconds;
  j["ground_truth_cached"] = r.ground_truth_cached;
  j["filter_selectivity_actual"] = r.filter_selectivity_actual;
  auto points = [](const std::vector<SweepPoint>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& p : v) a.push_back({{"param", p.param}, {"recall", p.recall}, {"qps", p.qps}, {"mean_us", p.mean_us}});
    return a;
  };
  nlohmann::json runners = nlohmann::json::array();
  for (const auto& x : r.runners) {
    nlohmann::json e = {{"name", x.name}, {"settings", x.settings}, {"ok", x.ok}};
    if (!x.ok) {
      e["error"] = x.error;
      runners.push_back(e);
      continue;
    }
    e["param_name"] = x.param_name;
    e["build_seconds"] = x.build_seconds;
    e["build_rss_bytes"] = x.build_rss_bytes;
    e["build_anon_bytes"] = x.build_anon_bytes;
    e["loaded_rss_bytes"] = x.loaded_rss_bytes;
    e["loaded_anon_bytes"] = x.loaded_anon_bytes;
    e["own_bytes"] = x.own_bytes;
    e["file_bytes"] = x.file_bytes;
    e["load_seconds"] = x.load_seconds;
    e["sweep"] = points(x.sweep);
    if (x.concurrent_threads > 0) {
      e["concurrent"] = {{"param", x.concurrent_param},
                         {"threads", x.concurrent_threads},
                         {"qps_one_thread", x.qps_one_thread},
                         {"qps", x.qps_concurrent},
                         {"scaling", x.qps_one_thread > 0 ? x.qps_concurrent / x.qps_one_thread : 0}};
    }
    if (x.filter_supported) e["filtered"] = {{"method", x.filter_method}, {"sweep", points(x.filtered)}};
    const SweepPoint* b = BestAtRecall(x.sweep, o.recall_target);
    if (b) e["best_qps_at_target"] = {{"param", b->param}, {"recall", b->recall}, {"qps", b->qps}};
    runners.push_back(e);
  }
  j["indexes"] = runners;
  nlohmann::json summary = nlohmann::json::object();
  const RunnerReport* c = Find(r, "cairn");
  const RunnerReport* q = Find(r, "cairn-sq8");
  const RunnerReport* h = Find(r, "hnswlib");
  if (c && h) {
    const SweepPoint* cb = BestAtRecall(c->sweep, o.recall_target);
    const SweepPoint* hb = BestAtRecall(h->sweep, o.recall_target);
    if (cb && hb) summary["qps_ratio_cairn_vs_hnswlib_at_target"] = cb->qps / hb->qps;
    if (h->build_seconds > 0) summary["build_time_ratio_cairn_vs_hnswlib"] = c->build_seconds / h->build_seconds;
  }
  if (c && q && c->own_bytes > 0) {
    summary["memory_ratio_sq8_vs_float_own"] = static_cast<double>(q->own_bytes) / static_cast<double>(c->own_bytes);
    if (c->build_anon_bytes > 0) {
      summary["memory_ratio_sq8_vs_float_anon"] =
          static_cast<double>(q->build_anon_bytes) / static_cast<double>(c->build_anon_bytes);
    }
  }
  if (c && c->qps_one_thread > 0) summary["cairn_concurrent_scaling"] = c->qps_concurrent / c->qps_one_thread;
  j["summary"] = summary;
  return j;
}

}  // namespace cairn::bench
