// cairn/server/llm_engine.h — continuous batching: many generation streams over one model.
//
// An LlmEngine owns one infer::Context with `slots` sequence slots and one scheduler
// thread. Every step the thread evaluates ONE Forward batch holding
//   - one token of every sequence that is generating (the token it sampled last), and
//   - a bounded chunk of pending prompt tokens (chunked prefill, decode first: at most
//     `prefill_chunk` prompt tokens while other sequences are generating, so new
//     prompts stretch a running stream's step by a bounded amount instead of by
//     their whole length; a full batch when nothing is generating, or when at least
//     as many sequences are reading their prompts as generating, e.g. a burst of
//     arrivals),
// then samples the next token of every sequence whose logits came out (each with its
// own infer::Sampler, seeded; an optional infer::TokenConstraint is applied before
// sampling and advanced after). New requests join between steps.
//
// Slots and the prefix cache: a sequence runs in its own slot (KV sequence). A
// finished sequence's slot keeps its KV; a new request goes to the free slot whose
// cached tokens share the longest prefix with its prompt and only the rest of the
// prompt is evaluated (a shared system prompt is computed once). Among equals, the
// least recently used slot is taken. The cache has ctx x slots cells, so a slot
// never runs out of room before its own `ctx` limit.
//
// Admission: up to `slots` sequences run, up to `queue` more wait (FIFO); Submit
// answers ResourceExhausted beyond that (the API turns it into 429). A waiting or
// running sequence ends at its deadline (finish "timeout" with the text so far) or
// when cancelled (SeqHandle::Cancel; the slot is free for the next step).
//
// Ending a sequence: an end-of-generation token (finish "stop"; not part of the text),
// a stop string (the text ends before it; stop strings never leak into the stream,
// as in infer::Generate), a complete constrained value ("stop"), max_tokens or the
// slot's context full ("length").
//
// Thread-safety: Submit, Stop, stats and every SeqHandle method may be called from any
// thread. Text reaches the caller through the handle (the scheduler never blocks on a
// client).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/metrics.h"
#include "cairn/infer/constraint.h"
#include "cairn/infer/model.h"
#include "cairn/infer/sampler.h"
#include "cairn/infer/tokenizer.h"

namespace cairn::server {

using LlmClock = std::chrono::steady_clock;

// What one step evaluated and how long it took (the Forward and the sampling).
struct LlmStepInfo {
  int decode_tokens = 0;  // one per generating sequence
  int prompt_tokens = 0;  // prefill tokens
  int sequences = 0;      // sequences in slots during the step
  double seconds = 0;
};

struct LlmEngineOptions {
  std::string name = "model";  // the model label of the metrics
  int slots = 4;               // sequences generating at once
  int ctx = 0;                 // tokens per slot; 0: the model's context length / slots
  int queue = 64;              // requests waiting beyond the slots
  int threads = 1;             // forward-pass threads
  int n_batch = 512;           // most tokens per Forward
  // Prompt tokens per step while other sequences generate (and more of them generate
  // than read prompts). On CPU a step's time grows with its tokens, so this
  // bounds how much a joining request stretches the running streams' inter-token gap
  // (docs/serve.md#scheduling-decode-first), at the cost of its own time to first token.
  int prefill_chunk = 32;
  MetricsRegistry* metrics = nullptr;  // nullptr: no metrics
  // Called on the scheduler thread after every step (measurements, tests); must be quick.
  std::function<void(const LlmStepInfo&)> on_step;
};

struct SeqParams {
  std::vector<int32_t> prompt;  // at least one token, fewer than ctx
  int32_t max_tokens = -1;      // < 0: until the slot's context is full
  std::vector<std::string> stop;
  infer::SamplerParams sampling;
  std::unique_ptr<infer::TokenConstraint> constraint;  // optional
  bool ignore_eos = false;  // generate past end-of-generation tokens (benchmarks, tests)
  LlmClock::time_point deadline = LlmClock::time_point::max();
};

enum class SeqFinish { kStop, kLength, kCancelled, kTimeout, kError };
// "stop", "length", "cancelled", "timeout", "error".
std::string_view SeqFinishName(SeqFinish f);

struct SeqResult {
  std::string text;
  SeqFinish finish = SeqFinish::kStop;
  absl::Status status;      // set when finish == kError
  bool started = false;     // it got a slot (false: it ended while waiting)
  int32_t prompt_tokens = 0;
  int32_t cached_tokens = 0;  // prompt tokens reused from a slot's cache
  int32_t completion_tokens = 0;
};

// The caller's end of one sequence.
class SeqHandle {
 public:
  // Waits until new text is available, the sequence ended, or `wait` passed. Moves the
  // new text (possibly none) to `*out` (appending) and returns true once the sequence
  // has ended and all of its text was taken.
  bool Wait(std::string* out, std::chrono::milliseconds wait);
  // Waits for the end (all text goes to result().text).
  const SeqResult& WaitDone();
  // Asks the engine to end the sequence (finish "cancelled") and free its slot.
  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // Valid once Wait returned true or WaitDone returned.
  const SeqResult& result() const { return result_; }

 private:
  friend class LlmEngine;
  void Push(std::string_view text);
  void Finish(SeqResult result);

  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  bool done_ = false;
  SeqResult result_;
  std::atomic<bool> cancelled_{false};
};

class LlmEngine {
 public:
  // `model` must be a decoder; `tokenizer` its vocabulary. Checks the options (slots,
  // queue, ctx x slots within the model's context length) and starts the thread.
  static absl::StatusOr<std::unique_ptr<LlmEngine>> Create(std::shared_ptr<const infer::Model> model,
                                                           infer::Tokenizer tokenizer, LlmEngineOptions options);
  ~LlmEngine();
  LlmEngine(const LlmEngine&) = delete;
  LlmEngine& operator=(const LlmEngine&) = delete;

  // Queues a sequence. InvalidArgument for an empty prompt, a token outside the
  // vocabulary, bad sampler parameters or a prompt of ctx tokens or more (the message
  // gives both numbers); ResourceExhausted when the queue is full; Unavailable after
  // Stop.
  absl::StatusOr<std::shared_ptr<SeqHandle>> Submit(SeqParams params);

  // Ends every sequence (finish "cancelled") and joins the thread. Idempotent.
  void Stop();

  int ctx() const { return ctx_; }  // tokens per slot
  int slots() const { return options_.slots; }
  const infer::Tokenizer& tokenizer() const { return tokenizer_; }
  const infer::Model& model() const { return *model_; }

  struct Stats {
    int active = 0;  // sequences in slots
    int queued = 0;
    uint64_t prompt_tokens_evaluated = 0;  // prompt tokens computed (cache hits excluded)
    uint64_t tokens_generated = 0;
    uint64_t steps = 0;  // Forward calls
    uint64_t mixed_steps = 0;  // steps that held both decode and prompt tokens
    double step_seconds = 0;   // all steps together
  };
  Stats stats() const;

 private:
  struct Seq;
  struct Slot {
    std::vector<int32_t> tokens;  // what the slot's KV holds
    Seq* seq = nullptr;           // the running sequence, or none (free)
    uint64_t last_used = 0;
  };
  struct Metrics;

  LlmEngine(std::shared_ptr<const infer::Model> model, infer::Tokenizer tokenizer, LlmEngineOptions options);
  void Run();
  void Admit();  // mu_ held
  bool Step();   // false when there was nothing to do
  void Sample(Seq& seq, std::span<const float> logits);
  void End(Seq& seq, SeqFinish finish, absl::Status status = {});
  void UpdateGauges();

  std::shared_ptr<const infer::Model> model_;
  infer::Tokenizer tokenizer_;
  LlmEngineOptions options_;
  int ctx_ = 0;
  std::unique_ptr<infer::Context> context_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Seq>> queue_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  int active_count_ = 0;                    // guarded by mu_ (for stats)
  std::atomic<uint64_t> prompt_evaluated_{0}, generated_{0}, steps_{0}, mixed_steps_{0}, step_ns_{0};

  // Scheduler-thread state.
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Seq>> running_;
  uint64_t clock_ = 0;
  std::vector<float> logits_;  // scratch for constrained sampling
  std::thread thread_;
};

}  // namespace cairn::server
