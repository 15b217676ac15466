// The input side of a task: one bounded FIFO per upstream subtask ("channel"),
// all behind one lock. Producers block while their channel is full
// (backpressure); the consumer can stop reading chosen channels while it aligns
// checkpoint barriers. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "cairn/stream/internal/graph.h"

namespace cairn::stream::internal {

class InputGate {
 public:
  InputGate(int channels, size_t capacity) : queues_(channels), blocked_(channels, false), capacity_(capacity) {}

  // Blocks while the channel is full. False when the gate was cancelled.
  bool Push(int channel, Message m) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return cancelled_ || queues_[channel].size() < capacity_; });
    if (cancelled_) return false;
    queues_[channel].push_back(std::move(m));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  // Takes the next message from a channel that is not blocked (round robin).
  // False on timeout, Wake() or Cancel().
  bool Pop(std::chrono::milliseconds timeout, int* channel, Message* m) {
    std::unique_lock<std::mutex> lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (cancelled_) return false;
      int n = static_cast<int>(queues_.size());
      for (int k = 0; k < n; ++k) {
        int c = (next_ + k) % n;
        if (blocked_[c] || queues_[c].empty()) continue;
        *channel = c;
        *m = std::move(queues_[c].front());
        queues_[c].pop_front();
        // Stay on a channel while it has data (fewer switches), move on after control messages.
        next_ = m->kind == Message::Kind::kData ? c : (c + 1) % n;
        lock.unlock();
        not_full_.notify_all();
        return true;
      }
      if (woken_) {
        woken_ = false;
        return false;
      }
      if (not_empty_.wait_until(lock, deadline) == std::cv_status::timeout) return false;
    }
  }

  void SetBlocked(int channel, bool blocked) {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_[channel] = blocked;
  }
  // Makes a waiting Pop return (to handle a notification).
  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
    }
    not_empty_.notify_all();
  }
  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  // Fullest channel as a fraction of its capacity.
  double Fill() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t most = 0;
    for (auto& q : queues_) most = std::max(most, q.size());
    return capacity_ ? static_cast<double>(most) / static_cast<double>(capacity_) : 0;
  }
  int channels() const { return static_cast<int>(queues_.size()); }

 private:
  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::vector<std::deque<Message>> queues_;
  std::vector<bool> blocked_;
  size_t capacity_;
  int next_ = 0;
  bool cancelled_ = false;
  bool woken_ = false;
};

}  // namespace cairn::stream::internal
