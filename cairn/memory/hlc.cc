#include "cairn/memory/hlc.h"

#include <algorithm>

namespace cairn::memory {

uint64_t HybridClock::Now() { return Observe(0); }

uint64_t HybridClock::Observe(uint64_t remote) {
  const int64_t wall = std::max<int64_t>(0, clock_.NowNanos() / 1000000);
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t floor = std::max(last_, remote);
  // Wall time ahead of everything seen: a fresh millisecond, counter 0. Otherwise one
  // past the largest stamp (the counter carries into the milliseconds when it wraps,
  // which only costs closeness to wall time).
  const uint64_t wall_stamp = HlcPack(wall, 0);
  last_ = wall_stamp > floor ? wall_stamp : floor + 1;
  return last_;
}

}  // namespace cairn::memory
