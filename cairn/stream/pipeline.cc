// The runtime behind pipeline.h: tasks (chains of operators on one thread),
// channels between them, watermarks, barrier alignment and the checkpoint
// coordinator.
#include "cairn/stream/pipeline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cairn/stream/checkpoint.h"
#include "cairn/stream/internal/channel.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

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

namespace internal {

absl::Status WriteSealedFile(const std::string& path, uint32_t magic, std::string_view payload) {
  std::string blob = SealEnvelope(magic, 1, payload);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
  out.close();
  if (!out) return absl::InternalError(fmt::format("cannot write {}", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSealedFile(const std::string& path, uint32_t magic, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("{} is missing", path));
  std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CAIRN_ASSIGN_OR_RETURN(Envelope env, OpenEnvelope(blob, magic, 1, what));
  return std::string(env.payload);
}

}  // namespace internal

namespace {

using internal::BatchBase;
using internal::Downstream;
using internal::Edge;
using internal::InputGate;
using internal::Message;
using internal::Node;
using internal::PartitionKind;
using internal::Port;
namespace fs = std::filesystem;

constexpr uint32_t kSourceMagic = MakeMagic("CSRC");

class LoggingDeadLetter final : public DeadLetterSink {
 public:
  void Reject(std::string_view origin, std::string_view raw, std::string_view error) override {
    uint64_t n = count_.fetch_add(1) + 1;
    if (n <= 5 || n % 10000 == 0)
      spdlog::warn("malformed record #{} from {}: {} (record: {})", n, std::string(origin), std::string(error),
                   std::string(raw.substr(0, 200)));
  }
  uint64_t rejected() const override { return count_.load(); }

 private:
  std::atomic<uint64_t> count_{0};
};

bool Chained(const internal::Graph& g, const Edge& e) {
  return e.kind == PartitionKind::kForward && g.nodes[e.from].parallelism == g.nodes[e.to].parallelism &&
         g.nodes[e.to].in_edges.size() == 1 && !g.nodes[e.to].is_source;
}

}  // namespace

// ---------------------------------------------------------------------------

class Pipeline::Runtime {
 public:
  Runtime(Pipeline* p) : p_(p), g_(p->graph_), opt_(p->options_) {}
  ~Runtime() { Shutdown(); }

  absl::Status Run();
  void Stop() {
    stop_.store(true);
    for (auto& gate : gates_)
      if (gate) gate->Cancel();
  }
  PipelineStats Stats() const;
  std::vector<std::pair<std::string, DeliveryGuarantee>> SinkGuarantees() const;

 private:
  struct OpInstance;

  // Output edge of an operator into another operator of the same task.
  class ChainedDownstream final : public Downstream {
   public:
    ChainedDownstream(Runtime* rt, OpInstance* target) : rt_(rt), target_(target) {}
    void PushBatch(BatchBase& b) override {
      target_->records_in.fetch_add(b.size(), std::memory_order_relaxed);
      target_->op->ProcessBatch(b);
      b.clear();
    }
    void PushWatermark(EventTime wm) override {
      target_->op->OnWatermark(wm);
      target_->watermark.store(wm, std::memory_order_relaxed);
      rt_->ForwardWatermark(*target_, wm);
    }
    void PushBarrier(int64_t) override {}
    void PushEnd() override {}
    void Flush() override {}

   private:
    Runtime* rt_;
    OpInstance* target_;
  };

  // Output edge into the channels of another task's subtasks. A forward edge
  // (equal parallelism, not chained because the target has several inputs)
  // feeds only the subtask with the sender's index.
  class NetworkDownstream final : public Downstream {
   public:
    NetworkDownstream(const Edge& e, std::vector<InputGate*> gates, int channel, int sender, size_t batch_size)
        : gates_(std::move(gates)), channel_(channel), sender_(sender), batch_size_(batch_size) {
      forward_ = e.kind == PartitionKind::kForward;
      int outputs = forward_ ? 1 : static_cast<int>(gates_.size());
      partitioner_ = e.partitioner(outputs);
      for (int i = 0; i < outputs; ++i) buffers_.push_back(partitioner_->NewBatch());
    }
    void PushBatch(BatchBase& b) override {
      partitioner_->Split(b, buffers_);
      b.clear();
      for (size_t i = 0; i < buffers_.size(); ++i)
        if (buffers_[i]->size() >= batch_size_) Send(static_cast<int>(i));
    }
    void PushWatermark(EventTime wm) override { Control(Message::Kind::kWatermark, wm); }
    void PushBarrier(int64_t id) override { Control(Message::Kind::kBarrier, id); }
    void PushEnd() override { Control(Message::Kind::kEnd, 0); }
    void PushIdle() { Control(Message::Kind::kIdle, 0); }
    void Flush() override {
      for (size_t i = 0; i < buffers_.size(); ++i)
        if (buffers_[i]->size() > 0) Send(static_cast<int>(i));
    }

   private:
    InputGate* GateOf(int output) const { return forward_ ? gates_[sender_] : gates_[output]; }
    void Send(int i) {
      Message m;
      m.kind = Message::Kind::kData;
      m.batch = std::move(buffers_[i]);
      buffers_[i] = partitioner_->NewBatch();
      GateOf(i)->Push(channel_, std::move(m));
    }
    void Control(Message::Kind kind, int64_t value) {
      Flush();
      for (size_t i = 0; i < buffers_.size(); ++i) {
        Message m;
        m.kind = kind;
        m.value = value;
        GateOf(static_cast<int>(i))->Push(channel_, std::move(m));
      }
    }

    std::vector<InputGate*> gates_;
    int channel_;
    int sender_;
    size_t batch_size_;
    bool forward_ = false;
    std::unique_ptr<internal::Partitioner> partitioner_;
    std::vector<std::unique_ptr<BatchBase>> buffers_;
  };

  struct OpInstance {
    int node = -1;
    int subtask = 0;
    std::unique_ptr<internal::Operator> op;  // null for a source
    std::vector<std::unique_ptr<Port>> ports;
    internal::OperatorContext ctx;
    std::atomic<uint64_t> records_in{0};
    std::atomic<uint64_t> records_out{0};
    std::atomic<int64_t> watermark{kMinTime};
    std::atomic<uint64_t> state_bytes{0};
  };

  struct Task {
    int head = -1;
    int subtask = 0;
    std::vector<std::unique_ptr<OpInstance>> ops;  // chain, topological order; ops[0] is the head
    std::unique_ptr<internal::SourceDriver> source;
    InputGate* gate = nullptr;
    std::vector<NetworkDownstream*> network;  // every network output of the chain
    std::vector<std::unique_ptr<Downstream>> owned;
    std::thread thread;
    // input channels
    std::vector<EventTime> channel_wm;
    std::vector<bool> channel_idle, channel_ended, barrier_seen;
    int64_t aligning = 0;
    EventTime wm = kMinTime;
    // sources
    EventTime max_ts = kMinTime;
    std::atomic<int64_t> inject{0};
    int64_t injected = 0;
    std::atomic<bool> ended{false};
    // checkpoint completions to hand to the operators
    std::mutex mu;
    std::vector<int64_t> completed;
  };

  absl::Status Build(const std::optional<std::string>& restore_path);
  void RunSource(Task& t);
  void RunOperator(Task& t);
  void ForwardWatermark(OpInstance& oi, EventTime wm) {
    for (auto& port : oi.ports)
      for (Downstream* d : port->targets) d->PushWatermark(wm);
  }
  void FlushNetwork(Task& t) {
    for (auto* n : t.network) n->Flush();
  }
  void SnapshotChain(Task& t, int64_t id, const std::string& position);
  void HandleCompletions(Task& t);
  void FinishChain(Task& t);
  void Fail(const absl::Status& s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.ok()) error_ = s;
    }
    Stop();
  }
  void Ack(int64_t id, const absl::Status& s);
  void Coordinate();
  void PublishMetrics();
  std::string Fingerprint() const;
  void Shutdown() {
    Stop();
    for (auto& t : tasks_)
      if (t->thread.joinable()) t->thread.join();
  }
  std::string SubtaskDir(const std::string& base, int node, int subtask) const {
    return fmt::format("{}/{}-{}", base, node, subtask);
  }

  Pipeline* p_;
  const internal::Graph& g_;
  PipelineOptions opt_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<std::unique_ptr<InputGate>> gates_;          // by (node, subtask) flattened
  std::vector<std::vector<InputGate*>> node_gates_;        // node -> subtask -> gate
  std::vector<int> edge_channel_base_;
  std::atomic<bool> stop_{false};
  std::atomic<int> running_tasks_{0};
  std::atomic<int> ended_sources_{0};
  std::unique_ptr<DeadLetterSink> default_dead_letter_;
  std::optional<CheckpointStore> store_;

  mutable std::mutex mu_;
  absl::Status error_;
  int64_t pending_id_ = 0;  // 0 = none
  std::string pending_path_;
  int pending_acks_ = 0;
  absl::Status pending_status_;
  std::chrono::steady_clock::time_point pending_start_;
  std::condition_variable acked_;
  int64_t next_id_ = 1;
  PipelineStats ckpt_stats_;
  std::vector<std::pair<uint64_t, uint64_t>> published_;  // records in/out already counted, per node
  std::vector<uint64_t> published_late_;
  std::chrono::steady_clock::time_point last_publish_;
};

std::string Pipeline::Runtime::Fingerprint() const {
  std::string s;
  for (const Node& n : g_.nodes) s += fmt::format("{}:{}:{};", n.name, n.parallelism, n.ports);
  for (const Edge& e : g_.edges) s += fmt::format("{}>{}.{}:{};", e.from, e.to, e.port, static_cast<int>(e.kind));
  return s;
}

absl::Status Pipeline::Runtime::Build(const std::optional<std::string>& restore_path) {
  const size_t nodes = g_.nodes.size();
  if (nodes == 0) return absl::InvalidArgumentError("the pipeline has no operators");
  for (const Node& n : g_.nodes) {
    if (n.parallelism < 1)
      return absl::InvalidArgumentError(fmt::format("operator '{}': parallelism must be at least 1", n.name));
    if (!n.is_source && n.in_edges.empty())
      return absl::InvalidArgumentError(fmt::format("operator '{}' has no input", n.name));
  }
  // Channels: every non-chained input edge contributes one channel per upstream subtask.
  edge_channel_base_.assign(g_.edges.size(), -1);
  std::vector<int> channels(nodes, 0);
  for (size_t e = 0; e < g_.edges.size(); ++e) {
    const Edge& edge = g_.edges[e];
    if (Chained(g_, edge)) continue;
    edge_channel_base_[e] = channels[edge.to];
    channels[edge.to] += g_.nodes[edge.from].parallelism;
  }
  node_gates_.assign(nodes, {});
  for (size_t n = 0; n < nodes; ++n) {
    if (channels[n] == 0) continue;
    for (int s = 0; s < g_.nodes[n].parallelism; ++s) {
      gates_.push_back(std::make_unique<InputGate>(channels[n], opt_.queue_batches));
      node_gates_[n].push_back(gates_.back().get());
    }
  }
  // Chains: a node whose only input is a chained edge runs in its producer's task.
  std::vector<int> head(nodes, -1);
  for (size_t n = 0; n < nodes; ++n) {  // nodes are added in topological order
    const Node& node = g_.nodes[n];
    head[n] = static_cast<int>(n);
    if (node.in_edges.size() == 1 && Chained(g_, g_.edges[node.in_edges[0]])) head[n] = head[g_.edges[node.in_edges[0]].from];
  }
  std::string state_base = opt_.state.rocksdb_dir;
  for (size_t h = 0; h < nodes; ++h) {
    if (head[h] != static_cast<int>(h)) continue;
    for (int s = 0; s < g_.nodes[h].parallelism; ++s) {
      auto task = std::make_unique<Task>();
      task->head = static_cast<int>(h);
      task->subtask = s;
      std::vector<OpInstance*> by_node(nodes, nullptr);
      for (size_t n = h; n < nodes; ++n) {
        if (head[n] != static_cast<int>(h)) continue;
        auto oi = std::make_unique<OpInstance>();
        oi->node = static_cast<int>(n);
        oi->subtask = s;
        const Node& node = g_.nodes[n];
        for (int port = 0; port < std::max(1, node.ports); ++port) oi->ports.push_back(std::make_unique<Port>());
        auto& ctx = oi->ctx;
        ctx.pipeline = opt_.name;
        ctx.name = node.name;
        ctx.subtask = s;
        ctx.parallelism = node.parallelism;
        ctx.clock = opt_.clock;
        ctx.metrics = opt_.metrics;
        ctx.dead_letter = opt_.dead_letter;
        ctx.batch_size = opt_.batch_size;
        ctx.state = opt_.state;
        if (ctx.state.kind == StateBackendKind::kRocksDb)
          ctx.state.rocksdb_dir = fmt::format("{}/{}-{}", state_base, n, s);
        for (auto& port : oi->ports) ctx.outputs.push_back(port.get());
        by_node[n] = oi.get();
        task->ops.push_back(std::move(oi));
      }
      // Wire every output edge of the chain.
      for (auto& oi : task->ops) {
        const Node& node = g_.nodes[oi->node];
        for (int e : node.out_edges) {
          const Edge& edge = g_.edges[e];
          Downstream* d = nullptr;
          if (Chained(g_, edge)) {
            task->owned.push_back(std::make_unique<ChainedDownstream>(this, by_node[edge.to]));
          } else {
            std::vector<InputGate*> targets = node_gates_[edge.to];
            int sender = s;
            Edge effective = edge;
            if (edge.kind == PartitionKind::kForward && g_.nodes[edge.from].parallelism != g_.nodes[edge.to].parallelism)
              effective.kind = PartitionKind::kRebalance;
            auto nd = std::make_unique<NetworkDownstream>(effective, targets, edge_channel_base_[e] + s, sender,
                                                          opt_.batch_size);
            task->network.push_back(nd.get());
            task->owned.push_back(std::move(nd));
          }
          d = task->owned.back().get();
          oi->ports[edge.port]->targets.push_back(d);
        }
      }
      if (!node_gates_[h].empty()) {
        task->gate = node_gates_[h][s];
        int c = task->gate->channels();
        task->channel_wm.assign(c, kMinTime);
        task->channel_idle.assign(c, false);
        task->channel_ended.assign(c, false);
        task->barrier_seen.assign(c, false);
      }
      tasks_.push_back(std::move(task));
    }
  }
  // Open every operator (restoring its state) and every source (rewinding it).
  for (auto& t : tasks_) {
    for (auto& oi : t->ops) {
      const Node& node = g_.nodes[oi->node];
      std::optional<std::string> dir;
      if (restore_path) dir = SubtaskDir(*restore_path, oi->node, oi->subtask);
      if (node.is_source) {
        t->source = node.make_source();
        std::optional<std::string> position;
        if (dir) {
          CAIRN_ASSIGN_OR_RETURN(std::string bytes,
                                 internal::ReadSealedFile(*dir + "/source.bin", kSourceMagic, "source position"));
          ByteReader r(bytes, "source position");
          t->max_ts = r.I64();
          position = std::string(r.String());
          CAIRN_RETURN_IF_ERROR(r.Finish());
        }
        absl::Status s = t->source->Open(oi->ctx, position);
        if (!s.ok()) return absl::Status(s.code(), fmt::format("source '{}': {}", node.name, std::string(s.message())));
      } else {
        oi->op = node.make_operator();
        absl::Status s = oi->op->Open(oi->ctx, dir);
        if (!s.ok())
          return absl::Status(s.code(), fmt::format("operator '{}': {}", node.name, std::string(s.message())));
      }
    }
  }
  return absl::OkStatus();
}

void Pipeline::Runtime::SnapshotChain(Task& t, int64_t id, const std::string& position) {
  std::string base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_id_ != id) return;  // aborted
    base = pending_path_;
  }
  absl::Status status;
  for (auto& oi : t.ops) {
    std::string dir = SubtaskDir(base, oi->node, oi->subtask);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      status = absl::InternalError(fmt::format("cannot create {}: {}", dir, ec.message()));
      break;
    }
    if (g_.nodes[oi->node].is_source) {
      ByteWriter w;
      w.I64(t.max_ts);
      w.String(position);
      status = internal::WriteSealedFile(dir + "/source.bin", kSourceMagic, w.data());
    } else {
      status = oi->op->Snapshot(id, dir);
    }
    if (!status.ok()) break;
  }
  Ack(id, status);
}

void Pipeline::Runtime::Ack(int64_t id, const absl::Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_id_ != id) return;
  if (!s.ok() && pending_status_.ok()) pending_status_ = s;
  if (--pending_acks_ == 0) acked_.notify_all();
}

void Pipeline::Runtime::HandleCompletions(Task& t) {
  std::vector<int64_t> done;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    done.swap(t.completed);
  }
  for (int64_t id : done) {
    if (t.source) t.source->NotifyCheckpointComplete(id);
    for (auto& oi : t.ops)
      if (oi->op) {
        oi->op->NotifyCheckpointComplete(id);
        if (!oi->op->status().ok()) Fail(oi->op->status());
      }
  }
}

void Pipeline::Runtime::FinishChain(Task& t) {
  for (auto& oi : t.ops) {
    if (!oi->op) continue;
    absl::Status s = oi->op->Finish();
    if (!s.ok()) {
      Fail(absl::Status(s.code(), fmt::format("operator '{}': {}", g_.nodes[oi->node].name, std::string(s.message()))));
      return;
    }
  }
  FlushNetwork(t);
  for (auto* n : t.network) n->PushEnd();
}

void Pipeline::Runtime::RunSource(Task& t) {
  const Node& node = g_.nodes[t.head];
  OpInstance& head = *t.ops[0];
  EventTime emitted_wm = kMinTime;
  int64_t ooo = node.max_out_of_orderness.count();
  auto idle_since = std::chrono::steady_clock::now();
  bool idle = false;
  auto started = std::chrono::steady_clock::now();
  uint64_t produced = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    HandleCompletions(t);
    int64_t want = t.inject.load(std::memory_order_acquire);
    if (want > t.injected) {
      t.injected = want;
      FlushNetwork(t);
      SnapshotChain(t, want, t.source->Position());
      for (auto* n : t.network) n->PushBarrier(want);
    }
    EventTime max_time = kMinTime;
    size_t n = 0;
    auto polled = t.source->PollOnce(opt_.batch_size, opt_.poll_wait, &max_time, &n);
    if (!polled.ok()) {
      Fail(absl::Status(polled.status().code(),
                        fmt::format("source '{}': {}", node.name, std::string(polled.status().message()))));
      break;
    }
    if (n > 0) {
      produced += n;
      head.records_out.fetch_add(n, std::memory_order_relaxed);
      t.max_ts = std::max(t.max_ts, max_time);
      idle = false;
      idle_since = std::chrono::steady_clock::now();
      if (t.max_ts != kMinTime) {
        EventTime wm = t.max_ts - ooo - 1;
        if (wm > emitted_wm) {
          emitted_wm = wm;
          head.watermark.store(wm, std::memory_order_relaxed);
          ForwardWatermark(head, wm);
        }
      }
      FlushNetwork(t);
      if (node.max_records_per_second > 0) {
        auto due = started + std::chrono::duration<double>(static_cast<double>(produced) / node.max_records_per_second);
        std::this_thread::sleep_until(std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
      }
    }
    if (*polled == PollStatus::kEndOfInput) {
      FlushNetwork(t);
      ForwardWatermark(head, kMaxTime);
      head.watermark.store(kMaxTime, std::memory_order_relaxed);
      t.ended.store(true);
      ended_sources_.fetch_add(1);
      FinishChain(t);
      t.source->Close();
      return;
    }
    if (*polled == PollStatus::kIdle && n == 0 && node.idle_timeout.count() > 0 && !idle &&
        std::chrono::steady_clock::now() - idle_since >= node.idle_timeout) {
      idle = true;
      FlushNetwork(t);
      for (auto* nd : t.network) nd->PushIdle();
    }
  }
  t.source->Close();
}

void Pipeline::Runtime::RunOperator(Task& t) {
  OpInstance& head = *t.ops[0];
  const int channels = t.gate->channels();
  int ended = 0;
  auto recompute_wm = [&]() {
    EventTime low = kMaxTime;
    bool any = false;
    for (int c = 0; c < channels; ++c) {
      if (t.channel_ended[c] || t.channel_idle[c]) continue;
      any = true;
      low = std::min(low, t.channel_wm[c]);
    }
    if (!any) {
      // Every input idle or ended: ended ones are at the maximum, idle ones do not hold time back.
      bool all_ended = ended == channels;
      if (!all_ended) return;
      low = kMaxTime;
    }
    if (low > t.wm) {
      t.wm = low;
      head.op->OnWatermark(low);
      head.watermark.store(low, std::memory_order_relaxed);
      ForwardWatermark(head, low);
    }
  };
  auto barrier_done = [&]() {
    for (int c = 0; c < channels; ++c)
      if (!t.barrier_seen[c] && !t.channel_ended[c]) return false;
    return true;
  };
  while (!stop_.load(std::memory_order_relaxed)) {
    HandleCompletions(t);
    // Processing-time timers of every operator in the chain.
    int64_t now_ms = opt_.clock->NowNanos() / 1'000'000;
    std::optional<int64_t> next_timer;
    for (auto& oi : t.ops) {
      auto nt = oi->op->NextProcessingTimer();
      if (!nt) continue;
      if (*nt <= now_ms) {
        oi->op->OnProcessingTime(now_ms);
        nt = oi->op->NextProcessingTimer();
      }
      if (nt && (!next_timer || *nt < *next_timer)) next_timer = nt;
    }
    FlushNetwork(t);
    auto wait = std::chrono::milliseconds(50);
    if (next_timer) wait = std::min(wait, std::chrono::milliseconds(std::max<int64_t>(1, *next_timer - now_ms)));
    int c = 0;
    Message m;
    if (!t.gate->Pop(wait, &c, &m)) continue;
    switch (m.kind) {
      case Message::Kind::kData:
        t.channel_idle[c] = false;
        head.records_in.fetch_add(m.batch->size(), std::memory_order_relaxed);
        head.op->ProcessBatch(*m.batch);
        if (!head.op->status().ok()) {
          Fail(head.op->status());
          return;
        }
        FlushNetwork(t);
        break;
      case Message::Kind::kWatermark:
        t.channel_idle[c] = false;
        t.channel_wm[c] = std::max(t.channel_wm[c], m.value);
        recompute_wm();
        FlushNetwork(t);
        break;
      case Message::Kind::kIdle:
        t.channel_idle[c] = true;
        recompute_wm();
        FlushNetwork(t);
        break;
      case Message::Kind::kBarrier:
        if (m.value != t.aligning) {
          t.aligning = m.value;
          std::fill(t.barrier_seen.begin(), t.barrier_seen.end(), false);
        }
        t.barrier_seen[c] = true;
        t.gate->SetBlocked(c, true);
        if (barrier_done()) {
          FlushNetwork(t);
          SnapshotChain(t, m.value, "");
          for (auto* nd : t.network) nd->PushBarrier(m.value);
          for (int k = 0; k < channels; ++k) t.gate->SetBlocked(k, false);
        }
        break;
      case Message::Kind::kEnd:
        t.channel_ended[c] = true;
        ++ended;
        if (t.barrier_seen[c] == false && t.aligning > 0 && barrier_done()) {
          // The channel that ended was the last one a barrier waited for.
          FlushNetwork(t);
          SnapshotChain(t, t.aligning, "");
          for (auto* nd : t.network) nd->PushBarrier(t.aligning);
          for (int k = 0; k < channels; ++k) t.gate->SetBlocked(k, false);
        }
        recompute_wm();
        if (ended == channels) {
          FinishChain(t);
          return;
        }
        break;
    }
    for (auto& oi : t.ops)
      if (oi->op && !oi->op->status().ok()) {
        Fail(oi->op->status());
        return;
      }
  }
}

void Pipeline::Runtime::Coordinate() {
  const bool checkpoints = store_.has_value();
  auto next_checkpoint = std::chrono::steady_clock::now() + opt_.checkpoint_interval;
  int source_tasks = 0;
  for (auto& t : tasks_) source_tasks += t->source ? 1 : 0;
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
    default_dead_letter_ = std::make_unique<LoggingDeadLetter>();
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
        ckpt_stats_.restored_checkpoint = latest->id;
        spdlog::info("restoring checkpoint {} ({})", latest->id, latest->path);
      }
    }
  }
  CAIRN_RETURN_IF_ERROR(Build(restore_path));
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
  return error_;
}

PipelineStats Pipeline::Runtime::Stats() const {
  PipelineStats st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st = ckpt_stats_;
  }
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
