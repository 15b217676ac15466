#pragma once
// Per-key numeric time-series detector (sensor values, metrics).
//
// Per record, three surprise measures, each turned into a tail z-score
// ("sigma") against the series' own history, so one configuration fits
// series of any scale:
//  * level: how extreme the value is among all values seen so far (rank in a
//    uniform reservoir sample, refined toward the exact min/max, plus a linear
//    extrapolation in IQR units beyond the extremes);
//  * season: how far the value is from the usual level at this hour of the
//    day (24 baselines) and at this hour of the week (168 baselines), each
//    residual ranked against the series' own past residuals, so series without
//    such a pattern are not penalized. A slot is scored from its third visit
//    on, and a residual sample younger than `season_ramp` residuals counts in
//    proportion: a baseline of one day, or a tail that has not yet met the
//    pattern's ordinary misses, would raise false alarms;
//  * change: a two-sided CUSUM of the value standardized against a recent
//    baseline (an exponentially weighted mean and mean absolute deviation whose
//    updates are clipped, so a spike barely moves them while a lasting shift is
//    absorbed within tens of records). It grows on sustained shifts that no
//    single point reveals, and it settles once the series has moved: a second
//    shift later on counts as much as the first.
// The largest (weighted) of the three is the record's surprise. The surprise
// is standardized against its own running mean and spread (winsorized, so one
// incident does not blind the detector) and mapped to a calibrated score
// score = 1 − 2·Q(z) (Q the normal tail), z discounted while the series is
// young (new extremes are common then). After an alarm (z above
// `alarm_sigma`) the same episode is not re-reported for `suppress_records`
// records unless it becomes `escalation` times more surprising: one incident,
// one alert.
//
// Memory: fixed, SeriesState::MemoryBytes() (1,792 B) per key.
#include <array>
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
  // Weights of the season and change measures relative to the level measure.
  double season_weight = 0.5;
  double week_weight = 0.5;
  double change_weight = 0.7;
  // Smoothing of the hour-of-day and hour-of-week baselines (per visit).
  double season_alpha = 0.4;
  double season_alpha_week = 0.6;
  // Earlier visits of an hour slot (runs of consecutive records in it) before
  // its residuals are scored, 0 to 2. Within its first visit a slot's level only
  // follows that hour's own readings, and after one earlier visit it is a single
  // day's (week's) level: residuals against either look larger than they are.
  int season_visits = 2;
  // Residuals a seasonal sample must have seen before its z counts fully (it
  // counts in proportion until then); 0 counts it fully at once.
  int64_t season_ramp = 2000;
  // CUSUM slack (in robust sigmas) and per-record decay.
  double cusum_slack = 1.0;
  double cusum_decay = 0.98;
  // Weight of a record in the recent baseline that the CUSUM measures against,
  // and the clip of a record's update of it, in recent deviations. 0 measures
  // against the median and IQR of all history instead (the earlier design):
  // after one lasting shift that baseline lags for as long as the old level
  // dominates the history, and the CUSUM's own history then hides a later shift.
  double change_alpha = 0.03;
  double change_clip = 5.0;
  // Weight of a record in the running standardization of the surprise.
  double calibration_alpha = 0.02;
  // Alarm level (standardized surprise), suppression length and escalation factor.
  double alarm_sigma = 5.0;
  int64_t suppress_records = 300;
  double escalation = 2.0;
  // Discount of a young series' surprise: z is multiplied by `young_floor` at
  // the first record, rising linearly to 1 at `young_records`.
  int64_t young_records = 2000;
  double young_floor = 0.5;
};

// A uniform sample of a series' history (Vitter's reservoir), kept sorted for
// rank queries, plus the exact extremes and count. The sample is stored as
// 16-bit codes on an affine grid that covers the values seen with some headroom
// (re-gridded when a value falls outside): ranks and quantiles keep 1/65536 of
// the range, and a full sample of 128 takes four cache lines instead of eight.
template <int N>
struct RankReservoir {
  static constexpr int kSize = N;
  int32_t size = 0;
  int64_t count = 0;
  double min = 0.0;
  double max = 0.0;
  double lo = 0.0;    // value of code -32768
  double step = 0.0;  // value per code unit; 0 until the first value
  std::array<int16_t, kSize> code{};

  double Value(int i) const { return lo + (static_cast<double>(code[i]) + 32768.0) * step; }
  // Tail z-score ("sigma") of x among the values seen; `extrapolate` sigmas per
  // IQR (at least `scale_floor`) beyond the extremes. 0 until 10 values were seen.
  double TailZ(double x, double extrapolate, double scale_floor) const;
  double Quantile(double q) const;
  void Add(double x, uint64_t random);

 private:
  int Encode(double x) const;  // nearest code, clamped
  void Regrid(double x);       // widen the grid so that x fits
};

// Per-key state; fixed size (no per-record growth). Laid out for the memory
// system: everything a record reads except the two slot levels of its hour sits
// in the first lines (Prefetch fetches exactly those).
struct alignas(64) SeriesState {
  static constexpr int kHours = 24;
  static constexpr int kWeekHours = 168;
  int64_t n = 0;
  EventTime last_time = 0;
  uint64_t rng = 0x5eed5eed5eedull;
  double cusum_up = 0.0, cusum_down = 0.0;
  double recent_mean = 0.0, recent_dev = 0.0;  // the change measure's baseline
  double cal_mean = 0.0, cal_var = 0.0;
  int64_t cal_n = 0;
  int64_t alarm_at = -(int64_t{1} << 40);
  double alarm_z = 0.0;
  // Visits per hour-of-day / hour-of-week slot, saturating at 3 (2 bits each).
  uint64_t hour_seen = 0;
  std::array<uint64_t, 6> week_seen{};
  // What the last Update saw, for Explain.
  uint8_t cause = 0;  // 0 none, 1 level, 2 daily season, 3 change, 4 weekly season
  uint8_t hour = 0;
  uint8_t week_hour = 0;  // 0 = Monday 00:00 UTC
  bool beyond = false;     // the value was outside everything seen before
  double cause_z = 0.0;    // the winning measure's tail z
  double expected = 0.0;   // what the value was compared with (median or hourly baseline)
  double previous_extreme = 0.0;
  // The level sample decides "never seen before", so it is the larger one; the
  // residual samples only rank against their own history.
  RankReservoir<128> level;
  RankReservoir<64> season, change, week;
  std::array<float, kHours> hour_mean{};
  std::array<float, kWeekHours> week_mean{};

  int HourSeen(int h) const { return static_cast<int>((hour_seen >> (2 * h)) & 3); }
  int WeekSeen(int wh) const { return static_cast<int>((week_seen[wh / 32] >> (2 * (wh % 32))) & 3); }
  void MarkHourSeen(int h) {
    if (HourSeen(h) < 3) hour_seen += uint64_t{1} << (2 * h);
  }
  void MarkWeekSeen(int wh) {
    if (WeekSeen(wh) < 3) week_seen[wh / 32] += uint64_t{1} << (2 * (wh % 32));
  }

  size_t MemoryBytes() const { return sizeof(*this); }
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, SeriesState* out);
};

class SeriesDetector {
 public:
  using State = SeriesState;
  static constexpr std::string_view kName = "series";

  static absl::StatusOr<SeriesDetector> Create(SeriesConfig config);
  SeriesDetector() = default;

  // Scores `obs.value` at `obs.time` for the series whose state is `st`, then
  // learns from it. Non-finite values score 0 and are not learned.
  Scored Update(SeriesState& st, const Observation& obs) const;
  // Asks the memory system for the parts of `st` that Update(st, {.., time}) will
  // read (not the whole state: most of the 168 weekly slots stay cold). Callers
  // that know the next records, such as a batch loop, call it a few records ahead
  // so a large key set costs memory bandwidth rather than latency.
  static void Prefetch(const SeriesState& st, EventTime time);
  // One sentence for the record just passed to Update.
  std::string Explain(const SeriesState& st, const Observation& obs, const Scored& scored) const;

  const SeriesConfig& config() const { return config_; }

 private:
  explicit SeriesDetector(SeriesConfig c)
      : config_(std::move(c)),
        season_ramp_(config_.season_ramp > 0 ? 1.0 / static_cast<double>(config_.season_ramp) : 1e300) {}
  SeriesConfig config_;
  double season_ramp_ = 1.0 / static_cast<double>(SeriesConfig{}.season_ramp);  // 1 / season_ramp (huge for 0)
};

// Scores a whole series in order with a fresh state (CLI and evaluation).
std::vector<Scored> ScoreSeries(const SeriesDetector& d, std::span<const EventTime> times,
                                std::span<const double> values);

}  // namespace cairn::detect
