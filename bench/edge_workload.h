// bench/edge_workload.h — the `cairn bench edges` workload: a labelled edge
// stream with injected bursts, and the edge detector measured on it.
//
// The generator is seeded and deterministic: the same options give the same
// records (SplitMix64 and cairn's ZipfGenerator, whose exp/log make streams
// reproducible per platform's libm, in practice everywhere glibc runs). Normal traffic:
// `nodes` nodes; sources drawn by a Zipf(1.0) law, each source talking to its
// own 16 destinations (themselves Zipf-popular) with Zipf(1.0) preference, and
// 2% of records to a uniformly random destination; about `rate` records per
// second of event time (±5% per tick), spread uniformly over each second.
// After a quiet first `quiet_ticks` ticks (fewer, down to 3, when the stream
// is shorter than 4 * quiet_ticks ticks), each tick starts a burst with
// probability `burst_probability`, lasting 1..4 ticks at 50..1000 records per
// tick (log-uniform), of one of three kinds:
//   edge burst   one (src, dst) pair, usual or new, repeated;
//   fan-out      one source to many random destinations (a scan);
//   fan-in       many random sources to one destination (a flood).
// Burst nodes are uniform over all nodes (mostly quiet ones) 80% of the time,
// Zipf-popular (busy ones, harder) 20%. Every record of a burst is labelled 1.
//
// Single-threaded; not re-entrant.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "cairn/detect/edges.h"

namespace cairn::bench {

struct EdgeStreamOptions {
  uint64_t edges = 4'000'000;  // records in all (normal + bursts), at least
  uint64_t seed = 1;
  uint32_t nodes = 20'000;
  uint32_t rate = 20'000;  // normal records per second of event time
  int quiet_ticks = 20;
  double burst_probability = 0.15;
  int64_t start_ms = 1'700'000'000'000;  // event time of the first record
};

enum class EdgeKind : uint8_t { kNormal = 0, kEdgeBurst = 1, kFanOut = 2, kFanIn = 3 };

struct EdgeRecord {
  uint32_t src;
  uint32_t dst;
  int64_t time_ms;
  EdgeKind kind;
  bool anomalous() const { return kind != EdgeKind::kNormal; }
};

// The stream, in event-time order.
std::vector<EdgeRecord> GenerateEdgeStream(const EdgeStreamOptions& options);

// Writes "src,dst,time,label" (header line, time in unix milliseconds).
absl::Status WriteEdgeCsv(const std::vector<EdgeRecord>& records, const std::string& path);

// Exact area under the ROC curve: the probability that a random positive
// scores above a random negative, ties counting one half (Mann-Whitney U with
// average ranks). NaN when either class is empty. O(n log n).
double RocAuc(std::span<const double> scores, std::span<const uint8_t> labels);

struct EdgeBenchOptions {
  EdgeStreamOptions stream;
  detect::EdgeConfig config;  // cairn's detector
  int repeats = 3;             // throughput: the median of this many runs
  bool speed = true;           // measure throughput (else accuracy only)
  bool baselines = true;       // also run the MIDAS-R / MIDAS-F references
  std::string write_path;      // also write the stream as CSV
};

struct EdgeBenchResult {
  std::string name;           // "cairn edges", "MIDAS-R (reference)", ...
  double auc = 0;             // of the scores
  double auc_raw = 0;         // of the raw statistic (cairn only)
  double auc_kind[3] = {};    // per burst kind vs all normal records
  double records_per_sec = 0;         // pre-hashed ids, median
  double records_per_sec_strings = 0; // string ids hashed in Update (cairn only)
  double records_per_sec_batch = 0;   // pre-hashed ids through UpdateBatch (cairn only)
  double bytes = 0;
  // Fraction of normal records at or above ThresholdFor(f), f = 1e-2, 1e-3, 1e-4.
  double false_alarms[3] = {};
};

struct EdgeBenchReport {
  uint64_t records = 0;
  uint64_t anomalous = 0;
  uint64_t ticks = 0;
  double generate_seconds = 0;
  std::vector<EdgeBenchResult> results;
};

absl::StatusOr<EdgeBenchReport> RunEdgeBench(const EdgeBenchOptions& options);
std::string FormatEdgeBench(const EdgeBenchReport& report);
nlohmann::json EdgeBenchToJson(const EdgeBenchOptions& options, const EdgeBenchReport& report);

}  // namespace cairn::bench
