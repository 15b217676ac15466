// bench/sketch_workload.h — the `cairn bench sketch` workload.
//
// Runs every sketch over the same generated stream, one thread, and measures
// updates/s and queries/s with 64-bit and string keys, the bytes each holds and
// its accuracy, next to an exact baseline (absl::flat_hash_map/set, sorting) on
// the same stream. Single-threaded; not re-entrant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cairn::bench {

struct SketchBenchOptions {
  uint64_t n = 10'000'000;       // updates per measurement
  int repeats = 3;               // the median of this many runs is reported
  uint64_t seed = 1;
  std::vector<std::string> only;  // run only these sketches (empty = all)
};

struct SketchBenchRow {
  std::string sketch;      // "bloom", "hll", ...
  std::string params;      // "10M keys, 1% fpr"
  std::string keys;        // "u64" or "string"
  double updates_per_sec;  // median
  double queries_per_sec;  // median, 0 when not applicable
  double bytes;            // memory held by the structure
  std::string accuracy_metric;  // "fpr", "relative error", ...
  double accuracy;
  double target_updates_per_sec;  // 0 when no speed goal is set
  double target_queries_per_sec;  // 0 when no speed goal is set
  bool exact;              // the exact baseline row
};

// Runs the workload; progress lines go to stderr.
std::vector<SketchBenchRow> RunSketchBench(const SketchBenchOptions& options);

// A readable table, exact rows under their sketch with speed and memory ratios.
std::string FormatSketchBench(const std::vector<SketchBenchRow>& rows);
nlohmann::json SketchBenchToJson(const SketchBenchOptions& options,
                                 const std::vector<SketchBenchRow>& rows);

}  // namespace cairn::bench
