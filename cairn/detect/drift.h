#pragma once
// Distribution drift of a per-key value: this hour's temperatures of machine
// m7 are not distributed like last hour's (a shifted level, a wider spread, a
// new mode), even when no single reading is extreme.
//
// Windows: tumbling windows of `window_ms` event time per key. The current
// window's values go into a KLL sketch (cairn/sketch/kll.h, parameter k); when
// it closes with at least `min_samples` values it becomes the reference, kept
// only as `grid` of its quantiles (ranks (i - 1/2) / grid) with its CDF at
// each, its median, size and lag-1 autocorrelation; its sketch is dropped.
//
// Evaluation, every `eval_every` values of a key and when its window closes:
// D = max over the grid points s of |F_cur(s) - F_ref(s)|, the Kolmogorov–
// Smirnov distance between the current window and the reference evaluated at
// the reference's quantiles (it can miss at most the reference's mass between
// two grid points, 1/grid, so it errs low). Records that do not trigger an
// evaluation return score 0, so a drift is reported once per evaluation, not
// once per record.
//
// Calibration: under "same distribution, independent values" sqrt(n_e) D
// tends to Kolmogorov's distribution, n_e = n m / (n + m); p = P(K > lambda)
// with Stephens' small-sample form lambda = (sqrt(n_e) + 0.12 + 0.11 /
// sqrt(n_e)) D, and score = 1 - p. Two things make the raw window sizes the
// wrong n and m:
//  * Sensor values are autocorrelated: n readings of a slowly moving value
//    carry the information of far fewer independent ones, and with the raw n
//    every ordinary wander would look like drift. Each window's size is
//    replaced by its effective size n (1 - rho) / (1 + rho), rho its lag-1
//    autocorrelation (clamped to [0, 0.99]) — the AR(1) variance inflation of
//    a mean, which bounds that of the empirical CDF (the autocorrelation of
//    indicators is at most that of the values for Gaussian AR(1)), so the test
//    stays conservative.
//  * The sketches have rank error: each adds a variance sigma^2 to the
//    difference of the CDFs, sigma = KllSketch::NormalizedRankError(k) / 2.5
//    (the published error is a 99th percentile) once the sketch compacts. So
//    1 / n_e = 1 / n_eff + 1 / m_eff + sigma_cur^2 + sigma_ref^2: with huge
//    windows the test does not become arbitrarily sensitive to sketch noise.
// `raw` is D.
//
// Cost: Update is a KLL update and four floating-point operations; an
// evaluation inside a window copies the current sketch (so that its sorted view
// does not stay in the state) and reads its CDF at the grid points, O(k log k +
// grid log k), a few microseconds, once per eval_every values; a window close
// reads the closing sketch directly and builds the new reference's grid from
// the same sorted view. Memory per key: one KLL sketch (0.4 KB + 4 bytes per
// retained value, about 300 at k = 100) + 8 * grid bytes + 250 bytes: 1.5 to
// 2.5 KB with the defaults (MemoryBytes()).
//
// Thread-safety: the detector is immutable and shareable; a State is used by
// one thread at a time.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/detect/detect.h"
#include "cairn/sketch/kll.h"

namespace cairn::detect {

struct DriftConfig {
  // Tumbling window length, ms of event time.
  EventTime window_ms = 3'600'000;
  // KLL accuracy parameter (8..2000): rank error about 2.3 / k.
  int k = 100;
  // Reference quantiles kept and compared (8..1024).
  int grid = 64;
  // Values of a key between evaluations inside a window (>= 16).
  int64_t eval_every = 1024;
  // Values both windows need before they are compared (>= 2).
  int64_t min_samples = 30;
  // "temperature distribution of m7 in the last 1 h ...".
  std::string value_name = "value";
  uint64_t seed = 0x6472696674ULL;
};

// The latest evaluation, for Explain.
struct DriftEvaluation {
  double distance = 0.0;  // KS distance D
  double p = 1.0;
  uint64_t n = 0;          // values of the evaluated window (so far)
  uint64_t reference_n = 0;
  double median = 0.0;
  double reference_median = 0.0;
  bool closed = false;    // the evaluated window had closed
  bool adjacent = true;   // the reference is the window right before it
};

// One key's state. Default-constructed empty; the sketch is made by the first Update.
struct DriftState {
  std::optional<sketch::KllSketch<float>> current;
  int64_t epoch = 0;
  EventTime window_start = 0;
  EventTime window_end = 0;
  int64_t since_eval = 0;
  // Lag-1 autocorrelation sums of the current window, on values shifted by its first.
  double shift = 0.0;
  double sum = 0.0;
  double sum_sq = 0.0;
  double sum_lag = 0.0;
  double previous = 0.0;
  // The reference window.
  bool has_reference = false;
  int64_t reference_epoch = 0;
  uint64_t reference_n = 0;
  double reference_rho = 0.0;
  double reference_median = 0.0;
  double reference_sigma = 0.0;  // rank error of its sketch (0 while exact)
  std::vector<float> grid;      // reference quantiles, strictly increasing
  std::vector<float> grid_cdf;  // reference CDF at each
  DriftEvaluation last;

  size_t MemoryBytes() const {
    return sizeof(*this) + (current ? current->MemoryBytes() - sizeof(sketch::KllSketch<float>) : 0) +
           (grid.capacity() + grid_cdf.capacity()) * sizeof(float);
  }
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, DriftState* out);
};

class DriftDetector {
 public:
  static constexpr std::string_view kName = "drift";
  static absl::StatusOr<DriftDetector> Create(DriftConfig config);

  // Adds obs.value at obs.time to its key's current window; returns the
  // evaluation's score on the records that trigger one (every eval_every values
  // and the first value after a window closes), else 0. Non-finite values are
  // ignored. Values older than the current window count towards it.
  Scored Update(DriftState& st, const Observation& obs) const;

  // "temperature distribution of m7 in the last 1 h differs from the previous
  // 1 h (KS 0.41, median 74.0 -> 81.3)", for the latest evaluation.
  std::string Explain(const DriftState& st, const Observation& obs, const Scored& scored) const;

  const DriftConfig& config() const { return config_; }

 private:
  DriftDetector(DriftConfig c, sketch::KllSketch<float> empty);
  void Reset(DriftState& st, int64_t epoch) const;
  void StartWindow(DriftState& st, int64_t epoch) const;
  // Compares the current window with the reference (if both are big enough)
  // and records it in st.last; the score, or none.
  std::optional<Scored> Evaluate(DriftState& st, bool closed) const;
  void CloseWindow(DriftState& st, int64_t epoch) const;
  double Rho(const DriftState& st) const;
  double SketchSigma(const sketch::KllSketch<float>& s) const;

  DriftConfig config_;
  sketch::KllSketch<float> empty_;
};

}  // namespace cairn::detect
