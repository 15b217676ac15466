// Kafka connectors (librdkafka 2.0) for Row pipelines.
//
// KafkaSource reads one topic. Partitions come either from the consumer group
// (`group_assignment`, the default: Kafka balances the topic's partitions over
// every member of `group_id`, on this node or others) or statically (subtask i
// of n reads the partitions p with p % n == i; no rebalances, no coordinator).
//
// Position() is the next offset of every partition this subtask owns, taken
// after the last record Poll returned (an envelope "CKFP", see kafka.cc).
// Open(restored) starts each of those partitions exactly there when it is
// assigned (the rebalance callback applies the restored offsets to the
// assignment), so a restore replays exactly the records after the checkpoint:
// exactly-once for state. Partitions without a restored offset start at the
// group's committed offset, else at `start_from`. Offsets are committed to
// Kafka in NotifyCheckpointComplete, for monitoring (consumer lag) and as that
// fallback; the checkpoint, not Kafka, is the source of truth.
// Caveat: exactly-once needs each partition to stay with one subtask between
// checkpoints. A group rebalance that moves a partition to another member
// mid-run makes that member start at the last committed offset, so records
// after the last completed checkpoint may be counted twice (at least once).
// Static assignment never moves partitions.
//
// KafkaSink produces each Row as one JSON object (FormatJsonRow), keyed by
// `key_field` when set (rows without it get no key). PrepareCheckpoint and
// Close flush (rd_kafka_flush) and fail when a message could not be delivered
// or the flush timed out, so a completed checkpoint means its output is in
// Kafka: at least once (the idempotent producer removes duplicates from
// retries within one run, not from a replay after a restore).
//
// Ownership: each connector owns its librdkafka handle (RAII, copies deleted).
// Thread-safety: one engine thread at a time per instance (connector.h);
// librdkafka's callbacks run inside Poll/Write/flush on that thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/base/status.h"
#include "cairn/connect/payload.h"
#include "cairn/stream/connector.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_topic_partition_list_s rd_kafka_topic_partition_list_t;

namespace cairn::connect {

namespace internal {
struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const;
};
struct KafkaCallbacks;
}  // namespace internal

// Owns one librdkafka client; destroys it (rd_kafka_destroy) on release.
using KafkaHandle = std::unique_ptr<rd_kafka_t, internal::KafkaDeleter>;

// Next offset per partition of one topic.
using KafkaOffsets = std::map<int32_t, int64_t>;

// The Position() bytes of a KafkaSource, and back. DecodeKafkaPosition checks
// every field (it reads bytes from a checkpoint) and names what is wrong.
std::string EncodeKafkaPosition(std::string_view topic, const KafkaOffsets& offsets);
absl::Status DecodeKafkaPosition(std::string_view bytes, std::string* topic, KafkaOffsets* offsets);

struct KafkaSourceOptions {
  std::string brokers;                 // bootstrap.servers, "host:port,host:port"
  std::string topic;
  std::string group_id;                // needed for group assignment and offset commits
  bool group_assignment = true;        // false: static assignment by subtask
  PayloadFormat format = PayloadFormat::kJson;
  std::string time_field;              // empty: no event times (the engine assigns them)
  std::string time_format = "auto";    // see stream::ParseEventTime
  std::string start_from = "earliest"; // earliest | latest, where nothing is restored or committed
  std::map<std::string, std::string> config;  // more librdkafka properties (security, tuning)
  std::chrono::milliseconds metadata_timeout{5000};  // static assignment reads the partition count
};

class KafkaSource final : public stream::Source<stream::Row> {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaSource>> Create(KafkaSourceOptions options);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // Fails for a restored position of another topic or a corrupt one, bad
  // librdkafka properties, or (static assignment) a topic that does not exist.
  absl::Status Open(const stream::SourceContext& ctx, std::optional<std::string> restored) override;
  absl::StatusOr<stream::PollStatus> Poll(stream::SourceBatch<stream::Row>& out, size_t max_records,
                                          std::chrono::milliseconds max_wait) override;
  std::string Position() override;
  // Commits the offsets of the oldest Position() not yet committed (the engine
  // notifies checkpoints in the order it took their positions).
  void NotifyCheckpointComplete(int64_t id) override;
  void Close() override;
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kExactlyOnce; }

  // The partitions owned now and their next offsets (-1: none read yet).
  KafkaOffsets owned() const { return owned_; }

 private:
  friend struct internal::KafkaCallbacks;
  explicit KafkaSource(KafkaSourceOptions options);
  void OnRebalance(int err, rd_kafka_topic_partition_list_t* partitions);
  absl::Status AssignStatically(int subtask, int parallelism);

  KafkaSourceOptions options_;
  EventTimeField time_;
  stream::DeadLetterSink* dead_letter_ = nullptr;
  ConnectorCounters counters_;
  KafkaHandle consumer_;
  KafkaOffsets owned_;        // partition -> next offset, or -1 before the first record
  KafkaOffsets restored_;     // applied once, when the partition is first assigned
  KafkaOffsets released_;     // partitions this subtask gave up in a rebalance, where it stopped
  std::deque<KafkaOffsets> uncommitted_;  // Position()s waiting for their checkpoint to complete
  std::string fatal_;
};

struct KafkaSinkOptions {
  std::string brokers;
  std::string topic;
  std::string key_field;               // empty: no message key
  bool idempotent = true;              // enable.idempotence
  std::map<std::string, std::string> config;  // more librdkafka properties
  std::chrono::milliseconds flush_timeout{10000};  // PrepareCheckpoint/Close and a full local queue
};

class KafkaSink final : public stream::Sink<stream::Row> {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaSink>> Create(KafkaSinkOptions options);
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  absl::Status Open(const stream::SinkContext& ctx, std::optional<std::string> restored) override;
  absl::Status Write(std::span<const stream::Row> records, std::span<const stream::EventTime> times) override;
  // Flushes; fails when a message was not delivered. Returns "" (no state).
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t id) override;
  absl::Status Close() override;
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kAtLeastOnce; }

  uint64_t delivered() const { return delivered_; }

 private:
  friend struct internal::KafkaCallbacks;
  explicit KafkaSink(KafkaSinkOptions options) : options_(std::move(options)) {}
  absl::Status Flush(const std::string& what);
  absl::Status DeliveryErrors() const;

  KafkaSinkOptions options_;
  stream::DeadLetterSink* dead_letter_ = nullptr;
  ConnectorCounters counters_;
  KafkaHandle producer_;
  uint64_t delivered_ = 0;
  uint64_t failed_ = 0;
  std::string first_failure_;
};

}  // namespace cairn::connect
