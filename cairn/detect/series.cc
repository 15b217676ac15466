#include "cairn/detect/series.h"

#include <algorithm>
#include <cmath>

#include "fmt/format.h"

namespace cairn::detect {
namespace {

// z with P(Z > z) = p for p in (0, 0.5]: Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4).
double NormalTailInverse(double p) {
  if (p >= 0.5) return 0.0;
  const double t = std::sqrt(-2.0 * std::log(p));
  return t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
}

uint64_t NextRandom(uint64_t& s) {  // SplitMix64 step
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Calibrated score for a standardized surprise z: 1 − 2·Q(z). Beyond 7 sigma
// the normal tail underflows double precision next to 1, so the tail continues
// as a slow hyperbola: scores stay strictly ordered for any finite z.
double ScoreOf(double z) {
  if (!(z > 0.0)) return 0.0;
  constexpr double kKnee = 7.0;
  const double p = z <= kKnee ? std::erfc(z / std::sqrt(2.0)) : std::erfc(kKnee / std::sqrt(2.0)) / (1.0 + z - kKnee);
  return 1.0 - p;
}

constexpr double kLevelExtrapolation = 30.0;   // sigmas per IQR beyond the extremes
constexpr double kSeasonExtrapolation = 10.0;
constexpr double kChangeExtrapolation = 3.0;
constexpr double kSpreadFloor = 0.3;           // sigma floor of the surprise standardization
constexpr double kWinsorSigmas = 3.0;
constexpr int64_t kChangeStart = 100;          // records before the CUSUM is ranked

}  // namespace

template <int N>
double RankReservoir<N>::Quantile(double q) const {
  if (size <= 0 || size > kSize) return 0.0;
  const double pos = q * size;
  int i = pos <= 0.0 ? 0 : static_cast<int>(pos);
  if (i >= size) i = size - 1;
  return Value(i);
}

namespace {
// Nearest grid code of value v; truncating a non-negative value rounds it down,
// which avoids a library call for rounding on baseline x86-64.
inline int16_t GridCode(double v, double lo, double step) {
  const double t = std::clamp((v - lo) / step, 0.0, 65535.0);
  return static_cast<int16_t>(static_cast<int32_t>(t + 0.5) - 32768);
}
}  // namespace

template <int N>
int RankReservoir<N>::Encode(double x) const {
  return GridCode(x, lo, step);
}

template <int N>
void RankReservoir<N>::Regrid(double x) {
  // The grid spans the sample and x, with a quarter of that span of headroom on
  // each side so that a slowly growing range does not re-grid every record.
  double low = x, high = x;
  if (size > 0) {
    low = std::min(low, Value(0));
    high = std::max(high, Value(size - 1));
  }
  double span = high - low;
  if (!(span > 0.0)) span = std::max(std::fabs(x) * 1e-6, 1e-12);
  const double new_lo = low - 0.25 * span;
  const double new_step = 1.5 * span / 65535.0;
  for (int i = 0; i < size; ++i) {
    const double v = Value(i);
    code[i] = GridCode(v, new_lo, new_step);
  }
  lo = new_lo;
  step = new_step;
}

namespace {
// NormalTailInverse(k / (2 kSize)) for k = 0..kSize: the z of every tail a full
// reservoir's rank can give, so the common case needs no logarithm.
template <int N>
const std::array<double, N + 1>& FullSampleTailZ() {
  static const auto table = [] {
    std::array<double, N + 1> t{};
    for (int k = 1; k <= N; ++k) t[k] = NormalTailInverse(k / (2.0 * N));
    return t;
  }();
  return table;
}
}  // namespace

template <int N>
double RankReservoir<N>::TailZ(double x, double extrapolate, double scale_floor) const {
  if (count < 10 || size <= 0 || size > kSize || !(step > 0.0)) return 0.0;
  // Rank by counting, not by binary search: a branch-free pass over at most
  // 128 codes vectorizes, where the searches' branches mispredict. Values on
  // the same grid step count as ties.
  int below = 0, at_or_below = 0;
  const double top = lo + 65535.0 * step;
  if (x > top) {
    below = at_or_below = size;
  } else if (x >= lo) {
    const auto cx = static_cast<int16_t>(Encode(x));
    for (int i = 0; i < size; ++i) {
      below += code[i] < cx ? 1 : 0;
      at_or_below += code[i] <= cx ? 1 : 0;
    }
  }
  const int twice_rank = below + at_or_below;                          // rank in halves
  const int twice_tail = std::min(twice_rank, 2 * size - twice_rank);  // tail in units of 1 / (2 size)
  const double floor = 0.5 / static_cast<double>(count);
  double z;
  if (twice_tail >= 1) {
    const double tail = std::max(twice_tail / (2.0 * size), floor);
    z = size == kSize && tail == twice_tail / (2.0 * size) ? FullSampleTailZ<N>()[twice_tail] : NormalTailInverse(tail);
  } else {
    // Beyond the sample's extreme: interpolate (in log tail) toward the exact
    // extreme, whose tail is one record in `count`.
    const double sample_floor = 0.5 / size;
    const bool low = twice_rank < size;
    const double edge = low ? Value(0) : Value(size - 1);
    const double ext = low ? min : max;
    const double f = ext == edge ? 1.0 : std::min(1.0, std::fabs(x - edge) / std::fabs(ext - edge));
    z = NormalTailInverse(
        std::max(std::exp(std::log(sample_floor) + f * (std::log(floor) - std::log(sample_floor))), floor));
  }
  if (x <= max && x >= min) return z;
  // The unit of the extrapolation: the IQR, but never below `scale_floor` nor a
  // thousandth of the range seen, so quantized or nearly constant histories do
  // not turn a small step into millions of sigmas.
  const double iqr = std::max({Quantile(0.75) - Quantile(0.25), scale_floor, 1e-3 * (max - min), 1e-12});
  if (x > max) z += (x - max) / iqr * extrapolate;
  if (x < min) z += (min - x) / iqr * extrapolate;
  return z;
}

template <int N>
void RankReservoir<N>::Add(double x, uint64_t random) {
  ++count;
  if (count == 1) {
    min = max = x;
  } else {
    min = std::min(min, x);
    max = std::max(max, x);
  }
  if (size == kSize) {
    const uint64_t j = random % static_cast<uint64_t>(count);
    if (j >= static_cast<uint64_t>(kSize)) return;
    // Replace a uniformly chosen member: remove it, then insert x in order.
    std::move(code.data() + j + 1, code.data() + size, code.data() + j);
    --size;
  }
  if (!(step > 0.0) || x < lo || x > lo + 65535.0 * step) Regrid(x);
  const auto cx = static_cast<int16_t>(Encode(x));
  int at = 0;  // upper bound by counting: branch-free, like the rank in TailZ
  for (int i = 0; i < size; ++i) at += code[i] <= cx ? 1 : 0;
  std::move_backward(code.data() + at, code.data() + size, code.data() + size + 1);
  code[at] = cx;
  ++size;
}

template struct RankReservoir<128>;
template struct RankReservoir<64>;

namespace {
template <int N>
void EncodeReservoir(ByteWriter& w, const RankReservoir<N>& r) {
  w.U32(static_cast<uint32_t>(r.size));
  w.I64(r.count);
  w.F64(r.min);
  w.F64(r.max);
  w.F64(r.lo);
  w.F64(r.step);
  w.Array(std::span<const int16_t>(r.code.data(), static_cast<size_t>(r.size)));
}
template <int N>
bool DecodeReservoir(ByteReader& r, RankReservoir<N>* out) {
  const uint32_t size = r.U32();
  out->count = r.I64();
  out->min = r.F64();
  out->max = r.F64();
  out->lo = r.F64();
  out->step = r.F64();
  if (!r.ok() || size > static_cast<uint32_t>(N) || out->count < static_cast<int64_t>(size)) return false;
  if (!std::isfinite(out->lo) || !std::isfinite(out->step) || out->step < 0 || (size > 0 && out->step == 0)) return false;
  std::vector<int16_t> v;
  if (!r.Array(size, &v)) return false;
  if (!std::is_sorted(v.begin(), v.end())) return false;
  out->size = static_cast<int32_t>(size);
  std::copy(v.begin(), v.end(), out->code.begin());
  return true;
}
}  // namespace

void SeriesState::Encode(ByteWriter& w) const {
  w.U8(3);  // layout version (2: 16-bit samples; 3: + the change measure's recent baseline, at the end)
  w.I64(n);
  w.I64(last_time);
  w.U64(rng);
  EncodeReservoir(w, level);
  EncodeReservoir(w, season);
  EncodeReservoir(w, change);
  EncodeReservoir(w, week);
  w.Array(std::span<const float>(hour_mean));
  w.U64(hour_seen);
  w.Array(std::span<const float>(week_mean));
  w.Array(std::span<const uint64_t>(week_seen));
  w.F64(cusum_up);
  w.F64(cusum_down);
  w.F64(cal_mean);
  w.F64(cal_var);
  w.I64(cal_n);
  w.I64(alarm_at);
  w.F64(alarm_z);
  w.U8(cause);
  w.U8(hour);
  w.U8(week_hour);
  w.U8(beyond ? 1 : 0);
  w.F64(cause_z);
  w.F64(expected);
  w.F64(previous_extreme);
  w.F64(recent_mean);
  w.F64(recent_dev);
}

bool SeriesState::Decode(ByteReader& r, SeriesState* out) {
  const uint8_t version = r.U8();
  if (version != 2 && version != 3) return false;
  out->n = r.I64();
  out->last_time = r.I64();
  out->rng = r.U64();
  if (!DecodeReservoir(r, &out->level) || !DecodeReservoir(r, &out->season) || !DecodeReservoir(r, &out->change) ||
      !DecodeReservoir(r, &out->week)) {
    return false;
  }
  std::vector<float> hm;
  if (!r.Array(kHours, &hm)) return false;
  std::copy(hm.begin(), hm.end(), out->hour_mean.begin());
  out->hour_seen = r.U64();
  std::vector<float> wm;
  std::vector<uint64_t> ws;
  if (!r.Array(kWeekHours, &wm) || !r.Array(out->week_seen.size(), &ws)) return false;
  std::copy(wm.begin(), wm.end(), out->week_mean.begin());
  std::copy(ws.begin(), ws.end(), out->week_seen.begin());
  out->cusum_up = r.F64();
  out->cusum_down = r.F64();
  out->cal_mean = r.F64();
  out->cal_var = r.F64();
  out->cal_n = r.I64();
  out->alarm_at = r.I64();
  out->alarm_z = r.F64();
  out->cause = r.U8();
  out->hour = r.U8();
  out->week_hour = r.U8();
  out->beyond = r.U8() != 0;
  out->cause_z = r.F64();
  out->expected = r.F64();
  out->previous_extreme = r.F64();
  if (version == 3) {
    out->recent_mean = r.F64();
    out->recent_dev = r.F64();
    if (!std::isfinite(out->recent_mean) || !(out->recent_dev >= 0) || !std::isfinite(out->recent_dev)) return false;
  } else {
    // Layout 2 had no recent baseline: start it where the history's middle is.
    out->recent_mean = out->level.Quantile(0.5);
    out->recent_dev = (out->level.Quantile(0.75) - out->level.Quantile(0.25)) / 1.349 / 1.25;
  }
  return r.ok() && out->cause <= 4 && out->hour < kHours && out->week_hour < kWeekHours;
}

absl::StatusOr<SeriesDetector> SeriesDetector::Create(SeriesConfig c) {
  auto bad = [](std::string what) { return absl::InvalidArgumentError("series detector: " + what); };
  if (c.warmup < 0) return bad(fmt::format("warmup {} must be >= 0", c.warmup));
  if (!(c.season_weight >= 0) || !(c.change_weight >= 0)) return bad("season_weight and change_weight must be >= 0");
  if (!(c.season_alpha > 0 && c.season_alpha <= 1)) return bad(fmt::format("season_alpha {} must be in (0, 1]", c.season_alpha));
  if (!(c.season_alpha_week > 0 && c.season_alpha_week <= 1)) {
    return bad(fmt::format("season_alpha_week {} must be in (0, 1]", c.season_alpha_week));
  }
  if (!(c.week_weight >= 0)) return bad("week_weight must be >= 0");
  if (c.season_visits < 0 || c.season_visits > 2) {
    return bad(fmt::format("season_visits {} must be 0, 1 or 2", c.season_visits));
  }
  if (c.season_ramp < 0) return bad(fmt::format("season_ramp {} must be >= 0", c.season_ramp));
  if (c.young_records < 0) return bad(fmt::format("young_records {} must be >= 0", c.young_records));
  if (!(c.young_floor >= 0 && c.young_floor <= 1)) {
    return bad(fmt::format("young_floor {} must be in [0, 1]", c.young_floor));
  }
  if (!(c.cusum_slack >= 0)) return bad(fmt::format("cusum_slack {} must be >= 0", c.cusum_slack));
  if (!(c.cusum_decay > 0 && c.cusum_decay <= 1)) return bad(fmt::format("cusum_decay {} must be in (0, 1]", c.cusum_decay));
  if (!(c.change_alpha >= 0 && c.change_alpha < 1)) return bad(fmt::format("change_alpha {} must be in [0, 1)", c.change_alpha));
  if (!(c.change_clip > 0)) return bad(fmt::format("change_clip {} must be > 0", c.change_clip));
  if (!(c.calibration_alpha > 0 && c.calibration_alpha < 1)) {
    return bad(fmt::format("calibration_alpha {} must be in (0, 1)", c.calibration_alpha));
  }
  if (!(c.alarm_sigma > 0)) return bad(fmt::format("alarm_sigma {} must be > 0", c.alarm_sigma));
  if (c.suppress_records < 0) return bad(fmt::format("suppress_records {} must be >= 0", c.suppress_records));
  if (!(c.escalation >= 1)) return bad(fmt::format("escalation {} must be >= 1", c.escalation));
  return SeriesDetector(std::move(c));
}

namespace {
inline void PrefetchRange(const void* begin, size_t bytes) {
  const auto start = reinterpret_cast<uintptr_t>(begin) & ~uintptr_t{63};
  const auto end = reinterpret_cast<uintptr_t>(begin) + bytes;
  for (uintptr_t p = start; p < end; p += 64) __builtin_prefetch(reinterpret_cast<const void*>(p));
}
}  // namespace

void SeriesDetector::Prefetch(const SeriesState& st, EventTime time) {
  const int64_t hour_index = time >= 0 ? time / 3600000 : (time - 3599999) / 3600000;
  const int h = static_cast<int>(((hour_index % 24) + 24) % 24);
  const int wh = static_cast<int>((((hour_index + 72) % 168) + 168) % 168);
  // Scalars and the four samples are contiguous up to the slot levels.
  PrefetchRange(&st, offsetof(SeriesState, hour_mean));
  PrefetchRange(&st.hour_mean[h], sizeof(float));
  PrefetchRange(&st.week_mean[wh], sizeof(float));
}

Scored SeriesDetector::Update(SeriesState& st, const Observation& obs) const {
  st.cause = 0;
  const double x = obs.value;
  if (!std::isfinite(x)) return {};
  const SeriesConfig& c = config_;
  const int64_t i = st.n;
  const int64_t hour_index = obs.time >= 0 ? obs.time / 3600000 : (obs.time - 3599999) / 3600000;
  const int h = static_cast<int>(((hour_index % 24) + 24) % 24);

  // The three measures, against the history before this record.
  const double z_level = st.level.TailZ(x, kLevelExtrapolation, 0.0);
  // A seasonal residual below a tenth of the level's IQR is never news.
  const double season_floor = 0.1 * (st.level.Quantile(0.75) - st.level.Quantile(0.25));
  // A slot counts its visits (runs of consecutive records in it), not its
  // readings: within its first visit its level only follows the hour's own
  // readings, and a residual against that says nothing about the pattern.
  const bool first_record = i == 0;
  const bool hour_new = st.HourSeen(h) == 0;
  if (first_record || h != st.hour) st.MarkHourSeen(h);
  const bool hour_known = st.HourSeen(h) > c.season_visits;
  const double residual = x - st.hour_mean[h];
  const double z_season = hour_known ? st.season.TailZ(residual, kSeasonExtrapolation, season_floor) : 0.0;
  double up = st.cusum_up, down = st.cusum_down, z_change = 0.0;
  const double median = st.level.Quantile(0.5);
  // The change measure's baseline: recent (mean absolute deviation x 1.25 is a
  // normal sigma; a thousandth of the range keeps flat stretches from turning
  // a small step into a huge one), or all history when change_alpha is 0.
  const bool recent = c.change_alpha > 0;
  const double recent_scale = std::max({1.25 * st.recent_dev, 1e-3 * (st.level.max - st.level.min), 1e-9});
  const double change_base = recent ? st.recent_mean : median;
  if (st.level.size > 20) {
    const double robust_sd =
        recent ? recent_scale : (st.level.Quantile(0.75) - st.level.Quantile(0.25)) / 1.349 + 1e-9;
    const double u = std::clamp((x - change_base) / robust_sd, -10.0, 10.0);
    up = std::max(0.0, up * c.cusum_decay + u - c.cusum_slack);
    down = std::max(0.0, down * c.cusum_decay - u - c.cusum_slack);
    if (i > kChangeStart) z_change = st.change.TailZ(std::max(up, down), kChangeExtrapolation, c.cusum_slack + 1.0);
  }
  // Hour of the week; the epoch began on a Thursday, so shift to start weeks on Monday.
  const int64_t week_index = hour_index + 72;
  const int wh = static_cast<int>(((week_index % 168) + 168) % 168);
  const bool week_new = st.WeekSeen(wh) == 0;
  if (first_record || wh != st.week_hour) st.MarkWeekSeen(wh);
  const bool week_known = st.WeekSeen(wh) > c.season_visits;
  const double week_residual = x - st.week_mean[wh];
  const double z_week = week_known ? st.week.TailZ(week_residual, kSeasonExtrapolation, season_floor) : 0.0;
  // A residual sample still young has not met the pattern's ordinary misses
  // (a cloudy afternoon, a quiet Friday): its tail is too thin, so its z counts
  // in proportion to the residuals it has seen.
  const double z_season_eff = z_season * std::min(1.0, static_cast<double>(st.season.count) * season_ramp_);
  const double z_week_eff = z_week * std::min(1.0, static_cast<double>(st.week.count) * season_ramp_);
  double raw = z_level;
  uint8_t cause = 1;
  if (c.week_weight * z_week_eff > raw) raw = c.week_weight * z_week_eff, cause = 4;
  if (c.season_weight * z_season_eff > raw) raw = c.season_weight * z_season_eff, cause = 2;
  if (c.change_weight * z_change > raw) raw = c.change_weight * z_change, cause = 3;

  // Standardize the surprise against its own running distribution.
  double z = 0.0;
  const double spread = std::sqrt(st.cal_var) + kSpreadFloor;
  if (i >= c.warmup && st.cal_n > 10) z = (raw - st.cal_mean) / spread;
  if (i >= 10) {
    const double a = std::max(c.calibration_alpha, 1.0 / static_cast<double>(st.cal_n + 1));
    const double w = st.cal_n > 10 ? std::min(raw, st.cal_mean + kWinsorSigmas * spread) : raw;
    const double d = w - st.cal_mean;
    st.cal_mean += a * d;
    st.cal_var = (1 - a) * (st.cal_var + a * d * d);
    st.cal_n++;
  }

  // Remember what this record was compared with, for Explain.
  st.cause = cause;
  st.hour = static_cast<uint8_t>(h);
  st.beyond = st.level.count >= 10 && (x > st.level.max || x < st.level.min);
  st.previous_extreme = x > st.level.max ? st.level.max : st.level.min;
  st.cause_z = cause == 1 ? z_level : cause == 2 ? z_season : cause == 3 ? z_change : z_week;
  st.expected = cause == 2 ? st.hour_mean[h] : cause == 4 ? st.week_mean[wh] : cause == 3 ? change_base : median;
  st.week_hour = static_cast<uint8_t>(wh);

  // Learn.
  st.level.Add(x, NextRandom(st.rng));
  if (i > kChangeStart) st.change.Add(std::max(up, down), NextRandom(st.rng));
  st.cusum_up = up;
  st.cusum_down = down;
  if (recent) {
    // Clipped updates: a spike moves the baseline by at most change_clip
    // deviations x alpha; a lasting shift widens the deviation, which widens
    // the clip, so the baseline catches up within a few 1/alpha records.
    if (i == 0) {
      st.recent_mean = x;
    } else {
      const double a = std::max(c.change_alpha, 1.0 / static_cast<double>(i + 1));
      const double lim = c.change_clip * recent_scale;
      const double d = std::clamp(x - st.recent_mean, -lim, lim);
      st.recent_mean += a * d;
      st.recent_dev += a * (std::fabs(d) - st.recent_dev);
    }
  }
  if (hour_known) st.season.Add(residual, NextRandom(st.rng));
  st.hour_mean[h] = hour_new ? static_cast<float>(x) : static_cast<float>(st.hour_mean[h] + c.season_alpha * residual);
  if (week_known) st.week.Add(week_residual, NextRandom(st.rng));
  st.week_mean[wh] =
      week_new ? static_cast<float>(x) : static_cast<float>(st.week_mean[wh] + c.season_alpha_week * week_residual);

  // A young series meets new extremes often (a record high has probability 1/n
  // after n values): its surprise is discounted, linearly from `young_floor` at
  // the first record to none at `young_records`.
  if (i < c.young_records) {
    z *= c.young_floor + (1 - c.young_floor) * static_cast<double>(i) / static_cast<double>(c.young_records);
  }
  // One incident, one alert.
  if (i - st.alarm_at < c.suppress_records) {
    if (z < st.alarm_z * c.escalation) {
      z = 0.0;
    } else {
      st.alarm_at = i;
      st.alarm_z = z;
    }
  } else if (z > c.alarm_sigma) {
    st.alarm_at = i;
    st.alarm_z = z;
  }
  st.n++;
  st.last_time = obs.time;
  return {.score = ScoreOf(z), .raw = z};
}

namespace {
// "4.2 sigma"; past 100 the number carries no information a person can use.
std::string Sigma(double z) { return z < 100 ? fmt::format("{:.1f} sigma", z) : std::string("over 100 sigma"); }
}  // namespace

std::string SeriesDetector::Explain(const SeriesState& st, const Observation& obs, const Scored& s) const {
  const std::string& name = config_.value_name;
  const double x = obs.value;
  const char* dir = x >= st.expected ? "above" : "below";
  switch (st.cause) {
    case 1:
      if (st.beyond) {
        return fmt::format("{} {:.4g} is {} anything seen before ({} so far {:.4g}, median {:.4g}); {}",
                           name, x, x >= st.expected ? "above" : "below", x >= st.expected ? "highest" : "lowest",
                           st.previous_extreme, st.expected, Sigma(s.raw));
      }
      return fmt::format("{} {:.4g} is {} {} its usual range (median {:.4g}, middle half {:.4g} to {:.4g})",
                         name, x, Sigma(s.raw), dir, st.expected, st.level.Quantile(0.25), st.level.Quantile(0.75));
    case 2:
      return fmt::format("{} {:.4g} is {} {} its usual level of {:.4g} at {:02d}:00 UTC", name, x, Sigma(s.raw), dir,
                         st.expected, st.hour);
    case 4: {
      static constexpr const char* kDays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                                              "Sunday"};
      return fmt::format("{} {:.4g} is {} {} its usual level of {:.4g} on {} at {:02d}:00 UTC", name, x,
                         Sigma(s.raw), dir, st.expected, kDays[st.week_hour / 24], st.week_hour % 24);
    }
    case 3:
      return fmt::format("{} has stayed {} its {} of {:.4g} (now {:.4g}): a sustained shift, {}", name, dir,
                         config_.change_alpha > 0 ? "recent level" : "median", st.expected, x, Sigma(s.raw));
    default:
      return fmt::format("{} {:.4g} is not a number", name, x);
  }
}

std::vector<Scored> ScoreSeries(const SeriesDetector& d, std::span<const EventTime> times,
                                std::span<const double> values) {
  std::vector<Scored> out;
  out.reserve(values.size());
  SeriesState st;
  const size_t n = std::min(times.size(), values.size());
  for (size_t i = 0; i < n; ++i) out.push_back(d.Update(st, {.value = values[i], .time = times[i]}));
  return out;
}

}  // namespace cairn::detect
