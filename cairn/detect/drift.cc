#include "cairn/detect/drift.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cairn/detect/internal/sketch_util.h"
#include "fmt/format.h"

namespace cairn::detect {
namespace {

constexpr uint8_t kStateVersion = 1;
constexpr int kMaxGrid = 1024;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return q;
}

EventTime Saturate(int64_t e, int64_t width, int64_t add) {
  int64_t out;
  if (__builtin_mul_overflow(e, width, &out) || __builtin_add_overflow(out, add, &out)) {
    return e < 0 ? std::numeric_limits<EventTime>::min() : std::numeric_limits<EventTime>::max();
  }
  return out;
}

// Effective number of independent values among n with lag-1 autocorrelation rho.
double EffectiveSize(double n, double rho) { return std::max(1.0, n * (1.0 - rho) / (1.0 + rho)); }

}  // namespace

void DriftState::Encode(ByteWriter& w) const {
  w.U8(kStateVersion);
  w.U8(current.has_value());
  if (current) w.String(current->Serialize());
  w.I64(epoch);
  w.I64(window_start);
  w.I64(window_end);
  w.I64(since_eval);
  w.F64(shift);
  w.F64(sum);
  w.F64(sum_sq);
  w.F64(sum_lag);
  w.F64(previous);
  w.U8(has_reference);
  w.I64(reference_epoch);
  w.U64(reference_n);
  w.F64(reference_rho);
  w.F64(reference_median);
  w.F64(reference_sigma);
  w.Varint(grid.size());
  w.Array<float>(grid);
  w.Array<float>(grid_cdf);
  w.F64(last.distance);
  w.F64(last.p);
  w.U64(last.n);
  w.U64(last.reference_n);
  w.F64(last.median);
  w.F64(last.reference_median);
  w.U8(last.closed);
  w.U8(last.adjacent);
}

bool DriftState::Decode(ByteReader& r, DriftState* out) {
  auto fail = [&](std::string msg) {
    if (r.ok()) r.Fail("drift state: " + msg);
    return false;
  };
  if (r.U8() != kStateVersion) return fail("unknown version");
  *out = DriftState{};
  if (r.U8() != 0) {
    std::string_view bytes = r.String();
    if (!r.ok()) return false;
    auto s = sketch::KllSketch<float>::Deserialize(bytes);
    if (!s.ok()) return fail(std::string(s.status().message()));
    out->current = std::move(*s);
  }
  out->epoch = r.I64();
  out->window_start = r.I64();
  out->window_end = r.I64();
  out->since_eval = r.I64();
  if (out->since_eval < 0 || out->since_eval > (int64_t{1} << 62)) return fail("evaluation counter out of range");
  out->shift = r.F64();
  out->sum = r.F64();
  out->sum_sq = r.F64();
  out->sum_lag = r.F64();
  out->previous = r.F64();
  out->has_reference = r.U8() != 0;
  out->reference_epoch = r.I64();
  out->reference_n = r.U64();
  out->reference_rho = r.F64();
  out->reference_median = r.F64();
  out->reference_sigma = r.F64();
  const uint64_t g = r.Varint();
  if (!r.ok()) return false;
  if (g > kMaxGrid) return fail(fmt::format("grid of {} points, at most {}", g, kMaxGrid));
  if (!r.Array(g, &out->grid) || !r.Array(g, &out->grid_cdf)) return false;
  out->last.distance = r.F64();
  out->last.p = r.F64();
  out->last.n = r.U64();
  out->last.reference_n = r.U64();
  out->last.median = r.F64();
  out->last.reference_median = r.F64();
  out->last.closed = r.U8() != 0;
  out->last.adjacent = r.U8() != 0;
  return r.ok();
}

DriftDetector::DriftDetector(DriftConfig c, sketch::KllSketch<float> empty)
    : config_(std::move(c)), empty_(std::move(empty)) {}

absl::StatusOr<DriftDetector> DriftDetector::Create(DriftConfig c) {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError("drift detector: " + msg); };
  if (c.window_ms <= 0) return bad(fmt::format("window {} ms must be positive", c.window_ms));
  if (c.k < 8 || c.k > 2000) return bad(fmt::format("k {} is out of range 8..2000", c.k));
  if (c.grid < 8 || c.grid > kMaxGrid) return bad(fmt::format("grid {} is out of range 8..{}", c.grid, kMaxGrid));
  if (c.eval_every < 16) return bad(fmt::format("eval_every {} values must be at least 16", c.eval_every));
  if (c.min_samples < 2) return bad(fmt::format("min_samples {} must be at least 2", c.min_samples));
  auto empty = sketch::KllSketch<float>::Create(static_cast<uint16_t>(c.k), c.seed);
  if (!empty.ok()) return bad(std::string(empty.status().message()));
  return DriftDetector(std::move(c), std::move(*empty));
}

void DriftDetector::StartWindow(DriftState& st, int64_t epoch) const {
  // Not an assignment: that would keep the old sketch's buffers (its sorted view).
  st.current.reset();
  st.current.emplace(empty_);
  st.epoch = epoch;
  st.window_start = Saturate(epoch, config_.window_ms, 0);
  st.window_end = Saturate(epoch, config_.window_ms, config_.window_ms);
  st.since_eval = 0;
  st.shift = st.sum = st.sum_sq = st.sum_lag = st.previous = 0.0;
}

void DriftDetector::Reset(DriftState& st, int64_t epoch) const {
  st = DriftState{};
  StartWindow(st, epoch);
}

double DriftDetector::Rho(const DriftState& st) const {
  const double n = static_cast<double>(st.current->n());
  if (n < 3) return 0.0;
  const double m = st.sum / n;
  // Sums around the window's mean; the first shifted value is 0, the last is `previous`.
  const double var = st.sum_sq - n * m * m;
  const double cov = st.sum_lag - m * (2.0 * st.sum - st.previous) + (n - 1.0) * m * m;
  if (!(var > 1e-12 * (st.sum_sq + 1e-300))) return 0.0;
  return std::clamp(cov / var, 0.0, 0.99);
}

double DriftDetector::SketchSigma(const sketch::KllSketch<float>& s) const {
  return s.is_estimation_mode() ? sketch::KllSketch<float>::NormalizedRankError(s.min_k()) / 2.5 : 0.0;
}

std::optional<Scored> DriftDetector::Evaluate(DriftState& st, bool closed) const {
  if (!st.has_reference || st.grid.empty() || st.grid.size() != st.grid_cdf.size()) return std::nullopt;
  const uint64_t n = st.current->n();
  if (n < static_cast<uint64_t>(config_.min_samples)) return std::nullopt;
  // Inside a window, a copy, so that the sorted view the CDF builds does not stay
  // in the state; a closing window's sketch is dropped (or becomes the reference,
  // which needs the same view) right after.
  std::optional<sketch::KllSketch<float>> scratch;
  if (!closed) scratch.emplace(*st.current);
  const sketch::KllSketch<float>& copy = closed ? *st.current : *scratch;
  absl::StatusOr<std::vector<double>> cdf = copy.Cdf(st.grid);
  if (!cdf.ok()) return std::nullopt;
  double d = 0.0;
  for (size_t i = 0; i < st.grid.size(); ++i) d = std::max(d, std::fabs((*cdf)[i] - st.grid_cdf[i]));
  const double sigma = SketchSigma(copy);
  const double inv = 1.0 / EffectiveSize(static_cast<double>(n), Rho(st)) +
                     1.0 / EffectiveSize(static_cast<double>(st.reference_n), st.reference_rho) + sigma * sigma +
                     st.reference_sigma * st.reference_sigma;
  const double root = std::sqrt(1.0 / inv);
  const double p = internal::KolmogorovUpperTail((root + 0.12 + 0.11 / root) * d);
  st.last.distance = d;
  st.last.p = p;
  st.last.n = n;
  st.last.reference_n = st.reference_n;
  st.last.median = copy.Quantile(0.5);
  st.last.reference_median = st.reference_median;
  st.last.closed = closed;
  st.last.adjacent = static_cast<uint64_t>(st.epoch) - static_cast<uint64_t>(st.reference_epoch) == 1;
  return Scored{internal::ScoreFromP(p), d};
}

void DriftDetector::CloseWindow(DriftState& st, int64_t epoch) const {
  if (st.current->n() >= static_cast<uint64_t>(config_.min_samples)) {
    sketch::KllSketch<float>& ref = *st.current;
    const size_t g = static_cast<size_t>(config_.grid);
    std::vector<double> ranks(g);
    for (size_t i = 0; i < g; ++i) ranks[i] = (static_cast<double>(i) + 0.5) / static_cast<double>(g);
    std::vector<float> points = ref.Quantiles(ranks);
    points.erase(std::unique(points.begin(), points.end()), points.end());
    absl::StatusOr<std::vector<double>> cdf = ref.Cdf(points);
    if (cdf.ok()) {
      st.grid = std::move(points);
      st.grid_cdf.resize(st.grid.size());
      for (size_t i = 0; i < st.grid.size(); ++i) st.grid_cdf[i] = static_cast<float>((*cdf)[i]);
      st.has_reference = true;
      st.reference_epoch = st.epoch;
      st.reference_n = ref.n();
      st.reference_rho = Rho(st);
      st.reference_median = ref.Quantile(0.5);
      st.reference_sigma = SketchSigma(ref);
    }
  }
  StartWindow(st, epoch);
}

Scored DriftDetector::Update(DriftState& st, const Observation& obs) const {
  if (!st.current || st.current->k() != config_.k) [[unlikely]] Reset(st, FloorDiv(obs.time, config_.window_ms));
  if (!std::isfinite(obs.value)) return {};
  Scored out;
  if (obs.time >= st.window_end) [[unlikely]] {
    const int64_t e = FloorDiv(obs.time, config_.window_ms);
    if (e > st.epoch) {
      if (auto s = Evaluate(st, /*closed=*/true)) out = *s;
      CloseWindow(st, e);
    }
  }
  constexpr double kMax = std::numeric_limits<float>::max();
  const double v = std::clamp(obs.value, -kMax, kMax);
  st.current->Update(static_cast<float>(v));
  if (st.current->n() == 1) st.shift = v;
  const double y = v - st.shift;
  st.sum += y;
  st.sum_sq += y * y;
  st.sum_lag += y * st.previous;
  st.previous = y;
  if (++st.since_eval >= config_.eval_every) [[unlikely]] {
    st.since_eval = 0;
    if (auto s = Evaluate(st, /*closed=*/false); s && s->score > out.score) out = *s;
  }
  return out;
}

std::string DriftDetector::Explain(const DriftState& st, const Observation& obs, const Scored& scored) const {
  (void)scored;
  const std::string w = internal::FormatDuration(config_.window_ms);
  if (!st.has_reference) {
    return fmt::format("{} distribution of {}: no reference window yet (needs {} values in a {} window)",
                       config_.value_name, obs.key, config_.min_samples, w);
  }
  const DriftEvaluation& e = st.last;
  const std::string now = e.closed ? fmt::format("in the last {}", w)
                                   : fmt::format("in this {} window ({} values so far)", w, e.n);
  const std::string before = e.adjacent ? fmt::format("the previous {}", w) : fmt::format("an earlier {}", w);
  const char* verb = e.p < 0.05 ? "differs from" : "is consistent with";
  return fmt::format("{} distribution of {} {} {} {} (KS {:.2f}, median {} -> {})", config_.value_name, obs.key, now,
                     verb, before, e.distance, internal::FormatValue(e.reference_median),
                     internal::FormatValue(e.median));
}

}  // namespace cairn::detect
