// NexmarkSource: the Nexmark generator as a cairn stream source.
//
// Each parallel subtask i of p generates events i, i + p, i + 2p, ... of the
// configured stream (see generator.h), so together the subtasks produce exactly
// the single-stream sequence. Every record carries its event time (the event's
// date_time) in SourceBatch::times. A bounded config (events > 0) ends with
// kEndOfInput; an unbounded one never ends.
//
// Position() is the next event number of the subtask (with the subtask and
// parallelism it belongs to); Open() with that position continues exactly
// there, so the source is rewindable and gives kExactlyOnce. Restoring a
// position taken at another parallelism is refused (the subtasks' progress
// cannot be redistributed exactly).
//
// Thread-safety: one instance per subtask, driven by one engine thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "bench/nexmark/generator.h"
#include "bench/nexmark/model.h"
#include "cairn/stream/connector.h"

namespace cairn::nexmark {

class NexmarkSource : public stream::Source<Event> {
 public:
  explicit NexmarkSource(GeneratorConfig config) : config_(std::move(config)) {}

  absl::Status Open(const stream::SourceContext& ctx, std::optional<std::string> restored) override;
  // Generates min(max_records, events left) events; never waits. Returns
  // kEndOfInput (with no records) once a bounded stream is exhausted.
  absl::StatusOr<stream::PollStatus> Poll(stream::SourceBatch<Event>& out, size_t max_records,
                                          std::chrono::milliseconds max_wait) override;
  std::string Position() override;
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kExactlyOnce; }

  // Events emitted by this instance since Open (for reports and tests).
  uint64_t emitted() const { return emitted_; }

 private:
  GeneratorConfig config_;
  std::optional<Generator> generator_;
  uint64_t emitted_ = 0;
};

}  // namespace cairn::nexmark
