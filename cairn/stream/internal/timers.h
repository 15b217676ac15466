// Timers of one keyed operator subtask: (time, key, namespace), ordered by time.
// Not thread-safe (one subtask thread).
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/btree_set.h"
#include "cairn/base/codec.h"

namespace cairn::stream::internal {

struct Timer {
  int64_t time = 0;
  std::string key;
  int64_t ns = 0;
};

class TimerQueue {
 public:
  void Register(int64_t time, const std::string& key, int64_t ns) { set_.emplace(time, key, ns); }
  void Delete(int64_t time, const std::string& key, int64_t ns) { set_.erase(Entry(time, key, ns)); }
  // Removes and returns the earliest timer with time <= upto, if any.
  bool PopDue(int64_t upto, Timer* out);
  bool empty() const { return set_.empty(); }
  size_t size() const { return set_.size(); }
  // The earliest time, or INT64_MAX.
  int64_t Earliest() const;
  void Snapshot(ByteWriter& w) const;
  bool Restore(ByteReader& r);

 private:
  using Entry = std::tuple<int64_t, std::string, int64_t>;
  absl::btree_set<Entry> set_;
};

}  // namespace cairn::stream::internal
