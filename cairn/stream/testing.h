// Test helpers for pipelines: an in-memory rewindable source. Used by tests of
// cairn/stream and of the subsystems above it. Not for production pipelines.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/stream/connector.h"

namespace cairn::stream::testing {

// Emits (record, time) pairs in order; subtask i of n takes every n-th pair.
// Position = index of the next pair, so it rewinds exactly. `stop_after`
// (shared, optional) makes Poll idle once that many records were emitted by
// this subtask, until raised: tests use it to take checkpoints at known points.
template <class T>
class VectorSource final : public Source<T> {
 public:
  explicit VectorSource(std::vector<std::pair<T, EventTime>> data, size_t per_poll = 1000,
                        std::shared_ptr<std::atomic<int64_t>> stop_after = nullptr)
      : data_(std::move(data)), per_poll_(per_poll), stop_after_(std::move(stop_after)) {}

  absl::Status Open(const SourceContext& ctx, std::optional<std::string> restored) override {
    subtask_ = ctx.subtask;
    parallelism_ = ctx.parallelism;
    next_ = static_cast<size_t>(subtask_);
    if (restored) {
      ByteReader r(*restored, "vector source position");
      next_ = r.U64();
      emitted_ = static_cast<int64_t>(r.U64());
      CAIRN_RETURN_IF_ERROR(r.Finish());
    }
    return absl::OkStatus();
  }
  absl::StatusOr<PollStatus> Poll(SourceBatch<T>& out, size_t max_records, std::chrono::milliseconds) override {
    size_t n = std::min(max_records, per_poll_);
    while (n-- > 0 && next_ < data_.size()) {
      if (stop_after_ && emitted_ >= stop_after_->load()) return PollStatus::kIdle;
      out.records.push_back(data_[next_].first);
      out.times.push_back(data_[next_].second);
      next_ += static_cast<size_t>(parallelism_);
      ++emitted_;
    }
    if (next_ >= data_.size()) return out.records.empty() ? PollStatus::kEndOfInput : PollStatus::kRecords;
    return out.records.empty() ? PollStatus::kIdle : PollStatus::kRecords;
  }
  std::string Position() override {
    ByteWriter w;
    w.U64(next_);
    w.U64(static_cast<uint64_t>(emitted_));
    return w.Take();
  }
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kExactlyOnce; }

 private:
  std::vector<std::pair<T, EventTime>> data_;
  size_t per_poll_;
  std::shared_ptr<std::atomic<int64_t>> stop_after_;
  int subtask_ = 0;
  int parallelism_ = 1;
  size_t next_ = 0;
  int64_t emitted_ = 0;
};

}  // namespace cairn::stream::testing
