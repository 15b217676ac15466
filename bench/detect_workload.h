// bench/detect_workload.h — the `cairn bench detect` workload.
//
// Runs each anomaly detector of cairn/detect over a generated stream held in
// memory, one thread, and reports records/s per core (records over the
// thread's CPU time; the median of `repeats` runs, each from fresh state) and
// per wall-clock second, nanoseconds per record, the memory the states hold
// (total and per key) and the share of records scored at or above 0.999.
// Parsing is excluded: every input is generated before the clock starts, with
// keys as indexes into a vector of states (the keyed-state lookup of the
// engine is not the detector's cost) and items already hashed (UpdateHash).
//
// The stream: `records` records over `keys` keys, the key of each record
// uniform at random (so with many keys every record's state is a cache miss,
// the pessimistic case), event time advancing 100,000 records per second.
//   series        value: a per-key daily-ish sine plus noise; SeriesDetector
//                 defaults, one SeriesState per key.
//   cardinality   item: one of 64 usual destinations of the key (2% of records
//                 a random one); 1 min window, 4 sub-windows, precision 6.
//   drift         value: per-key normal; 1 min windows (about 60 values per
//                 key and window with 100,000 keys), k = 100, grid 64.
//   novelty       item: Zipf(1.1) over 10 M items; filter sized for `records`
//                 items at 1%; one state for the stream.
//   heavy_hitters item: Zipf(1.1) over 1 M items; 10 s windows, top 20,
//                 capacity 1024, 4 reference windows; one state.
// Single-threaded; not re-entrant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cairn::bench {

struct DetectBenchOptions {
  uint64_t records = 10'000'000;  // records per measurement
  uint64_t keys = 100'000;        // keys of the per-key detectors
  int repeats = 3;                // the median of this many runs is reported
  uint64_t seed = 1;
  std::vector<std::string> only;  // run only these detectors (empty = all)
};

struct DetectBenchRow {
  std::string detector;     // "series", "cardinality", ...
  std::string params;       // what was configured
  uint64_t keys;            // states held (1 for the stream-wide detectors)
  double records_per_sec;   // median, per CPU second of the measuring thread
  double wall_records_per_sec;  // median, per wall-clock second
  double bytes_total;       // memory held by all states after a run
  double bytes_per_key;     // bytes_total / keys
  double alarm_share;       // share of records scored >= 0.999
  double target_records_per_sec;  // the project's speed goal
};

// Runs the workload; progress lines go to stderr.
std::vector<DetectBenchRow> RunDetectBench(const DetectBenchOptions& options);

std::string FormatDetectBench(const DetectBenchOptions& options, const std::vector<DetectBenchRow>& rows);
nlohmann::json DetectBenchToJson(const DetectBenchOptions& options, const std::vector<DetectBenchRow>& rows);

}  // namespace cairn::bench
