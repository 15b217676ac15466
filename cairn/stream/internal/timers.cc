#include "cairn/stream/internal/timers.h"

#include <limits>

namespace cairn::stream::internal {

bool TimerQueue::PopDue(int64_t upto, Timer* out) {
  if (set_.empty()) return false;
  auto it = set_.begin();
  if (std::get<0>(*it) > upto) return false;
  out->time = std::get<0>(*it);
  out->key = std::get<1>(*it);
  out->ns = std::get<2>(*it);
  set_.erase(it);
  return true;
}

int64_t TimerQueue::Earliest() const {
  return set_.empty() ? std::numeric_limits<int64_t>::max() : std::get<0>(*set_.begin());
}

void TimerQueue::Snapshot(ByteWriter& w) const {
  w.Varint(set_.size());
  for (const auto& [time, key, ns] : set_) {
    w.I64(time);
    w.String(key);
    w.I64(ns);
  }
}

bool TimerQueue::Restore(ByteReader& r) {
  set_.clear();
  uint64_t n = r.Varint();
  if (!r.ok() || n > r.remaining()) {
    r.Fail("timer count exceeds the input");
    return false;
  }
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    int64_t time = r.I64();
    std::string key(r.String());
    int64_t ns = r.I64();
    set_.emplace(time, std::move(key), ns);
  }
  return r.ok();
}

}  // namespace cairn::stream::internal
