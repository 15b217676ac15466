// Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//
// A stamp packs wall milliseconds (upper 48 bits) and a logical counter (lower 16 bits).
// Stamps from one clock strictly increase even when the wall clock stalls or steps back,
// stay close to wall time, and Observe() merges a stamp from another node so that
// causally later writes always get larger stamps. Ties between nodes are broken by the
// caller (memory.h orders facts by (valid_from, stamp, author)).
// Thread-safety: HybridClock is thread-safe.
#pragma once

#include <cstdint>
#include <mutex>

#include "cairn/base/clock.h"

namespace cairn::memory {

inline int64_t HlcMillis(uint64_t stamp) { return static_cast<int64_t>(stamp >> 16); }
inline uint64_t HlcPack(int64_t millis, uint16_t logical) {
  return (static_cast<uint64_t>(millis) << 16) | logical;
}

class HybridClock {
 public:
  explicit HybridClock(const Clock& clock) : clock_(clock) {}
  // A stamp for a local event, larger than every stamp issued or observed before.
  uint64_t Now();
  // Merges a stamp received from elsewhere and returns a stamp larger than both it and
  // everything before.
  uint64_t Observe(uint64_t remote);
  uint64_t last() const {
    std::lock_guard<std::mutex> l(mu_);
    return last_;
  }

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
  uint64_t last_ = 0;  // guarded by mu_
};

}  // namespace cairn::memory
