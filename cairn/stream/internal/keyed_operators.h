// Keyed operators: process functions, rolling reduce, windows. Private to
// cairn/stream; included by operators.h.
#pragma once

#include <atomic>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cairn::stream::internal {

// State, timers and watermark shared by every keyed operator.
template <class K, class IN>
class KeyedOperatorBase : public Operator, public TimerService {
 public:
  explicit KeyedOperatorBase(std::function<K(const IN&)> key_fn) : key_fn_(std::move(key_fn)) {}

  void OnWatermark(EventTime wm) override {
    watermark_ = wm;
    Timer t;
    while (event_timers_.PopDue(wm, &t)) FireOne(t, TimeDomain::kEventTime);
    FlushOutputs();
  }
  void OnProcessingTime(int64_t now_ms) override {
    Timer t;
    bool any = false;
    while (processing_timers_.PopDue(now_ms, &t)) {
      FireOne(t, TimeDomain::kProcessingTime);
      any = true;
    }
    if (any) FlushOutputs();
  }
  std::optional<int64_t> NextProcessingTimer() const override {
    if (processing_timers_.empty()) return std::nullopt;
    return processing_timers_.Earliest();
  }
  absl::Status Snapshot(int64_t, const std::string& dir) override {
    CAIRN_RETURN_IF_ERROR(store_->Snapshot(dir));
    ByteWriter w;
    w.I64(watermark_);
    event_timers_.Snapshot(w);
    processing_timers_.Snapshot(w);
    return WriteSealedFile(dir + "/operator.bin", kOperatorMagic, w.data());
  }
  uint64_t StateBytes() const override {
    return (store_ ? store_->ApproximateBytes() : 0) + (event_timers_.size() + processing_timers_.size()) * 48;
  }
  uint64_t LateRecords() const override { return late_.load(std::memory_order_relaxed); }

  // TimerService, for the current key and namespace.
  EventTime CurrentWatermark() const override { return watermark_; }
  int64_t CurrentProcessingTime() const override { return clock_->NowNanos() / 1'000'000; }
  void RegisterEventTimeTimer(EventTime t) override {
    event_timers_.Register(t, store_->current().key, store_->current().ns);
  }
  void DeleteEventTimeTimer(EventTime t) override {
    event_timers_.Delete(t, store_->current().key, store_->current().ns);
  }
  void RegisterProcessingTimeTimer(int64_t t) override {
    processing_timers_.Register(t, store_->current().key, store_->current().ns);
  }
  void DeleteProcessingTimeTimer(int64_t t) override {
    processing_timers_.Delete(t, store_->current().key, store_->current().ns);
  }

 protected:
  absl::Status OpenStore(OperatorContext& ctx) {
    clock_ = ctx.clock;
    name_ = ctx.name;
    CAIRN_ASSIGN_OR_RETURN(store_, KeyedStateStore::Create(ctx.state, ctx.clock));
    return absl::OkStatus();
  }
  // Call after every state handle exists.
  absl::Status RestoreStore(const std::optional<std::string>& dir) {
    if (!dir) return absl::OkStatus();
    CAIRN_RETURN_IF_ERROR(store_->Restore(*dir));
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, ReadSealedFile(*dir + "/operator.bin", kOperatorMagic, "operator state"));
    ByteReader r(bytes, *dir + "/operator.bin");
    watermark_ = r.I64();
    if (!event_timers_.Restore(r) || !processing_timers_.Restore(r)) return r.status();
    return r.Finish();
  }
  void SetKey(const K& k) {
    key_ = k;
    store_->SetCurrentKey(EncodeToString(k));
    store_->SetCurrentNamespace(0);
  }
  void FireOne(const Timer& t, TimeDomain domain) {
    ByteReader r(t.key, "timer key");
    if (!Serde<K>::Read(r, &key_)) return;  // cannot happen: we wrote it
    store_->SetCurrentKey(t.key);
    store_->SetCurrentNamespace(t.ns);
    FireTimer(t.time, t.ns, domain);
  }
  void CountLate(EventTime t) {
    uint64_t n = late_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n <= 3 || n % 10000 == 0)
      spdlog::warn("operator '{}': record at event time {} is later than the allowed lateness (watermark {}); "
                   "{} such records so far (connect the late output to keep them)",
                   name_, t, watermark_, n);
  }

  virtual void FireTimer(int64_t time, int64_t ns, TimeDomain domain) = 0;
  virtual void FlushOutputs() = 0;

  std::function<K(const IN&)> key_fn_;
  std::unique_ptr<KeyedStateStore> store_;
  TimerQueue event_timers_, processing_timers_;
  EventTime watermark_ = kMinTime;
  K key_{};
  const Clock* clock_ = nullptr;
  std::string name_;
  std::atomic<uint64_t> late_{0};
};

template <class K, class IN, class OUT>
class KeyedProcessOperator final : public KeyedOperatorBase<K, IN> {
 public:
  KeyedProcessOperator(std::function<K(const IN&)> key_fn, std::unique_ptr<KeyedProcessFunction<K, IN, OUT>> fn)
      : KeyedOperatorBase<K, IN>(std::move(key_fn)), fn_(std::move(fn)), ctx_(this) {}

  absl::Status Open(OperatorContext& ctx, std::optional<std::string> restore_dir) override {
    out_.Bind(ctx.outputs.empty() ? nullptr : ctx.outputs[0], ctx.batch_size);
    CAIRN_RETURN_IF_ERROR(this->OpenStore(ctx));
    fn_->Open(ctx_);
    return this->RestoreStore(restore_dir);
  }
  void ProcessBatch(BatchBase& base) override {
    auto& in = static_cast<Batch<IN>&>(base);
    for (size_t i = 0; i < in.records.size(); ++i) {
      this->SetKey(this->key_fn_(in.records[i]));
      time_ = in.times[i];
      fn_->ProcessElement(in.records[i], ctx_);
    }
    out_.Push();
  }

 private:
  class Context final : public KeyedContext<K, OUT> {
   public:
    explicit Context(KeyedProcessOperator* op) : op_(op) {}
    void Emit(OUT v) override { op_->out_.Add(std::move(v), op_->time_); }
    void EmitAt(OUT v, EventTime t) override { op_->out_.Add(std::move(v), t); }
    const K& key() const override { return op_->key_; }
    EventTime timestamp() const override { return op_->time_; }
    TimerService& timers() override { return *op_; }
    KeyedStateStore& state() override { return *op_->store_; }

   private:
    KeyedProcessOperator* op_;
  };

  void FireTimer(int64_t time, int64_t, TimeDomain domain) override {
    time_ = domain == TimeDomain::kEventTime ? time : this->watermark_;
    fn_->OnTimer(time, domain, ctx_);
  }
  void FlushOutputs() override { out_.Push(); }

  std::unique_ptr<KeyedProcessFunction<K, IN, OUT>> fn_;
  Context ctx_;
  OutputBuffer<OUT> out_;
  EventTime time_ = 0;
};

template <class K, class T, class F>
class ReduceFunction final : public KeyedProcessFunction<K, T, T> {
 public:
  explicit ReduceFunction(F f) : f_(std::move(f)) {}
  void Open(KeyedContext<K, T>& ctx) override { state_ = ctx.state().template GetValueState<T>("reduce"); }
  void ProcessElement(const T& value, KeyedContext<K, T>& ctx) override {
    std::optional<T> cur = state_->Value();
    T next = cur ? f_(*cur, value) : value;
    state_->Update(next);
    ctx.Emit(std::move(next));
  }

 private:
  F f_;
  ValueState<T>* state_ = nullptr;
};

// One session of a key: [start, end) and its accumulator.
template <class ACC>
struct SessionWindow {
  int64_t start = 0;
  int64_t end = 0;
  ACC acc{};
  void Encode(ByteWriter& w) const {
    w.I64(start);
    w.I64(end);
    Serde<ACC>::Write(w, acc);
  }
  static bool Decode(ByteReader& r, SessionWindow* s) {
    s->start = r.I64();
    s->end = r.I64();
    return Serde<ACC>::Read(r, &s->acc);
  }
};

// Tumbling, sliding and session windows with incremental aggregation.
// Tumbling/sliding state: one accumulator per (key, window end). Session state:
// the list of open sessions of a key. A window fires when the watermark reaches
// end - 1; with allowed lateness L its state lives until end - 1 + L and each
// later record re-fires it with the updated result.
template <class K, class IN, class ACC, class OUT>
class WindowOperator final : public KeyedOperatorBase<K, IN> {
 public:
  WindowOperator(std::function<K(const IN&)> key_fn, AggregateFunction<IN, ACC, OUT> fn, WindowSpec spec)
      : KeyedOperatorBase<K, IN>(std::move(key_fn)), fn_(std::move(fn)), spec_(spec) {}

  absl::Status Open(OperatorContext& ctx, std::optional<std::string> restore_dir) override {
    if (spec_.kind == WindowSpec::Kind::kSession ? spec_.gap_ms <= 0 : (spec_.size_ms <= 0 || spec_.slide_ms <= 0))
      return absl::InvalidArgumentError(fmt::format("window '{}': sizes, slides and gaps must be positive", ctx.name));
    if (spec_.kind == WindowSpec::Kind::kSession && !fn_.merge)
      return absl::InvalidArgumentError(fmt::format("window '{}': session windows need a merge function", ctx.name));
    out_.Bind(ctx.outputs.size() > 0 ? ctx.outputs[0] : nullptr, ctx.batch_size);
    late_out_.Bind(ctx.outputs.size() > 1 ? ctx.outputs[1] : nullptr, ctx.batch_size);
    CAIRN_RETURN_IF_ERROR(this->OpenStore(ctx));
    if (spec_.kind == WindowSpec::Kind::kSession)
      sessions_ = this->store_->template GetValueState<std::vector<SessionWindow<ACC>>>("window-sessions");
    else
      acc_ = this->store_->template GetValueState<ACC>("window-acc");
    return this->RestoreStore(restore_dir);
  }

  void ProcessBatch(BatchBase& base) override {
    auto& in = static_cast<Batch<IN>&>(base);
    for (size_t i = 0; i < in.records.size(); ++i) {
      EventTime t = in.times[i];
      this->SetKey(this->key_fn_(in.records[i]));
      bool placed = spec_.kind == WindowSpec::Kind::kSession ? AddToSession(in.records[i], t)
                                                             : AddToWindows(in.records[i], t);
      if (!placed) {
        if (late_out_.connected())
          late_out_.Add(in.records[i], t);
        else
          this->CountLate(t);
        if (late_out_.connected()) this->late_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    FlushOutputs();
  }

 private:
  bool Expired(int64_t end) const {
    // A window's state is gone once the watermark passed end - 1 + lateness.
    return this->watermark_ != kMinTime && end - 1 + spec_.allowed_lateness_ms <= this->watermark_;
  }
  bool Fired(int64_t end) const { return this->watermark_ != kMinTime && end - 1 <= this->watermark_; }

  bool AddToWindows(const IN& rec, EventTime t) {
    int64_t rem = (t - spec_.offset_ms) % spec_.slide_ms;
    if (rem < 0) rem += spec_.slide_ms;
    int64_t last_start = t - rem;
    bool placed = false;
    for (int64_t start = last_start; start > t - spec_.size_ms; start -= spec_.slide_ms) {
      int64_t end = start + spec_.size_ms;
      if (Expired(end)) continue;
      placed = true;
      this->store_->SetCurrentNamespace(end);
      if (ACC* live = acc_->Mutable()) {  // in-memory state: update in place
        fn_.add(*live, rec);
        if (Fired(end)) Emit(start, end, *live);  // late but within the allowed lateness: an updated result
        continue;
      }
      std::optional<ACC> cur = acc_->Value();
      ACC acc = cur ? std::move(*cur) : fn_.create();
      fn_.add(acc, rec);
      if (Fired(end)) {
        Emit(start, end, acc);
      } else if (!cur) {
        this->RegisterEventTimeTimer(end - 1);
      }
      if (!cur && spec_.allowed_lateness_ms > 0) this->RegisterEventTimeTimer(end - 1 + spec_.allowed_lateness_ms);
      acc_->Update(std::move(acc));
    }
    this->store_->SetCurrentNamespace(0);
    return placed;
  }

  bool AddToSession(const IN& rec, EventTime t) {
    int64_t start = t, end = t + spec_.gap_ms;
    if (Expired(end)) return false;
    std::vector<SessionWindow<ACC>> sessions = sessions_->Value().value_or(std::vector<SessionWindow<ACC>>{});
    SessionWindow<ACC> merged{start, end, fn_.create()};
    fn_.add(merged.acc, rec);
    std::vector<SessionWindow<ACC>> kept;
    for (auto& s : sessions) {
      if (s.start <= merged.end && s.end >= merged.start) {
        merged.start = std::min(merged.start, s.start);
        merged.end = std::max(merged.end, s.end);
        fn_.merge(merged.acc, s.acc);
        DeleteSessionTimers(s.end);
      } else {
        kept.push_back(std::move(s));
      }
    }
    RegisterSessionTimers(merged.end);
    if (Fired(merged.end)) Emit(merged.start, merged.end, merged.acc);
    kept.push_back(std::move(merged));
    sessions_->Update(std::move(kept));
    return true;
  }
  void RegisterSessionTimers(int64_t end) {
    this->store_->SetCurrentNamespace(end);
    if (!Fired(end)) this->RegisterEventTimeTimer(end - 1);
    if (spec_.allowed_lateness_ms > 0) this->RegisterEventTimeTimer(end - 1 + spec_.allowed_lateness_ms);
    this->store_->SetCurrentNamespace(0);
  }
  void DeleteSessionTimers(int64_t end) {
    this->store_->SetCurrentNamespace(end);
    this->DeleteEventTimeTimer(end - 1);
    if (spec_.allowed_lateness_ms > 0) this->DeleteEventTimeTimer(end - 1 + spec_.allowed_lateness_ms);
    this->store_->SetCurrentNamespace(0);
  }

  void FireTimer(int64_t time, int64_t ns, TimeDomain) override {
    int64_t end = ns;
    bool fire = time == end - 1;
    bool cleanup = time == end - 1 + spec_.allowed_lateness_ms;  // == fire when there is no lateness
    if (spec_.kind == WindowSpec::Kind::kSession) {
      this->store_->SetCurrentNamespace(0);
      std::optional<std::vector<SessionWindow<ACC>>> sessions = sessions_->Value();
      if (!sessions) return;
      for (size_t i = 0; i < sessions->size(); ++i) {
        auto& s = (*sessions)[i];
        if (s.end != end) continue;
        if (fire) Emit(s.start, s.end, s.acc);
        if (cleanup) {
          sessions->erase(sessions->begin() + static_cast<std::ptrdiff_t>(i));
          if (sessions->empty())
            sessions_->Clear();
          else
            sessions_->Update(std::move(*sessions));
        }
        return;
      }
      return;
    }
    std::optional<ACC> acc = acc_->Value();
    if (!acc) return;
    if (fire) Emit(end - spec_.size_ms, end, *acc);
    if (cleanup) acc_->Clear();
  }

  void Emit(int64_t start, int64_t end, const ACC& acc) {
    out_.Add(WindowResult<K, OUT>{this->key_, start, end, fn_.result(acc)}, end - 1);
  }
  void FlushOutputs() override {
    out_.Push();
    late_out_.Push();
  }

  AggregateFunction<IN, ACC, OUT> fn_;
  WindowSpec spec_;
  ValueState<ACC>* acc_ = nullptr;
  ValueState<std::vector<SessionWindow<ACC>>>* sessions_ = nullptr;
  OutputBuffer<WindowResult<K, OUT>> out_;
  OutputBuffer<IN> late_out_;
};

}  // namespace cairn::stream::internal
