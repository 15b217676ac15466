// Timers of one keyed operator subtask: (time, key, namespace), fired in time
// order; timers of one time fire in key order. Registering a timer twice keeps
// one. Timers are grouped by time (windows put many keys on one time), so
// registering costs a hash insert, not a comparison of keys.
// Not thread-safe (one subtask thread).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "cairn/base/codec.h"

namespace cairn::stream::internal {

struct Timer {
  int64_t time = 0;
  std::string key;
  int64_t ns = 0;
};

class TimerQueue {
 public:
  void Register(int64_t time, const std::string& key, int64_t ns);
  void Delete(int64_t time, const std::string& key, int64_t ns);
  // Removes and returns the earliest timer with time <= upto, if any.
  bool PopDue(int64_t upto, Timer* out);
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The earliest time, or INT64_MAX.
  int64_t Earliest() const;
  void Snapshot(ByteWriter& w) const;
  bool Restore(ByteReader& r);

 private:
  using Member = std::pair<std::string, int64_t>;  // key, namespace
  absl::btree_map<int64_t, absl::flat_hash_set<Member>> buckets_;
  size_t size_ = 0;
  // The bucket being fired, sorted; firing_[next_..] are still due.
  std::vector<Member> firing_;
  size_t next_ = 0;
  int64_t firing_time_ = 0;
};

}  // namespace cairn::stream::internal
