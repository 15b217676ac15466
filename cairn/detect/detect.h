#pragma once
// cairn/detect — real-time anomaly detectors built on cairn/sketch.
//
// Contract shared by every detector:
//  * A detector is a small immutable object holding its configuration; all that
//    changes lives in a separate `State` value (one per key, or one per stream
//    for the stream-wide sketch detectors). `State` is serializable (members
//    Encode/Decode, see cairn/stream/record.h Serde), so the stream engine keeps
//    it as ordinary keyed state and checkpoints it like any other.
//  * Memory per State is O(1) or bounded by sketch sizes fixed in the config;
//    `State::MemoryBytes()` reports it.
//  * `Update(State&, const Observation&)` scores one observation in O(1)
//    (amortized) time and never allocates on the hot path for the sketch
//    detectors. It returns a `Scored`; building the human-readable reason is a
//    separate, slower call (`Explain`) made only for records that are reported.
//  * Scores are calibrated to [0, 1]: score = 1 − p, where p estimates how often
//    an observation at least this surprising occurs while the stream behaves
//    as it has so far. A user who accepts a false-alarm rate f (fraction of
//    normal records flagged) reports records with score ≥ 1 − f
//    (`ThresholdFor(f)`). Detectors return 0 while they are still warming up.
//  * Detectors are deterministic: the same input in the same order gives the
//    same scores (seeds are part of the config).
//
// Detectors (one header each):
//   series.h        per-key numeric time series (baseline, seasonality, change)
//   edges.h         (src, dst, time) edge streams: bursts of an edge or a node
//   cardinality.h   distinct-count surges per key (HyperLogLog, sliding windows)
//   heavy_hitters.h items jumping far up the top-k ranking
//   novelty.h       items never seen before (Bloom filter)
//   drift.h         distribution drift of a per-key value (KLL, Kolmogorov–Smirnov)
// Running them as stream operators: operator.h.

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/stream/record.h"

namespace cairn::detect {

using stream::EventTime;

// One input record as the detectors see it. Which fields a detector reads:
//   series, drift:        key, value, time
//   edges:                key (= source node), item (= destination node), time
//   cardinality:          key, item (the element counted distinct per key), time
//   heavy_hitters, novelty: item, time
struct Observation {
  std::string_view key;
  std::string_view item;
  double value = 0.0;
  EventTime time = 0;
};

// What Update returns. `score` is the calibrated score in [0, 1]; `raw` is the
// detector's uncalibrated statistic (sigma, burst chi-square, KS distance, ...)
// kept for explanations and benchmarks.
struct Scored {
  double score = 0.0;
  double raw = 0.0;
};

// One reported anomaly, as detectors emit it into a stream.
struct Anomaly {
  std::string key;       // the series key, source node, item, ...
  EventTime time = 0;    // event time of the observation that fired
  double score = 0.0;    // calibrated, in [0, 1]
  std::string detector;  // "series", "edges", "cardinality", "heavy_hitters", "novelty", "drift"
  double value = 0.0;    // the observed value (series/drift) or count/estimate
  std::string reason;    // one sentence a person can act on

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Anomaly* out);
};

// The report threshold for an accepted false-alarm rate f in (0, 1).
inline double ThresholdFor(double false_alarm_rate) { return 1.0 - false_alarm_rate; }

}  // namespace cairn::detect
