// `cairn bench nexmark`: the Nexmark queries on cairn's stream engine, with
// throughput per core and end-to-end latency.
//
// Throughput run: the generator runs as fast as the pipeline takes events
// (event time advances `event_rate` events per second of event time) with
// checkpoints every `checkpoint_interval`; events/s is events over wall time,
// events/s per core is events over the process's CPU time (all threads).
//
// Latency run: the source is throttled to `latency_rate` events/s of wall time
// and the generator's event time advances at the same rate, so event time t is
// ingested at wall time W0 + (t - T0). A result with event time t (a window's
// result carries end - 1; a stateless result its event's time) is then late by
// (now - W0) - (t - T0): for Q0-Q2 the time from an event's ingestion to its
// output, for windows the time from the watermark passing the window's end to
// the result. Latencies go into a KLL sketch; p50 and p99 are reported.
// Windows flushed by the end of the input (the final watermark) are not counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cairn::bench {

struct NexmarkOptions {
  std::vector<std::string> queries = {"q0"};  // q0..q8
  uint64_t events = 10'000'000;
  int parallelism = 1;
  int64_t checkpoint_interval_ms = 1000;  // 0 = no checkpoints
  uint64_t event_rate = 1'000'000;        // events per second of event time (throughput runs)
  bool latency = false;                   // also a latency run
  double latency_rate = 0;                // events/s for it; 0 = half the measured maximum
  double latency_seconds = 30;            // length of the latency run (wall time)
  uint64_t seed = 1;
};

struct NexmarkResult {
  std::string query;
  uint64_t events = 0;
  uint64_t output_rows = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  double events_per_second = 0;
  double events_per_core_second = 0;
  int64_t checkpoints = 0;
  // Latency run (when asked for).
  double latency_rate = 0;
  uint64_t latency_events = 0;
  double latency_p50_ms = -1;
  double latency_p99_ms = -1;
  double latency_max_ms = -1;
};

// Runs every query of `options`; progress lines go to stderr.
absl::StatusOr<std::vector<NexmarkResult>> RunNexmarkBench(const NexmarkOptions& options);
std::string FormatNexmarkBench(const NexmarkOptions& options, const std::vector<NexmarkResult>& results);
nlohmann::json NexmarkBenchToJson(const NexmarkOptions& options, const std::vector<NexmarkResult>& results);

}  // namespace cairn::bench
