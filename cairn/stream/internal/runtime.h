// The runtime behind pipeline.h, shared by pipeline.cc (the coordinator,
// statistics, the public methods) and runtime.cc (building the tasks and their
// run loops). Private to cairn/stream.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cairn/stream/checkpoint.h"
#include "cairn/stream/internal/channel.h"
#include "cairn/stream/pipeline.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace cairn::stream {
namespace runtime_detail {

using internal::BatchBase;
using internal::Downstream;
using internal::Edge;
using internal::InputGate;
using internal::Message;
using internal::Node;
using internal::PartitionKind;
using internal::Port;
namespace fs = std::filesystem;

inline constexpr uint32_t kSourceMagic = MakeMagic("CSRC");
inline constexpr const char* kFinishedMarker = "_finished";

inline bool Chained(const internal::Graph& g, const Edge& e) {
  return e.kind == PartitionKind::kForward && g.nodes[e.from].parallelism == g.nodes[e.to].parallelism &&
         g.nodes[e.to].in_edges.size() == 1 && !g.nodes[e.to].is_source;
}

}  // namespace runtime_detail

using namespace runtime_detail;  // NOLINT: private header of one library

// ---------------------------------------------------------------------------

class Pipeline::Runtime {
 public:
  explicit Runtime(Pipeline* p) : g_(p->graph_), opt_(p->options_) {}
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

  const internal::Graph& g_;
  PipelineOptions opt_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<std::unique_ptr<InputGate>> gates_;          // by (node, subtask) flattened
  std::vector<std::vector<InputGate*>> node_gates_;        // node -> subtask -> gate
  std::vector<int> edge_channel_base_;
  std::atomic<bool> stop_{false};
  // Set once Build() has filled tasks_ and opened every operator: only then may
  // Stats(), called from other threads, walk tasks_.
  std::atomic<bool> built_{false};
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


}  // namespace cairn::stream
