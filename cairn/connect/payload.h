// What network connectors share: how a message payload becomes a Row, how its
// event time is found, and the counters every connector keeps.
//
// Payload formats:
//  * json: the payload is one JSON object (cairn/stream/format.h ParseJsonRow);
//    anything else is rejected to the dead letter sink with the parser's error.
//  * raw: no parsing; the Row is {topic, payload} plus, where the transport has
//    them, {key, partition, offset, timestamp} (Kafka). `payload` and `key`
//    are strings holding the bytes as received.
//
// Thread-safety: the free functions are thread-safe. ConnectorCounters is
// thread-safe (prometheus counters) and may be shared by threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/base/metrics.h"
#include "cairn/base/status.h"
#include "cairn/stream/connector.h"
#include "cairn/stream/record.h"

namespace cairn::connect {

enum class PayloadFormat { kJson, kRaw };

// "json" or "raw".
absl::StatusOr<PayloadFormat> ParsePayloadFormat(std::string_view name);
const char* PayloadFormatName(PayloadFormat format);

// Transport metadata of one message; only what the transport has is set.
struct MessageMeta {
  std::string_view topic;
  std::optional<std::string_view> key;
  std::optional<int32_t> partition;
  std::optional<int64_t> offset;
  std::optional<int64_t> timestamp_ms;
};

// The Row of one message (see the formats above). Errors say what is wrong with
// the payload; the caller adds where it came from.
absl::StatusOr<stream::Row> DecodePayload(PayloadFormat format, std::string_view payload, const MessageMeta& meta);

// How a record's event time is taken from one of its fields.
struct EventTimeField {
  std::string field;             // empty: the source reports no event times
  std::string format = "auto";   // see stream::ParseEventTime
  bool enabled() const { return !field.empty(); }
  // The event time of `row`; an error when the field is missing or unparsable.
  absl::StatusOr<stream::EventTime> Extract(const stream::Row& row) const;
};

// Prometheus counters of one connector instance:
//   cairn_connect_records_total{connector, name, subtask}   records handed to the engine / written
//   cairn_connect_rejected_total{connector, name, subtask}  records sent to the dead letter sink
// With a null registry the counts are only kept locally.
class ConnectorCounters {
 public:
  ConnectorCounters() = default;
  void Bind(MetricsRegistry* metrics, std::string_view connector, std::string_view name, int subtask);
  void Record(uint64_t n = 1);
  void Reject(uint64_t n = 1);

 private:
  prometheus::Counter* records_ = nullptr;
  prometheus::Counter* rejected_ = nullptr;
};

// Sends `raw` to the dead letter sink (when there is one) and counts it.
void RejectRecord(stream::DeadLetterSink* dead_letter, ConnectorCounters& counters, std::string_view origin,
                  std::string_view raw, const absl::Status& error);

}  // namespace cairn::connect
