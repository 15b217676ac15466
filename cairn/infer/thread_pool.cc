#include "cairn/infer/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cairn::infer {

namespace {

// Set while a thread runs a ParallelFor body, so a nested call runs inline instead of
// waiting on workers that are busy with the outer job.
thread_local bool in_body = false;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads, int spin_us) : threads_(std::max(1, threads)), spin_us_(std::max(0, spin_us)) {
  workers_.reserve(static_cast<size_t>(threads_ - 1));
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunks() {
  const bool outer = in_body;
  in_body = true;
  for (;;) {
    const int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (begin >= n_) break;
    const int64_t end = std::min(n_, begin + grain_);
    (*fn_)(begin, end);
    done_.fetch_add(end - begin, std::memory_order_release);
  }
  in_body = outer;
}

void ThreadPool::WorkerLoop() {
  uint64_t served = 0;  // the last job this worker looked at
  auto has_work = [&] {
    const uint64_t j = job_.load();
    return (j & 1) != 0 && j != served;
  };
  for (;;) {
    // Spin first: in decode the next job usually arrives within microseconds.
    if (!has_work()) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
      for (int i = 1; !has_work() && !stop_.load(std::memory_order_relaxed); ++i) {
        CpuRelax();
        if ((i & 63) == 0 && std::chrono::steady_clock::now() >= deadline) break;
      }
    }
    if (!has_work()) {
      std::unique_lock<std::mutex> lock(mu_);
      // seq_cst on both sides (here and in ParallelForGrain): either this thread sees the
      // new job in the predicate, or the publisher sees a sleeper and notifies under mu_.
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return stop_.load() || has_work(); });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    active_.fetch_add(1);
    const uint64_t j = job_.load();
    if ((j & 1) != 0) RunChunks();  // still open: the fields are valid until active_ drops
    served = j;
    active_.fetch_sub(1);
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  // Several chunks per thread so a thread that starts late (or is preempted on a busy
  // machine) does not hold everyone up.
  const int64_t chunks = threads_ == 1 ? 1 : int64_t{threads_} * 4;
  ParallelForGrain(n, std::max<int64_t>(1, (n + chunks - 1) / chunks), fn);
}

void ThreadPool::ParallelForGrain(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (threads_ == 1 || n <= grain || in_body) {
    const bool outer = in_body;
    in_body = true;
    for (int64_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain));
    in_body = outer;
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  fn_ = &fn;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint64_t job = job_.load(std::memory_order_relaxed) + 1;  // odd: open
  job_.store(job);
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    wake_.notify_all();
  }
  RunChunks();
  // Ranges taken by workers may still be running.
  for (int i = 0; done_.load(std::memory_order_acquire) != n; ++i) {
    if (i < 4096) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
  // Close the job; a worker that has not joined yet will see it closed and leave the
  // fields alone, one that has joined is waited for (it finds no ranges left).
  job_.store(job + 1);
  while (active_.load() != 0) CpuRelax();
}

}  // namespace cairn::infer
