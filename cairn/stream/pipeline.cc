// The public Pipeline methods and the parts of the runtime that watch over a
// run: the checkpoint coordinator, statistics and metrics. Tasks and their run
// loops are in runtime.cc.
#include "cairn/stream/pipeline.h"

#include <fstream>

#include "cairn/stream/file_connector.h"
#include "cairn/stream/internal/runtime.h"

namespace cairn::stream {

const char* DeliveryGuaranteeName(DeliveryGuarantee g) {
  switch (g) {
    case DeliveryGuarantee::kExactlyOnce:
      return "exactly-once";
    case DeliveryGuarantee::kAtLeastOnce:
      return "at-least-once";
    case DeliveryGuarantee::kAtMostOnce:
      return "at-most-once";
  }
  return "unknown";
}

std::string Pipeline::Runtime::Fingerprint() const {
  std::string s;
  for (const Node& n : g_.nodes) s += fmt::format("{}:{}:{};", n.name, n.parallelism, n.ports);
  for (const Edge& e : g_.edges) s += fmt::format("{}>{}.{}:{};", e.from, e.to, e.port, static_cast<int>(e.kind));
  return s;
}

void Pipeline::Runtime::Coordinate() {
  const bool checkpoints = store_.has_value();
  auto next_checkpoint = std::chrono::steady_clock::now() + opt_.checkpoint_interval;
  while (running_tasks_.load() > 0 && !stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (std::chrono::steady_clock::now() - last_publish_ >= std::chrono::seconds(1)) PublishMetrics();
    if (!checkpoints || ended_sources_.load() > 0) continue;
    auto now = std::chrono::steady_clock::now();
    if (now < next_checkpoint) continue;
    next_checkpoint = now + opt_.checkpoint_interval;
    int64_t id = next_id_++;
    auto path = store_->Begin(id);
    if (!path.ok()) {
      Fail(path.status());
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_id_ = id;
      pending_path_ = *path;
      pending_acks_ = static_cast<int>(tasks_.size());
      pending_status_ = absl::OkStatus();
      pending_start_ = now;
    }
    for (auto& t : tasks_)
      if (t->source) t->inject.store(id, std::memory_order_release);
    // Wait for every task's acknowledgement (or the end of a source, which aborts it).
    std::unique_lock<std::mutex> lock(mu_);
    while (pending_acks_ > 0 && !stop_.load() && ended_sources_.load() == 0)
      acked_.wait_for(lock, std::chrono::milliseconds(20));
    if (pending_acks_ > 0 || !pending_status_.ok()) {
      if (!pending_status_.ok()) spdlog::warn("checkpoint {} failed: {}", id, pending_status_.ToString());
      pending_id_ = 0;
      lock.unlock();
      store_->Abort(id);
      continue;
    }
    pending_id_ = 0;
    lock.unlock();
    ByteWriter meta;
    meta.String(Fingerprint());
    auto bytes = store_->Complete(id, meta.data());
    if (!bytes.ok()) {
      spdlog::warn("checkpoint {} could not be completed: {}", id, bytes.status().ToString());
      store_->Abort(id);
      continue;
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - pending_start_).count();
    {
      std::lock_guard<std::mutex> l(mu_);
      ckpt_stats_.checkpoints_completed++;
      ckpt_stats_.last_checkpoint_id = id;
      ckpt_stats_.last_checkpoint_ms = ms;
      ckpt_stats_.last_checkpoint_bytes = *bytes;
    }
    auto& reg = *opt_.metrics;
    reg.Counter("cairn_stream_checkpoints_total", "Completed checkpoints", {{"pipeline", opt_.name}}).Increment();
    reg.Gauge("cairn_stream_checkpoint_duration_ms", "Duration of the last checkpoint", {{"pipeline", opt_.name}})
        .Set(ms);
    reg.Gauge("cairn_stream_checkpoint_bytes", "Size of the last checkpoint", {{"pipeline", opt_.name}})
        .Set(static_cast<double>(*bytes));
    for (auto& t : tasks_) {
      {
        std::lock_guard<std::mutex> l(t->mu);
        t->completed.push_back(id);
      }
      if (t->gate) t->gate->Wake();
    }
  }
}

void Pipeline::Runtime::PublishMetrics() {
  last_publish_ = std::chrono::steady_clock::now();
  PipelineStats st = Stats();
  auto& reg = *opt_.metrics;
  published_.resize(st.operators.size());
  published_late_.resize(st.operators.size());
  int64_t now_ms = opt_.clock->NowNanos() / 1'000'000;
  for (size_t n = 0; n < st.operators.size(); ++n) {
    const OperatorStats& o = st.operators[n];
    MetricLabels labels{{"pipeline", opt_.name}, {"operator", o.name}};
    auto& [in, out] = published_[n];
    reg.Counter("cairn_stream_records_in_total", "Records into an operator", labels)
        .Increment(static_cast<double>(o.records_in - std::min(in, o.records_in)));
    reg.Counter("cairn_stream_records_out_total", "Records out of an operator", labels)
        .Increment(static_cast<double>(o.records_out - std::min(out, o.records_out)));
    reg.Counter("cairn_stream_late_records_total", "Records later than the allowed lateness", labels)
        .Increment(static_cast<double>(o.late_records - std::min(published_late_[n], o.late_records)));
    in = o.records_in;
    out = o.records_out;
    published_late_[n] = o.late_records;
    reg.Gauge("cairn_stream_queue_fill_ratio", "Fill of the fullest input channel (0..1)", labels).Set(o.queue_fill);
    reg.Gauge("cairn_stream_state_bytes", "Approximate keyed state size", labels).Set(static_cast<double>(o.state_bytes));
    if (o.watermark != kMinTime && o.watermark != kMaxTime)
      reg.Gauge("cairn_stream_watermark_lag_seconds", "Processing time minus the operator's watermark", labels)
          .Set(static_cast<double>(now_ms - o.watermark) / 1000.0);
  }
  reg.Gauge("cairn_stream_dead_letters", "Malformed records rejected", {{"pipeline", opt_.name}})
      .Set(static_cast<double>(st.dead_letters));
}

absl::Status Pipeline::Runtime::Run() {
  if (!opt_.clock) opt_.clock = &SystemClock::Get();
  if (!opt_.metrics) opt_.metrics = &MetricsRegistry::Default();
  if (!opt_.dead_letter) {
    default_dead_letter_ = std::make_unique<DeadLetterFile>();  // counts and logs samples
    opt_.dead_letter = default_dead_letter_.get();
  }
  if (opt_.batch_size == 0 || opt_.queue_batches == 0)
    return absl::InvalidArgumentError("batch_size and queue_batches must be at least 1");
  if (opt_.state.kind == StateBackendKind::kRocksDb && opt_.state.rocksdb_dir.empty())
    return absl::InvalidArgumentError("the rocksdb state backend needs a directory (state.rocksdb_dir)");
  std::optional<std::string> restore_path;
  if (opt_.checkpoint_interval.count() > 0 && !opt_.checkpoint_dir.empty()) {
    CAIRN_ASSIGN_OR_RETURN(CheckpointStore store, CheckpointStore::Open(opt_.checkpoint_dir, opt_.checkpoints_to_keep));
    store_.emplace(std::move(store));
    // A pipeline whose bounded input was read to the end left a marker: running
    // it again means running it again, not resuming after its last checkpoint.
    const fs::path finished = fs::path(opt_.checkpoint_dir) / kFinishedMarker;
    std::error_code ec;
    if (fs::exists(finished, ec)) {
      spdlog::info("pipeline '{}' ran to the end before; starting from the beginning", opt_.name);
      for (int64_t id : store_->CompleteIds()) fs::remove_all(fs::path(opt_.checkpoint_dir) / fmt::format("chk-{}", id), ec);
      fs::remove(finished, ec);
    }
    std::vector<int64_t> ids = store_->CompleteIds();
    if (!ids.empty()) next_id_ = ids.back() + 1;
    if (opt_.restore) {
      std::vector<std::string> warnings;
      auto latest = store_->FindLatest(&warnings);
      for (auto& w : warnings) spdlog::warn("{}", w);
      if (latest) {
        ByteReader r(latest->metadata, "checkpoint metadata");
        std::string fp(r.String());
        if (!r.ok() || fp != Fingerprint())
          return absl::FailedPreconditionError(fmt::format(
              "checkpoint {} was taken by a different pipeline (operators or parallelism changed); "
              "use another checkpoint directory or delete {}",
              latest->path, opt_.checkpoint_dir));
        restore_path = latest->path;
        {
          std::lock_guard<std::mutex> lock(mu_);
          ckpt_stats_.restored_checkpoint = latest->id;
        }
        spdlog::info("restoring checkpoint {} ({})", latest->id, latest->path);
      }
    }
  }
  CAIRN_RETURN_IF_ERROR(Build(restore_path));
  built_.store(true, std::memory_order_release);
  running_tasks_.store(static_cast<int>(tasks_.size()));
  for (auto& t : tasks_) {
    Task* task = t.get();
    task->thread = std::thread([this, task] {
      if (task->source)
        RunSource(*task);
      else
        RunOperator(*task);
      running_tasks_.fetch_sub(1);
    });
  }
  last_publish_ = std::chrono::steady_clock::now();
  Coordinate();
  Shutdown();
  PublishMetrics();
  std::lock_guard<std::mutex> lock(mu_);
  int sources = 0;
  for (auto& t : tasks_) sources += t->source ? 1 : 0;
  if (error_.ok() && store_ && ended_sources_.load() == sources) {
    std::ofstream(fs::path(opt_.checkpoint_dir) / kFinishedMarker) << "every source ended and all output was committed\n";
  }
  return error_;
}

PipelineStats Pipeline::Runtime::Stats() const {
  PipelineStats st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st = ckpt_stats_;
  }
  if (!built_.load(std::memory_order_acquire)) return st;  // tasks_ is still being built
  st.operators.resize(g_.nodes.size());
  for (size_t n = 0; n < g_.nodes.size(); ++n) {
    st.operators[n].name = g_.nodes[n].name;
    st.operators[n].parallelism = g_.nodes[n].parallelism;
    st.operators[n].watermark = kMaxTime;
  }
  for (auto& t : tasks_) {
    for (auto& oi : t->ops) {
      auto& o = st.operators[oi->node];
      o.records_in += oi->records_in.load(std::memory_order_relaxed);
      o.records_out += oi->records_out.load(std::memory_order_relaxed);
      o.watermark = std::min<EventTime>(o.watermark, oi->watermark.load(std::memory_order_relaxed));
      if (oi->op) {
        o.state_bytes += oi->op->StateBytes();
        o.late_records += oi->op->LateRecords();
      }
      if (oi.get() == t->ops[0].get() && t->gate) o.queue_fill = std::max(o.queue_fill, t->gate->Fill());
    }
  }
  // Records out of an operator = records into what it feeds.
  for (const Edge& e : g_.edges)
    if (!g_.nodes[e.from].is_source) st.operators[e.from].records_out = 0;
  for (const Edge& e : g_.edges)
    if (!g_.nodes[e.from].is_source) st.operators[e.from].records_out += st.operators[e.to].records_in;
  st.dead_letters = opt_.dead_letter ? opt_.dead_letter->rejected() : 0;
  return st;
}

std::vector<std::pair<std::string, DeliveryGuarantee>> Pipeline::Runtime::SinkGuarantees() const {
  std::vector<std::pair<std::string, DeliveryGuarantee>> out;
  for (auto& t : tasks_) {
    if (t->subtask != 0) continue;
    if (t->source) out.emplace_back("source " + g_.nodes[t->head].name, t->source->guarantee());
    for (auto& oi : t->ops)
      if (oi->op && oi->op->guarantee()) out.emplace_back("sink " + g_.nodes[oi->node].name, *oi->op->guarantee());
  }
  return out;
}

// ---------------------------------------------------------------------------

Pipeline::Pipeline(PipelineOptions options) : options_(std::move(options)) {}
Pipeline::~Pipeline() = default;

int Pipeline::AddNode(internal::Node node) {
  node.id = static_cast<int>(graph_.nodes.size());
  graph_.nodes.push_back(std::move(node));
  return graph_.nodes.back().id;
}

void Pipeline::AddEdge(internal::Edge edge) {
  int id = static_cast<int>(graph_.edges.size());
  graph_.nodes[edge.from].out_edges.push_back(id);
  graph_.nodes[edge.to].in_edges.push_back(id);
  graph_.edges.push_back(std::move(edge));
}

absl::Status Pipeline::Run() {
  {
    std::lock_guard<std::mutex> lock(runtime_mu_);
    if (runtime_) return absl::FailedPreconditionError("Pipeline::Run may be called once");
    runtime_ = std::make_unique<Runtime>(this);
    if (stop_requested_.load()) runtime_->Stop();
  }
  return runtime_->Run();
}

void Pipeline::Stop() {
  std::lock_guard<std::mutex> lock(runtime_mu_);
  stop_requested_.store(true);
  if (runtime_) runtime_->Stop();
}

PipelineStats Pipeline::Stats() const {
  std::lock_guard<std::mutex> lock(runtime_mu_);
  if (!runtime_) return {};
  return runtime_->Stats();
}

std::vector<std::pair<std::string, DeliveryGuarantee>> Pipeline::SinkGuarantees() const {
  std::lock_guard<std::mutex> lock(runtime_mu_);
  if (!runtime_) return {};
  return runtime_->SinkGuarantees();
}

}  // namespace cairn::stream
