#pragma once
// Per-key numeric time-series detector (sensor values, metrics).
//
// Combines, per key, in O(1) state:
//  * a robust online baseline of level and spread,
//  * seasonality (per time-of-day baselines) when the series shows it,
//  * change detection (level shifts and trend changes),
// and maps the combined surprise to a calibrated score (see detect.h).
//
// Usage:
//   SeriesDetector d;                       // defaults: one configuration for all series
//   SeriesState st;                         // one per key
//   Scored s = d.Update(st, {.key = "m7", .value = 87.1, .time = t});
//   if (s.score >= ThresholdFor(0.001)) log(d.Explain(st, obs, s));
// Thread-safety: the detector is immutable and shareable; a State is used by
// one thread at a time.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/detect/detect.h"

namespace cairn::detect {

struct SeriesConfig {
  // Name of the measured quantity, used in reasons ("temperature 87.1 is ...").
  std::string value_name = "value";
  // Records before the detector scores (it returns 0 while it learns).
  int64_t warmup = 150;
};

// Per-key state; fixed size (no per-record growth).
struct SeriesState {
  int64_t n = 0;
  EventTime last_time = 0;
  double mean = 0.0;
  double var = 0.0;
  // Set by Update for Explain: what the record was compared with.
  double expected = 0.0;
  double sigma = 0.0;

  size_t MemoryBytes() const { return sizeof(*this); }
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, SeriesState* out);
};

class SeriesDetector {
 public:
  static absl::StatusOr<SeriesDetector> Create(SeriesConfig config);
  SeriesDetector() = default;

  // Scores `obs.value` at `obs.time` for the series whose state is `st`, then
  // learns from it. Non-finite values score 0 and are not learned.
  Scored Update(SeriesState& st, const Observation& obs) const;
  // One sentence for the record just passed to Update.
  std::string Explain(const SeriesState& st, const Observation& obs, const Scored& scored) const;

  const SeriesConfig& config() const { return config_; }

 private:
  explicit SeriesDetector(SeriesConfig c) : config_(std::move(c)) {}
  SeriesConfig config_;
};

// Scores a whole series in order with a fresh state (CLI and evaluation).
std::vector<Scored> ScoreSeries(const SeriesDetector& d, std::span<const EventTime> times,
                                std::span<const double> values);

}  // namespace cairn::detect
