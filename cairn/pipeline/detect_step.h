// The `detect` step of pipeline files: a cairn/detect detector over Rows.
//
//   steps:
//     - key_by: machine
//     - detect: {type: series, value: temperature, false_alarm_rate: 0.001, emit: anomalies}
//
// Common keys: `type` (the detector), `false_alarm_rate` (0..1 exclusive,
// default 0.001; rows are reported at score >= 1 - rate), `emit` (`anomalies`,
// the default, or `all`: every scored row), `cooldown` (at most one anomaly per
// key per this much event time, e.g. 1h; default: every one), `state_ttl` (drop
// the state of a key not seen for this long; default: keep). Each type adds its
// own keys:
//   series: value (an expression, usually a field; rows where it is null or not a
//           number are skipped), value_name (the word used in reasons; default:
//           the expression's text), warmup (records before scoring).
//
// Output rows: the key fields under their names, then `key` (the key's values
// joined by '/'; empty without key_by), `time` (event time, ms), `score`,
// `detector`, `value`, `reason`; with `emit: all` also `anomaly` (true when the
// row is reported as an anomaly; `reason` is empty otherwise).
//
// Keyed detectors (series) keep one state per key and run with the step's
// parallelism. Stream-wide detectors (edges, novelty, heavy hitters) keep one
// sketch for the whole stream: they run under a single key at parallelism 1
// and refuse key_by.
//
// Adding a detector type: one function that reads its keys, builds the
// detector and an extractor (Row -> Observation) and returns
// RowDetectorFor(type, stream_wide, detector, extractor, common); and one line
// in kKinds (detect_step.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/config.h"
#include "cairn/stream/pipeline.h"

namespace cairn::pipeline {

using RowDetectFunction = stream::KeyedProcessFunction<stream::Row, stream::Row, stream::Row>;

struct RowDetector {
  std::string type;                                          // "series", ...
  bool stream_wide = false;                                  // one state for the whole stream
  std::function<std::unique_ptr<RowDetectFunction>()> factory;  // one per subtask
};

// Builds the detector of a `detect` mapping (`detect` is that mapping, `keys`
// the key_by fields). Errors name the file, key and line.
absl::StatusOr<RowDetector> MakeRowDetector(const Config& detect, const std::vector<std::string>& keys);

}  // namespace cairn::pipeline
