// Test helper: a DeadLetterSink that keeps every rejected record in memory.
//
// Thread-safety: thread-safe, as the DeadLetterSink contract requires.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cairn/stream/connector.h"

namespace cairn::connect::testing {

class CollectingDeadLetter final : public stream::DeadLetterSink {
 public:
  struct Entry {
    std::string origin;
    std::string raw;
    std::string error;
  };

  void Reject(std::string_view origin, std::string_view raw, std::string_view error) override {
    absl::MutexLock lock(&mu_);
    entries_.push_back({std::string(origin), std::string(raw), std::string(error)});
  }
  uint64_t rejected() const override {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }
  std::vector<Entry> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cairn::connect::testing
