#include "cairn/connect/kafka.h"

#include <librdkafka/rdkafka.h>

#include <cstring>

#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "cairn/base/codec.h"
#include "cairn/stream/format.h"

namespace cairn::connect {
namespace internal {

void KafkaDeleter::operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }

// librdkafka serves these from rd_kafka_consumer_poll / rd_kafka_poll /
// rd_kafka_flush, i.e. on the thread that drives the connector.
struct KafkaCallbacks {
  static void Rebalance(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                        void* opaque) {
    static_cast<KafkaSource*>(opaque)->OnRebalance(err, partitions);
  }
  static void Delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* sink = static_cast<KafkaSink*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++sink->delivered_;
      return;
    }
    if (sink->failed_++ == 0)
      sink->first_failure_ = fmt::format("partition {}: {}", m->partition, rd_kafka_err2str(m->err));
  }
  static void Log(const rd_kafka_t*, int level, const char* fac, const char* buf) {
    // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug
    if (level <= 3) spdlog::error("kafka {}: {}", fac, buf);
    else if (level == 4) spdlog::warn("kafka {}: {}", fac, buf);
    else if (level <= 6) spdlog::info("kafka {}: {}", fac, buf);
    else spdlog::debug("kafka {}: {}", fac, buf);
  }
  static void Error(rd_kafka_t*, int err, const char* reason, void*) {
    // Transport errors are retried by librdkafka; fatal ones are read with rd_kafka_fatal_error.
    spdlog::warn("kafka: {} ({})", reason, rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
  }
};

}  // namespace internal

namespace {

constexpr uint32_t kPositionMagic = MakeMagic("CKFP");
constexpr uint16_t kPositionVersion = 1;

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfHandle = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using MessageHandle = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

absl::Status SetConf(rd_kafka_conf_t* conf, const std::string& what, const std::string& key,
                     const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK)
    return absl::InvalidArgumentError(fmt::format("{}: property {}={}: {}", what, key, value, err));
  return absl::OkStatus();
}

// A configuration with `defaults`, then the user's properties (which win).
absl::StatusOr<ConfHandle> MakeConf(const std::string& what, const std::map<std::string, std::string>& defaults,
                                    const std::map<std::string, std::string>& user) {
  ConfHandle conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &internal::KafkaCallbacks::Log);
  rd_kafka_conf_set_error_cb(conf.get(), &internal::KafkaCallbacks::Error);
  for (const auto& [k, v] : defaults) CAIRN_RETURN_IF_ERROR(SetConf(conf.get(), what, k, v));
  for (const auto& [k, v] : user) CAIRN_RETURN_IF_ERROR(SetConf(conf.get(), what, k, v));
  return conf;
}

absl::StatusOr<KafkaHandle> NewClient(const std::string& what, rd_kafka_type_t type, ConfHandle conf) {
  char err[512];
  // rd_kafka_new takes the configuration only when it succeeds.
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(fmt::format("{}: {}", what, err));
  conf.release();
  return KafkaHandle(rk);
}

std::string FatalError(rd_kafka_t* rk) {
  char err[512];
  rd_kafka_resp_err_t code = rd_kafka_fatal_error(rk, err, sizeof(err));
  if (code == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return fmt::format("{} ({})", err, rd_kafka_err2name(code));
}

}  // namespace

std::string EncodeKafkaPosition(std::string_view topic, const KafkaOffsets& offsets) {
  ByteWriter w;
  w.String(topic);
  w.Varint(offsets.size());
  for (const auto& [partition, offset] : offsets) {
    w.U32(static_cast<uint32_t>(partition));
    w.I64(offset);
  }
  return SealEnvelope(kPositionMagic, kPositionVersion, w.data());
}

absl::Status DecodeKafkaPosition(std::string_view bytes, std::string* topic, KafkaOffsets* offsets) {
  CAIRN_ASSIGN_OR_RETURN(Envelope env, OpenEnvelope(bytes, kPositionMagic, kPositionVersion, "Kafka position"));
  ByteReader r(env.payload, "Kafka position");
  std::string_view t = r.String();
  uint64_t count = r.Varint();
  if (r.ok() && count > r.remaining() / 12) r.Fail(fmt::format("{} partitions cannot fit the remaining bytes", count));
  KafkaOffsets out;
  for (uint64_t i = 0; r.ok() && i < count; ++i) {
    uint32_t partition = r.U32();
    int64_t offset = r.I64();
    if (!r.ok()) break;
    if (partition > static_cast<uint32_t>(INT32_MAX)) r.Fail(fmt::format("partition {} is negative", partition));
    else if (offset < -1) r.Fail(fmt::format("partition {} has offset {}", partition, offset));
    else if (!out.emplace(static_cast<int32_t>(partition), offset).second)
      r.Fail(fmt::format("partition {} appears twice", partition));
  }
  CAIRN_RETURN_IF_ERROR(r.Finish());
  *topic = std::string(t);
  *offsets = std::move(out);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// KafkaSource

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::Create(KafkaSourceOptions options) {
  if (options.brokers.empty()) return absl::InvalidArgumentError("kafka source: brokers is empty");
  if (options.topic.empty()) return absl::InvalidArgumentError("kafka source: topic is empty");
  if (options.group_assignment && options.group_id.empty())
    return absl::InvalidArgumentError("kafka source: group assignment needs a group_id");
  if (options.start_from != "earliest" && options.start_from != "latest")
    return absl::InvalidArgumentError(
        fmt::format("kafka source: start_from must be earliest or latest, got '{}'", options.start_from));
  return std::unique_ptr<KafkaSource>(new KafkaSource(std::move(options)));
}

KafkaSource::KafkaSource(KafkaSourceOptions options) : options_(std::move(options)) {
  time_.field = options_.time_field;
  time_.format = options_.time_format;
}

KafkaSource::~KafkaSource() { Close(); }

absl::Status KafkaSource::Open(const stream::SourceContext& ctx, std::optional<std::string> restored) {
  if (consumer_) return absl::FailedPreconditionError("kafka source: already open");
  const std::string what = fmt::format("kafka source {}[{}] topic {}", ctx.name, ctx.subtask, options_.topic);
  if (restored && !restored->empty()) {
    std::string topic;
    CAIRN_RETURN_IF_ERROR(DecodeKafkaPosition(*restored, &topic, &restored_));
    if (topic != options_.topic)
      return absl::InvalidArgumentError(
          fmt::format("{}: the restored position is for topic '{}'", what, topic));
  }
  dead_letter_ = ctx.dead_letter;
  counters_.Bind(ctx.metrics, "kafka", ctx.name, ctx.subtask);

  std::map<std::string, std::string> defaults{
      {"bootstrap.servers", options_.brokers},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", options_.start_from},
      {"client.id", fmt::format("cairn-{}-{}", ctx.name, ctx.subtask)},
  };
  // librdkafka's consumer needs a group id even to assign partitions itself;
  // without one of ours nothing is committed and nothing stored is read.
  defaults["group.id"] = options_.group_id.empty() ? fmt::format("cairn-static-{}", ctx.name) : options_.group_id;
  CAIRN_ASSIGN_OR_RETURN(ConfHandle conf, MakeConf(what, defaults, options_.config));
  rd_kafka_conf_set_opaque(conf.get(), this);
  if (options_.group_assignment) rd_kafka_conf_set_rebalance_cb(conf.get(), &internal::KafkaCallbacks::Rebalance);
  CAIRN_ASSIGN_OR_RETURN(consumer_, NewClient(what, RD_KAFKA_CONSUMER, std::move(conf)));
  rd_kafka_poll_set_consumer(consumer_.get());

  absl::Status s;
  if (options_.group_assignment) {
    PartitionList topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), options_.topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), topics.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      s = absl::InvalidArgumentError(fmt::format("{}: subscribe failed: {}", what, rd_kafka_err2str(err)));
  } else {
    s = AssignStatically(ctx.subtask, ctx.parallelism);
    if (!s.ok()) s = absl::Status(s.code(), fmt::format("{}: {}", what, std::string(s.message())));
  }
  if (!s.ok()) {
    consumer_.reset();
    return s;
  }
  return absl::OkStatus();
}

absl::Status KafkaSource::AssignStatically(int subtask, int parallelism) {
  if (parallelism < 1 || subtask < 0 || subtask >= parallelism)
    return absl::InvalidArgumentError(fmt::format("bad subtask {} of {}", subtask, parallelism));
  rd_kafka_topic_t* handle = rd_kafka_topic_new(consumer_.get(), options_.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(consumer_.get(), 0, handle, &md, static_cast<int>(options_.metadata_timeout.count()));
  rd_kafka_topic_destroy(handle);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return absl::UnavailableError(
        fmt::format("no metadata from {} within {} ms: {}", options_.brokers, options_.metadata_timeout.count(),
                    rd_kafka_err2str(err)));
  int partitions = -1;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (options_.topic == md->topics[i].topic) {
      partitions = md->topics[i].partition_cnt;
      topic_err = md->topics[i].err;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (partitions <= 0)
    return absl::NotFoundError(fmt::format("the topic does not exist on {} ({})", options_.brokers,
                                           rd_kafka_err2str(topic_err)));
  PartitionList list(rd_kafka_topic_partition_list_new(partitions));
  for (int32_t p = subtask; p < partitions; p += parallelism) {
    rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), p);
    auto it = restored_.find(p);
    if (it != restored_.end() && it->second >= 0) {
      tp->offset = it->second;
      owned_[p] = it->second;
    } else {
      tp->offset = !options_.group_id.empty() ? RD_KAFKA_OFFSET_STORED
                   : options_.start_from == "latest" ? RD_KAFKA_OFFSET_END
                                                     : RD_KAFKA_OFFSET_BEGINNING;
      owned_[p] = -1;
    }
  }
  restored_.clear();
  err = rd_kafka_assign(consumer_.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return absl::InternalError(fmt::format("assign failed: {}", rd_kafka_err2str(err)));
  return absl::OkStatus();
}

void KafkaSource::OnRebalance(int err, rd_kafka_topic_partition_list_t* partitions) {
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(consumer_.get()), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < partitions->cnt; ++i) {
      rd_kafka_topic_partition_t& tp = partitions->elems[i];
      if (options_.topic != tp.topic) continue;
      // A restored offset wins (once); then where this subtask stopped when the
      // partition was revoked (an eager rebalance revokes everything, even what
      // it hands straight back); otherwise the committed offset.
      int64_t start = -1;
      if (auto it = restored_.find(tp.partition); it != restored_.end()) {
        start = it->second;
        restored_.erase(it);
      } else if (auto r = released_.find(tp.partition); r != released_.end()) {
        start = r->second;
      }
      released_.erase(tp.partition);
      if (start >= 0) tp.offset = start;
      owned_[tp.partition] = start;
    }
    if (cooperative) {
      rd_kafka_error_t* e = rd_kafka_incremental_assign(consumer_.get(), partitions);
      if (e != nullptr) {
        fatal_ = fmt::format("incremental assign failed: {}", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_resp_err_t e = rd_kafka_assign(consumer_.get(), partitions);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) fatal_ = fmt::format("assign failed: {}", rd_kafka_err2str(e));
    }
    return;
  }
  // Revoked (or a rebalance error): give the partitions up, remembering where we stopped.
  for (int i = 0; i < partitions->cnt; ++i) {
    rd_kafka_topic_partition_t& tp = partitions->elems[i];
    auto it = owned_.find(tp.partition);
    if (it == owned_.end()) continue;
    if (it->second >= 0) released_[tp.partition] = it->second;
    owned_.erase(it);
  }
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
    spdlog::warn("kafka source topic {}: rebalance error: {}", options_.topic,
                 rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err)));
  if (cooperative) {
    rd_kafka_error_t* e = rd_kafka_incremental_unassign(consumer_.get(), partitions);
    if (e != nullptr) rd_kafka_error_destroy(e);
  } else {
    rd_kafka_assign(consumer_.get(), nullptr);
  }
}

absl::StatusOr<stream::PollStatus> KafkaSource::Poll(stream::SourceBatch<stream::Row>& out, size_t max_records,
                                                     std::chrono::milliseconds max_wait) {
  if (!consumer_) return absl::FailedPreconditionError("kafka source: Poll before Open (or after Close)");
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  size_t handled = 0;
  while (handled < max_records) {
    int timeout_ms = 0;
    if (handled == 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    MessageHandle m(rd_kafka_consumer_poll(consumer_.get(), timeout_ms));
    if (!fatal_.empty()) return absl::InternalError(fmt::format("kafka source {}: {}", options_.topic, fatal_));
    if (!m) {
      if (handled > 0 || std::chrono::steady_clock::now() >= deadline) break;
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      std::string fatal = FatalError(consumer_.get());
      if (!fatal.empty()) return absl::InternalError(fmt::format("kafka source {}: {}", options_.topic, fatal));
      spdlog::warn("kafka source {}: {}", options_.topic, rd_kafka_message_errstr(m.get()));
      continue;
    }
    ++handled;
    owned_[m->partition] = m->offset + 1;
    std::string_view payload(static_cast<const char*>(m->payload), m->payload == nullptr ? 0 : m->len);
    MessageMeta meta{.topic = options_.topic, .partition = m->partition, .offset = m->offset};
    if (m->key != nullptr) meta.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
    rd_kafka_timestamp_type_t ts_type;
    int64_t ts = rd_kafka_message_timestamp(m.get(), &ts_type);
    if (ts >= 0) meta.timestamp_ms = ts;
    auto origin = [&] { return fmt::format("kafka:{}/{}@{}", options_.topic, m->partition, m->offset); };
    absl::StatusOr<stream::Row> row = DecodePayload(options_.format, payload, meta);
    if (!row.ok()) {
      RejectRecord(dead_letter_, counters_, origin(), payload, row.status());
      continue;
    }
    if (time_.enabled()) {
      absl::StatusOr<stream::EventTime> t = time_.Extract(*row);
      if (!t.ok()) {
        RejectRecord(dead_letter_, counters_, origin(), payload, t.status());
        continue;
      }
      out.times.push_back(*t);
    }
    out.records.push_back(*std::move(row));
    counters_.Record();
  }
  return handled > 0 ? stream::PollStatus::kRecords : stream::PollStatus::kIdle;
}

std::string KafkaSource::Position() {
  KafkaOffsets known;
  for (const auto& [p, next] : owned_)
    if (next >= 0) known[p] = next;
  uncommitted_.push_back(known);
  // Checkpoints that never complete must not pile up.
  while (uncommitted_.size() > 16) uncommitted_.pop_front();
  return EncodeKafkaPosition(options_.topic, known);
}

void KafkaSource::NotifyCheckpointComplete(int64_t id) {
  if (uncommitted_.empty()) return;
  KafkaOffsets offsets = std::move(uncommitted_.front());
  uncommitted_.pop_front();
  if (!consumer_ || options_.group_id.empty() || offsets.empty()) return;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [p, next] : offsets)
    rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), p)->offset = next;
  rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    spdlog::warn("kafka source {}: committing the offsets of checkpoint {} failed: {}", options_.topic, id,
                 rd_kafka_err2str(err));
}

void KafkaSource::Close() {
  if (!consumer_) return;
  rd_kafka_consumer_close(consumer_.get());  // leaves the group; may call OnRebalance
  consumer_.reset();
}

// ---------------------------------------------------------------------------
// KafkaSink

absl::StatusOr<std::unique_ptr<KafkaSink>> KafkaSink::Create(KafkaSinkOptions options) {
  if (options.brokers.empty()) return absl::InvalidArgumentError("kafka sink: brokers is empty");
  if (options.topic.empty()) return absl::InvalidArgumentError("kafka sink: topic is empty");
  if (options.flush_timeout.count() <= 0) return absl::InvalidArgumentError("kafka sink: flush_timeout must be > 0");
  return std::unique_ptr<KafkaSink>(new KafkaSink(std::move(options)));
}

KafkaSink::~KafkaSink() {
  if (producer_) rd_kafka_flush(producer_.get(), 1000);  // best effort; Close is where errors are reported
}

absl::Status KafkaSink::Open(const stream::SinkContext& ctx, std::optional<std::string> /*restored*/) {
  if (producer_) return absl::FailedPreconditionError("kafka sink: already open");
  const std::string what = fmt::format("kafka sink {}[{}] topic {}", ctx.name, ctx.subtask, options_.topic);
  dead_letter_ = ctx.dead_letter;
  counters_.Bind(ctx.metrics, "kafka_sink", ctx.name, ctx.subtask);
  std::map<std::string, std::string> defaults{
      {"bootstrap.servers", options_.brokers},
      {"enable.idempotence", options_.idempotent ? "true" : "false"},
      {"linger.ms", "5"},
      {"client.id", fmt::format("cairn-{}-{}", ctx.name, ctx.subtask)},
  };
  CAIRN_ASSIGN_OR_RETURN(ConfHandle conf, MakeConf(what, defaults, options_.config));
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &internal::KafkaCallbacks::Delivery);
  CAIRN_ASSIGN_OR_RETURN(producer_, NewClient(what, RD_KAFKA_PRODUCER, std::move(conf)));
  return absl::OkStatus();
}

absl::Status KafkaSink::DeliveryErrors() const {
  if (failed_ == 0) return absl::OkStatus();
  return absl::UnavailableError(fmt::format("kafka sink {}: {} messages were not delivered (first: {})",
                                            options_.topic, failed_, first_failure_));
}

absl::Status KafkaSink::Write(std::span<const stream::Row> records, std::span<const stream::EventTime> /*times*/) {
  if (!producer_) return absl::FailedPreconditionError("kafka sink: Write before Open (or after Close)");
  for (const stream::Row& row : records) {
    std::string payload = stream::FormatJsonRow(row);
    std::string key;
    const stream::Value* k = options_.key_field.empty() ? nullptr : row.Get(options_.key_field);
    bool has_key = k != nullptr && !std::holds_alternative<std::monostate>(*k);
    if (has_key) key = stream::ValueToString(*k);
    const auto deadline = std::chrono::steady_clock::now() + options_.flush_timeout;
    while (true) {
      rd_kafka_resp_err_t err =
          rd_kafka_producev(producer_.get(), RD_KAFKA_V_TOPIC(options_.topic.c_str()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(payload.data(), payload.size()),
                            RD_KAFKA_V_KEY((has_key ? key.data() : nullptr), (has_key ? key.size() : 0)), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
        rd_kafka_poll(producer_.get(), 50);  // backpressure: wait for deliveries to make room
        continue;
      }
      if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        RejectRecord(dead_letter_, counters_, fmt::format("kafka-sink:{}", options_.topic), payload,
                     absl::InvalidArgumentError(rd_kafka_err2str(err)));
        break;
      }
      std::string fatal = FatalError(producer_.get());
      return absl::UnavailableError(fmt::format("kafka sink {}: produce failed: {}", options_.topic,
                                                fatal.empty() ? rd_kafka_err2str(err) : fatal));
    }
    counters_.Record();
  }
  rd_kafka_poll(producer_.get(), 0);
  return DeliveryErrors();
}

absl::Status KafkaSink::Flush(const std::string& what) {
  rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), static_cast<int>(options_.flush_timeout.count()));
  std::string fatal = FatalError(producer_.get());
  if (!fatal.empty()) return absl::InternalError(fmt::format("kafka sink {}: {}", options_.topic, fatal));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return absl::DeadlineExceededError(fmt::format("kafka sink {}: {}: {} messages still undelivered after {} ms",
                                                   options_.topic, what, rd_kafka_outq_len(producer_.get()),
                                                   options_.flush_timeout.count()));
  return DeliveryErrors();
}

absl::StatusOr<std::string> KafkaSink::PrepareCheckpoint(int64_t id) {
  if (!producer_) return absl::FailedPreconditionError("kafka sink: checkpoint before Open (or after Close)");
  CAIRN_RETURN_IF_ERROR(Flush(fmt::format("checkpoint {}", id)));
  return std::string();
}

absl::Status KafkaSink::Close() {
  if (!producer_) return absl::OkStatus();
  absl::Status s = Flush("close");
  producer_.reset();
  return s;
}

}  // namespace cairn::connect
