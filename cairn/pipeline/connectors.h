// Sources and sinks of Rows named in pipeline files (`type:` and its options),
// built from the connectors of cairn/stream (file, stdin, stdout) and
// cairn/connect (mqtt, kafka, http). Errors name the key and its line.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cairn/base/config.h"
#include "cairn/stream/connector.h"

namespace cairn::pipeline {

struct SourceSpec {
  std::function<std::unique_ptr<stream::Source<stream::Row>>(int subtask)> factory;
  std::string description;  // "file data.csv"
};
struct SinkSpec {
  std::function<std::unique_ptr<stream::Sink<stream::Row>>(int subtask)> factory;
  std::string description;
};

// Keys every source accepts besides its own: type, time_field, time_format,
// max_out_of_orderness, idle_timeout, rate, parallelism, name.
absl::StatusOr<SourceSpec> MakeSource(const Config& c);
absl::StatusOr<SinkSpec> MakeSink(const Config& c);

}  // namespace cairn::pipeline
