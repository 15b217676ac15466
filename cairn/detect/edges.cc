#include "cairn/detect/edges.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "fmt/format.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cairn::detect {
namespace {

constexpr uint8_t kStateVersion = 1;
// Cells' ticks are uint32 offsets from base_tick; past this the base moves.
constexpr int64_t kRebaseTicks = int64_t{1} << 31;
// The largest statistic the calibration distinguishes (2^32 - 1).
constexpr float kMaxRaw = 4.0e9f;

// a - b for a >= b, saturating (ticks span the whole int64 range with 1 ms ticks).
int64_t TicksBetween(int64_t a, int64_t b) {
  int64_t d;
  return __builtin_sub_overflow(a, b, &d) ? INT64_MAX : d;
}

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

// max(a, b) without a branch (b when either is NaN). Compilers turn std::max of
// floats into a compare and jump when the result feeds a multiply; on this data
// (is a count above its usual rate?) that jump is mispredicted about every
// other record, which cost more than the rest of the update.
inline float MaxNoBranch(float a, float b) {
#if defined(__x86_64__)
  return _mm_cvtss_f32(_mm_max_ss(_mm_set_ss(a), _mm_set_ss(b)));
#else
  return std::fmax(a, b);  // one instruction (fmaxnm) on aarch64
#endif
}

// The edge sketch's key: both nodes' hashes mixed.
constexpr uint64_t kEdgeMul = 0x9e3779b97f4a7c15ULL;
// Records per block of UpdateBatch: cells are located and requested one block ahead.
constexpr size_t kBlock = 16;

// The cells of n <= kBlock records in a one-row state: offsets into st.cells of
// the edge (e), source (s) and destination (d) cells, as UpdateRows computes them.
[[gnu::always_inline]] inline void LocateBody(const uint64_t* src, const uint64_t* dst, size_t n, uint32_t ew,
                                              uint32_t nw, uint32_t* e, uint32_t* s, uint32_t* d) {
  const auto cell = [](uint64_t hash, uint32_t width) {
    return static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(hash)) * width) >> 32);
  };
  for (size_t i = 0; i < n; ++i) {
    e[i] = cell(Mix64(src[i] ^ (dst[i] * kEdgeMul)), ew);
    s[i] = ew + cell(src[i], nw);
    d[i] = ew + nw + cell(dst[i], nw);
  }
}

void LocateScalar(const uint64_t* src, const uint64_t* dst, size_t n, uint32_t ew, uint32_t nw, uint32_t* e,
                  uint32_t* s, uint32_t* d) {
  LocateBody(src, dst, n, ew, nw, e, s, d);
}

#if defined(__x86_64__)
// The same loop vectorized 8 records wide (64-bit multiplies need AVX-512DQ).
// Integer arithmetic only: results are identical to the scalar loop's.
__attribute__((target("avx512f,avx512dq,avx512vl"))) void LocateAvx512(const uint64_t* src, const uint64_t* dst,
                                                                       size_t n, uint32_t ew, uint32_t nw,
                                                                       uint32_t* e, uint32_t* s, uint32_t* d) {
  LocateBody(src, dst, n, ew, nw, e, s, d);
}
#endif

bool HasAvx512() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

}  // namespace

void EdgeState::Encode(ByteWriter& w) const {
  w.U8(kStateVersion);
  w.U64(cells.size());
  w.Array(std::span<const EdgeCell>(cells));
  w.I64(first_tick);
  w.I64(base_tick);
  w.U32(now);
  w.I64(tick_end_ms);
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
  out->tick_end_ms = r.I64();
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
  // A positive floor keeps the statistics' cross products finite (min_expected = 0
  // with an empty history would otherwise divide by zero).
  min_expected_ = std::max(static_cast<float>(config_.min_expected), 1e-30f);
  avx512_ = HasAvx512();
  filter_ = config_.filter_threshold > 0 ? static_cast<float>(config_.filter_threshold) : HUGE_VALF;
  log2_decay_ = std::log2(config_.decay);
  log2_history_ = config_.history_half_life_ticks > 0 ? -1.0 / config_.history_half_life_ticks : 0.0;
  for (int k = 0; k <= EdgeState::kBins; ++k) beyond_[k] = static_cast<float>(std::exp2(-(k + 1) / 4.0));
  for (int k = 0; k < kPowTable; ++k) {
    steps_[k].cur = static_cast<float>(std::exp2(k * log2_decay_));
    steps_[k].total = static_cast<float>(std::exp2(k * log2_history_));
    steps_[k].learn = k == 0 ? 0.0f : static_cast<float>(std::exp2((k - 1) * log2_history_));
    steps_[k].keep = k == 0 ? 1.0f : 0.0f;
    vsteps_[k] = {{steps_[k].cur, steps_[k].keep, steps_[k].total, 0.0f}, {0.0f, 0.0f, steps_[k].learn, 0.0f}};
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
    a = steps_[k].cur;
    b = steps_[k].total;
    b1 = steps_[k].learn;
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
  int64_t rel = TicksBetween(tick, st.base_tick);
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
  const double n = static_cast<double>(TicksBetween(tick, st.first_tick));
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

inline double EdgeDetector::Calibrate(const float* tail, int b, float frac) {
  const float hi = tail[b], lo = tail[b + 1];
  return 1.0 - static_cast<double>(lo + (1.0f - frac) * (hi - lo));
}

Scored EdgeDetector::UpdateHashed(EdgeState& st, uint64_t src_hash, uint64_t dst_hash, EventTime time_ms) const {
  if (st.cells.size() != cells_ || st.tail.size() != EdgeState::kBins + 1) [[unlikely]] Init(st);
  // One row (the default) gets its own copy of the loop, unrolled by the compiler.
  return config_.rows == 1 ? UpdateRows<1>(st, src_hash, dst_hash, time_ms)
                           : UpdateRows<0>(st, src_hash, dst_hash, time_ms);
}

size_t EdgeDetector::UpdateBatch(EdgeState& st, std::span<const uint64_t> src_hash,
                                 std::span<const uint64_t> dst_hash, std::span<const EventTime> time_ms,
                                 std::span<Scored> out) const {
  const size_t n = std::min({src_hash.size(), dst_hash.size(), time_ms.size(), out.size()});
  if (n == 0) return 0;
  if (st.cells.size() != cells_ || st.tail.size() != EdgeState::kBins + 1) [[unlikely]] Init(st);
  if (config_.rows != 1) {
    for (size_t i = 0; i < n; ++i) out[i] = UpdateRows<0>(st, src_hash[i], dst_hash[i], time_ms[i]);
    return n;
  }
  // Software pipeline: the next block's cells are located and requested while
  // this block's records are applied, one after the other as UpdateHashed would.
  const uint32_t ew = config_.edge_width, nw = config_.node_width;
  EdgeCell* const base = st.cells.data();  // fixed from here on: Update never reallocates
  uint32_t idx[2][3][kBlock];
  const auto locate = [&](size_t from, uint32_t (&o)[3][kBlock]) {
    const size_t m = std::min(kBlock, n - from);
#if defined(__x86_64__)
    (avx512_ ? LocateAvx512 : LocateScalar)(src_hash.data() + from, dst_hash.data() + from, m, ew, nw, o[0], o[1],
                                            o[2]);
#else
    LocateScalar(src_hash.data() + from, dst_hash.data() + from, m, ew, nw, o[0], o[1], o[2]);
#endif
    for (size_t i = 0; i < m; ++i) {
      __builtin_prefetch(base + o[0][i], 1, 3);
      __builtin_prefetch(base + o[1][i], 1, 3);
      __builtin_prefetch(base + o[2][i], 1, 3);
    }
  };
  locate(0, idx[0]);
  Hot h;
  Load(st, h);
  Stat stats[kBlock];
  for (size_t b = 0, cur = 0; b < n; b += kBlock, cur ^= 1) {
    if (b + kBlock < n) locate(b + kBlock, idx[cur ^ 1]);
    const size_t m = std::min(kBlock, n - b);
    for (size_t i = 0; i < m; ++i) {
      EdgeCell* cells[3][8];  // one row: only [k][0] is read
      cells[0][0] = base + idx[cur][0][i];
      cells[1][0] = base + idx[cur][1][i];
      cells[2][0] = base + idx[cur][2][i];
      stats[i] = Learn<1>(st, h, cells, time_ms[b + i]);
    }
    for (size_t i = 0; i < m; ++i) out[b + i] = Calibrated(st, h, stats[i]);
  }
  Store(h, st);
  return n;
}

template <int kRows>
Scored EdgeDetector::UpdateRows(EdgeState& st, uint64_t src_hash, uint64_t dst_hash, EventTime time_ms) const {
  const uint64_t hashes[3] = {Mix64(src_hash ^ (dst_hash * kEdgeMul)), src_hash, dst_hash};
  const uint32_t widths[3] = {config_.edge_width, config_.node_width, config_.node_width};
  const int rows = kRows > 0 ? kRows : config_.rows;
  EdgeCell* cells[3][8];
  {
    EdgeCell* base = st.cells.data();
    for (int k = 0; k < 3; ++k) {
      const uint32_t w = widths[k];
      uint32_t g = static_cast<uint32_t>(hashes[k]);
      const uint32_t step = static_cast<uint32_t>(hashes[k] >> 32) | 1;
      for (int r = 0; r < rows; ++r, base += w, g += step) cells[k][r] = base + ((static_cast<uint64_t>(g) * w) >> 32);
    }
  }
  Hot h;
  Load(st, h);
  const Scored out = Calibrated(st, h, Learn<kRows>(st, h, cells, time_ms));
  Store(h, st);
  return out;
}

void EdgeDetector::LoadTick(const EdgeState& st, Hot& h) const {
  h.tick_end_ms = st.started ? st.tick_end_ms : INT64_MIN;
  h.now = st.now;
  const int64_t elapsed = TicksBetween(st.base_tick + static_cast<int64_t>(st.now), st.first_tick);
  h.warm = elapsed >= config_.warmup_ticks;
  // While the history is short everything is learned: it is what "usual" is made of.
  h.filter = h.warm ? filter_ : HUGE_VALF;
  h.scale = st.inv_history * inv_one_minus_decay_;
}

void EdgeDetector::Load(EdgeState& st, Hot& h) const {
  LoadTick(st, h);
  h.records = st.records;
  h.calibrated = st.calibrated;
  h.since_refresh = st.since_refresh;
  h.bins = st.bins.data();
  h.tail = st.tail.data();
  // fired, observed and expected: every record sets them before Store reads them.
}

void EdgeDetector::Store(const Hot& h, EdgeState& st) {
  st.records = h.records;
  st.calibrated = h.calibrated;
  st.since_refresh = h.since_refresh;
  st.fired = h.fired;
  st.observed = h.observed;
  st.expected = h.expected;
}

void EdgeDetector::NewTick(EdgeState& st, Hot& h, EventTime time_ms) const {
  const int64_t tick = FloorDiv(time_ms, config_.tick_ms);
  if (!st.started) {
    st.started = true;
    st.first_tick = st.base_tick = tick;
    st.now = 0;
  } else {
    Advance(st, tick);
  }
  if (tick == INT64_MAX || __builtin_mul_overflow(tick + 1, config_.tick_ms, &st.tick_end_ms)) {
    st.tick_end_ms = INT64_MAX;
  }
  LoadTick(st, h);
}

template <int kRows>
inline EdgeDetector::Stat EdgeDetector::Learn(EdgeState& st, Hot& h, EdgeCell* const (&cells)[3][8],
                                               EventTime time_ms) const {
  // Most records fall in the current tick (or are late: counted in it too).
  if (time_ms >= h.tick_end_ms) [[unlikely]] NewTick(st, h, time_ms);
  ++h.records;

  // Per cell: catching up with the current tick (table-driven, without
  // branches for the usual gap of under kPowTable ticks) and counting the
  // record. The cells' addresses are known before any is read, so that their
  // loads overlap.
  const int rows = kRows > 0 ? kRows : config_.rows;
  const uint32_t now = h.now;
  const float scale = h.scale;
  const float filter = h.filter;
  // Branch-free arithmetic below: which row or sketch wins is data, and
  // mispredicted branches would serialize the cells' independent loads. Each
  // statistic is kept as a fraction num / den (den > 0) and compared by cross
  // products, so a record divides once, for the winner.
  alignas(16) float num[4], den[4], cur[4], mu[4];
  bool done = false;
#if defined(__x86_64__)
  if constexpr (kRows == 1) {
    // One row: the three sketches' cells side by side in SSE lanes. Each
    // operation is the scalar code's, lane by lane and in the same order, so
    // the results are bit for bit the same; a cell older than the step table
    // takes the scalar path below.
    EdgeCell* const c[3] = {cells[0][0], cells[1][0], cells[2][0]};
    const uint32_t g0 = now - c[0]->tick, g1 = now - c[1]->tick, g2 = now - c[2]->tick;
    if ((g0 | g1 | g2) < kPowTable) [[likely]] {
      const uint32_t gaps[3] = {g0, g1, g2};
      const __m128 low3 = _mm_castsi128_ps(_mm_setr_epi32(-1, -1, -1, 0));
      const __m128 one_cur = _mm_setr_ps(1.0f, 0.0f, 0.0f, 0.0f);
      __m128 v[3];
      for (int k = 0; k < 3; ++k) {
        // (cur, learn, total, tick) -> (cur * a + 1, learn * keep, total * b + learn * b1, 0); the
        // tick lane is cleared first (its bits as a float may be a denormal or a NaN).
        const __m128 x = _mm_and_ps(_mm_loadu_ps(&c[k]->cur), low3);
        const VStep& f = vsteps_[gaps[k]];
        const __m128 learn = _mm_shuffle_ps(x, x, _MM_SHUFFLE(1, 1, 1, 1));
        v[k] = _mm_add_ps(_mm_add_ps(_mm_mul_ps(x, _mm_load_ps(f.mul)), _mm_mul_ps(learn, _mm_load_ps(f.learn))),
                          one_cur);
      }
      // Lanes k = edge, source, destination: cur, total.
      const __m128 t0 = _mm_unpacklo_ps(v[0], v[1]);  // cur0 cur1 learn0 learn1
      const __m128 t1 = _mm_unpackhi_ps(v[0], v[1]);  // total0 total1 0 0
      const __m128 cur_v = _mm_movelh_ps(t0, v[2]);   // cur0 cur1 cur2 learn2
      const __m128 total_v = _mm_shuffle_ps(t1, v[2], _MM_SHUFFLE(3, 2, 1, 0));  // total0 total1 total2 0
      const __m128 m = _mm_mul_ps(total_v, _mm_set1_ps(scale));
      const __m128 d = _mm_max_ps(_mm_sub_ps(cur_v, m), _mm_setzero_ps());
      const __m128 n = _mm_mul_ps(d, d);
      const __m128 dn = _mm_max_ps(m, _mm_set1_ps(min_expected_));
      const __m128 learned = _mm_and_ps(_mm_cmplt_ps(n, _mm_mul_ps(_mm_set1_ps(filter), dn)), _mm_set1_ps(1.0f));
      _mm_store_ps(num, n);
      _mm_store_ps(den, dn);
      _mm_store_ps(cur, cur_v);
      _mm_store_ps(mu, m);
      const __m128 lane1 = _mm_castsi128_ps(_mm_setr_epi32(0, -1, 0, 0));
      const __m128 tick = _mm_castsi128_ps(_mm_setr_epi32(0, 0, 0, static_cast<int>(now)));
      const __m128 add[3] = {_mm_shuffle_ps(learned, learned, _MM_SHUFFLE(0, 0, 0, 0)),
                             _mm_shuffle_ps(learned, learned, _MM_SHUFFLE(1, 1, 1, 1)),
                             _mm_shuffle_ps(learned, learned, _MM_SHUFFLE(2, 2, 2, 2))};
      for (int k = 0; k < 3; ++k) {
        _mm_storeu_ps(&c[k]->cur, _mm_or_ps(_mm_add_ps(v[k], _mm_and_ps(add[k], lane1)), tick));
      }
      done = true;
    }
  }
#endif
  if (!done) {
    for (int k = 0; k < 3; ++k) {
      float n_r[8] = {}, d_r[8] = {}, c_r[8] = {}, m_r[8] = {};
      for (int r = 0; r < rows; ++r) {
        EdgeCell& c = *cells[k][r];
        const uint32_t gap = now - c.tick;
        if (gap < kPowTable) [[likely]] {
          const Step& f = steps_[gap];
          c.total = c.total * f.total + c.learn * f.learn;
          c.learn *= f.keep;
          c.cur = c.cur * f.cur + 1.0f;
        } else {
          Fold(c, gap);
          c.cur += 1.0f;
        }
        c.tick = now;
        // One-sided chi-square of this row.
        const float m = c.total * scale;
        const float d = MaxNoBranch(c.cur - m, 0.0f);
        n_r[r] = d * d;
        d_r[r] = MaxNoBranch(m, min_expected_);
        c_r[r] = c.cur;
        m_r[r] = m;
      }
      int best = 0;  // the row with the smallest statistic
      for (int r = 1; r < rows; ++r) best = n_r[r] * d_r[best] < n_r[best] * d_r[r] ? r : best;
      const float learn = n_r[best] < filter * d_r[best] ? 1.0f : 0.0f;
      for (int r = 0; r < rows; ++r) cells[k][r]->learn += learn;
      num[k] = n_r[best];
      den[k] = d_r[best];
      cur[k] = c_r[best];
      mu[k] = m_r[best];
    }
  }
  // Arithmetic rather than ?: so that the compiler keeps it branch-free.
  int fired = num[1] * den[0] > num[0] * den[1];
  fired += (2 - fired) * static_cast<int>(num[2] * den[fired] > num[fired] * den[2]);
  h.fired = static_cast<uint8_t>(fired);
  h.observed = cur[fired];
  h.expected = mu[fired];
  return {num[fired], den[fired], h.warm};
}

inline Scored EdgeDetector::Calibrated(EdgeState& st, Hot& h, Stat stat) const {
  const float raw = stat.num / stat.den;
  Scored out;
  out.raw = raw;
  if (!stat.warm) return out;  // history too short to calibrate on
  float frac;
  const int bin = BinOf(raw, &frac);
  if (static_cast<int64_t>(h.calibrated) >= config_.calibration_warmup) out.score = Calibrate(h.tail, bin, frac);
  ++h.bins[bin];
  ++h.calibrated;
  if (++h.since_refresh >= config_.calibration_refresh ||
      static_cast<int64_t>(h.calibrated) == config_.calibration_warmup) [[unlikely]] {
    st.calibrated = h.calibrated;
    Refresh(st);  // may halve the counts
    h.calibrated = st.calibrated;
    h.since_refresh = st.since_refresh;
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
                     st.observed, config_.record_noun, window, st.expected, st.expected * (1 - config_.decay), per,
                     scored.raw);
}

}  // namespace cairn::detect
