#include "cairn/detect/edges.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "fmt/format.h"

namespace cairn::detect {
namespace {

constexpr uint8_t kStateVersion = 1;
// Cells' ticks are uint32 offsets from base_tick; past this the base moves.
constexpr int64_t kRebaseTicks = int64_t{1} << 31;
// The largest statistic the calibration distinguishes (2^32 - 1).
constexpr float kMaxRaw = 4.0e9f;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return q;
}

// Histogram bin of a statistic: log2(1 + raw) in steps of 1/16 octave, read off
// the float's exponent and top mantissa bits; `frac` is the position inside
// the bin (linear in 1 + raw), for interpolation.
inline int BinOf(float raw, float* frac) {
  if (!(raw < kMaxRaw)) raw = kMaxRaw;  // also NaN
  if (raw < 0) raw = 0;
  const uint32_t bits = std::bit_cast<uint32_t>(1.0f + raw);
  constexpr int kShift = 23 - 4;  // 16 = 2^4 bins per octave
  static_assert(EdgeState::kBinsPerOctave == 16);
  *frac = static_cast<float>(bits & ((1u << kShift) - 1)) * (1.0f / (1u << kShift));
  return static_cast<int>(bits >> kShift) - (127 << 4);
}

}  // namespace

void EdgeState::Encode(ByteWriter& w) const {
  w.U8(kStateVersion);
  w.U64(cells.size());
  w.Array(std::span<const EdgeCell>(cells));
  w.I64(first_tick);
  w.I64(base_tick);
  w.U32(now);
  w.U8(started ? 1 : 0);
  w.F32(inv_history);
  w.U64(records);
  w.U64(bins.size());
  w.Array(std::span<const uint32_t>(bins));
  w.U64(tail.size());
  w.Array(std::span<const float>(tail));
  w.U64(calibrated);
  w.U32(since_refresh);
  w.U8(fired);
  w.F32(observed);
  w.F32(expected);
  w.F32(usual_rate);
}

bool EdgeState::Decode(ByteReader& r, EdgeState* out) {
  const uint8_t version = r.U8();
  if (r.ok() && version != kStateVersion) {
    r.Fail(fmt::format("edge detector state version {} is not {}", version, kStateVersion));
    return false;
  }
  r.Array(r.U64(), &out->cells);
  out->first_tick = r.I64();
  out->base_tick = r.I64();
  out->now = r.U32();
  out->started = r.U8() != 0;
  out->inv_history = r.F32();
  out->records = r.U64();
  r.Array(r.U64(), &out->bins);
  r.Array(r.U64(), &out->tail);
  out->calibrated = r.U64();
  out->since_refresh = r.U32();
  out->fired = r.U8();
  out->observed = r.F32();
  out->expected = r.F32();
  out->usual_rate = r.F32();
  if (!r.ok()) return false;
  const bool empty = out->cells.empty() && out->bins.empty() && out->tail.empty();
  if (!empty && (out->bins.size() != kBins || out->tail.size() != kBins + 1 || out->fired > 2)) {
    r.Fail("edge detector state has a calibration table of the wrong size");
    return false;
  }
  return true;
}

absl::StatusOr<EdgeDetector> EdgeDetector::Create(EdgeConfig c) {
  auto bad = [](std::string what) { return absl::InvalidArgumentError("edge detector: " + what); };
  if (c.rows < 1 || c.rows > 8) return bad(fmt::format("rows {} is out of range 1..8", c.rows));
  constexpr uint32_t kMaxWidth = uint32_t{1} << 24;
  if (c.edge_width < 1 || c.edge_width > kMaxWidth || c.node_width < 1 || c.node_width > kMaxWidth) {
    return bad(fmt::format("widths {} and {} must be in 1..{}", c.edge_width, c.node_width, kMaxWidth));
  }
  if (c.tick_ms < 1) return bad(fmt::format("tick {} ms must be positive", c.tick_ms));
  if (!(c.decay > 0 && c.decay < 1)) return bad(fmt::format("decay {} must be in (0, 1)", c.decay));
  if (!(c.history_half_life_ticks >= 0) || !std::isfinite(c.history_half_life_ticks)) {
    return bad(fmt::format("history half-life {} must be >= 0", c.history_half_life_ticks));
  }
  if (!(c.min_expected >= 0) || !std::isfinite(c.min_expected)) {
    return bad(fmt::format("min_expected {} must be >= 0", c.min_expected));
  }
  if (!(c.filter_threshold >= 0) || !std::isfinite(c.filter_threshold)) {
    return bad(fmt::format("filter threshold {} must be >= 0", c.filter_threshold));
  }
  if (c.warmup_ticks < 1) return bad(fmt::format("warmup of {} ticks must be >= 1", c.warmup_ticks));
  if (c.calibration_warmup < 1) return bad("calibration warmup must be >= 1 record");
  if (c.calibration_refresh < 1) return bad("calibration refresh must be >= 1 record");
  if (c.calibration_window < 1024 || c.calibration_window > (uint64_t{1} << 31)) {
    return bad(fmt::format("calibration window {} is out of range 1024..2^31", c.calibration_window));
  }
  return EdgeDetector(std::move(c));
}

EdgeDetector::EdgeDetector() : EdgeDetector(EdgeConfig{}) {}

EdgeDetector::EdgeDetector(EdgeConfig c) : config_(std::move(c)) {
  cells_ = static_cast<size_t>(config_.rows) * (config_.edge_width + 2 * size_t{config_.node_width});
  inv_one_minus_decay_ = static_cast<float>(1.0 / (1.0 - config_.decay));
  min_expected_ = static_cast<float>(config_.min_expected);
  filter_ = config_.filter_threshold > 0 ? static_cast<float>(config_.filter_threshold) : HUGE_VALF;
  log2_decay_ = std::log2(config_.decay);
  log2_history_ = config_.history_half_life_ticks > 0 ? -1.0 / config_.history_half_life_ticks : 0.0;
  for (int k = 0; k <= EdgeState::kBins; ++k) beyond_[k] = static_cast<float>(std::exp2(-(k + 1) / 4.0));
  for (int k = 0; k < kPowTable; ++k) {
    decay_pow_[k] = static_cast<float>(std::exp2(k * log2_decay_));
    history_pow_[k] = static_cast<float>(std::exp2(k * log2_history_));
  }
}

size_t EdgeDetector::StateBytes() const {
  EdgeState st;
  Init(st);
  return st.MemoryBytes();
}

absl::Status EdgeDetector::Check(const EdgeState& st) const {
  if (st.cells.empty() || st.cells.size() == cells_) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format(
      "edge detector state has {} cells, this configuration needs {}", st.cells.size(), cells_));
}

void EdgeDetector::Init(EdgeState& st) const {
  st = EdgeState();
  st.cells.assign(cells_, EdgeCell{});
  st.bins.assign(EdgeState::kBins, 0);
  st.tail.assign(EdgeState::kBins + 1, 1.0f);
}

void EdgeDetector::Fold(EdgeCell& c, int64_t k) const {
  float a, b, b1;
  if (k < kPowTable) {
    a = decay_pow_[k];
    b = history_pow_[k];
    b1 = history_pow_[k - 1];
  } else {
    const double kd = static_cast<double>(k);
    a = static_cast<float>(std::exp2(kd * log2_decay_));
    b = static_cast<float>(std::exp2(kd * log2_history_));
    b1 = static_cast<float>(std::exp2((kd - 1) * log2_history_));
  }
  c.total = c.total * b + c.learn * b1;
  c.learn = 0;
  c.cur *= a;
}

// Moves the current tick forward to `tick` (absolute, > the current one). Cells
// catch up lazily; only a base move (every 2^31 ticks, or a jump that far)
// walks them all.
void EdgeDetector::Advance(EdgeState& st, int64_t tick) const {
  int64_t rel = tick - st.base_tick;
  if (rel >= kRebaseTicks) {
    for (EdgeCell& c : st.cells) {
      Fold(c, rel - c.tick);
      c.tick = 0;
    }
    st.base_tick = tick;
    rel = 0;
  }
  st.now = static_cast<uint32_t>(rel);
  // Ticks of history before the current one, decayed like the cells' totals.
  const double n = static_cast<double>(tick - st.first_tick);
  const double norm = log2_history_ == 0 ? n : (1 - std::exp2(n * log2_history_)) / (1 - std::exp2(log2_history_));
  st.inv_history = norm > 0 ? static_cast<float>(1.0 / norm) : 0.0f;
}

void EdgeDetector::Refresh(EdgeState& st) const {
  st.since_refresh = 0;
  if (st.calibrated >= config_.calibration_window) {
    st.calibrated = 0;
    for (uint32_t& b : st.bins) {
      b >>= 1;
      st.calibrated += b;
    }
  }
  if (st.calibrated == 0) return;
  const double inv_n = 1.0 / static_cast<double>(st.calibrated);
  int last = -1;
  uint64_t above = 0;
  for (int b = EdgeState::kBins - 1; b >= 0; --b) {
    above += st.bins[b];
    if (last < 0 && st.bins[b] != 0) last = b;
    st.tail[b] = static_cast<float>(static_cast<double>(above) * inv_n);
  }
  // Beyond the largest statistic seen: below 1/n and still decreasing, a
  // quarter octave of the tail per bin, so that scores keep their order.
  for (int b = last + 1; b <= EdgeState::kBins; ++b) {
    st.tail[b] = static_cast<float>(0.5 * inv_n) * beyond_[b - last - 1];
  }
}

inline double EdgeDetector::Calibrate(const EdgeState& st, float raw) const {
  float frac;
  const int b = BinOf(raw, &frac);
  const float hi = st.tail[b], lo = st.tail[b + 1];
  return 1.0 - static_cast<double>(lo + (1.0f - frac) * (hi - lo));
}

// The statistic of one sketch: per row, the one-sided chi-square of the cell
// (after catching it up to the current tick and counting this record); the
// smallest over rows. Learns the record into the rows' history unless the
// statistic reached the filter threshold.
inline float EdgeDetector::SketchStat(EdgeState& st, size_t offset, uint32_t width, uint64_t h, float filter,
                                      float* cur, float* mu) const {
  EdgeCell* row = st.cells.data() + offset;
  const uint32_t now = st.now;
  const float scale = st.inv_history * inv_one_minus_decay_;
  uint32_t g = static_cast<uint32_t>(h);
  const uint32_t step = static_cast<uint32_t>(h >> 32) | 1;
  EdgeCell* touched[8];
  float best = HUGE_VALF;
  const int rows = config_.rows;
  for (int r = 0; r < rows; ++r, row += width, g += step) {
    EdgeCell& c = row[(static_cast<uint64_t>(g) * width) >> 32];
    if (c.tick != now) {
      Fold(c, static_cast<int64_t>(now - c.tick));
      c.tick = now;
    }
    c.cur += 1.0f;
    touched[r] = &c;
    const float m = c.total * scale;
    const float d = c.cur - m;
    const float s = d > 0 ? d * d / std::max(m, min_expected_) : 0.0f;
    if (s < best) {
      best = s;
      *cur = c.cur;
      *mu = m;
    }
  }
  if (best < filter) {
    for (int r = 0; r < rows; ++r) touched[r]->learn += 1.0f;
  }
  return best;
}

Scored EdgeDetector::UpdateHashed(EdgeState& st, uint64_t src_hash, uint64_t dst_hash, EventTime time_ms) const {
  if (st.cells.size() != cells_ || st.tail.size() != EdgeState::kBins + 1) Init(st);
  const int64_t tick = FloorDiv(time_ms, config_.tick_ms);
  if (!st.started) {
    st.started = true;
    st.first_tick = st.base_tick = tick;
    st.now = 0;
  } else if (tick > st.base_tick + static_cast<int64_t>(st.now)) {
    Advance(st, tick);
  }  // else: a late record counts in the current tick
  ++st.records;

  const uint64_t edge_hash = Mix64(src_hash ^ (dst_hash * 0x9e3779b97f4a7c15ULL));
  const uint32_t ew = config_.edge_width, nw = config_.node_width;
  const size_t rows = static_cast<size_t>(config_.rows);
  float cur[3], mu[3];
  const int64_t elapsed = tick - st.first_tick;
  // While the history is short everything is learned: it is what "usual" is made of.
  const float filter = elapsed < config_.warmup_ticks ? HUGE_VALF : filter_;
  const float se = SketchStat(st, 0, ew, edge_hash, filter, &cur[0], &mu[0]);
  const float ss = SketchStat(st, rows * ew, nw, src_hash, filter, &cur[1], &mu[1]);
  const float sd = SketchStat(st, rows * (ew + nw), nw, dst_hash, filter, &cur[2], &mu[2]);
  uint8_t fired = 0;
  float raw = se;
  if (ss > raw) raw = ss, fired = 1;
  if (sd > raw) raw = sd, fired = 2;
  st.fired = fired;
  st.observed = cur[fired];
  st.expected = mu[fired];
  st.usual_rate = mu[fired] * (1.0f - 1.0f / inv_one_minus_decay_);

  Scored out;
  out.raw = raw;
  if (elapsed < config_.warmup_ticks) return out;  // history too short to calibrate on
  if (static_cast<int64_t>(st.calibrated) >= config_.calibration_warmup) out.score = Calibrate(st, raw);
  float frac;
  ++st.bins[BinOf(raw, &frac)];
  ++st.calibrated;
  if (++st.since_refresh >= config_.calibration_refresh ||
      static_cast<int64_t>(st.calibrated) == config_.calibration_warmup) {
    Refresh(st);
  }
  return out;
}

std::string EdgeDetector::Explain(const EdgeState& st, const Observation& obs, const Scored& scored) const {
  const double window_ms = static_cast<double>(config_.tick_ms) / (1.0 - config_.decay);
  const std::string window = config_.tick_ms % 1000 == 0 ? fmt::format("{:.3g} s", window_ms / 1000)
                                                         : fmt::format("{:.3g} ms", window_ms);
  const std::string per = config_.tick_ms == 1000 ? "/s" : fmt::format(" per {} ms", config_.tick_ms);
  std::string what;
  switch (st.fired) {
    case 0: what = fmt::format("edge {} -> {}", obs.key, obs.item); break;
    case 1: what = fmt::format("source {} (all its edges)", obs.key); break;
    default: what = fmt::format("destination {} (all edges into it)", obs.item); break;
  }
  return fmt::format("{}: {:.0f} {} in the last {} vs {:.3g} usual ({:.3g}{}); burst statistic {:.3g}", what,
                     st.observed, config_.record_noun, window, st.expected, st.usual_rate, per, scored.raw);
}

}  // namespace cairn::detect
