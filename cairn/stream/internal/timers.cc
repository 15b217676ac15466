#include "cairn/stream/internal/timers.h"

#include <algorithm>
#include <limits>

namespace cairn::stream::internal {

void TimerQueue::Register(int64_t time, const std::string& key, int64_t ns) {
  if (buckets_[time].emplace(key, ns).second) ++size_;
}

void TimerQueue::Delete(int64_t time, const std::string& key, int64_t ns) {
  auto it = buckets_.find(time);
  if (it == buckets_.end()) return;
  if (it->second.erase(Member(key, ns)) > 0) --size_;
  if (it->second.empty()) buckets_.erase(it);
}

bool TimerQueue::PopDue(int64_t upto, Timer* out) {
  if (next_ >= firing_.size()) {
    firing_.clear();
    next_ = 0;
    if (buckets_.empty() || buckets_.begin()->first > upto) return false;
    auto it = buckets_.begin();
    firing_time_ = it->first;
    firing_.reserve(it->second.size());
    for (auto& m : it->second) firing_.push_back(m);
    buckets_.erase(it);
    std::sort(firing_.begin(), firing_.end());  // a deterministic order within one time
  }
  if (firing_time_ > upto) return false;
  out->time = firing_time_;
  out->key = std::move(firing_[next_].first);
  out->ns = firing_[next_].second;
  ++next_;
  --size_;
  return true;
}

int64_t TimerQueue::Earliest() const {
  if (next_ < firing_.size()) return firing_time_;
  return buckets_.empty() ? std::numeric_limits<int64_t>::max() : buckets_.begin()->first;
}

void TimerQueue::Snapshot(ByteWriter& w) const {
  w.Varint(size_);
  for (size_t i = next_; i < firing_.size(); ++i) {
    w.I64(firing_time_);
    w.String(firing_[i].first);
    w.I64(firing_[i].second);
  }
  for (const auto& [time, members] : buckets_) {
    std::vector<Member> sorted(members.begin(), members.end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [key, ns] : sorted) {
      w.I64(time);
      w.String(key);
      w.I64(ns);
    }
  }
}

bool TimerQueue::Restore(ByteReader& r) {
  buckets_.clear();
  firing_.clear();
  next_ = 0;
  size_ = 0;
  uint64_t n = r.Varint();
  if (!r.ok() || n > r.remaining()) {
    r.Fail("timer count exceeds the input");
    return false;
  }
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    int64_t time = r.I64();
    std::string key(r.String());
    int64_t ns = r.I64();
    if (r.ok()) Register(time, key, ns);
  }
  return r.ok();
}

}  // namespace cairn::stream::internal
