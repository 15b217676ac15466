// cairn/base/clock.h — time as a dependency, so tests can control it.
//
// Code that needs "now" takes a Clock&. SystemClock reads the real clock;
// ManualClock only moves when told to, for deterministic tests. Both are
// thread-safe. Times are nanoseconds since the Unix epoch (event-time friendly).
#pragma once

#include <atomic>
#include <cstdint>

namespace cairn {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, nanoseconds since the Unix epoch.
  virtual int64_t NowNanos() const = 0;
  // Monotonic time for measuring intervals, nanoseconds from an arbitrary origin.
  virtual int64_t MonotonicNanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowNanos() const override;
  int64_t MonotonicNanos() const override;
  // A process-wide instance; never destroyed.
  static SystemClock& Get();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_nanos = 0) : now_(start_nanos) {}
  int64_t NowNanos() const override { return now_.load(std::memory_order_acquire); }
  int64_t MonotonicNanos() const override { return NowNanos(); }
  void Set(int64_t nanos) { now_.store(nanos, std::memory_order_release); }
  void Advance(int64_t nanos) { now_.fetch_add(nanos, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace cairn
