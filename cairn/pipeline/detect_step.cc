#include "cairn/pipeline/detect_step.h"

#include <optional>
#include <string_view>

#include "cairn/detect/cardinality.h"
#include "cairn/detect/drift.h"
#include "cairn/detect/edges.h"
#include "cairn/detect/heavy_hitters.h"
#include "cairn/detect/novelty.h"
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

// An extractor of a numeric value (from an expression); rows without a number are skipped.
struct ValueExtract {
  Expr value;
  std::optional<detect::Observation> operator()(const Row& row) const {
    std::optional<double> v = stream::ValueToDouble(value.Eval(row));
    if (!v) return std::nullopt;
    return detect::Observation{.value = *v};
  }
};

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
  return RowDetectorFor("series", false, *std::move(detector), ValueExtract{*std::move(value)}, common);
}

absl::StatusOr<Expr> ParseExprKey(const Config& c, std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, c.Get<std::string>(key));
  auto e = Expr::Parse(text);
  if (!e.ok()) return absl::InvalidArgumentError(fmt::format("{}: {}", c.Describe(key), std::string(e.status().message())));
  return *std::move(e);
}

template <class D>
absl::StatusOr<D> CreateOrDescribe(const Config& c, absl::StatusOr<D> d) {
  if (!d.ok()) return absl::InvalidArgumentError(fmt::format("{}: {}", c.Describe(""), std::string(d.status().message())));
  return d;
}

absl::StatusOr<stream::EventTime> DurationOr(const Config& c, std::string_view key, stream::EventTime fallback) {
  if (!c.Has(key)) return fallback;
  CAIRN_ASSIGN_OR_RETURN(std::string text, c.Get<std::string>(key));
  auto ms = ParseDurationMs(text);
  if (!ms.ok() || *ms <= 0)
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", c.Describe(key), ms.ok() ? "must be positive" : std::string(ms.status().message())));
  return *ms;
}

// An extractor of a text item (from an expression) into a per-instance scratch
// string, which the Observation views while the detector runs.
struct ItemExtract {
  Expr item;
  std::string scratch;
  std::optional<detect::Observation> operator()(const Row& row) {
    stream::Value v = item.Eval(row);
    if (std::holds_alternative<std::monostate>(v)) return std::nullopt;
    scratch = stream::ValueToString(v);
    return detect::Observation{.item = scratch};
  }
};

absl::StatusOr<RowDetector> MakeCardinality(const Config& c, const Common& common) {
  CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_DETECT_COMMON_KEYS, "item", "window", "buckets", "precision", "history",
                                          "warmup", "verb", "item_name"}));
  CAIRN_ASSIGN_OR_RETURN(Expr item, ParseExprKey(c, "item"));
  detect::CardinalityConfig config;
  CAIRN_ASSIGN_OR_RETURN(config.window_ms, DurationOr(c, "window", config.window_ms));
  CAIRN_ASSIGN_OR_RETURN(config.buckets, c.GetOr<int>("buckets", config.buckets));
  CAIRN_ASSIGN_OR_RETURN(config.precision, c.GetOr<int>("precision", config.precision));
  CAIRN_ASSIGN_OR_RETURN(config.history, c.GetOr<int>("history", config.history));
  CAIRN_ASSIGN_OR_RETURN(config.warmup, c.GetOr<int>("warmup", config.warmup));
  CAIRN_ASSIGN_OR_RETURN(config.verb, c.GetOr<std::string>("verb", config.verb));
  CAIRN_ASSIGN_OR_RETURN(config.item_name, c.GetOr<std::string>("item_name", config.item_name));
  CAIRN_ASSIGN_OR_RETURN(auto d, CreateOrDescribe(c, detect::CardinalityDetector::Create(config)));
  return RowDetectorFor("cardinality", false, std::move(d), ItemExtract{std::move(item), {}}, common);
}

absl::StatusOr<RowDetector> MakeNovelty(const Config& c, const Common& common) {
  CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_DETECT_COMMON_KEYS, "item", "expected_items", "false_positive_rate",
                                          "half_life", "warmup", "item_name"}));
  CAIRN_ASSIGN_OR_RETURN(Expr item, ParseExprKey(c, "item"));
  detect::NoveltyConfig config;
  CAIRN_ASSIGN_OR_RETURN(int64_t expected, c.GetOr<int64_t>("expected_items", static_cast<int64_t>(config.expected_items)));
  if (expected <= 0) return absl::InvalidArgumentError(fmt::format("{}: must be positive", c.Describe("expected_items")));
  config.expected_items = static_cast<uint64_t>(expected);
  CAIRN_ASSIGN_OR_RETURN(config.false_positive_rate, c.GetOr<double>("false_positive_rate", config.false_positive_rate));
  CAIRN_ASSIGN_OR_RETURN(config.half_life, c.GetOr<double>("half_life", config.half_life));
  CAIRN_ASSIGN_OR_RETURN(config.warmup, c.GetOr<int64_t>("warmup", config.warmup));
  CAIRN_ASSIGN_OR_RETURN(config.item_name, c.GetOr<std::string>("item_name", config.item_name));
  CAIRN_ASSIGN_OR_RETURN(auto d, CreateOrDescribe(c, detect::NoveltyDetector::Create(config)));
  return RowDetectorFor("novelty", true, std::move(d), ItemExtract{std::move(item), {}}, common);
}

absl::StatusOr<RowDetector> MakeHeavyHitters(const Config& c, const Common& common) {
  CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_DETECT_COMMON_KEYS, "item", "window", "top_k", "capacity",
                                          "reference_windows", "min_rank_rise", "eval_every", "min_reference_records",
                                          "item_name"}));
  CAIRN_ASSIGN_OR_RETURN(Expr item, ParseExprKey(c, "item"));
  detect::HeavyHitterConfig config;
  CAIRN_ASSIGN_OR_RETURN(config.window_ms, DurationOr(c, "window", config.window_ms));
  CAIRN_ASSIGN_OR_RETURN(config.top_k, c.GetOr<int>("top_k", config.top_k));
  CAIRN_ASSIGN_OR_RETURN(config.capacity, c.GetOr<int>("capacity", config.capacity));
  CAIRN_ASSIGN_OR_RETURN(config.reference_windows, c.GetOr<int>("reference_windows", config.reference_windows));
  CAIRN_ASSIGN_OR_RETURN(config.min_rank_rise, c.GetOr<double>("min_rank_rise", config.min_rank_rise));
  CAIRN_ASSIGN_OR_RETURN(config.eval_every, c.GetOr<int64_t>("eval_every", config.eval_every));
  CAIRN_ASSIGN_OR_RETURN(config.min_reference_records,
                         c.GetOr<int64_t>("min_reference_records", config.min_reference_records));
  CAIRN_ASSIGN_OR_RETURN(config.item_name, c.GetOr<std::string>("item_name", config.item_name));
  CAIRN_ASSIGN_OR_RETURN(auto d, CreateOrDescribe(c, detect::HeavyHitterDetector::Create(config)));
  return RowDetectorFor("heavy_hitters", true, std::move(d), ItemExtract{std::move(item), {}}, common);
}

absl::StatusOr<RowDetector> MakeDrift(const Config& c, const Common& common) {
  CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_DETECT_COMMON_KEYS, "value", "value_name", "window", "k", "grid",
                                          "eval_every", "min_samples"}));
  CAIRN_ASSIGN_OR_RETURN(Expr value, ParseExprKey(c, "value"));
  detect::DriftConfig config;
  CAIRN_ASSIGN_OR_RETURN(config.value_name, c.GetOr<std::string>("value_name", c.Get<std::string>("value").value()));
  CAIRN_ASSIGN_OR_RETURN(config.window_ms, DurationOr(c, "window", config.window_ms));
  CAIRN_ASSIGN_OR_RETURN(config.k, c.GetOr<int>("k", config.k));
  CAIRN_ASSIGN_OR_RETURN(config.grid, c.GetOr<int>("grid", config.grid));
  CAIRN_ASSIGN_OR_RETURN(config.eval_every, c.GetOr<int64_t>("eval_every", config.eval_every));
  CAIRN_ASSIGN_OR_RETURN(config.min_samples, c.GetOr<int64_t>("min_samples", config.min_samples));
  CAIRN_ASSIGN_OR_RETURN(auto d, CreateOrDescribe(c, detect::DriftDetector::Create(config)));
  return RowDetectorFor("drift", false, std::move(d), ValueExtract{std::move(value)}, common);
}

// An extractor of a (source, destination) pair into per-instance scratch strings.
struct EdgeExtract {
  Expr src, dst;
  std::string src_text, dst_text;
  std::optional<detect::Observation> operator()(const Row& row) {
    stream::Value a = src.Eval(row), b = dst.Eval(row);
    if (std::holds_alternative<std::monostate>(a) || std::holds_alternative<std::monostate>(b)) return std::nullopt;
    src_text = stream::ValueToString(a);
    dst_text = stream::ValueToString(b);
    return detect::Observation{.key = src_text, .item = dst_text};
  }
};

absl::StatusOr<RowDetector> MakeEdges(const Config& c, const Common& common) {
  CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_DETECT_COMMON_KEYS, "src", "dst", "tick", "edge_width", "node_width",
                                          "decay", "record_noun"}));
  CAIRN_ASSIGN_OR_RETURN(Expr src, ParseExprKey(c, "src"));
  CAIRN_ASSIGN_OR_RETURN(Expr dst, ParseExprKey(c, "dst"));
  detect::EdgeConfig config;
  CAIRN_ASSIGN_OR_RETURN(config.tick_ms, DurationOr(c, "tick", config.tick_ms));
  CAIRN_ASSIGN_OR_RETURN(int64_t ew, c.GetOr<int64_t>("edge_width", config.edge_width));
  CAIRN_ASSIGN_OR_RETURN(int64_t nw, c.GetOr<int64_t>("node_width", config.node_width));
  if (ew <= 0 || nw <= 0 || ew > (int64_t{1} << 30) || nw > (int64_t{1} << 30))
    return absl::InvalidArgumentError(fmt::format("{}: edge_width and node_width must be in 1..2^30", c.Describe("")));
  config.edge_width = static_cast<uint32_t>(ew);
  config.node_width = static_cast<uint32_t>(nw);
  CAIRN_ASSIGN_OR_RETURN(config.decay, c.GetOr<double>("decay", config.decay));
  CAIRN_ASSIGN_OR_RETURN(config.record_noun, c.GetOr<std::string>("record_noun", config.record_noun));
  CAIRN_ASSIGN_OR_RETURN(auto d, CreateOrDescribe(c, detect::EdgeDetector::Create(config)));
  return RowDetectorFor("edges", true, std::move(d), EdgeExtract{std::move(src), std::move(dst), {}, {}}, common);
}

// Detector types by name. Stream-wide types (edges, novelty, heavy hitters)
// return RowDetectorFor(..., /*stream_wide=*/true, ...).
struct Kind {
  std::string_view type;
  absl::StatusOr<RowDetector> (*make)(const Config&, const Common&);
};
constexpr Kind kKinds[] = {
    {"series", &MakeSeries},           {"cardinality", &MakeCardinality}, {"novelty", &MakeNovelty},
    {"heavy_hitters", &MakeHeavyHitters}, {"drift", &MakeDrift},         {"edges", &MakeEdges},
};

std::string KindNames() {
  std::string names;
  for (const Kind& k : kKinds) names += (names.empty() ? "" : ", ") + std::string(k.type);
  return names;
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
  CAIRN_ASSIGN_OR_RETURN(common.policy.cooldown_ms, DurationOr(c, "cooldown", 0));
  CAIRN_ASSIGN_OR_RETURN(int64_t ttl, DurationOr(c, "state_ttl", 0));
  common.policy.state_ttl.ttl = std::chrono::milliseconds(ttl);
  CAIRN_ASSIGN_OR_RETURN(RowDetector d, kind->make(c, common));
  if (d.stream_wide && !keys.empty())
    return absl::InvalidArgumentError(fmt::format(
        "{}: a {} detector watches the whole stream with one sketch; remove key_by", c.Describe("type"), type));
  return d;
}

}  // namespace cairn::pipeline
