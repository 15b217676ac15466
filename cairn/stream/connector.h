// The contract between the stream engine and its connectors (sources and sinks).
//
// Lifecycle of a Source (one instance per parallel subtask, driven by one thread):
//   Open(ctx, restored) -> Poll()* -> [Position() at each checkpoint barrier]
//   -> NotifyCheckpointComplete(id)* -> Close().
// Poll never blocks for long (at most ~`max_wait`), so the engine can inject
// checkpoint barriers and watermarks between calls. A source that can rewind
// (file, Kafka) returns a position from Position() that Open() accepts again:
// that gives exactly-once state. A source that cannot (MQTT, HTTP ingest) says
// so through guarantee().
//
// Lifecycle of a Sink (one instance per parallel subtask):
//   Open(ctx, restored) -> Write()* -> PrepareCheckpoint(id) at each barrier
//   -> CommitCheckpoint(id) once that checkpoint is durable -> Close() at end.
// An exactly-once sink makes output visible only in CommitCheckpoint and uses
// the state it returned from PrepareCheckpoint to finish or roll back on restore.
//
// Thread-safety: each instance is used by one engine thread at a time;
// implementations need no locking of their own unless they run threads inside.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/base/metrics.h"
#include "cairn/base/status.h"
#include "cairn/stream/record.h"

namespace cairn::stream {

enum class DeliveryGuarantee {
  kExactlyOnce,   // replay/commit makes every record count once after recovery
  kAtLeastOnce,   // records may repeat after recovery, none are lost
  kAtMostOnce,    // records in flight at a crash may be lost (e.g. MQTT QoS 0 / HTTP)
};
const char* DeliveryGuaranteeName(DeliveryGuarantee g);

// Where malformed input goes: counted, a sample logged, and the raw record kept.
// Thread-safe (shared by every subtask of a pipeline).
class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  // `origin` names the connector ("file:events.csv:17", "mqtt:plant/temp"),
  // `raw` is the record as received, `error` why it was rejected.
  virtual void Reject(std::string_view origin, std::string_view raw, std::string_view error) = 0;
  virtual uint64_t rejected() const = 0;
};

struct SourceContext {
  std::string name;              // the source's name in the pipeline
  int subtask = 0;               // 0 .. parallelism-1
  int parallelism = 1;
  MetricsRegistry* metrics = nullptr;        // never null when the engine calls Open
  DeadLetterSink* dead_letter = nullptr;     // never null when the engine calls Open
};

enum class PollStatus {
  kRecords,     // appended >= 1 record (or made progress); call again soon
  kIdle,        // nothing available right now; the engine may mark this source idle
  kEndOfInput,  // bounded input is finished; Poll will not be called again
};

// Records produced by one Poll. `times` is either empty (the engine assigns
// event times with the pipeline's timestamp assigner, or ingestion time) or has
// one event time per record.
template <class T>
struct SourceBatch {
  std::vector<T> records;
  std::vector<EventTime> times;
  void clear() {
    records.clear();
    times.clear();
  }
};

template <class T>
class Source {
 public:
  virtual ~Source() = default;

  // `restored` is the Position() stored in the checkpoint being restored, or
  // nullopt on a fresh start. An error stops the pipeline with that message.
  virtual absl::Status Open(const SourceContext& ctx, std::optional<std::string> restored) = 0;
  // Appends at most `max_records` records to `out` (which the engine cleared),
  // waiting at most `max_wait` for input.
  virtual absl::StatusOr<PollStatus> Poll(SourceBatch<T>& out, size_t max_records,
                                          std::chrono::milliseconds max_wait) = 0;
  // The position just after the last record returned by Poll (opaque bytes).
  virtual std::string Position() = 0;
  // Checkpoint `id` (which holds the Position() taken at its barrier) is durable.
  virtual void NotifyCheckpointComplete(int64_t /*id*/) {}
  virtual void Close() {}
  virtual DeliveryGuarantee guarantee() const = 0;
};

struct SinkContext {
  std::string name;
  int subtask = 0;
  int parallelism = 1;
  MetricsRegistry* metrics = nullptr;
  DeadLetterSink* dead_letter = nullptr;
};

template <class T>
class Sink {
 public:
  virtual ~Sink() = default;
  // `restored` is what PrepareCheckpoint returned for the checkpoint being
  // restored, or nullopt on a fresh start.
  virtual absl::Status Open(const SinkContext& ctx, std::optional<std::string> restored) = 0;
  // `times` has one event time per record.
  virtual absl::Status Write(std::span<const T> records, std::span<const EventTime> times) = 0;
  // Flushes what was written since the last barrier and returns the state to keep
  // in checkpoint `id`.
  virtual absl::StatusOr<std::string> PrepareCheckpoint(int64_t id) = 0;
  // Checkpoint `id` is durable: make its output visible.
  virtual absl::Status CommitCheckpoint(int64_t /*id*/) { return absl::OkStatus(); }
  // End of input (bounded pipelines): flush and make everything visible.
  virtual absl::Status Close() = 0;
  virtual DeliveryGuarantee guarantee() const = 0;
};

}  // namespace cairn::stream
