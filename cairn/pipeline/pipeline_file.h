// Pipelines defined in YAML, run by `cairn run pipeline.yaml`.
//
//   name: press-temperatures
//   parallelism: 1                      # default for every step
//   checkpoint: {dir: /var/lib/cairn/ckpt, interval: 1s, keep: 3}
//   state: {backend: memory}            # or rocksdb, with dir:
//   dead_letter: rejected.jsonl         # malformed input (optional; else counted and logged)
//   source:
//     type: file                        # file | stdin | mqtt | kafka | http
//     path: data/readings.csv
//     format: csv                       # csv | jsonl
//     time_field: timestamp             # event time; absent = ingestion time
//     max_out_of_orderness: 2s
//     idle_timeout: 30s
//   steps:
//     - filter: temperature > 0
//     - set: {fahrenheit: temperature * 9 / 5 + 32}
//     - drop: [raw]
//     - key_by: machine
//       window: {type: tumbling, size: 1m}     # sliding: size, slide; session: gap; allowed_lateness
//       aggregate: {n: count(), avg: avg(temperature), p99: p99(temperature)}
//     - key_by: machine                        # alone: keys the next step
//     - detect: {type: series, value: temperature, false_alarm_rate: 0.001}
//   sink: {type: file, path: out.csv}          # file | stdout | mqtt | kafka
//   late: {type: file, path: late.jsonl}       # records later than the allowed lateness (optional)
//
// Steps: filter (expression), set (field: expression), drop / keep (field
// lists), rename (old: new), key_by (a field, a list of fields, or with
// `window`, `aggregate` or `detect` in the same step; alone, it keys the step
// after it), detect (anomaly detection, see detect_step.h). `aggregate` without
// `window` is a rolling aggregate per key (an updated row per input row). A
// window's output row holds the key fields, window_start and window_end (ms)
// and the aggregates. Every step may carry `name` and `parallelism`.
// Durations: 250ms, 10s, 5m, 2h, 1d (or a number of milliseconds).
// Every error names the file, the key and its line.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/base/config.h"
#include "cairn/stream/connector.h"
#include "cairn/stream/pipeline.h"

namespace cairn::pipeline {

struct RunOverrides {
  std::optional<std::string> checkpoint_dir;
  std::optional<int64_t> checkpoint_interval_ms;
  bool restore = true;
  std::optional<int> parallelism;
  // Programs that embed a pipeline file (`cairn demo`) may wrap or replace its
  // source and sink: each function receives the factory the file defines and
  // returns the one to use. The file's own must still be valid; the source's
  // watermark settings apply to whatever it returns.
  using SourceFactory = std::function<std::unique_ptr<stream::Source<stream::Row>>(int subtask)>;
  using SinkFactory = std::function<std::unique_ptr<stream::Sink<stream::Row>>(int subtask)>;
  std::function<SourceFactory(SourceFactory)> source;
  std::function<SinkFactory(SinkFactory)> sink;
};

class CompiledPipeline {
 public:
  stream::Pipeline& pipeline() { return *pipeline_; }
  // One line per source and sink: "source file:data.csv — exactly-once".
  const std::vector<std::string>& summary() const { return summary_; }
  stream::DeadLetterSink* dead_letter() { return dead_letter_.get(); }

 private:
  friend class Compiler;
  std::unique_ptr<stream::DeadLetterSink> dead_letter_;
  std::unique_ptr<stream::Pipeline> pipeline_;
  std::vector<std::string> summary_;
};

absl::StatusOr<std::unique_ptr<CompiledPipeline>> LoadPipelineFile(const std::string& path,
                                                                   const RunOverrides& overrides = {});
absl::StatusOr<std::unique_ptr<CompiledPipeline>> CompilePipeline(const Config& root,
                                                                  const RunOverrides& overrides = {});

// "250ms", "10s", "5m", "2h", "1d" or a plain number of milliseconds.
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

}  // namespace cairn::pipeline
