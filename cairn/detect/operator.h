#pragma once
// Detectors as stream operators: any detector of cairn/detect (the contract in
// detect.h: a State per key, Update, Explain) runs inside a cairn/stream
// pipeline as a keyed process function whose State is ordinary keyed state, so
// it is partitioned by key, snapshotted at every checkpoint and restored with
// the rest of the pipeline.
//
//   // One series per machine:
//   SeriesDetector d = *SeriesDetector::Create({.value_name = "temperature"});
//   Stream<Anomaly> alarms = detect::Detect(
//       readings.KeyBy([](const Reading& r) { return r.machine; }), "temperature", d,
//       [](const Reading& r) { return Observation{.value = r.celsius}; },
//       {.false_alarm_rate = 0.001});
//
//   // A stream-wide detector (one sketch for the whole stream):
//   Stream<Anomaly> bursts = detect::DetectStreamWide(flows, "bursts", edges,
//       [](const Flow& f) { return Observation{.key = f.src, .item = f.dst}; });
//
// Per record the function (1) asks the extractor for an Observation (views
// into the record are fine: they are used before the call returns; an
// extractor returning std::optional<Observation> may skip a record with
// nullopt), (2) sets its time to the record's event time and, when the key is
// left empty, its key to the text of the stream's key, (3) runs Update on the
// key's State and (4) reports by the ReportPolicy: an Anomaly when the score
// reaches ThresholdFor(false_alarm_rate) (at most one per key per cooldown),
// or every scored record with `emit_all` (the reason is written only for
// anomalies: Explain is the slow part). A shaper turns the Anomaly into another output type (pipelines emit
// Rows, see cairn/pipeline/detect_step.h).
//
// State: the memory backend updates the State in place (ValueState::
// MutableOrInsert, no copy per record); the RocksDB backend reads, updates and
// writes the encoded State per record. A new key's State is D::NewState() when
// the detector has it (state sized by its configuration), else State{}.
//
// What a detector type provides (checked at compile time):
//   Scored Update(State&, const Observation&) const;
//   std::string Explain(const State&, const Observation&, const Scored&) const;
//   State with Encode/Decode (Serde) and a default constructor;
// and optionally: `using State = ...;` (else deduced from Update),
// `static constexpr std::string_view kName` (the Anomaly's detector name; else
// kDetectorName<D> below), `State NewState() const`, and
// `double ReportedValue(const State&, const Observation&, const Scored&) const`
// (the Anomaly's value, e.g. a count estimate; else the observation's value).
//
// Stream-wide detectors (edges, novelty, heavy hitters) keep one sketch for the
// whole stream, not one per key: the sketch is the summary of everything seen,
// and splitting it by a partition key would both multiply memory and make each
// part see only a share of the stream. They therefore run under one constant
// key (WholeStream) with parallelism 1; scale comes from the detector's O(1)
// per-record cost, not from partitioning.
//
// Thread-safety: the detector is shared, immutable, by every subtask; each
// subtask's function instance and its state are used by one engine thread.

#include <algorithm>
#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "cairn/detect/detect.h"
#include "cairn/stream/pipeline.h"
#include "fmt/format.h"

namespace cairn::detect {

class SeriesDetector;

// How a detect operator reports.
struct ReportPolicy {
  // Accepted fraction of normal records reported; the threshold is ThresholdFor(f).
  double false_alarm_rate = 0.001;
  // false: emit anomalies only; true: emit every scored record (reason only on anomalies).
  bool emit_all = false;
  // At most one anomaly per key per this much event time (ms): an incident
  // that keeps scoring high is reported once, then again after the cooldown,
  // not on every record. 0 = report every record over the threshold.
  int64_t cooldown_ms = 0;
  // Drop the state of a key not seen for this long (processing time); 0 = keep.
  stream::StateTtl state_ttl;
  // Name of the keyed state (distinct names let several detectors share an operator's store).
  std::string state_name = "detector";

  absl::Status Validate() const {
    if (!(false_alarm_rate > 0.0 && false_alarm_rate < 1.0))
      return absl::InvalidArgumentError(
          fmt::format("false-alarm rate {} must be between 0 and 1 (exclusive)", false_alarm_rate));
    if (cooldown_ms < 0) return absl::InvalidArgumentError(fmt::format("cooldown {} ms is negative", cooldown_ms));
    return absl::OkStatus();
  }
};

// The key under which stream-wide detectors run: one value, so one state.
struct WholeStream {
  bool operator==(const WholeStream&) const = default;
  void Encode(ByteWriter&) const {}
  static bool Decode(ByteReader&, WholeStream*) { return true; }
};

namespace internal {

template <class M>
struct UpdateSignature;
template <class C, class S>
struct UpdateSignature<Scored (C::*)(S&, const Observation&) const> {
  using State = S;
};
template <class D>
struct StateOf {
  using type = typename UpdateSignature<decltype(&D::Update)>::State;
};
template <class D>
  requires requires { typename D::State; }
struct StateOf<D> {
  using type = typename D::State;
};

}  // namespace internal

// The per-key state type of detector D.
template <class D>
using StateOf = typename internal::StateOf<D>::type;

// The name an Anomaly carries ("series", "edges", ...).
template <class D>
inline constexpr std::string_view kDetectorName = [] {
  if constexpr (requires { D::kName; })
    return std::string_view(D::kName);
  else
    return std::string_view("detector");
}();
template <>
inline constexpr std::string_view kDetectorName<SeriesDetector> = "series";

template <class D>
concept Detector = requires(const D& d, StateOf<D>& st, const Observation& o, const Scored& s) {
  { d.Update(st, o) } -> std::same_as<Scored>;
  { d.Explain(st, o, s) } -> std::convertible_to<std::string>;
} && std::default_initializable<StateOf<D>>;

// The text of a stream key, for Observation::key and Anomaly::key. Uses
// `scratch` when the key is not a string already.
inline std::string_view KeyText(const std::string& k, std::string&) { return k; }
inline std::string_view KeyText(const WholeStream&, std::string&) { return {}; }
// A Row key (pipeline files): its values joined by '/'.
std::string_view KeyText(const stream::Row& k, std::string& scratch);
template <class K>
  requires std::is_arithmetic_v<K>
std::string_view KeyText(const K& k, std::string& scratch) {
  scratch = fmt::format("{}", k);
  return scratch;
}

// The default shaper: the Anomaly itself.
struct AsAnomaly {
  template <class IN, class K>
  Anomaly operator()(const IN&, const K&, Anomaly a, bool /*anomalous*/) const {
    return a;
  }
};

// The keyed process function. X: extractor, (const IN&) or (const IN&, const K&)
// -> Observation or std::optional<Observation>; called on a per-instance copy,
// so it may keep scratch buffers. S: shaper, (const IN&, const K&, Anomaly,
// bool anomalous) -> OUT.
template <Detector D, class K, class IN, class OUT, class X, class S = AsAnomaly>
class DetectFunction final : public stream::KeyedProcessFunction<K, IN, OUT> {
 public:
  using State = StateOf<D>;

  DetectFunction(std::shared_ptr<const D> detector, X extract, S shape, ReportPolicy policy,
                 std::string name = std::string(kDetectorName<D>))
      : detector_(std::move(detector)),
        extract_(std::move(extract)),
        shape_(std::move(shape)),
        policy_(std::move(policy)),
        name_(std::move(name)),
        threshold_(ThresholdFor(policy_.false_alarm_rate)) {}

  void Open(stream::KeyedContext<K, OUT>& ctx) override {
    state_ = ctx.state().template GetValueState<State>(policy_.state_name, policy_.state_ttl);
    if (policy_.cooldown_ms > 0)
      last_report_ =
          ctx.state().template GetValueState<int64_t>(policy_.state_name + ".last_report", policy_.state_ttl);
  }

  void ProcessElement(const IN& in, stream::KeyedContext<K, OUT>& ctx) override {
    std::optional<Observation> obs = Extract(in, ctx.key());
    if (!obs) return;
    obs->time = ctx.timestamp();
    if (obs->key.empty()) obs->key = KeyText(ctx.key(), key_scratch_);
    bool inserted = false;
    if (State* st = state_->MutableOrInsert(&inserted)) {  // memory backend: in place
      if (inserted) *st = NewState();
      Step(*st, *obs, in, ctx);
      return;
    }
    std::optional<State> cur = state_->Value();  // RocksDB backend: decode, update, encode
    State st = cur ? std::move(*cur) : NewState();
    Step(st, *obs, in, ctx);
    state_->Update(std::move(st));
  }

 private:
  std::optional<Observation> Extract(const IN& in, const K& key) {
    if constexpr (std::is_invocable_v<X&, const IN&, const K&>)
      return extract_(in, key);
    else
      return extract_(in);
  }
  State NewState() const {
    if constexpr (requires(const D& d) { { d.NewState() } -> std::convertible_to<State>; })
      return detector_->NewState();
    else
      return State{};
  }
  void Step(State& st, const Observation& obs, const IN& in, stream::KeyedContext<K, OUT>& ctx) {
    const Scored scored = detector_->Update(st, obs);
    bool anomalous = scored.score >= threshold_;
    if (anomalous && last_report_ != nullptr) {  // read only for the rare records over the threshold
      std::optional<int64_t> last = last_report_->Value();
      if (last && obs.time >= *last && obs.time - *last < policy_.cooldown_ms)
        anomalous = false;
      else  // an older record (out of order) reports but does not move the cooldown back
        last_report_->Update(last ? std::max(*last, obs.time) : obs.time);
    }
    if (!anomalous && !policy_.emit_all) return;
    Anomaly a;
    a.key = std::string(obs.key.empty() ? obs.item : obs.key);
    a.time = obs.time;
    a.score = scored.score;
    a.detector = name_;
    if constexpr (requires(const D& d) { { d.ReportedValue(st, obs, scored) } -> std::convertible_to<double>; })
      a.value = detector_->ReportedValue(st, obs, scored);
    else
      a.value = obs.value;
    if (anomalous) a.reason = detector_->Explain(st, obs, scored);
    ctx.Emit(shape_(in, ctx.key(), std::move(a), anomalous));
  }

  std::shared_ptr<const D> detector_;
  X extract_;
  S shape_;
  ReportPolicy policy_;
  std::string name_;
  double threshold_;
  stream::ValueState<State>* state_ = nullptr;
  stream::ValueState<int64_t>* last_report_ = nullptr;  // with a cooldown
  std::string key_scratch_;
};

// A factory for KeyedStream::Process: one DetectFunction per subtask, all
// sharing `detector`.
template <class K, class IN, class OUT, Detector D, class X, class S>
std::function<std::unique_ptr<stream::KeyedProcessFunction<K, IN, OUT>>()> DetectFactory(
    std::shared_ptr<const D> detector, X extract, S shape, ReportPolicy policy,
    std::string name = std::string(kDetectorName<D>)) {
  using Function = stream::KeyedProcessFunction<K, IN, OUT>;
  return [detector = std::move(detector), extract = std::move(extract), shape = std::move(shape),
          policy = std::move(policy), name = std::move(name)]() -> std::unique_ptr<Function> {
    return std::make_unique<DetectFunction<D, K, IN, OUT, X, S>>(detector, extract, shape, policy, name);
  };
}

// Runs `detector` with one State per key of `keyed`; emits Anomalies.
template <Detector D, class K, class IN, class X>
stream::Stream<Anomaly> Detect(stream::KeyedStream<K, IN> keyed, stream::Op op, D detector, X extract,
                               ReportPolicy policy = {}) {
  return keyed.template Process<Anomaly>(
      std::move(op), DetectFactory<K, IN, Anomaly>(std::make_shared<const D>(std::move(detector)),
                                                   std::move(extract), AsAnomaly{}, std::move(policy)));
}

// Runs `detector` with one State for the whole stream (parallelism 1, see above).
template <Detector D, class IN, class X>
stream::Stream<Anomaly> DetectStreamWide(stream::Stream<IN> s, stream::Op op, D detector, X extract,
                                         ReportPolicy policy = {}) {
  op.parallelism = 1;
  return Detect(s.KeyBy([](const IN&) { return WholeStream{}; }), std::move(op), std::move(detector),
                std::move(extract), std::move(policy));
}

}  // namespace cairn::detect
