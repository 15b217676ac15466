#include "cairn/pipeline/detect_step.h"

#include <optional>
#include <string_view>

#include "cairn/detect/operator.h"
#include "cairn/detect/series.h"
#include "cairn/pipeline/expr.h"
#include "cairn/pipeline/pipeline_file.h"
#include "fmt/format.h"

namespace cairn::pipeline {
namespace {

using stream::Row;

// What every detector type shares: the report policy and the output's shape.
struct Common {
  detect::ReportPolicy policy;
};

// Output rows: key fields, key, time, score, detector, value, reason (+ anomaly).
struct RowShaper {
  bool emit_all = false;
  Row operator()(const Row&, const Row& key, detect::Anomaly a, bool anomalous) const {
    Row r = key;
    r.Set("key", std::move(a.key));
    r.Set("time", a.time);
    r.Set("score", a.score);
    r.Set("detector", std::move(a.detector));
    r.Set("value", a.value);
    r.Set("reason", std::move(a.reason));
    if (emit_all) r.Set("anomaly", anomalous);
    return r;
  }
};

// The one generic piece each detector type's function ends with.
template <class D, class X>
RowDetector RowDetectorFor(std::string type, bool stream_wide, D detector, X extract, const Common& common) {
  RowDetector out;
  out.type = type;
  out.stream_wide = stream_wide;
  out.factory = detect::DetectFactory<Row, Row, Row>(std::make_shared<const D>(std::move(detector)),
                                                     std::move(extract), RowShaper{common.policy.emit_all},
                                                     common.policy);
  return out;
}

#define CAIRN_DETECT_COMMON_KEYS "type", "false_alarm_rate", "emit", "cooldown", "state_ttl"

absl::StatusOr<RowDetector> MakeSeries(const Config& c, const Common& common) {
  CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_DETECT_COMMON_KEYS, "value", "value_name", "warmup"}));
  CAIRN_ASSIGN_OR_RETURN(std::string text, c.Get<std::string>("value"));
  auto value = Expr::Parse(text);
  if (!value.ok())
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", c.Describe("value"), std::string(value.status().message())));
  detect::SeriesConfig config;
  CAIRN_ASSIGN_OR_RETURN(config.value_name, c.GetOr<std::string>("value_name", text));
  CAIRN_ASSIGN_OR_RETURN(config.warmup, c.GetOr<int64_t>("warmup", config.warmup));
  auto detector = detect::SeriesDetector::Create(config);
  if (!detector.ok())
    return absl::InvalidArgumentError(fmt::format("{}: {}", c.Describe(""), std::string(detector.status().message())));
  auto extract = [e = *std::move(value)](const Row& row) -> std::optional<detect::Observation> {
    std::optional<double> v = stream::ValueToDouble(e.Eval(row));
    if (!v) return std::nullopt;
    return detect::Observation{.value = *v};
  };
  return RowDetectorFor("series", false, *std::move(detector), std::move(extract), common);
}

// Detector types by name. Stream-wide types (edges, novelty, heavy hitters)
// return RowDetectorFor(..., /*stream_wide=*/true, ...).
struct Kind {
  std::string_view type;
  absl::StatusOr<RowDetector> (*make)(const Config&, const Common&);
};
constexpr Kind kKinds[] = {
    {"series", &MakeSeries},
};

std::string KindNames() {
  std::string names;
  for (const Kind& k : kKinds) names += (names.empty() ? "" : ", ") + std::string(k.type);
  return names;
}

// A duration that must be positive when present; 0 when absent.
absl::StatusOr<int64_t> PositiveDuration(const Config& c, std::string_view key) {
  if (!c.Has(key)) return 0;
  CAIRN_ASSIGN_OR_RETURN(std::string text, c.Get<std::string>(key));
  auto ms = ParseDurationMs(text);
  if (!ms.ok() || *ms <= 0)
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", c.Describe(key), ms.ok() ? "must be positive" : std::string(ms.status().message())));
  return *ms;
}

}  // namespace

absl::StatusOr<RowDetector> MakeRowDetector(const Config& c, const std::vector<std::string>& keys) {
  CAIRN_ASSIGN_OR_RETURN(std::string type, c.Get<std::string>("type"));
  const Kind* kind = nullptr;
  for (const Kind& k : kKinds)
    if (k.type == type) kind = &k;
  if (kind == nullptr)
    return absl::InvalidArgumentError(
        fmt::format("{}: unknown detector \"{}\" (known: {})", c.Describe("type"), type, KindNames()));
  Common common;
  CAIRN_ASSIGN_OR_RETURN(common.policy.false_alarm_rate, c.GetOr<double>("false_alarm_rate", 0.001));
  if (absl::Status s = common.policy.Validate(); !s.ok())
    return absl::InvalidArgumentError(fmt::format("{}: {}", c.Describe("false_alarm_rate"), std::string(s.message())));
  CAIRN_ASSIGN_OR_RETURN(std::string emit, c.GetOr<std::string>("emit", "anomalies"));
  if (emit != "anomalies" && emit != "all")
    return absl::InvalidArgumentError(
        fmt::format("{}: \"{}\" is neither `anomalies` nor `all`", c.Describe("emit"), emit));
  common.policy.emit_all = emit == "all";
  CAIRN_ASSIGN_OR_RETURN(common.policy.cooldown_ms, PositiveDuration(c, "cooldown"));
  CAIRN_ASSIGN_OR_RETURN(int64_t ttl, PositiveDuration(c, "state_ttl"));
  common.policy.state_ttl.ttl = std::chrono::milliseconds(ttl);
  CAIRN_ASSIGN_OR_RETURN(RowDetector d, kind->make(c, common));
  if (d.stream_wide && !keys.empty())
    return absl::InvalidArgumentError(fmt::format(
        "{}: a {} detector watches the whole stream with one sketch; remove key_by", c.Describe("type"), type));
  return d;
}

}  // namespace cairn::pipeline
