#include "cairn/detect/series.h"

#include <cmath>

#include "fmt/format.h"

namespace cairn::detect {

void SeriesState::Encode(ByteWriter& w) const {
  w.I64(n);
  w.I64(last_time);
  w.F64(mean);
  w.F64(var);
  w.F64(expected);
  w.F64(sigma);
}

bool SeriesState::Decode(ByteReader& r, SeriesState* out) {
  out->n = r.I64();
  out->last_time = r.I64();
  out->mean = r.F64();
  out->var = r.F64();
  out->expected = r.F64();
  out->sigma = r.F64();
  return r.ok();
}

absl::StatusOr<SeriesDetector> SeriesDetector::Create(SeriesConfig config) {
  if (config.warmup < 0) return absl::InvalidArgumentError(fmt::format("series warmup {} must be >= 0", config.warmup));
  return SeriesDetector(std::move(config));
}

// Placeholder baseline (EWMA z-score); replaced by the full detector.
Scored SeriesDetector::Update(SeriesState& st, const Observation& obs) const {
  if (!std::isfinite(obs.value)) return {};
  Scored out;
  st.expected = st.mean;
  st.sigma = std::sqrt(st.var) + 1e-9;
  if (st.n >= config_.warmup) {
    out.raw = std::fabs(obs.value - st.mean) / st.sigma;
    out.score = std::erf(out.raw / std::sqrt(2.0));
  }
  const double a = st.n == 0 ? 1.0 : 0.01;
  const double d = obs.value - st.mean;
  st.mean += a * d;
  st.var = (1 - a) * (st.var + a * d * d);
  st.n++;
  st.last_time = obs.time;
  return out;
}

std::string SeriesDetector::Explain(const SeriesState& st, const Observation& obs, const Scored& s) const {
  return fmt::format("{} {:.4g} is {:.1f} sigma {} its baseline of {:.4g}", config_.value_name, obs.value, s.raw,
                     obs.value >= st.expected ? "above" : "below", st.expected);
}

std::vector<Scored> ScoreSeries(const SeriesDetector& d, std::span<const EventTime> times,
                                std::span<const double> values) {
  std::vector<Scored> out;
  out.reserve(values.size());
  SeriesState st;
  for (size_t i = 0; i < values.size(); ++i) out.push_back(d.Update(st, {.value = values[i], .time = times[i]}));
  return out;
}

}  // namespace cairn::detect
