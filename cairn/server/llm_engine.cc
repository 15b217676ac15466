#include "cairn/server/llm_engine.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "cairn/base/status.h"
#include "cairn/infer/generate.h"
#include "cairn/infer/unicode.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace cairn::server {

namespace {

double SecondsBetween(LlmClock::time_point a, LlmClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

std::string_view SeqFinishName(SeqFinish f) {
  switch (f) {
    case SeqFinish::kStop: return "stop";
    case SeqFinish::kLength: return "length";
    case SeqFinish::kCancelled: return "cancelled";
    case SeqFinish::kTimeout: return "timeout";
    case SeqFinish::kError: return "error";
  }
  return "stop";
}

// ------------------------------------------------------------------------ SeqHandle

bool SeqHandle::Wait(std::string* out, std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return done_ || !pending_.empty(); });
  out->append(pending_);
  pending_.clear();
  return done_;
}

const SeqResult& SeqHandle::WaitDone() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  pending_.clear();
  return result_;
}

void SeqHandle::Cancel() {
  // The scheduler looks at the flag before every step (and every 50 ms when idle).
  cancelled_.store(true, std::memory_order_relaxed);
}

void SeqHandle::Push(std::string_view text) {
  if (text.empty()) return;
  {
    std::lock_guard lock(mu_);
    pending_.append(text);
  }
  cv_.notify_all();
}

void SeqHandle::Finish(SeqResult result) {
  {
    std::lock_guard lock(mu_);
    result_ = std::move(result);
    done_ = true;
  }
  cv_.notify_all();
}

// ------------------------------------------------------------------------- internals

struct LlmEngine::Seq {
  SeqParams params;
  std::shared_ptr<SeqHandle> handle;
  LlmClock::time_point submitted;
  LlmClock::time_point last_token;
  int slot = -1;
  int32_t prompt_done = 0;   // prompt tokens in the slot's KV
  int32_t cached = 0;
  std::optional<int32_t> next;  // sampled, to be fed at the next step
  int32_t generated = 0;
  infer::Sampler sampler;
  infer::StreamDecoder decoder;
  infer::StopStringMatcher matcher;
  bool ended = false;
  bool cut = false;  // a stop string ended the text

  Seq(SeqParams p, const infer::Tokenizer& tokenizer)
      : params(std::move(p)),
        sampler(params.sampling),
        decoder(tokenizer, {.render_special = false, .strip_prefix_space = false}),
        matcher(params.stop) {}
};

struct LlmEngine::Metrics {
  prometheus::Counter* prompt_tokens = nullptr;
  prometheus::Counter* generated_tokens = nullptr;
  prometheus::Histogram* ttft = nullptr;
  prometheus::Histogram* inter_token = nullptr;
  prometheus::Histogram* step_decode = nullptr;  // steps with decode tokens only
  prometheus::Histogram* step_mixed = nullptr;   // decode and prompt tokens
  prometheus::Histogram* step_prefill = nullptr; // prompt tokens only
  prometheus::Gauge* queue_depth = nullptr;
  prometheus::Gauge* active = nullptr;
  prometheus::Gauge* kv_used = nullptr;
};

// --------------------------------------------------------------------------- engine

LlmEngine::LlmEngine(std::shared_ptr<const infer::Model> model, infer::Tokenizer tokenizer, LlmEngineOptions options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<LlmEngine>> LlmEngine::Create(std::shared_ptr<const infer::Model> model,
                                                             infer::Tokenizer tokenizer, LlmEngineOptions options) {
  if (!model->has_logits())
    return absl::InvalidArgumentError(
        fmt::format("model '{}': an encoder cannot generate text (it serves embeddings only)", options.name));
  if (options.slots < 1 || options.slots > 1024)
    return absl::InvalidArgumentError(fmt::format("slots must be in 1..1024, got {}", options.slots));
  if (options.queue < 0) return absl::InvalidArgumentError(fmt::format("queue must be >= 0, got {}", options.queue));
  if (options.threads < 1) options.threads = 1;
  if (options.n_batch < 1 || options.prefill_chunk < 1)
    return absl::InvalidArgumentError("n_batch and prefill_chunk must be positive");
  const int train = static_cast<int>(model->config().n_ctx_train);
  int ctx = options.ctx;
  if (ctx < 0) return absl::InvalidArgumentError(fmt::format("ctx must be >= 0, got {}", ctx));
  if (ctx == 0) ctx = train / options.slots;
  if (ctx < 2)
    return absl::InvalidArgumentError(
        fmt::format("the model's context of {} tokens is too small for {} slots", train, options.slots));
  if (static_cast<int64_t>(ctx) * options.slots > train)
    return absl::InvalidArgumentError(fmt::format(
        "ctx {} x slots {} = {} tokens exceeds the model's context length of {} (the slots share one KV cache)", ctx,
        options.slots, static_cast<int64_t>(ctx) * options.slots, train));

  std::unique_ptr<LlmEngine> e(new LlmEngine(std::move(model), std::move(tokenizer), std::move(options)));
  e->ctx_ = ctx;
  infer::ContextOptions co;
  co.n_ctx = static_cast<uint32_t>(ctx * e->options_.slots);
  co.n_batch = static_cast<uint32_t>(e->options_.n_batch);
  co.n_seq = static_cast<uint32_t>(e->options_.slots);
  co.n_threads = e->options_.threads;
  CAIRN_ASSIGN_OR_RETURN(e->context_, infer::Context::Create(*e->model_, co));
  e->options_.n_batch = static_cast<int>(e->context_->n_batch());
  e->slots_.resize(static_cast<size_t>(e->options_.slots));

  if (MetricsRegistry* m = e->options_.metrics) {
    const MetricLabels model_label = {{"model", e->options_.name}};
    auto metrics = std::make_unique<Metrics>();
    metrics->prompt_tokens = &m->Counter("cairn_llm_tokens_total", "Tokens evaluated (prompt) or sampled (generated)",
                                         {{"model", e->options_.name}, {"kind", "prompt"}});
    metrics->generated_tokens = &m->Counter("cairn_llm_tokens_total", "Tokens evaluated (prompt) or sampled (generated)",
                                            {{"model", e->options_.name}, {"kind", "generated"}});
    metrics->ttft = &m->Histogram("cairn_llm_time_to_first_token_seconds", "From request to its first sampled token",
                                  {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, model_label);
    metrics->inter_token = &m->Histogram("cairn_llm_inter_token_seconds", "Between consecutive tokens of a stream",
                                         {0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56}, model_label);
    const std::vector<double> step_buckets = {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12};
    auto step = [&](const char* kind) {
      return &m->Histogram("cairn_llm_step_seconds", "One batched forward step and its sampling, by what it held",
                           step_buckets, {{"model", e->options_.name}, {"kind", kind}});
    };
    metrics->step_decode = step("decode");
    metrics->step_mixed = step("mixed");
    metrics->step_prefill = step("prefill");
    metrics->queue_depth = &m->Gauge("cairn_llm_queue_depth", "Requests waiting for a slot", model_label);
    metrics->active = &m->Gauge("cairn_llm_active_sequences", "Sequences in slots", model_label);
    metrics->kv_used = &m->Gauge("cairn_llm_kv_cache_used_ratio", "Share of KV cache cells in use (cached included)",
                                 model_label);
    e->metrics_ = std::move(metrics);
  }
  e->thread_ = std::thread([raw = e.get()] { raw->Run(); });
  return e;
}

LlmEngine::~LlmEngine() { Stop(); }

void LlmEngine::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

LlmEngine::Stats LlmEngine::stats() const {
  Stats s;
  {
    std::lock_guard lock(mu_);
    s.active = active_count_;
    s.queued = static_cast<int>(queue_.size());
  }
  s.prompt_tokens_evaluated = prompt_evaluated_.load();
  s.tokens_generated = generated_.load();
  s.steps = steps_.load();
  s.mixed_steps = mixed_steps_.load();
  s.step_seconds = static_cast<double>(step_ns_.load()) * 1e-9;
  return s;
}

absl::StatusOr<std::shared_ptr<SeqHandle>> LlmEngine::Submit(SeqParams params) {
  if (params.prompt.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  for (size_t i = 0; i < params.prompt.size(); ++i) {
    const int32_t t = params.prompt[i];
    if (t < 0 || t >= model_->n_vocab())
      return absl::InvalidArgumentError(
          fmt::format("prompt token {} is {}, outside the vocabulary (0..{})", i, t, model_->n_vocab() - 1));
  }
  if (static_cast<int64_t>(params.prompt.size()) >= ctx_)
    return absl::InvalidArgumentError(
        fmt::format("the prompt has {} tokens; the context holds {} per request (prompt and completion together)",
                    params.prompt.size(), ctx_));
  CAIRN_RETURN_IF_ERROR(infer::ValidateSamplerParams(params.sampling));

  auto seq = std::make_unique<Seq>(std::move(params), tokenizer_);
  seq->submitted = LlmClock::now();
  seq->handle = std::make_shared<SeqHandle>();
  std::shared_ptr<SeqHandle> handle = seq->handle;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return absl::UnavailableError("the model is shutting down");
    // Queue slots beyond the free sequence slots.
    const int free_slots = options_.slots - active_count_;
    if (static_cast<int>(queue_.size()) >= options_.queue + std::max(0, free_slots))
      return absl::ResourceExhaustedError(fmt::format("model '{}' is busy: {} requests running and {} waiting",
                                                      options_.name, active_count_, queue_.size()));
    queue_.push_back(std::move(seq));
    if (metrics_) metrics_->queue_depth->Set(static_cast<double>(queue_.size()));
  }
  cv_.notify_all();
  return handle;
}

void LlmEngine::Run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) break;
      Admit();
      if (running_.empty()) {
        // Nothing to evaluate: sleep until a request (or a cancel, or a deadline of a
        // waiting request) needs attention.
        cv_.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
    }
    Step();
  }
  // Stopping: everything running or waiting ends as cancelled.
  for (auto& s : running_) End(*s, SeqFinish::kCancelled);
  running_.clear();
  std::deque<std::unique_ptr<Seq>> waiting;
  {
    std::lock_guard lock(mu_);
    waiting.swap(queue_);
    active_count_ = 0;
  }
  for (auto& s : waiting) End(*s, SeqFinish::kCancelled);
  std::lock_guard lock(mu_);
  UpdateGauges();
}

void LlmEngine::Admit() {
  const LlmClock::time_point now = LlmClock::now();
  // Waiting requests that were cancelled or ran out of time leave the queue.
  for (auto it = queue_.begin(); it != queue_.end();) {
    Seq& s = **it;
    if (s.handle->cancelled() || now >= s.params.deadline) {
      End(s, s.handle->cancelled() ? SeqFinish::kCancelled : SeqFinish::kTimeout);
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  while (!queue_.empty()) {
    Seq& s = *queue_.front();
    // The free slot sharing the longest prefix with the prompt (at least the last
    // prompt token is evaluated: its logits start the sampling).
    int best = -1;
    size_t best_keep = 0;
    for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
      const Slot& slot = slots_[static_cast<size_t>(i)];
      if (slot.seq != nullptr) continue;
      size_t keep = 0;
      const size_t limit = std::min(slot.tokens.size(), s.params.prompt.size() - 1);
      while (keep < limit && slot.tokens[keep] == s.params.prompt[keep]) ++keep;
      if (best < 0 || keep > best_keep ||
          (keep == best_keep && slot.last_used < slots_[static_cast<size_t>(best)].last_used)) {
        best = i;
        best_keep = keep;
      }
    }
    if (best < 0) break;
    Slot& slot = slots_[static_cast<size_t>(best)];
    context_->TruncateSeq(best, static_cast<int32_t>(best_keep));
    slot.tokens.resize(best_keep);
    slot.seq = &s;
    slot.last_used = ++clock_;
    s.slot = best;
    s.prompt_done = static_cast<int32_t>(best_keep);
    s.cached = s.prompt_done;
    s.sampler.Accept(s.params.prompt);
    running_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    ++active_count_;
  }
  UpdateGauges();
}

void LlmEngine::UpdateGauges() {
  if (!metrics_) return;
  metrics_->queue_depth->Set(static_cast<double>(queue_.size()));
  metrics_->active->Set(static_cast<double>(running_.size()));
  const infer::KvCache* kv = context_->kv_cache();
  if (kv != nullptr && kv->n_cells() > 0) metrics_->kv_used->Set(static_cast<double>(kv->used()) / kv->n_cells());
}

bool LlmEngine::Step() {
  const LlmClock::time_point now = LlmClock::now();
  for (auto& s : running_) {
    if (s->handle->cancelled()) End(*s, SeqFinish::kCancelled);
    else if (now >= s->params.deadline) End(*s, SeqFinish::kTimeout);
  }
  std::erase_if(running_, [](const std::unique_ptr<Seq>& s) { return s->ended; });
  const int in_slots = static_cast<int>(running_.size());

  // One decode token per generating sequence, then prompt chunks in arrival order.
  std::vector<infer::BatchToken> batch;
  std::vector<Seq*> owner;  // per batch entry
  for (auto& s : running_) {
    if (!s->next) continue;
    Slot& slot = slots_[static_cast<size_t>(s->slot)];
    batch.push_back({.token = *s->next, .seq = s->slot, .pos = static_cast<int32_t>(slot.tokens.size()), .output = true});
    owner.push_back(s.get());
  }
  const int decoding = static_cast<int>(batch.size());
  const int prefilling = static_cast<int>(running_.size()) - decoding;
  int budget = options_.n_batch - decoding;
  // Decode first, unless at least as many sequences wait for their prompts as
  // generate: then a burst of arrivals is read in large steps instead of trickling in
  // by chunks while the first few streams run on alone (which would cost every
  // newcomer its first token and the batch its width). A large step delays as many
  // generating streams by one gap as it saves waiting ones chunked steps.
  if (decoding > 0 && prefilling < decoding) budget = std::min(budget, options_.prefill_chunk);
  for (auto& s : running_) {
    if (s->next || budget <= 0) continue;
    const int32_t left = static_cast<int32_t>(s->params.prompt.size()) - s->prompt_done;
    const int32_t take = std::min<int32_t>(left, budget);
    for (int32_t i = 0; i < take; ++i) {
      const int32_t p = s->prompt_done + i;
      batch.push_back({.token = s->params.prompt[static_cast<size_t>(p)], .seq = s->slot, .pos = p,
                       .output = i + 1 == left});
      owner.push_back(s.get());
    }
    budget -= take;
  }
  if (batch.empty()) return false;
  const int prompt_tokens = static_cast<int>(batch.size()) - decoding;

  absl::Status st = context_->Forward(batch);
  steps_.fetch_add(1, std::memory_order_relaxed);
  if (decoding > 0 && prompt_tokens > 0) mixed_steps_.fetch_add(1, std::memory_order_relaxed);
  if (!st.ok()) {
    spdlog::error("llm '{}': forward failed: {}", options_.name, std::string(st.message()));
    for (Seq* s : owner) {
      if (s->ended) continue;
      context_->ClearSeq(s->slot);
      slots_[static_cast<size_t>(s->slot)].tokens.clear();
      End(*s, SeqFinish::kError, st);
    }
    std::erase_if(running_, [](const std::unique_ptr<Seq>& s) { return s->ended; });
    return true;
  }

  int32_t row = 0;
  uint64_t prompt_evaluated = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    Seq& s = *owner[i];
    slots_[static_cast<size_t>(s.slot)].tokens.push_back(batch[i].token);
    if (static_cast<int>(i) >= decoding) {
      ++s.prompt_done;
      ++prompt_evaluated;
    } else {
      s.next.reset();
    }
    if (batch[i].output) Sample(s, context_->Output(row++));
  }
  prompt_evaluated_.fetch_add(prompt_evaluated, std::memory_order_relaxed);
  if (metrics_) metrics_->prompt_tokens->Increment(static_cast<double>(prompt_evaluated));
  std::erase_if(running_, [](const std::unique_ptr<Seq>& s) { return s->ended; });
  {
    std::lock_guard lock(mu_);
    UpdateGauges();
  }
  LlmStepInfo info{.decode_tokens = decoding, .prompt_tokens = prompt_tokens, .sequences = in_slots,
                   .seconds = SecondsBetween(now, LlmClock::now())};
  step_ns_.fetch_add(static_cast<uint64_t>(info.seconds * 1e9), std::memory_order_relaxed);
  if (metrics_) {
    (decoding == 0 ? metrics_->step_prefill : prompt_tokens == 0 ? metrics_->step_decode : metrics_->step_mixed)
        ->Observe(info.seconds);
  }
  if (spdlog::should_log(spdlog::level::debug))
    spdlog::debug("llm '{}': step decode {} prompt {} in slots {}: {:.1f} ms", options_.name, decoding, prompt_tokens,
                  in_slots, info.seconds * 1e3);
  if (options_.on_step) options_.on_step(info);
  return true;
}

void LlmEngine::Sample(Seq& s, std::span<const float> logits) {
  std::span<const float> use = logits;
  if (s.params.constraint) {
    logits_.assign(logits.begin(), logits.end());
    s.params.constraint->Apply(logits_);
    use = logits_;
  }
  const int32_t token = s.sampler.Sample(use);
  s.sampler.Accept(token);
  const LlmClock::time_point now = LlmClock::now();
  if (metrics_) {
    if (s.generated == 0) metrics_->ttft->Observe(SecondsBetween(s.submitted, now));
    else metrics_->inter_token->Observe(SecondsBetween(s.last_token, now));
  }
  s.last_token = now;
  if (s.params.constraint) {
    if (absl::Status st = s.params.constraint->Accept(token); !st.ok()) return End(s, SeqFinish::kError, st);
  }
  if (!s.params.ignore_eos && tokenizer_.IsEndOfGeneration(token)) return End(s, SeqFinish::kStop);
  ++s.generated;
  generated_.fetch_add(1, std::memory_order_relaxed);
  if (metrics_) metrics_->generated_tokens->Increment();
  if (s.matcher.Append(infer::unicode::ToValidUtf8(s.decoder.Push(token)))) {
    s.cut = true;
    s.handle->Push(s.matcher.TakeFinal());
    return End(s, SeqFinish::kStop);
  }
  s.handle->Push(s.matcher.TakeFinal());
  if (s.params.constraint && s.params.constraint->Complete()) return End(s, SeqFinish::kStop);
  if (s.params.max_tokens >= 0 && s.generated >= s.params.max_tokens) return End(s, SeqFinish::kLength);
  // The token is fed at the next step, at the slot's next position.
  if (static_cast<int>(slots_[static_cast<size_t>(s.slot)].tokens.size()) >= ctx_) return End(s, SeqFinish::kLength);
  s.next = token;
}

void LlmEngine::End(Seq& s, SeqFinish finish, absl::Status status) {
  if (s.ended) return;
  s.ended = true;
  // Unless a stop string cut the text, what was held back (a possible start of a stop
  // string, bytes of an unfinished character) is final now.
  if (finish != SeqFinish::kCancelled && finish != SeqFinish::kError && !s.cut) {
    std::string rest = infer::unicode::ToValidUtf8(s.decoder.Flush());
    const bool cut = s.matcher.Append(rest);
    if (!cut) s.matcher.Finish();
    s.handle->Push(s.matcher.TakeFinal());
  }
  SeqResult r;
  r.text = s.matcher.text();
  r.finish = finish;
  r.status = std::move(status);
  r.started = s.slot >= 0;
  r.prompt_tokens = static_cast<int32_t>(s.params.prompt.size());
  r.cached_tokens = s.cached;
  r.completion_tokens = s.generated;
  if (s.slot >= 0) {
    Slot& slot = slots_[static_cast<size_t>(s.slot)];
    slot.seq = nullptr;
    slot.last_used = ++clock_;
    std::lock_guard lock(mu_);
    --active_count_;
  }
  s.handle->Finish(std::move(r));
}

}  // namespace cairn::server
