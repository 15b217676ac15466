// bench/vector_bench.h — `cairn vector bench`: cairn's HNSW (float and SQ8),
// hnswlib and FAISS (HNSW, IVF-PQ) built, saved, reloaded and searched on the same
// data in one process, one after another.
//
// Per index: build time on `threads` threads; memory (the process's resident-set
// growth while building, the growth when the saved index is opened and searched,
// and the index's own byte count where it reports one); file size and open time;
// recall@k against exact ground truth versus single-thread QPS for each ef (nprobe
// for IVF-PQ); QPS on `threads` concurrent searchers at one ef and its scaling over
// one thread; and filtered search at a given selectivity (a pseudo-random attribute
// per point) — recall against the exact filtered neighbours and QPS.
//
// Runs single-threaded apart from the builds and the concurrent-search step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "bench/vector_workload.h"

namespace cairn::bench {

struct VectorBenchOptions {
  size_t n = 1'000'000;
  size_t dim = 128;
  vector::Metric metric = vector::Metric::kL2;
  size_t queries = 10'000;
  size_t k = 10;
  std::vector<size_t> ef = {16, 32, 64, 128, 256};
  size_t M = 16;
  size_t ef_construction = 200;
  int threads = 2;
  uint64_t seed = 42;
  EmbeddingOptions generator;   // dim/normalize/seed are set from the fields above
  std::string base_file;        // .fvecs/.bvecs instead of generated data
  std::string query_file;
  std::string gt_file;          // .ivecs; computed (and cached) when empty
  std::string cache_dir;        // ground-truth cache for generated data; "" = default
  std::string work_dir;         // where indexes are saved for the load step; "" = a temp dir
  std::vector<std::string> only;  // cairn, cairn-sq8, hnswlib, faiss-hnsw, faiss-ivfpq; empty = all
  double filter_selectivity = 0.01;  // 0 = skip filtered search
  double recall_target = 0.95;       // the concurrent step runs at the first ef reaching it
  bool progress = true;              // progress lines on stderr
  // Single-thread QPS from the searching thread's CPU time (true) or wall time.
  // CPU time keeps the figure meaningful on a machine shared with other work; on
  // an idle machine the two agree. The concurrent step always uses wall time.
  bool cpu_clock = true;
};

struct SweepPoint {
  size_t param = 0;     // ef or nprobe
  double recall = 0;
  double qps = 0;
  double mean_us = 0;
};

struct RunnerReport {
  std::string name;
  std::string settings;  // "M=16 efc=200", compile flags, library version
  std::string param_name = "ef";
  bool ok = true;
  std::string error;
  double build_seconds = 0;
  // Resident growth (all pages, and anonymous pages only: mapped files excluded).
  int64_t build_rss_bytes = 0;    // over the build
  int64_t build_anon_bytes = 0;
  int64_t loaded_rss_bytes = 0;   // from opening the saved index and searching it
  int64_t loaded_anon_bytes = 0;
  uint64_t own_bytes = 0;         // the index's own count (0 = not reported)
  uint64_t file_bytes = 0;
  double load_seconds = 0;
  std::vector<SweepPoint> sweep;
  // Concurrent search.
  size_t concurrent_param = 0;
  int concurrent_threads = 0;
  double qps_one_thread = 0;
  double qps_concurrent = 0;
  // Filtered search.
  bool filter_supported = false;
  std::string filter_method;
  std::vector<SweepPoint> filtered;
};

struct VectorBenchReport {
  std::string data;  // description of the data set
  size_t n = 0, dim = 0, queries = 0;
  double generate_seconds = 0;
  double ground_truth_seconds = 0;
  bool ground_truth_cached = false;
  double filter_selectivity_actual = 0;
  std::string kernels_isa;
  std::vector<RunnerReport> runners;
};

// One index under test. Build/Save/Drop/Load/SetSearchParam are called from one
// thread; Search and SearchFiltered from several at once (after SetSearchParam).
class AnnRunner {
 public:
  virtual ~AnnRunner() = default;
  virtual std::string name() const = 0;
  virtual std::string settings() const = 0;
  virtual std::string param_name() const { return "ef"; }
  virtual std::vector<size_t> SweepParams(const VectorBenchOptions& o) const { return o.ef; }
  // `progress(done)` may be called from any build thread with the vectors added so far.
  virtual absl::Status Build(const VectorSet& base, int threads, const std::function<void(size_t)>& progress) = 0;
  virtual uint64_t OwnBytes() const { return 0; }
  // Writes the index into `dir` (an empty directory); returns the bytes written.
  virtual absl::StatusOr<uint64_t> Save(const std::string& dir) = 0;
  virtual void Drop() = 0;  // frees the index
  virtual absl::Status Load(const std::string& dir) = 0;
  virtual void SetSearchParam(size_t param) = 0;
  virtual absl::Status Search(const float* query, size_t k, std::vector<uint64_t>* ids) const = 0;
  // Filtered search (ids with allowed[id] != 0; `allowed_ids` lists them); same ef.
  virtual bool SupportsFilter() const { return false; }
  virtual std::string FilterMethod() const { return ""; }
  virtual absl::Status SearchFiltered(const float* query, size_t k, std::span<const uint8_t> allowed,
                                      std::span<const uint64_t> allowed_ids, std::vector<uint64_t>* ids) const {
    (void)query, (void)k, (void)allowed, (void)allowed_ids, (void)ids;
    return absl::UnimplementedError("no filtered search");
  }
};

// Factories. The baselines are null when the build left them out (CMake options).
std::unique_ptr<AnnRunner> MakeCairnRunner(const VectorBenchOptions& o, bool sq8);
std::unique_ptr<AnnRunner> MakeHnswlibRunner(const VectorBenchOptions& o);
std::unique_ptr<AnnRunner> MakeFaissHnswRunner(const VectorBenchOptions& o);
std::unique_ptr<AnnRunner> MakeFaissIvfPqRunner(const VectorBenchOptions& o);
// How each baseline was compiled (for the report).
std::string HnswlibBuildNote();
std::string FaissBuildNote();

absl::StatusOr<VectorBenchReport> RunVectorBench(const VectorBenchOptions& options);
std::string FormatVectorBench(const VectorBenchOptions& options, const VectorBenchReport& report);
nlohmann::json VectorBenchToJson(const VectorBenchOptions& options, const VectorBenchReport& report);

// Resident set size of this process, bytes: all pages (/proc/self/statm) and the
// anonymous ones (RssAnon of /proc/self/status); 0 where unavailable.
int64_t ResidentBytes();
int64_t ResidentAnonBytes();

}  // namespace cairn::bench
