// cairn/stream: stateful stream pipelines with event time and exactly-once
// checkpoints. This header is the typed C++ API; `cairn run pipeline.yaml`
// builds the same graphs from YAML (cairn/pipeline).
//
//   Pipeline p(options);
//   auto bids = p.AddSource<Bid>("bids", [](int) { return std::make_unique<BidSource>(); },
//                                WatermarkStrategy<Bid>::BoundedOutOfOrder(std::chrono::seconds(1)));
//   bids.Filter("big", [](const Bid& b) { return b.price > 100; })
//       .KeyBy([](const Bid& b) { return b.auction; })
//       .Window(Windows::Tumbling(std::chrono::seconds(10)))
//       .Aggregate("count", Count<Bid>())
//       .results.AddSink("out", ...);
//   absl::Status s = p.Run();   // blocks until bounded sources end, or Stop()
//
// Model (Flink's semantics):
//  * Sources -> stateless operators (Map, Filter, FlatMap) -> KeyBy -> keyed
//    operators (Reduce, Process with event/processing-time timers) -> windows
//    (tumbling, sliding, session; allowed lateness; later records go to the
//    `late` side output, or are counted and logged when it is not connected) ->
//    sinks.
//  * Event time in ms. Each source subtask emits watermarks = (largest event time
//    seen) - max_out_of_orderness - 1; a source idle for `idle_timeout` stops
//    holding the watermark back until it produces again. An operator's watermark
//    is the minimum over its non-idle inputs; when every input still open is idle,
//    it advances to the largest of their watermarks (whichever order they went
//    idle in). A window [start, end) fires when the
//    watermark reaches end - 1; results carry event time end - 1.
//  * Execution: every operator has a parallelism; operators joined by a forward
//    edge with equal parallelism run chained in one thread; otherwise records are
//    hash-partitioned by key (KeyBy) or spread round-robin (Rebalance), and travel
//    in batches through bounded queues, so a slow sink slows the sources
//    (backpressure) and memory stays bounded.
//  * Checkpoints: every `checkpoint_interval` the sources inject a barrier;
//    operators align barriers over their inputs, snapshot keyed state, timers and
//    watermarks; sources store their positions; sinks prepare. A checkpoint is
//    written under `checkpoint_dir/chk-<id>` atomically (temporary directory,
//    fsync, rename), each file checksummed, the last `checkpoints_to_keep` kept.
//    Run() restores the newest complete checkpoint (a corrupt one is skipped
//    with a warning) and rewinds the sources: exactly-once state; exactly-once
//    output with sinks that commit on checkpoint.
//
// Thread-safety: build the graph from one thread, then call Run() once; Stop()
// and Stats() may be called from any thread while Run() runs. User functions
// run on the engine's threads: one instance per subtask, called by one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cairn/base/clock.h"
#include "cairn/base/metrics.h"
#include "cairn/base/status.h"
#include "cairn/stream/connector.h"
#include "cairn/stream/internal/graph.h"
#include "cairn/stream/record.h"
#include "cairn/stream/state.h"

namespace cairn::stream {

using Millis = std::chrono::milliseconds;

struct PipelineOptions {
  std::string name = "pipeline";
  int default_parallelism = 1;
  size_t batch_size = 1024;     // records per batch between operators
  size_t queue_batches = 16;    // capacity of each channel, in batches (backpressure bound)
  Millis poll_wait{2};          // how long a source poll may wait for input
  // Checkpoints: off when the interval is 0 or the directory is empty.
  Millis checkpoint_interval{0};
  std::string checkpoint_dir;
  int checkpoints_to_keep = 3;
  bool restore = true;          // restore the newest complete checkpoint on Run()
  StateBackendOptions state;    // kRocksDb: rocksdb_dir is a base; each subtask gets a subdirectory
  const Clock* clock = nullptr;             // default: SystemClock
  MetricsRegistry* metrics = nullptr;       // default: MetricsRegistry::Default()
  DeadLetterSink* dead_letter = nullptr;    // default: counts and logs samples
};

// An operator's name and parallelism (0 = the pipeline's default).
struct Op {
  std::string name;
  int parallelism = 0;
  Op(const char* n) : name(n) {}  // NOLINT: implicit by design
  Op(std::string n, int p = 0) : name(std::move(n)), parallelism(p) {}  // NOLINT
};

template <class T>
struct WatermarkStrategy {
  Millis max_out_of_orderness{0};
  Millis idle_timeout{0};  // 0 = never idle
  // Event time of a record; when unset, the times the source gives, else ingestion time.
  std::function<EventTime(const T&)> timestamp;
  double max_records_per_second = 0;  // throttles each source subtask (0 = no limit)

  static WatermarkStrategy BoundedOutOfOrder(Millis ooo, std::function<EventTime(const T&)> ts = nullptr) {
    WatermarkStrategy w;
    w.max_out_of_orderness = ooo;
    w.timestamp = std::move(ts);
    return w;
  }
  WatermarkStrategy& WithIdleTimeout(Millis t) {
    idle_timeout = t;
    return *this;
  }
};

// Emits records from a user function; `EmitAt` sets the event time explicitly.
template <class T>
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void Emit(T value) = 0;                   // event time of the input
  virtual void EmitAt(T value, EventTime time) = 0;
};

enum class TimeDomain { kEventTime, kProcessingTime };

// Timers of the current key. Registering the same time twice fires once.
class TimerService {
 public:
  virtual ~TimerService() = default;
  virtual EventTime CurrentWatermark() const = 0;
  virtual int64_t CurrentProcessingTime() const = 0;  // ms
  virtual void RegisterEventTimeTimer(EventTime t) = 0;
  virtual void DeleteEventTimeTimer(EventTime t) = 0;
  virtual void RegisterProcessingTimeTimer(int64_t t) = 0;
  virtual void DeleteProcessingTimeTimer(int64_t t) = 0;
};

template <class K, class OUT>
class KeyedContext : public Collector<OUT> {
 public:
  virtual const K& key() const = 0;
  virtual EventTime timestamp() const = 0;  // the input's (or the firing timer's) time
  virtual TimerService& timers() = 0;
  virtual KeyedStateStore& state() = 0;
};

// The low-level keyed operator: per-record callback, state, timers.
template <class K, class IN, class OUT>
class KeyedProcessFunction {
 public:
  virtual ~KeyedProcessFunction() = default;
  // Create state handles here (ctx.state().GetValueState<...>("name")).
  virtual void Open(KeyedContext<K, OUT>& /*ctx*/) {}
  virtual void ProcessElement(const IN& value, KeyedContext<K, OUT>& ctx) = 0;
  virtual void OnTimer(EventTime /*time*/, TimeDomain /*domain*/, KeyedContext<K, OUT>& /*ctx*/) {}
};

// Incremental window aggregation. Merge is needed for session windows.
template <class IN, class ACC, class OUT>
struct AggregateFunction {
  std::function<ACC()> create;
  std::function<void(ACC&, const IN&)> add;
  std::function<OUT(const ACC&)> result;
  std::function<void(ACC&, const ACC&)> merge;  // into the first
};

template <class IN>
AggregateFunction<IN, int64_t, int64_t> Count() {
  return {[] { return int64_t{0}; }, [](int64_t& a, const IN&) { ++a; }, [](const int64_t& a) { return a; },
          [](int64_t& a, const int64_t& b) { a += b; }};
}

struct WindowSpec {
  enum class Kind { kTumbling, kSliding, kSession };
  Kind kind = Kind::kTumbling;
  int64_t size_ms = 0;
  int64_t slide_ms = 0;  // sliding
  int64_t gap_ms = 0;    // session
  int64_t offset_ms = 0;
  int64_t allowed_lateness_ms = 0;
};

struct Windows {
  static WindowSpec Tumbling(Millis size, Millis offset = Millis(0)) {
    return {WindowSpec::Kind::kTumbling, size.count(), size.count(), 0, offset.count(), 0};
  }
  static WindowSpec Sliding(Millis size, Millis slide, Millis offset = Millis(0)) {
    return {WindowSpec::Kind::kSliding, size.count(), slide.count(), 0, offset.count(), 0};
  }
  static WindowSpec Session(Millis gap) { return {WindowSpec::Kind::kSession, 0, 0, gap.count(), 0, 0}; }
};

template <class K, class OUT>
struct WindowResult {
  K key;
  EventTime start = 0;  // inclusive
  EventTime end = 0;    // exclusive
  OUT value;
  bool operator==(const WindowResult&) const = default;
  void Encode(ByteWriter& w) const {
    Serde<K>::Write(w, key);
    w.I64(start);
    w.I64(end);
    Serde<OUT>::Write(w, value);
  }
  static bool Decode(ByteReader& r, WindowResult* out) {
    if (!Serde<K>::Read(r, &out->key)) return false;
    out->start = r.I64();
    out->end = r.I64();
    return Serde<OUT>::Read(r, &out->value);
  }
};

// Live figures of a running pipeline (see Pipeline::Stats).
struct OperatorStats {
  std::string name;
  int parallelism = 1;
  uint64_t records_in = 0;
  uint64_t records_out = 0;
  double queue_fill = 0;        // 0..1, fullest input channel of its subtasks
  EventTime watermark = kMinTime;  // lowest over subtasks
  uint64_t state_bytes = 0;
  uint64_t late_records = 0;
};
struct PipelineStats {
  std::vector<OperatorStats> operators;
  int64_t checkpoints_completed = 0;
  int64_t last_checkpoint_id = 0;
  double last_checkpoint_ms = 0;
  uint64_t last_checkpoint_bytes = 0;
  int64_t restored_checkpoint = 0;  // 0 = fresh start
  uint64_t dead_letters = 0;
};

template <class T>
class Stream;
template <class K, class T>
class KeyedStream;
template <class K, class T>
class WindowedStream;

class Pipeline {
 public:
  explicit Pipeline(PipelineOptions options = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // `factory(subtask)` makes one Source per parallel subtask.
  template <class T>
  Stream<T> AddSource(Op op, std::function<std::unique_ptr<Source<T>>(int subtask)> factory,
                      WatermarkStrategy<T> watermarks = {});

  // Runs until every source has ended and all output is flushed, or Stop() is
  // called (then the last completed checkpoint is what a restart resumes from).
  absl::Status Run();
  void Stop();
  PipelineStats Stats() const;
  // Guarantees of the sinks, for `cairn run` to state ("file sink: exactly-once").
  std::vector<std::pair<std::string, DeliveryGuarantee>> SinkGuarantees() const;
  const PipelineOptions& options() const { return options_; }

  // ---- graph building (used by the typed API) ----
  int AddNode(internal::Node node);
  void AddEdge(internal::Edge edge);
  int ParallelismOf(const Op& op) const { return op.parallelism > 0 ? op.parallelism : options_.default_parallelism; }
  const internal::Graph& graph() const { return graph_; }

 private:
  class Runtime;
  PipelineOptions options_;
  internal::Graph graph_;
  std::unique_ptr<Runtime> runtime_;
  std::atomic<bool> stop_requested_{false};
  mutable std::mutex runtime_mu_;
};

// A sink that keeps everything in memory (tests, small tools). Thread-safe.
template <class T>
class CollectedOutput {
 public:
  void Add(std::span<const T> records, std::span<const EventTime> times) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < records.size(); ++i) {
      records_.push_back(records[i]);
      times_.push_back(times[i]);
    }
  }
  std::vector<T> records() const {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }
  std::vector<EventTime> times() const {
    std::lock_guard<std::mutex> lock(mu_);
    return times_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return records_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<T> records_;
  std::vector<EventTime> times_;
};

}  // namespace cairn::stream

#include "cairn/stream/internal/operators.h"  // IWYU pragma: export

namespace cairn::stream {

template <class T>
class Stream {
 public:
  Stream(Pipeline* p, int node, int port) : p_(p), node_(node), port_(port) {}

  template <class F>
  auto Map(Op op, F f) -> Stream<std::decay_t<std::invoke_result_t<F&, const T&>>> {
    using U = std::decay_t<std::invoke_result_t<F&, const T&>>;
    return Then<U>(op, [f] { return std::make_unique<internal::MapOperator<T, U, F>>(f); });
  }
  template <class F>
  Stream<T> Filter(Op op, F pred) {
    return Then<T>(op, [pred] { return std::make_unique<internal::FilterOperator<T, F>>(pred); });
  }
  // f(const T&, EventTime, Collector<U>&) emits zero or more records. f may
  // also take T& and move from it: each operator owns the batch it is given.
  template <class U, class F>
  Stream<U> FlatMap(Op op, F f) {
    return Then<U>(op, [f] { return std::make_unique<internal::FlatMapOperator<T, U, F>>(f); });
  }
  // Partitions by key_fn(record); K needs Serde and equality.
  template <class F>
  auto KeyBy(F key_fn) -> KeyedStream<std::decay_t<std::invoke_result_t<F&, const T&>>, T> {
    using K = std::decay_t<std::invoke_result_t<F&, const T&>>;
    return KeyedStream<K, T>(p_, node_, port_, std::function<K(const T&)>(key_fn));
  }
  // Spreads records round-robin over the next operator's subtasks.
  Stream<T> Rebalance(Op op = Op("rebalance")) {
    int n = p_->AddNode(internal::MakeOperatorNode(
        op.name, p_->ParallelismOf(op), 1, [] { return std::make_unique<internal::FilterOperator<T, PassAll>>(PassAll{}); }));
    p_->AddEdge(internal::RebalanceEdge<T>(node_, port_, n));
    return Stream<T>(p_, n, 0);
  }
  // Merges this stream with `other` (same type) into one; records of both keep
  // their event times, and the watermark is the lower of the two.
  Stream<T> Union(Stream<T> other, Op op = Op("union")) {
    int n = p_->AddNode(internal::MakeOperatorNode(
        op.name, p_->ParallelismOf(op), 1, [] { return std::make_unique<internal::FilterOperator<T, PassAll>>(PassAll{}); }));
    p_->AddEdge(internal::RebalanceEdge<T>(node_, port_, n));
    p_->AddEdge(internal::RebalanceEdge<T>(other.node_, other.port_, n));
    return Stream<T>(p_, n, 0);
  }
  // Writes to a sink; `factory(subtask)` makes one per subtask.
  void AddSink(Op op, std::function<std::unique_ptr<Sink<T>>(int subtask)> factory) {
    int n = p_->AddNode(internal::MakeOperatorNode(op.name, p_->ParallelismOf(op), 0, [factory]() {
      return std::make_unique<internal::SinkOperator<T>>(factory);
    }));
    Connect(n);
  }

  Pipeline* pipeline() const { return p_; }
  int node() const { return node_; }
  int port() const { return port_; }

 private:
  struct PassAll {
    bool operator()(const T&) const { return true; }
  };
  template <class U>
  friend class Stream;
  template <class U>
  Stream<U> Then(const Op& op, std::function<std::unique_ptr<internal::Operator>()> make) {
    int n = p_->AddNode(internal::MakeOperatorNode(op.name, p_->ParallelismOf(op), 1, std::move(make)));
    Connect(n);
    return Stream<U>(p_, n, 0);
  }
  void Connect(int to) {
    // Equal parallelism: forward (chained); otherwise round-robin.
    if (p_->graph().nodes[node_].parallelism == p_->graph().nodes[to].parallelism)
      p_->AddEdge(internal::ForwardEdge<T>(node_, port_, to));
    else
      p_->AddEdge(internal::RebalanceEdge<T>(node_, port_, to));
  }

  Pipeline* p_;
  int node_;
  int port_;
};

template <class K, class T>
class KeyedStream {
 public:
  KeyedStream(Pipeline* p, int node, int port, std::function<K(const T&)> key_fn)
      : p_(p), node_(node), port_(port), key_fn_(std::move(key_fn)) {}

  // Rolling reduce: emits the updated value for every record.
  template <class F>
  Stream<T> Reduce(Op op, F reduce) {
    auto key_fn = key_fn_;
    return Keyed<T>(op, 1, [key_fn, reduce]() {
      return std::make_unique<internal::KeyedProcessOperator<K, T, T>>(
          key_fn, std::make_unique<internal::ReduceFunction<K, T, F>>(reduce));
    });
  }
  // A process function per subtask from `factory`.
  template <class OUT>
  Stream<OUT> Process(Op op, std::function<std::unique_ptr<KeyedProcessFunction<K, T, OUT>>()> factory) {
    auto key_fn = key_fn_;
    return Keyed<OUT>(op, 1, [key_fn, factory]() {
      return std::make_unique<internal::KeyedProcessOperator<K, T, OUT>>(key_fn, factory());
    });
  }
  WindowedStream<K, T> Window(WindowSpec spec) { return WindowedStream<K, T>(*this, spec); }

  Pipeline* pipeline() const { return p_; }
  const std::function<K(const T&)>& key_fn() const { return key_fn_; }

  // Adds a keyed node with `ports` outputs fed by a hash edge; returns its id.
  int AddKeyedNode(const Op& op, int ports, std::function<std::unique_ptr<internal::Operator>()> make) {
    int n = p_->AddNode(internal::MakeOperatorNode(op.name, p_->ParallelismOf(op), ports, std::move(make)));
    p_->AddEdge(internal::HashEdge<K, T>(node_, port_, n, key_fn_));
    return n;
  }

 private:
  template <class OUT>
  Stream<OUT> Keyed(const Op& op, int ports, std::function<std::unique_ptr<internal::Operator>()> make) {
    return Stream<OUT>(p_, AddKeyedNode(op, ports, std::move(make)), 0);
  }

  Pipeline* p_;
  int node_;
  int port_;
  std::function<K(const T&)> key_fn_;
};

template <class K, class OUT, class T>
struct WindowOutput {
  Stream<WindowResult<K, OUT>> results;
  Stream<T> late;  // records later than the allowed lateness
};

template <class K, class T>
class WindowedStream {
 public:
  WindowedStream(KeyedStream<K, T> keyed, WindowSpec spec) : keyed_(std::move(keyed)), spec_(spec) {}
  WindowedStream& AllowedLateness(Millis lateness) {
    spec_.allowed_lateness_ms = lateness.count();
    return *this;
  }
  template <class ACC, class OUT>
  WindowOutput<K, OUT, T> Aggregate(Op op, AggregateFunction<T, ACC, OUT> fn) {
    auto key_fn = keyed_.key_fn();
    WindowSpec spec = spec_;
    int n = keyed_.AddKeyedNode(op, 2, [key_fn, fn, spec]() {
      return std::make_unique<internal::WindowOperator<K, T, ACC, OUT>>(key_fn, fn, spec);
    });
    return {Stream<WindowResult<K, OUT>>(keyed_.pipeline(), n, 0), Stream<T>(keyed_.pipeline(), n, 1)};
  }

 private:
  KeyedStream<K, T> keyed_;
  WindowSpec spec_;
};

template <class T>
Stream<T> Pipeline::AddSource(Op op, std::function<std::unique_ptr<Source<T>>(int subtask)> factory,
                              WatermarkStrategy<T> watermarks) {
  internal::Node node;
  node.name = op.name;
  node.parallelism = ParallelismOf(op);
  node.is_source = true;
  node.max_out_of_orderness = watermarks.max_out_of_orderness;
  node.idle_timeout = watermarks.idle_timeout;
  node.max_records_per_second = watermarks.max_records_per_second;
  auto ts = watermarks.timestamp;
  node.make_source = [factory, ts]() -> std::unique_ptr<internal::SourceDriver> {
    return std::make_unique<internal::TypedSourceDriver<T>>(factory, ts);
  };
  int id = AddNode(std::move(node));
  return Stream<T>(this, id, 0);
}

template <class T>
std::shared_ptr<CollectedOutput<T>> Collect(Stream<T> s, Op op = Op("collect")) {
  auto out = std::make_shared<CollectedOutput<T>>();
  s.AddSink(op, [out](int) -> std::unique_ptr<Sink<T>> { return std::make_unique<internal::CollectSink<T>>(out); });
  return out;
}

}  // namespace cairn::stream
