// cairn/infer/thread_pool.h — a small fork-join pool for the inference kernels.
//
// ThreadPool(n) runs ParallelFor bodies on n threads in all: the calling thread plus
// n - 1 workers it owns. Decode calls into the pool hundreds of times per token, so a
// dispatch must be cheap: idle workers spin for a short while (spin_us) watching for the
// next job, and only then sleep on a condition variable, so a steady stream of calls
// never pays a futex wake-up while an idle pool costs no CPU. The caller works on the
// job too and waits only for ranges that a worker has actually taken, never for a
// worker that has not shown up (on a busy machine a descheduled worker would otherwise
// stall every call for a scheduler time slice).
//
// Thread-safety: ParallelFor may be called from any thread; concurrent calls on one pool
// are serialized. A ParallelFor issued from inside a body (on any pool thread) runs
// inline on that thread. The destructor joins the workers; it must not race with a call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn::infer {

class ThreadPool {
 public:
  // `threads` in all (values below 1 mean 1). Workers spin `spin_us` microseconds after
  // a job before they block.
  explicit ThreadPool(int threads, int spin_us = 300);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Calls fn(begin, end) over disjoint ranges that together cover [0, n), spread across
  // the threads (the caller takes part), and returns when every call has returned. The
  // ranges are handed out dynamically in chunks, so which thread runs which range varies
  // from call to call; results must not depend on it.
  void ParallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

  // Same, with ranges of exactly `grain` items (the last one may be shorter).
  void ParallelForGrain(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void WorkerLoop();
  void RunChunks();

  const int threads_;
  const int spin_us_;
  std::vector<std::thread> workers_;

  std::mutex call_mu_;  // one job at a time

  // The current job. job_ is odd while a job is open; the fields below are written
  // before it becomes odd and stay valid until the caller has closed it (made it even)
  // and seen active_ drop to zero. A worker joins by incrementing active_ and then
  // checking that the same job is still open.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;
  alignas(64) std::atomic<int64_t> next_{0};  // next unclaimed index
  alignas(64) std::atomic<int64_t> done_{0};  // indices finished
  alignas(64) std::atomic<uint64_t> job_{0};
  alignas(64) std::atomic<int> active_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};

  std::mutex mu_;
  std::condition_variable wake_;
};

}  // namespace cairn::infer
