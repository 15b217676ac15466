// A bounded multi-producer queue between a connector's network thread(s) and
// the engine thread that polls the source.
//
// Producers either block while the queue is full (MQTT: the network loop stops
// reading the socket, which is the backpressure) or try to add a whole batch at
// once (HTTP: a full queue answers 429). Close() wakes every waiter; after it,
// pushes fail and pops drain what is left.
//
// Thread-safety: every member is thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cairn::connect::internal {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // Waits while the queue is full. False when the queue was closed (the item is dropped).
  bool Push(T item) {
    absl::MutexLock lock(&mu_);
    while (items_.size() >= capacity_ && !closed_) not_full_.Wait(&mu_);
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.Signal();
    return true;
  }

  // Adds all of `batch` or nothing (false: not enough room, or closed). Never waits.
  bool TryPushAll(std::vector<T>& batch) {
    absl::MutexLock lock(&mu_);
    if (closed_ || capacity_ - items_.size() < batch.size()) return false;
    for (T& item : batch) items_.push_back(std::move(item));
    not_empty_.SignalAll();
    return true;
  }

  // Moves up to `max` items into `out`, waiting at most `wait` for the first one.
  // Returns how many were moved.
  size_t PopUpTo(std::vector<T>& out, size_t max, std::chrono::milliseconds wait) {
    absl::MutexLock lock(&mu_);
    if (items_.empty() && !closed_ && wait.count() > 0) {
      absl::Time deadline = absl::Now() + absl::FromChrono(wait);
      while (items_.empty() && !closed_) {
        if (not_empty_.WaitWithDeadline(&mu_, deadline)) break;
      }
    }
    size_t n = 0;
    while (n < max && !items_.empty()) {
      out.push_back(std::move(items_.front()));
      items_.pop_front();
      ++n;
    }
    if (n > 0) not_full_.SignalAll();
    return n;
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    not_full_.SignalAll();
    not_empty_.SignalAll();
  }

  // Empties the queue and accepts pushes again (a connector opened after a Close).
  void Reopen() {
    absl::MutexLock lock(&mu_);
    items_.clear();
    closed_ = false;
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  absl::CondVar not_full_;
  absl::CondVar not_empty_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cairn::connect::internal
