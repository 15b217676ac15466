#include "cairn/pipeline/connectors.h"

#include "cairn/connect/http_ingest.h"
#include "cairn/connect/kafka.h"
#include "cairn/connect/mqtt.h"
#include "cairn/stream/file_connector.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "spdlog/spdlog.h"

namespace cairn::pipeline {
namespace {

// Keys the engine reads from every source config (pipeline_file.cc).
#define CAIRN_SOURCE_COMMON_KEYS \
  "type", "name", "parallelism", "time_field", "time_format", "max_out_of_orderness", "idle_timeout", "rate"
#define CAIRN_SINK_COMMON_KEYS "type", "name", "parallelism"

absl::Status Wrap(const Config& c, std::string_view key, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), fmt::format("{}: {}", c.Describe(key), std::string(s.message())));
}

absl::StatusOr<std::vector<std::string>> StringOrList(const Config& c, std::string_view key) {
  auto list = c.Get<std::vector<std::string>>(key);
  if (list.ok()) return list;
  CAIRN_ASSIGN_OR_RETURN(std::string one, c.Get<std::string>(key));
  return std::vector<std::string>{one};
}

absl::StatusOr<stream::CsvOptions> CsvFrom(const Config& c) {
  stream::CsvOptions csv;
  CAIRN_ASSIGN_OR_RETURN(std::string delimiter, c.GetOr<std::string>("delimiter", ","));
  if (delimiter.size() != 1)
    return absl::InvalidArgumentError(fmt::format("{}: must be one character", c.Describe("delimiter")));
  csv.delimiter = delimiter[0];
  CAIRN_ASSIGN_OR_RETURN(csv.header, c.GetOr<bool>("header", true));
  if (c.Has("columns")) {
    CAIRN_ASSIGN_OR_RETURN(csv.columns, c.Get<std::vector<std::string>>("columns"));
  }
  CAIRN_ASSIGN_OR_RETURN(csv.infer_types, c.GetOr<bool>("infer_types", true));
  return csv;
}

absl::StatusOr<connect::PayloadFormat> PayloadFrom(const Config& c) {
  CAIRN_ASSIGN_OR_RETURN(std::string name, c.GetOr<std::string>("format", "json"));
  auto f = connect::ParsePayloadFormat(name);
  CAIRN_RETURN_IF_ERROR(Wrap(c, "format", f.status()));
  return *f;
}

absl::StatusOr<std::map<std::string, std::string>> KafkaConfig(const Config& c) {
  std::map<std::string, std::string> out;
  if (!c.Has("config")) return out;
  CAIRN_ASSIGN_OR_RETURN(Config kc, c.Child("config"));
  for (const std::string& k : kc.Keys()) {
    CAIRN_ASSIGN_OR_RETURN(out[k], kc.Get<std::string>(k));
  }
  return out;
}

}  // namespace

absl::StatusOr<SourceSpec> MakeSource(const Config& c) {
  CAIRN_ASSIGN_OR_RETURN(std::string type, c.Get<std::string>("type"));
  CAIRN_ASSIGN_OR_RETURN(std::string time_field, c.GetOr<std::string>("time_field", ""));
  CAIRN_ASSIGN_OR_RETURN(std::string time_format, c.GetOr<std::string>("time_format", "auto"));
  SourceSpec spec;
  if (type == "file" || type == "stdin") {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_SOURCE_COMMON_KEYS, "path", "format", "delimiter", "header",
                                            "columns", "infer_types", "follow", "max_line_bytes"}));
    stream::FileSourceOptions o;
    if (type == "stdin") {
      o.path = "-";
    } else {
      CAIRN_ASSIGN_OR_RETURN(o.path, c.Get<std::string>("path"));
    }
    CAIRN_ASSIGN_OR_RETURN(std::string format, c.GetOr<std::string>("format", type == "stdin" ? "jsonl" : ""));
    if (format.empty()) {
      bool json = o.path.size() > 5 && (o.path.ends_with(".jsonl") || o.path.ends_with(".json") ||
                                        o.path.ends_with(".ndjson"));
      format = json ? "jsonl" : "csv";
    }
    auto f = stream::ParseFileFormat(format);
    CAIRN_RETURN_IF_ERROR(Wrap(c, "format", f.status()));
    o.format = *f;
    CAIRN_ASSIGN_OR_RETURN(o.csv, CsvFrom(c));
    o.time_field = time_field;
    o.time_format = time_format;
    CAIRN_ASSIGN_OR_RETURN(o.follow, c.GetOr<bool>("follow", false));
    CAIRN_ASSIGN_OR_RETURN(int64_t max_line, c.GetOr<int64_t>("max_line_bytes", 1 << 20));
    if (max_line < 16) return absl::InvalidArgumentError(fmt::format("{}: too small", c.Describe("max_line_bytes")));
    o.max_line_bytes = static_cast<size_t>(max_line);
    spec.factory = [o](int) { return std::make_unique<stream::FileSource>(o); };
    spec.description = o.path == "-" ? "stdin (at-most-once: standard input cannot be replayed)"
                                     : fmt::format("file {} ({}, exactly-once: replayed from its checkpointed offset)",
                                                   o.path, stream::FileFormatName(o.format));
    return spec;
  }
  if (type == "mqtt") {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_SOURCE_COMMON_KEYS, "host", "port", "topic", "topics", "qos",
                                            "client_id", "username", "password", "shared_group", "format",
                                            "persistent_session", "queue_capacity"}));
    connect::MqttSourceOptions o;
    CAIRN_ASSIGN_OR_RETURN(o.host, c.GetOr<std::string>("host", "127.0.0.1"));
    CAIRN_ASSIGN_OR_RETURN(o.port, c.GetOr<int>("port", 1883));
    CAIRN_ASSIGN_OR_RETURN(o.topics, StringOrList(c, c.Has("topics") ? "topics" : "topic"));
    CAIRN_ASSIGN_OR_RETURN(o.qos, c.GetOr<int>("qos", 1));
    CAIRN_ASSIGN_OR_RETURN(o.client_id, c.GetOr<std::string>("client_id", ""));
    CAIRN_ASSIGN_OR_RETURN(o.username, c.GetOr<std::string>("username", ""));
    CAIRN_ASSIGN_OR_RETURN(o.password, c.GetOr<std::string>("password", ""));
    CAIRN_ASSIGN_OR_RETURN(o.shared_group, c.GetOr<std::string>("shared_group", ""));
    CAIRN_ASSIGN_OR_RETURN(o.persistent_session, c.GetOr<bool>("persistent_session", false));
    CAIRN_ASSIGN_OR_RETURN(int64_t cap, c.GetOr<int64_t>("queue_capacity", 10000));
    o.queue_capacity = static_cast<size_t>(std::max<int64_t>(1, cap));
    CAIRN_ASSIGN_OR_RETURN(o.format, PayloadFrom(c));
    o.time_field = time_field;
    o.time_format = time_format;
    spec.factory = [o](int) -> std::unique_ptr<stream::Source<stream::Row>> {
      auto s = connect::MqttSource::Create(o);
      if (!s.ok()) {
        spdlog::error("mqtt source: {}", s.status().ToString());
        return nullptr;
      }
      return std::move(*s);
    };
    spec.description = fmt::format("mqtt {}:{} {} (at-most-once across a crash: MQTT cannot replay)", o.host, o.port,
                                   fmt::join(o.topics, ","));
    return spec;
  }
  if (type == "kafka") {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_SOURCE_COMMON_KEYS, "brokers", "topic", "group_id", "format",
                                            "start_from", "config"}));
    connect::KafkaSourceOptions o;
    CAIRN_ASSIGN_OR_RETURN(o.brokers, c.Get<std::string>("brokers"));
    CAIRN_ASSIGN_OR_RETURN(o.topic, c.Get<std::string>("topic"));
    CAIRN_ASSIGN_OR_RETURN(o.group_id, c.GetOr<std::string>("group_id", "cairn"));
    CAIRN_ASSIGN_OR_RETURN(o.start_from, c.GetOr<std::string>("start_from", "earliest"));
    CAIRN_ASSIGN_OR_RETURN(o.format, PayloadFrom(c));
    CAIRN_ASSIGN_OR_RETURN(o.config, KafkaConfig(c));
    o.time_field = time_field;
    o.time_format = time_format;
    spec.factory = [o](int) -> std::unique_ptr<stream::Source<stream::Row>> {
      auto s = connect::KafkaSource::Create(o);
      if (!s.ok()) {
        spdlog::error("kafka source: {}", s.status().ToString());
        return nullptr;
      }
      return std::move(*s);
    };
    spec.description = fmt::format("kafka {} topic {} (exactly-once: offsets are checkpointed)", o.brokers, o.topic);
    return spec;
  }
  if (type == "http") {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_SOURCE_COMMON_KEYS, "host", "port", "pipeline", "max_body_bytes",
                                            "queue_capacity"}));
    connect::HttpIngestOptions o;
    CAIRN_ASSIGN_OR_RETURN(o.host, c.GetOr<std::string>("host", "127.0.0.1"));
    CAIRN_ASSIGN_OR_RETURN(o.port, c.GetOr<int>("port", 8080));
    CAIRN_ASSIGN_OR_RETURN(o.pipeline, c.GetOr<std::string>("pipeline", ""));
    CAIRN_ASSIGN_OR_RETURN(int64_t body, c.GetOr<int64_t>("max_body_bytes", 8 << 20));
    CAIRN_ASSIGN_OR_RETURN(int64_t cap, c.GetOr<int64_t>("queue_capacity", 100000));
    if (body < 1 || cap < 1 || o.port < 0 || o.port > 65535)
      return absl::InvalidArgumentError(fmt::format("{}: port, max_body_bytes and queue_capacity must be valid",
                                                    c.Describe("")));
    o.max_body_bytes = static_cast<size_t>(body);
    o.queue_capacity = static_cast<size_t>(cap);
    o.time_field = time_field;
    o.time_format = time_format;
    spec.factory = [o](int) -> std::unique_ptr<stream::Source<stream::Row>> {
      auto s = connect::HttpIngestSource::Create(o);
      if (!s.ok()) {
        spdlog::error("http source: {}", s.status().ToString());
        return nullptr;
      }
      return std::move(*s);
    };
    spec.description = fmt::format(
        "http POST {}:{}/v1/pipelines/{}/events (at-most-once: accepted rows in memory are lost on a crash)", o.host,
        o.port, o.pipeline.empty() ? "<pipeline name>" : o.pipeline);
    return spec;
  }
  return absl::InvalidArgumentError(
      fmt::format("{}: unknown source type \"{}\" (file, stdin, mqtt, kafka, http)", c.Describe("type"), type));
}

absl::StatusOr<SinkSpec> MakeSink(const Config& c) {
  CAIRN_ASSIGN_OR_RETURN(std::string type, c.Get<std::string>("type"));
  SinkSpec spec;
  if (type == "file" || type == "stdout") {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_SINK_COMMON_KEYS, "path", "format", "delimiter", "header"}));
    stream::FileSinkOptions o;
    if (type == "stdout") {
      o.path = "-";
    } else {
      CAIRN_ASSIGN_OR_RETURN(o.path, c.Get<std::string>("path"));
    }
    CAIRN_ASSIGN_OR_RETURN(std::string format, c.GetOr<std::string>("format", type == "stdout" ? "jsonl" : ""));
    if (format.empty()) format = o.path.ends_with(".csv") ? "csv" : "jsonl";
    auto f = stream::ParseFileFormat(format);
    CAIRN_RETURN_IF_ERROR(Wrap(c, "format", f.status()));
    o.format = *f;
    CAIRN_ASSIGN_OR_RETURN(std::string delimiter, c.GetOr<std::string>("delimiter", ","));
    if (delimiter.size() != 1)
      return absl::InvalidArgumentError(fmt::format("{}: must be one character", c.Describe("delimiter")));
    o.delimiter = delimiter[0];
    CAIRN_ASSIGN_OR_RETURN(o.csv_header, c.GetOr<bool>("header", true));
    spec.factory = [o](int) { return std::make_unique<stream::FileSink>(o); };
    spec.description = o.path == "-" ? "stdout (at-least-once: lines already printed cannot be taken back)"
                                     : fmt::format("file {} ({}, exactly-once: rows appear when a checkpoint commits)",
                                                   o.path, stream::FileFormatName(o.format));
    return spec;
  }
  if (type == "mqtt") {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_SINK_COMMON_KEYS, "host", "port", "topic", "qos", "retain",
                                            "client_id", "username", "password"}));
    connect::MqttSinkOptions o;
    CAIRN_ASSIGN_OR_RETURN(o.host, c.GetOr<std::string>("host", "127.0.0.1"));
    CAIRN_ASSIGN_OR_RETURN(o.port, c.GetOr<int>("port", 1883));
    CAIRN_ASSIGN_OR_RETURN(o.topic, c.Get<std::string>("topic"));
    CAIRN_ASSIGN_OR_RETURN(o.qos, c.GetOr<int>("qos", 1));
    CAIRN_ASSIGN_OR_RETURN(o.retain, c.GetOr<bool>("retain", false));
    CAIRN_ASSIGN_OR_RETURN(o.client_id, c.GetOr<std::string>("client_id", ""));
    CAIRN_ASSIGN_OR_RETURN(o.username, c.GetOr<std::string>("username", ""));
    CAIRN_ASSIGN_OR_RETURN(o.password, c.GetOr<std::string>("password", ""));
    spec.factory = [o](int) -> std::unique_ptr<stream::Sink<stream::Row>> {
      auto s = connect::MqttSink::Create(o);
      if (!s.ok()) {
        spdlog::error("mqtt sink: {}", s.status().ToString());
        return nullptr;
      }
      return std::move(*s);
    };
    spec.description = fmt::format("mqtt {}:{} {} (at-least-once)", o.host, o.port, o.topic);
    return spec;
  }
  if (type == "kafka") {
    CAIRN_RETURN_IF_ERROR(c.CheckKnownKeys({CAIRN_SINK_COMMON_KEYS, "brokers", "topic", "key_field", "config"}));
    connect::KafkaSinkOptions o;
    CAIRN_ASSIGN_OR_RETURN(o.brokers, c.Get<std::string>("brokers"));
    CAIRN_ASSIGN_OR_RETURN(o.topic, c.Get<std::string>("topic"));
    CAIRN_ASSIGN_OR_RETURN(o.key_field, c.GetOr<std::string>("key_field", ""));
    CAIRN_ASSIGN_OR_RETURN(o.config, KafkaConfig(c));
    spec.factory = [o](int) -> std::unique_ptr<stream::Sink<stream::Row>> {
      auto s = connect::KafkaSink::Create(o);
      if (!s.ok()) {
        spdlog::error("kafka sink: {}", s.status().ToString());
        return nullptr;
      }
      return std::move(*s);
    };
    spec.description = fmt::format("kafka {} topic {} (at-least-once)", o.brokers, o.topic);
    return spec;
  }
  return absl::InvalidArgumentError(
      fmt::format("{}: unknown sink type \"{}\" (file, stdout, mqtt, kafka)", c.Describe("type"), type));
}

}  // namespace cairn::pipeline
