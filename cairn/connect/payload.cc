#include "cairn/connect/payload.h"

#include "fmt/format.h"
#include "cairn/stream/format.h"

namespace cairn::connect {

absl::StatusOr<PayloadFormat> ParsePayloadFormat(std::string_view name) {
  if (name == "json") return PayloadFormat::kJson;
  if (name == "raw") return PayloadFormat::kRaw;
  return absl::InvalidArgumentError(fmt::format("unknown payload format '{}': use json or raw", name));
}

const char* PayloadFormatName(PayloadFormat format) { return format == PayloadFormat::kJson ? "json" : "raw"; }

absl::StatusOr<stream::Row> DecodePayload(PayloadFormat format, std::string_view payload, const MessageMeta& meta) {
  if (format == PayloadFormat::kJson) return stream::ParseJsonRow(payload);
  stream::Row row;
  auto& fields = row.mutable_fields();
  fields.reserve(6);
  fields.push_back({"topic", std::string(meta.topic)});
  fields.push_back({"payload", std::string(payload)});
  if (meta.key) fields.push_back({"key", std::string(*meta.key)});
  if (meta.partition) fields.push_back({"partition", int64_t{*meta.partition}});
  if (meta.offset) fields.push_back({"offset", *meta.offset});
  if (meta.timestamp_ms) fields.push_back({"timestamp", *meta.timestamp_ms});
  return row;
}

absl::StatusOr<stream::EventTime> EventTimeField::Extract(const stream::Row& row) const {
  const stream::Value* v = row.Get(field);
  if (v == nullptr) return absl::InvalidArgumentError(fmt::format("the record has no time field '{}'", field));
  auto t = stream::ParseEventTime(*v, format);
  if (!t.ok())
    return absl::InvalidArgumentError(
        fmt::format("time field '{}': {}", field, std::string(t.status().message())));
  return *t;
}

void ConnectorCounters::Bind(MetricsRegistry* metrics, std::string_view connector, std::string_view name,
                             int subtask) {
  if (metrics == nullptr) return;
  MetricLabels labels{{"connector", std::string(connector)},
                      {"name", std::string(name)},
                      {"subtask", std::to_string(subtask)}};
  records_ = &metrics->Counter("cairn_connect_records_total", "Records a connector read or wrote", labels);
  rejected_ = &metrics->Counter("cairn_connect_rejected_total", "Records a connector sent to the dead letter sink",
                                labels);
}

void ConnectorCounters::Record(uint64_t n) {
  if (records_) records_->Increment(static_cast<double>(n));
}

void ConnectorCounters::Reject(uint64_t n) {
  if (rejected_) rejected_->Increment(static_cast<double>(n));
}

void RejectRecord(stream::DeadLetterSink* dead_letter, ConnectorCounters& counters, std::string_view origin,
                  std::string_view raw, const absl::Status& error) {
  counters.Reject();
  if (dead_letter) dead_letter->Reject(origin, raw, std::string(error.message()));
}

}  // namespace cairn::connect
