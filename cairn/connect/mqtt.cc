#include "cairn/connect/mqtt.h"

#include <mosquitto.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>

#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "cairn/base/random.h"
#include "cairn/stream/format.h"

namespace cairn::connect {
namespace internal {

void MosquittoDeleter::operator()(mosquitto* m) const { mosquitto_destroy(m); }

// libmosquitto calls plain C functions; these forward to the connector given as
// the client's user data. They run on the client's network thread.
struct MqttCallbacks {
  static void SourceConnect(mosquitto*, void* obj, int rc) { static_cast<MqttSource*>(obj)->OnConnect(rc); }
  static void SourceDisconnect(mosquitto*, void* obj, int rc) { static_cast<MqttSource*>(obj)->OnDisconnect(rc); }
  static void SourceSubscribe(mosquitto*, void* obj, int mid, int count, const int* granted) {
    static_cast<MqttSource*>(obj)->OnSubscribe(mid, count, granted);
  }
  static void SourceMessage(mosquitto*, void* obj, const mosquitto_message* m) {
    std::string payload(static_cast<const char*>(m->payload), m->payload == nullptr ? 0 : m->payloadlen);
    static_cast<MqttSource*>(obj)->OnMessage(m->topic == nullptr ? "" : m->topic, std::move(payload));
  }
  static void SinkConnect(mosquitto*, void* obj, int rc) { static_cast<MqttSink*>(obj)->OnConnect(rc); }
  static void SinkDisconnect(mosquitto*, void* obj, int rc) {
    auto* sink = static_cast<MqttSink*>(obj);
    absl::MutexLock lock(&sink->mu_);
    sink->connected_ = false;
    if (rc != 0) spdlog::warn("mqtt sink {}: connection lost ({}), reconnecting", sink->client_id_,
                              mosquitto_strerror(rc));
  }
  static void SinkPublish(mosquitto*, void* obj, int mid) { static_cast<MqttSink*>(obj)->OnPublish(mid); }
};

}  // namespace internal

namespace {

void InitLibrary() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string MakeClientId(const std::string& configured, const std::string& name, int subtask) {
  if (!configured.empty()) return configured;
  uint64_t seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                  reinterpret_cast<uintptr_t>(&configured);
  SplitMix64 rng(seed);
  return fmt::format("cairn-{}-{}-{:08x}", name.empty() ? "mqtt" : name, subtask,
                     static_cast<uint32_t>(rng.Next()));
}

// CONNACK codes that retrying will not fix: protocol version, identifier
// rejected, bad user name or password, not authorized.
bool IsPermanentRefusal(int connack) { return connack == 1 || connack == 2 || connack == 4 || connack == 5; }

absl::Status CheckConnection(const std::string& what, const std::string& host, int port, std::chrono::seconds rmin,
                             std::chrono::seconds rmax, int keepalive_s) {
  if (host.empty()) return absl::InvalidArgumentError(fmt::format("{}: host is empty", what));
  if (port <= 0 || port > 65535) return absl::InvalidArgumentError(fmt::format("{}: port {} out of range", what, port));
  if (rmin.count() < 1 || rmax < rmin)
    return absl::InvalidArgumentError(fmt::format(
        "{}: reconnect backoff needs 1 <= reconnect_min <= reconnect_max (seconds), got {} and {}", what,
        rmin.count(), rmax.count()));
  if (keepalive_s < 5) return absl::InvalidArgumentError(fmt::format("{}: keepalive must be >= 5 s", what));
  return absl::OkStatus();
}

// Creates a client with the settings both connectors share, connects
// asynchronously and starts the network thread.
absl::StatusOr<MosquittoHandle> StartClient(const std::string& what, const std::string& client_id,
                                            bool clean_session, void* obj, const std::string& username,
                                            const std::string& password, std::chrono::seconds rmin,
                                            std::chrono::seconds rmax,
                                            const std::function<void(mosquitto*)>& set_callbacks) {
  InitLibrary();
  MosquittoHandle client(mosquitto_new(client_id.c_str(), clean_session, obj));
  if (!client) return absl::InternalError(fmt::format("{}: mosquitto_new failed (out of memory?)", what));
  mosquitto_int_option(client.get(), MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  set_callbacks(client.get());
  if (!username.empty()) {
    int rc = mosquitto_username_pw_set(client.get(), username.c_str(), password.empty() ? nullptr : password.c_str());
    if (rc != MOSQ_ERR_SUCCESS)
      return absl::InvalidArgumentError(fmt::format("{}: bad credentials: {}", what, mosquitto_strerror(rc)));
  }
  mosquitto_reconnect_delay_set(client.get(), static_cast<unsigned>(rmin.count()),
                                static_cast<unsigned>(rmax.count()), true);
  return client;
}

absl::Status ConnectAndLoop(const std::string& what, mosquitto* client, const std::string& host, int port,
                            int keepalive_s) {
  // A failed first attempt (broker not up yet) is not final: the network
  // thread keeps reconnecting, and Open decides how long to wait.
  int rc = mosquitto_connect_async(client, host.c_str(), port, keepalive_s);
  if (rc != MOSQ_ERR_SUCCESS)
    spdlog::warn("{}: connecting to {}:{} failed ({}), retrying", what, host, port,
                 rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc));
  rc = mosquitto_loop_start(client);
  if (rc != MOSQ_ERR_SUCCESS)
    return absl::InternalError(fmt::format("{}: cannot start the network thread: {}", what, mosquitto_strerror(rc)));
  return absl::OkStatus();
}

void StopClient(mosquitto* client, bool& loop_running) {
  if (client == nullptr || !loop_running) return;
  mosquitto_disconnect(client);
  mosquitto_loop_stop(client, false);
  loop_running = false;
}

}  // namespace

// ---------------------------------------------------------------------------
// MqttSource

absl::StatusOr<std::unique_ptr<MqttSource>> MqttSource::Create(MqttSourceOptions options) {
  CAIRN_RETURN_IF_ERROR(CheckConnection("mqtt source", options.host, options.port, options.reconnect_min,
                                        options.reconnect_max, options.keepalive_s));
  if (options.topics.empty()) return absl::InvalidArgumentError("mqtt source: no topics to subscribe to");
  if (options.qos < 0 || options.qos > 2)
    return absl::InvalidArgumentError(fmt::format("mqtt source: qos must be 0, 1 or 2, got {}", options.qos));
  for (const std::string& t : options.topics) {
    if (t.empty() || mosquitto_sub_topic_check(t.c_str()) != MOSQ_ERR_SUCCESS)
      return absl::InvalidArgumentError(fmt::format("mqtt source: '{}' is not a valid subscription topic", t));
    if (t.rfind("$share/", 0) == 0)
      return absl::InvalidArgumentError(
          fmt::format("mqtt source: topic '{}': set shared_group instead of writing $share/ yourself", t));
  }
  if (options.shared_group.find_first_of("/+#") != std::string::npos)
    return absl::InvalidArgumentError(
        fmt::format("mqtt source: shared group '{}' may not hold '/', '+' or '#'", options.shared_group));
  if (options.persistent_session && options.client_id.empty())
    return absl::InvalidArgumentError("mqtt source: persistent_session needs a fixed client_id");
  if (options.queue_capacity == 0) return absl::InvalidArgumentError("mqtt source: queue_capacity must be > 0");
  if (options.connect_timeout.count() <= 0)
    return absl::InvalidArgumentError("mqtt source: connect_timeout must be > 0");
  return std::unique_ptr<MqttSource>(new MqttSource(std::move(options)));
}

MqttSource::MqttSource(MqttSourceOptions options)
    : options_(std::move(options)), queue_(options_.queue_capacity) {
  for (const std::string& t : options_.topics)
    filters_.push_back(options_.shared_group.empty() ? t : fmt::format("$share/{}/{}", options_.shared_group, t));
  time_.field = options_.time_field;
  time_.format = options_.time_format;
}

MqttSource::~MqttSource() { Close(); }

absl::Status MqttSource::Open(const stream::SourceContext& ctx, std::optional<std::string> /*restored*/) {
  if (client_) return absl::FailedPreconditionError("mqtt source: already open");
  queue_.Reopen();
  {
    absl::MutexLock lock(&mu_);
    subscribed_ = false;
    subscribe_mid_ = -1;
    connections_ = 0;
    fatal_.clear();
  }
  dead_letter_ = ctx.dead_letter;
  counters_.Bind(ctx.metrics, "mqtt", ctx.name, ctx.subtask);
  client_id_ = MakeClientId(options_.client_id, ctx.name, ctx.subtask);
  const std::string what = fmt::format("mqtt source {}", client_id_);
  CAIRN_ASSIGN_OR_RETURN(
      client_, StartClient(what, client_id_, !options_.persistent_session, this, options_.username,
                           options_.password, options_.reconnect_min, options_.reconnect_max, [](mosquitto* m) {
                             mosquitto_connect_callback_set(m, &internal::MqttCallbacks::SourceConnect);
                             mosquitto_disconnect_callback_set(m, &internal::MqttCallbacks::SourceDisconnect);
                             mosquitto_subscribe_callback_set(m, &internal::MqttCallbacks::SourceSubscribe);
                             mosquitto_message_callback_set(m, &internal::MqttCallbacks::SourceMessage);
                           }));
  CAIRN_RETURN_IF_ERROR(ConnectAndLoop(what, client_.get(), options_.host, options_.port, options_.keepalive_s));
  loop_running_ = true;

  bool ready = false;
  std::string fatal;
  {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return subscribed_ || !fatal_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(options_.connect_timeout));
    ready = subscribed_;
    fatal = fatal_;
  }
  if (ready) return absl::OkStatus();
  Close();
  if (!fatal.empty()) return absl::FailedPreconditionError(fmt::format("{}: {}", what, fatal));
  return absl::UnavailableError(fmt::format("{}: not connected and subscribed to {}:{} within {} ms", what,
                                            options_.host, options_.port, options_.connect_timeout.count()));
}

void MqttSource::OnConnect(int rc) {
  if (rc != 0) {
    spdlog::warn("mqtt source {}: broker refused the connection: {}", client_id_, mosquitto_connack_string(rc));
    if (IsPermanentRefusal(rc)) {
      absl::MutexLock lock(&mu_);
      fatal_ = fmt::format("broker refused the connection: {}", mosquitto_connack_string(rc));
    }
    return;
  }
  std::vector<char*> subs;
  for (std::string& f : filters_) subs.push_back(f.data());
  int mid = -1;
  int src = mosquitto_subscribe_multiple(client_.get(), &mid, static_cast<int>(subs.size()), subs.data(),
                                         options_.qos, 0, nullptr);
  absl::MutexLock lock(&mu_);
  ++connections_;
  if (src != MOSQ_ERR_SUCCESS) {
    // The connection is probably going away again; the next connect retries.
    spdlog::warn("mqtt source {}: subscribe failed: {}", client_id_, mosquitto_strerror(src));
    return;
  }
  subscribe_mid_ = mid;
  if (connections_ > 1) spdlog::info("mqtt source {}: reconnected, subscribing again", client_id_);
}

void MqttSource::OnDisconnect(int rc) {
  absl::MutexLock lock(&mu_);
  subscribed_ = false;
  subscribe_mid_ = -1;
  if (rc != 0) spdlog::warn("mqtt source {}: connection lost ({}), reconnecting", client_id_, mosquitto_strerror(rc));
}

void MqttSource::OnSubscribe(int mid, int granted_count, const int* granted) {
  absl::MutexLock lock(&mu_);
  if (mid != subscribe_mid_) return;
  for (int i = 0; i < granted_count; ++i) {
    if (granted[i] < 0 || granted[i] > 2) {
      fatal_ = fmt::format("broker refused the subscription to '{}'",
                           i < static_cast<int>(filters_.size()) ? filters_[i] : std::string("?"));
      return;
    }
  }
  subscribed_ = true;
}

void MqttSource::OnMessage(std::string topic, std::string payload) {
  // Blocks while the queue is full: this thread then stops reading the socket.
  queue_.Push(Message{std::move(topic), std::move(payload)});
}

absl::StatusOr<stream::PollStatus> MqttSource::Poll(stream::SourceBatch<stream::Row>& out, size_t max_records,
                                                    std::chrono::milliseconds max_wait) {
  if (!client_) return absl::FailedPreconditionError("mqtt source: Poll before Open (or after Close)");
  {
    absl::MutexLock lock(&mu_);
    if (!fatal_.empty()) return absl::FailedPreconditionError(fmt::format("mqtt source {}: {}", client_id_, fatal_));
  }
  drained_.clear();
  size_t n = queue_.PopUpTo(drained_, max_records, max_wait);
  for (Message& m : drained_) {
    absl::StatusOr<stream::Row> row = DecodePayload(options_.format, m.payload, MessageMeta{.topic = m.topic});
    if (!row.ok()) {
      RejectRecord(dead_letter_, counters_, fmt::format("mqtt:{}", m.topic), m.payload, row.status());
      continue;
    }
    if (time_.enabled()) {
      absl::StatusOr<stream::EventTime> t = time_.Extract(*row);
      if (!t.ok()) {
        RejectRecord(dead_letter_, counters_, fmt::format("mqtt:{}", m.topic), m.payload, t.status());
        continue;
      }
      out.times.push_back(*t);
    }
    out.records.push_back(*std::move(row));
    counters_.Record();
  }
  return n > 0 ? stream::PollStatus::kRecords : stream::PollStatus::kIdle;
}

void MqttSource::Close() {
  // Wake a callback blocked on the full queue first, or the network thread never ends.
  queue_.Close();
  StopClient(client_.get(), loop_running_);
  client_.reset();
}

bool MqttSource::subscribed() const {
  absl::MutexLock lock(&mu_);
  return subscribed_;
}

uint64_t MqttSource::connections() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

// ---------------------------------------------------------------------------
// MqttSink

absl::StatusOr<std::unique_ptr<MqttSink>> MqttSink::Create(MqttSinkOptions options) {
  CAIRN_RETURN_IF_ERROR(CheckConnection("mqtt sink", options.host, options.port, options.reconnect_min,
                                        options.reconnect_max, options.keepalive_s));
  if (options.qos < 0 || options.qos > 2)
    return absl::InvalidArgumentError(fmt::format("mqtt sink: qos must be 0, 1 or 2, got {}", options.qos));
  if (options.topic.empty()) return absl::InvalidArgumentError("mqtt sink: topic is empty");
  if (options.max_unacknowledged == 0 || options.max_inflight <= 0)
    return absl::InvalidArgumentError("mqtt sink: max_unacknowledged and max_inflight must be > 0");
  std::vector<TopicPart> parts;
  const std::string& t = options.topic;
  size_t i = 0;
  while (i < t.size()) {
    size_t open = t.find('{', i);
    if (open == std::string::npos) {
      parts.push_back({t.substr(i), false});
      break;
    }
    if (open > i) parts.push_back({t.substr(i, open - i), false});
    size_t close = t.find('}', open);
    if (close == std::string::npos || close == open + 1)
      return absl::InvalidArgumentError(
          fmt::format("mqtt sink: topic template '{}': '{{' at {} needs a field name and a closing '}}'", t, open));
    parts.push_back({t.substr(open + 1, close - open - 1), true});
    i = close + 1;
  }
  for (const TopicPart& p : parts) {
    if (p.text.find(p.is_field ? '{' : '}') != std::string::npos)
      return absl::InvalidArgumentError(fmt::format("mqtt sink: topic template '{}' has an unmatched brace", t));
  }
  bool has_field = false;
  for (const TopicPart& p : parts) has_field |= p.is_field;
  if (!has_field && mosquitto_pub_topic_check(t.c_str()) != MOSQ_ERR_SUCCESS)
    return absl::InvalidArgumentError(fmt::format("mqtt sink: '{}' is not a valid topic to publish to", t));
  return std::unique_ptr<MqttSink>(new MqttSink(std::move(options), std::move(parts)));
}

MqttSink::MqttSink(MqttSinkOptions options, std::vector<TopicPart> topic)
    : options_(std::move(options)), topic_(std::move(topic)) {}

MqttSink::~MqttSink() { StopClient(client_.get(), loop_running_); }

absl::Status MqttSink::Open(const stream::SinkContext& ctx, std::optional<std::string> /*restored*/) {
  if (client_) return absl::FailedPreconditionError("mqtt sink: already open");
  dead_letter_ = ctx.dead_letter;
  name_ = ctx.name;
  counters_.Bind(ctx.metrics, "mqtt_sink", ctx.name, ctx.subtask);
  client_id_ = MakeClientId(options_.client_id, ctx.name, ctx.subtask);
  const std::string what = fmt::format("mqtt sink {}", client_id_);
  CAIRN_ASSIGN_OR_RETURN(client_, StartClient(what, client_id_, true, this, options_.username, options_.password,
                                              options_.reconnect_min, options_.reconnect_max, [](mosquitto* m) {
                                                mosquitto_connect_callback_set(
                                                    m, &internal::MqttCallbacks::SinkConnect);
                                                mosquitto_disconnect_callback_set(
                                                    m, &internal::MqttCallbacks::SinkDisconnect);
                                                mosquitto_publish_callback_set(
                                                    m, &internal::MqttCallbacks::SinkPublish);
                                              }));
  mosquitto_max_inflight_messages_set(client_.get(), static_cast<unsigned>(options_.max_inflight));
  CAIRN_RETURN_IF_ERROR(ConnectAndLoop(what, client_.get(), options_.host, options_.port, options_.keepalive_s));
  loop_running_ = true;
  bool ready = false;
  std::string fatal;
  {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return connected_ || !fatal_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(options_.connect_timeout));
    ready = connected_;
    fatal = fatal_;
  }
  if (ready) return absl::OkStatus();
  StopClient(client_.get(), loop_running_);
  client_.reset();
  if (!fatal.empty()) return absl::FailedPreconditionError(fmt::format("{}: {}", what, fatal));
  return absl::UnavailableError(fmt::format("{}: not connected to {}:{} within {} ms", what, options_.host,
                                            options_.port, options_.connect_timeout.count()));
}

void MqttSink::OnConnect(int rc) {
  absl::MutexLock lock(&mu_);
  if (rc == 0) {
    connected_ = true;
    return;
  }
  spdlog::warn("mqtt sink {}: broker refused the connection: {}", client_id_, mosquitto_connack_string(rc));
  if (IsPermanentRefusal(rc)) fatal_ = fmt::format("broker refused the connection: {}", mosquitto_connack_string(rc));
}

void MqttSink::OnPublish(int /*mid*/) {
  // Called once per publish: on PUBACK (QoS 1), PUBCOMP (QoS 2) or when sent (QoS 0).
  absl::MutexLock lock(&mu_);
  if (unacknowledged_ > 0) --unacknowledged_;
}

absl::StatusOr<std::string> MqttSink::RenderTopic(const stream::Row& row) const {
  std::string topic;
  for (const TopicPart& p : topic_) {
    if (!p.is_field) {
      topic += p.text;
      continue;
    }
    const stream::Value* v = row.Get(p.text);
    if (v == nullptr || std::holds_alternative<std::monostate>(*v))
      return absl::InvalidArgumentError(
          fmt::format("topic template '{}' needs field '{}', which the record lacks or has null", options_.topic,
                      p.text));
    topic += stream::ValueToString(*v);
  }
  if (topic.empty() || mosquitto_pub_topic_check(topic.c_str()) != MOSQ_ERR_SUCCESS)
    return absl::InvalidArgumentError(fmt::format("topic '{}' from template '{}' is not a valid topic to publish to",
                                                  topic, options_.topic));
  return topic;
}

absl::Status MqttSink::WaitForAcks(size_t at_most, const char* what) {
  absl::MutexLock lock(&mu_);
  auto done = [this, at_most]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return unacknowledged_ <= at_most || !fatal_.empty();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(options_.ack_timeout)))
    return absl::DeadlineExceededError(fmt::format(
        "mqtt sink {}: {}: {} publishes still unacknowledged by {}:{} after {} ms", client_id_, what,
        unacknowledged_, options_.host, options_.port, options_.ack_timeout.count()));
  if (!fatal_.empty()) return absl::FailedPreconditionError(fmt::format("mqtt sink {}: {}", client_id_, fatal_));
  return absl::OkStatus();
}

absl::Status MqttSink::Write(std::span<const stream::Row> records, std::span<const stream::EventTime> /*times*/) {
  if (!client_) return absl::FailedPreconditionError("mqtt sink: Write before Open (or after Close)");
  for (const stream::Row& row : records) {
    std::string payload = stream::FormatJsonRow(row);
    absl::StatusOr<std::string> topic = RenderTopic(row);
    if (!topic.ok()) {
      RejectRecord(dead_letter_, counters_, fmt::format("mqtt-sink:{}", name_), payload, topic.status());
      continue;
    }
    CAIRN_RETURN_IF_ERROR(WaitForAcks(options_.max_unacknowledged - 1, "waiting for room to publish"));
    {
      absl::MutexLock lock(&mu_);
      ++unacknowledged_;  // before publishing: the ack may arrive before mosquitto_publish returns
    }
    int rc = mosquitto_publish(client_.get(), nullptr, topic->c_str(), static_cast<int>(payload.size()),
                               payload.data(), options_.qos, options_.retain);
    // With QoS >= 1 a publish while disconnected stays queued in the client and
    // goes out (and is acknowledged) after the reconnect.
    bool queued = rc == MOSQ_ERR_SUCCESS || (rc == MOSQ_ERR_NO_CONN && options_.qos > 0);
    if (!queued) {
      {
        absl::MutexLock lock(&mu_);
        --unacknowledged_;
      }
      if (rc == MOSQ_ERR_NO_CONN) continue;  // QoS 0 while disconnected: dropped, as QoS 0 allows
      if (rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_MALFORMED_UTF8) {
        RejectRecord(dead_letter_, counters_, fmt::format("mqtt-sink:{}", *topic), payload,
                     absl::InvalidArgumentError(fmt::format("publish refused: {}", mosquitto_strerror(rc))));
        continue;
      }
      return absl::InternalError(
          fmt::format("mqtt sink {}: publish to '{}' failed: {}", client_id_, *topic, mosquitto_strerror(rc)));
    }
    counters_.Record();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MqttSink::PrepareCheckpoint(int64_t id) {
  if (!client_) return absl::FailedPreconditionError("mqtt sink: checkpoint before Open (or after Close)");
  CAIRN_RETURN_IF_ERROR(WaitForAcks(0, fmt::format("checkpoint {}", id).c_str()));
  return std::string();
}

absl::Status MqttSink::Close() {
  if (!client_) return absl::OkStatus();
  absl::Status s = WaitForAcks(0, "close");
  StopClient(client_.get(), loop_running_);
  client_.reset();
  return s;
}

uint64_t MqttSink::unacknowledged() const {
  absl::MutexLock lock(&mu_);
  return unacknowledged_;
}

}  // namespace cairn::connect
