// MQTT connectors (libmosquitto 2.0) for Row pipelines.
//
// MqttSource subscribes to topics and turns each message into a Row (payload
// formats in payload.h). libmosquitto's network loop runs on its own thread
// (mosquitto_loop_start); it reconnects by itself with exponential backoff and
// the source subscribes again on every (re)connect. Messages wait in a bounded
// queue; when the queue is full the message callback blocks, so the socket stops
// being read and the broker holds (or, for QoS 0, drops) what comes next. While
// it blocks no keepalive is sent either: a queue full for longer than ~1.5 x
// keepalive makes the broker drop the connection, and the client reconnects.
//
// Order: QoS 1 messages may arrive out of publish order (the broker keeps several in
// flight at once; mosquitto orders them only with max_inflight_messages 1), so
// pipelines should order by event time, not arrival.
//
// Guarantee: at most once. libmosquitto acknowledges a QoS 1 message (PUBACK)
// before the application sees it and offers no manual acknowledgement, so a
// message that sits in the queue, or in an operator, when the process dies is
// gone: the broker will not deliver it again. An MQTT source cannot rewind
// either, so Position() is empty and a restore starts with what arrives next.
// What survives a broker restart depends on the broker (persistence) and on
// `persistent_session` here (a fixed client id with clean_session=false lets
// the broker queue QoS >= 1 messages while this client is away).
//
// Shared subscriptions: with `shared_group` set, the source subscribes to
// `$share/<group>/<topic>`, so the broker splits each topic's messages among
// every client of the group (several subtasks, or several nodes).
//
// MqttSink publishes each Row as one JSON object (FormatJsonRow) to a fixed
// topic or to a template whose `{field}` parts are taken from the row
// ("plant/{site}/temp"). A row whose template field is missing, or whose topic
// would hold a wildcard, goes to the dead letter sink. With QoS >= 1,
// PrepareCheckpoint and Close wait until the broker acknowledged every publish
// (PUBACK/PUBCOMP), and fail after `ack_timeout`, so a completed checkpoint
// means its output is at the broker: at least once (with QoS 0: at most once).
//
// Ownership: each connector owns its mosquitto client (RAII, copies deleted).
// Thread-safety: the Source/Sink methods are called by one engine thread at a
// time (see connector.h); the observers (subscribed(), connections(),
// unacknowledged()) may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cairn/base/status.h"
#include "cairn/connect/internal/bounded_queue.h"
#include "cairn/connect/payload.h"
#include "cairn/stream/connector.h"

struct mosquitto;

namespace cairn::connect {

namespace internal {
struct MosquittoDeleter {
  void operator()(mosquitto* m) const;
};
struct MqttCallbacks;
}  // namespace internal

// Owns one libmosquitto client; destroys it (mosquitto_destroy) on release.
using MosquittoHandle = std::unique_ptr<mosquitto, internal::MosquittoDeleter>;

struct MqttSourceOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::vector<std::string> topics;   // subscription filters; + and # allowed
  int qos = 1;                       // 0, 1 or 2
  std::string client_id;             // empty: "cairn-<name>-<subtask>-<random>"
  std::string username;              // empty: anonymous
  std::string password;
  std::string shared_group;          // non-empty: subscribe to $share/<group>/<topic>
  bool persistent_session = false;   // clean_session=false; needs a client_id
  PayloadFormat format = PayloadFormat::kJson;
  std::string time_field;            // empty: no event times (the engine assigns them)
  std::string time_format = "auto";  // see stream::ParseEventTime
  std::chrono::seconds reconnect_min{1};   // exponential backoff between reconnect attempts
  std::chrono::seconds reconnect_max{30};
  int keepalive_s = 30;
  std::chrono::milliseconds connect_timeout{5000};  // Open waits this long for CONNACK and SUBACK
  size_t queue_capacity = 10000;     // messages received but not yet polled
};

class MqttSource final : public stream::Source<stream::Row> {
 public:
  // Checks the options (topics, qos, group name, ...) without connecting.
  static absl::StatusOr<std::unique_ptr<MqttSource>> Create(MqttSourceOptions options);
  ~MqttSource() override;
  MqttSource(const MqttSource&) = delete;
  MqttSource& operator=(const MqttSource&) = delete;

  // Connects and subscribes; fails when the broker does not accept the
  // connection and every subscription within connect_timeout. `restored` is ignored.
  absl::Status Open(const stream::SourceContext& ctx, std::optional<std::string> restored) override;
  // Fails only when the broker refused this client for good (bad credentials,
  // client id rejected, a subscription refused); disconnects are retried.
  absl::StatusOr<stream::PollStatus> Poll(stream::SourceBatch<stream::Row>& out, size_t max_records,
                                          std::chrono::milliseconds max_wait) override;
  std::string Position() override { return {}; }
  void Close() override;
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kAtMostOnce; }

  // Connected and every subscription of the current connection acknowledged.
  bool subscribed() const;
  // Successful connections so far (1 after Open, +1 per reconnect).
  uint64_t connections() const;
  const std::string& client_id() const { return client_id_; }

 private:
  friend struct internal::MqttCallbacks;
  struct Message {
    std::string topic;
    std::string payload;
  };
  explicit MqttSource(MqttSourceOptions options);
  void OnConnect(int rc);
  void OnDisconnect(int rc);
  void OnSubscribe(int mid, int granted_count, const int* granted);
  void OnMessage(std::string topic, std::string payload);

  MqttSourceOptions options_;
  std::vector<std::string> filters_;  // what is subscribed (with the $share prefix)
  std::string client_id_;
  EventTimeField time_;
  stream::DeadLetterSink* dead_letter_ = nullptr;
  ConnectorCounters counters_;
  internal::BoundedQueue<Message> queue_;
  std::vector<Message> drained_;  // Poll's scratch

  mutable absl::Mutex mu_;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  int subscribe_mid_ ABSL_GUARDED_BY(mu_) = -1;
  uint64_t connections_ ABSL_GUARDED_BY(mu_) = 0;
  std::string fatal_ ABSL_GUARDED_BY(mu_);  // a refusal that retrying will not fix

  MosquittoHandle client_;
  bool loop_running_ = false;
};

struct MqttSinkOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string topic;                 // fixed, or a template with {field} parts
  int qos = 1;
  bool retain = false;
  std::string client_id;             // empty: "cairn-<name>-<subtask>-<random>"
  std::string username;
  std::string password;
  std::chrono::seconds reconnect_min{1};
  std::chrono::seconds reconnect_max{30};
  int keepalive_s = 30;
  std::chrono::milliseconds connect_timeout{5000};  // Open waits this long for CONNACK
  std::chrono::milliseconds ack_timeout{10000};     // PrepareCheckpoint/Close/a full window wait this long
  size_t max_unacknowledged = 10000;  // Write waits while this many publishes await their ack
  int max_inflight = 100;             // QoS >= 1 messages on the wire at once
};

class MqttSink final : public stream::Sink<stream::Row> {
 public:
  // Checks the options and the topic template without connecting.
  static absl::StatusOr<std::unique_ptr<MqttSink>> Create(MqttSinkOptions options);
  ~MqttSink() override;
  MqttSink(const MqttSink&) = delete;
  MqttSink& operator=(const MqttSink&) = delete;

  absl::Status Open(const stream::SinkContext& ctx, std::optional<std::string> restored) override;
  absl::Status Write(std::span<const stream::Row> records, std::span<const stream::EventTime> times) override;
  // Waits until every publish so far is acknowledged; returns "" (no state).
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t id) override;
  absl::Status Close() override;
  stream::DeliveryGuarantee guarantee() const override {
    return options_.qos == 0 ? stream::DeliveryGuarantee::kAtMostOnce : stream::DeliveryGuarantee::kAtLeastOnce;
  }

  // Publishes not yet acknowledged by the broker.
  uint64_t unacknowledged() const;
  const std::string& client_id() const { return client_id_; }

 private:
  friend struct internal::MqttCallbacks;
  struct TopicPart {
    std::string text;
    bool is_field = false;
  };
  explicit MqttSink(MqttSinkOptions options, std::vector<TopicPart> topic);
  absl::StatusOr<std::string> RenderTopic(const stream::Row& row) const;
  absl::Status WaitForAcks(size_t at_most, const char* what);
  void OnConnect(int rc);
  void OnPublish(int mid);

  MqttSinkOptions options_;
  std::vector<TopicPart> topic_;
  std::string client_id_;
  std::string name_;
  stream::DeadLetterSink* dead_letter_ = nullptr;
  ConnectorCounters counters_;

  mutable absl::Mutex mu_;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t unacknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  std::string fatal_ ABSL_GUARDED_BY(mu_);

  MosquittoHandle client_;
  bool loop_running_ = false;
};

}  // namespace cairn::connect
