// The type-erased dataflow graph that pipeline.h's typed API builds, and the
// interfaces the runtime drives. Private to cairn/stream.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/base/clock.h"
#include "cairn/base/metrics.h"
#include "cairn/base/status.h"
#include "cairn/stream/connector.h"
#include "cairn/stream/record.h"
#include "cairn/stream/state.h"

namespace cairn::stream::internal {

// A batch of records of one type with their event times.
class BatchBase {
 public:
  virtual ~BatchBase() = default;
  virtual size_t size() const = 0;
  virtual void clear() = 0;
};

template <class T>
class Batch final : public BatchBase {
 public:
  std::vector<T> records;
  std::vector<EventTime> times;
  size_t size() const override { return records.size(); }
  void clear() override {
    records.clear();
    times.clear();
  }
  void Add(T r, EventTime t) {
    records.push_back(std::move(r));
    times.push_back(t);
  }
};

// What travels on a channel between tasks.
struct Message {
  enum class Kind : uint8_t { kData, kWatermark, kIdle, kBarrier, kEnd };
  Kind kind = Kind::kData;
  int64_t value = 0;  // watermark time, or checkpoint id
  std::unique_ptr<BatchBase> batch;
};

// Where an operator's output goes (implemented by the runtime: the next
// chained operator, or a partitioner in front of channels).
class Downstream {
 public:
  virtual ~Downstream() = default;
  // Takes the records out of `batch` (leaving it empty but reusable).
  virtual void PushBatch(BatchBase& batch) = 0;
  virtual void PushWatermark(EventTime wm) = 0;
  virtual void PushBarrier(int64_t checkpoint_id) = 0;
  virtual void PushEnd() = 0;
  // Hands partially filled buffers on (called at the end of each input batch).
  virtual void Flush() = 0;
};

// A fan-out to every edge leaving one output port.
class Port {
 public:
  std::vector<Downstream*> targets;
  bool connected() const { return !targets.empty(); }
};

struct OperatorContext {
  std::string name;
  int subtask = 0;
  int parallelism = 1;
  const Clock* clock = nullptr;
  MetricsRegistry* metrics = nullptr;
  DeadLetterSink* dead_letter = nullptr;
  StateBackendOptions state;  // rocksdb_dir already made unique per subtask
  size_t batch_size = 1024;
  std::vector<Port*> outputs;  // by port number
};

// One subtask of a (non-source) operator. Called by one thread.
class Operator {
 public:
  virtual ~Operator() = default;
  // `restore_dir` is this subtask's directory in the checkpoint being restored.
  virtual absl::Status Open(OperatorContext& ctx, std::optional<std::string> restore_dir) = 0;
  // Consumes the records (may move them out of the batch).
  virtual void ProcessBatch(BatchBase& batch) = 0;
  // Event time advanced to `wm` (fire timers and windows), before the runtime
  // forwards the watermark to the outputs.
  virtual void OnWatermark(EventTime /*wm*/) {}
  // Processing time (ms) moved on; fire processing-time timers.
  virtual void OnProcessingTime(int64_t /*now_ms*/) {}
  // Earliest processing-time timer, or nullopt.
  virtual std::optional<int64_t> NextProcessingTimer() const { return std::nullopt; }
  // Writes state for a checkpoint into `dir` (exists, empty).
  virtual absl::Status Snapshot(int64_t /*checkpoint_id*/, const std::string& /*dir*/) { return absl::OkStatus(); }
  virtual void NotifyCheckpointComplete(int64_t /*checkpoint_id*/) {}
  // End of all input (after the final watermark): flush.
  virtual absl::Status Finish() { return absl::OkStatus(); }
  // Records' state size for metrics.
  virtual uint64_t StateBytes() const { return 0; }
  // Records that arrived after their windows' allowed lateness.
  virtual uint64_t LateRecords() const { return 0; }
  // Sinks: what they guarantee after a recovery.
  virtual std::optional<DeliveryGuarantee> guarantee() const { return std::nullopt; }
  // A failure that must stop the pipeline (e.g. a sink write failed).
  virtual absl::Status status() const { return absl::OkStatus(); }
};

// One subtask of a source: polls records into its output port 0.
class SourceDriver {
 public:
  virtual ~SourceDriver() = default;
  virtual absl::Status Open(OperatorContext& ctx, std::optional<std::string> restored) = 0;
  // Polls one batch and pushes it to the outputs. Returns the poll status;
  // `max_time` is the largest event time pushed (kMinTime when none).
  virtual absl::StatusOr<PollStatus> PollOnce(size_t max_records, std::chrono::milliseconds max_wait,
                                              EventTime* max_time, size_t* records) = 0;
  virtual std::string Position() = 0;
  virtual void NotifyCheckpointComplete(int64_t id) = 0;
  virtual void Close() = 0;
  virtual DeliveryGuarantee guarantee() const = 0;
};

enum class PartitionKind { kForward, kHash, kRebalance, kBroadcast };

// Splits batches of one type across the channels of a hash/rebalance edge.
class Partitioner {
 public:
  virtual ~Partitioner() = default;
  // Appends each record of `in` to out[channel]; `in` is left empty.
  virtual void Split(BatchBase& in, std::vector<std::unique_ptr<BatchBase>>& out) = 0;
  virtual std::unique_ptr<BatchBase> NewBatch() const = 0;
};

struct Edge {
  int from = -1;
  int port = 0;
  int to = -1;
  PartitionKind kind = PartitionKind::kForward;
  std::function<std::unique_ptr<Partitioner>(int channels)> partitioner;  // for kHash / kRebalance
};

struct Node {
  int id = -1;
  std::string name;
  int parallelism = 1;
  bool is_source = false;
  int ports = 1;  // output ports
  std::function<std::unique_ptr<Operator>()> make_operator;
  std::function<std::unique_ptr<SourceDriver>()> make_source;
  // Sources only.
  std::chrono::milliseconds max_out_of_orderness{0};
  std::chrono::milliseconds idle_timeout{0};
  double max_records_per_second = 0;  // 0 = unthrottled
  std::vector<int> in_edges, out_edges;
};

struct Graph {
  std::vector<Node> nodes;
  std::vector<Edge> edges;
};

}  // namespace cairn::stream::internal
