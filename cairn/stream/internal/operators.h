// Typed operator implementations behind pipeline.h. Private to cairn/stream.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cairn/base/hash.h"
#include "cairn/stream/internal/graph.h"
#include "cairn/stream/internal/sealed_file.h"
#include "cairn/stream/internal/timers.h"
#include "spdlog/spdlog.h"

namespace cairn::stream {
template <class T>
class CollectedOutput;
template <class T>
class Collector;
class TimerService;
template <class K, class OUT>
class KeyedContext;
template <class K, class IN, class OUT>
class KeyedProcessFunction;
template <class IN, class ACC, class OUT>
struct AggregateFunction;
struct WindowSpec;
template <class K, class OUT>
struct WindowResult;
}  // namespace cairn::stream

namespace cairn::stream::internal {

// ---- small helpers ------------------------------------------------------------

inline constexpr uint32_t kOperatorMagic = MakeMagic("COPS");

template <class K>
uint64_t KeyHashOf(const K& k) {
  if constexpr (std::is_integral_v<K> || std::is_enum_v<K>) {
    return Hash64(static_cast<uint64_t>(k), 0x5eed);
  } else if constexpr (std::is_convertible_v<const K&, std::string_view>) {
    return Hash64(std::string_view(k), 0x5eed);
  } else {
    return Hash64(std::string_view(EncodeToString(k)), 0x5eed);
  }
}

inline int ChannelOf(uint64_t hash, int channels) {
  return static_cast<int>((static_cast<unsigned __int128>(hash) * static_cast<unsigned>(channels)) >> 64);
}

// Buffers records for one output port and pushes them on in batches.
template <class T>
class OutputBuffer {
 public:
  void Bind(Port* port, size_t batch_size) {
    port_ = port;
    batch_size_ = batch_size;
  }
  void Add(T r, EventTime t) {
    buf_.Add(std::move(r), t);
    if (buf_.size() >= batch_size_) Push();
  }
  void Push() {
    if (buf_.size() == 0) return;
    emitted_ += buf_.size();
    if (port_ == nullptr || port_->targets.empty()) {
      buf_.clear();
      return;
    }
    for (size_t i = 0; i + 1 < port_->targets.size(); ++i) {
      Batch<T> copy;
      copy.records = buf_.records;
      copy.times = buf_.times;
      port_->targets[i]->PushBatch(copy);
    }
    port_->targets.back()->PushBatch(buf_);
    buf_.clear();
  }
  // Hands a whole batch on without copying records into the buffer.
  void PushWhole(Batch<T>& batch) {
    Push();
    if (batch.size() == 0) return;
    buf_.records.swap(batch.records);
    buf_.times.swap(batch.times);
    Push();
  }
  bool connected() const { return port_ != nullptr && !port_->targets.empty(); }
  uint64_t emitted() const { return emitted_; }

 private:
  Port* port_ = nullptr;
  size_t batch_size_ = 1024;
  Batch<T> buf_;
  uint64_t emitted_ = 0;
};


// ---- nodes and edges --------------------------------------------------------

inline Node MakeOperatorNode(std::string name, int parallelism, int ports,
                             std::function<std::unique_ptr<Operator>()> make) {
  Node n;
  n.name = std::move(name);
  n.parallelism = parallelism;
  n.ports = ports;
  n.make_operator = std::move(make);
  return n;
}

template <class T>
class RoundRobinPartitioner final : public Partitioner {
 public:
  void Split(BatchBase& in_base, std::vector<std::unique_ptr<BatchBase>>& out) override {
    auto& in = static_cast<Batch<T>&>(in_base);
    int n = static_cast<int>(out.size());
    for (size_t i = 0; i < in.records.size(); ++i) {
      static_cast<Batch<T>&>(*out[next_]).Add(std::move(in.records[i]), in.times[i]);
      if (++next_ == n) next_ = 0;
    }
    in.clear();
  }
  std::unique_ptr<BatchBase> NewBatch() const override { return std::make_unique<Batch<T>>(); }

 private:
  int next_ = 0;
};

template <class K, class T>
class HashPartitioner final : public Partitioner {
 public:
  explicit HashPartitioner(std::function<K(const T&)> key_fn) : key_fn_(std::move(key_fn)) {}
  void Split(BatchBase& in_base, std::vector<std::unique_ptr<BatchBase>>& out) override {
    auto& in = static_cast<Batch<T>&>(in_base);
    int n = static_cast<int>(out.size());
    for (size_t i = 0; i < in.records.size(); ++i) {
      int c = n == 1 ? 0 : ChannelOf(KeyHashOf(key_fn_(in.records[i])), n);
      static_cast<Batch<T>&>(*out[c]).Add(std::move(in.records[i]), in.times[i]);
    }
    in.clear();
  }
  std::unique_ptr<BatchBase> NewBatch() const override { return std::make_unique<Batch<T>>(); }

 private:
  std::function<K(const T&)> key_fn_;
};

template <class T>
Edge ForwardEdge(int from, int port, int to) {
  Edge e;
  e.from = from;
  e.port = port;
  e.to = to;
  e.kind = PartitionKind::kForward;
  e.partitioner = [](int) -> std::unique_ptr<Partitioner> { return std::make_unique<RoundRobinPartitioner<T>>(); };
  return e;
}

template <class T>
Edge RebalanceEdge(int from, int port, int to) {
  Edge e = ForwardEdge<T>(from, port, to);
  e.kind = PartitionKind::kRebalance;
  return e;
}

template <class K, class T>
Edge HashEdge(int from, int port, int to, std::function<K(const T&)> key_fn) {
  Edge e;
  e.from = from;
  e.port = port;
  e.to = to;
  e.kind = PartitionKind::kHash;
  e.partitioner = [key_fn](int) -> std::unique_ptr<Partitioner> {
    return std::make_unique<HashPartitioner<K, T>>(key_fn);
  };
  return e;
}

// ---- stateless operators ------------------------------------------------------

template <class IN, class OUT>
class UnaryOperator : public Operator {
 public:
  absl::Status Open(OperatorContext& ctx, std::optional<std::string>) override {
    out_.Bind(ctx.outputs.empty() ? nullptr : ctx.outputs[0], ctx.batch_size);
    return absl::OkStatus();
  }

 protected:
  OutputBuffer<OUT> out_;
};

template <class IN, class OUT, class F>
class MapOperator final : public UnaryOperator<IN, OUT> {
 public:
  explicit MapOperator(F f) : f_(std::move(f)) {}
  void ProcessBatch(BatchBase& base) override {
    auto& in = static_cast<Batch<IN>&>(base);
    if constexpr (std::is_same_v<IN, OUT>) {
      // In place: the batch is handed on without copying.
      for (auto& r : in.records) r = f_(r);
      this->out_.PushWhole(in);
    } else {
      for (size_t i = 0; i < in.records.size(); ++i) this->out_.Add(f_(in.records[i]), in.times[i]);
      this->out_.Push();
    }
  }

 private:
  F f_;
};

template <class T, class F>
class FilterOperator final : public UnaryOperator<T, T> {
 public:
  explicit FilterOperator(F f) : f_(std::move(f)) {}
  void ProcessBatch(BatchBase& base) override {
    auto& in = static_cast<Batch<T>&>(base);
    size_t kept = 0;
    for (size_t i = 0; i < in.records.size(); ++i) {
      if (!f_(in.records[i])) continue;
      if (kept != i) {
        in.records[kept] = std::move(in.records[i]);
        in.times[kept] = in.times[i];
      }
      ++kept;
    }
    in.records.resize(kept);
    in.times.resize(kept);
    this->out_.PushWhole(in);
  }

 private:
  F f_;
};

template <class IN, class OUT, class F>
class FlatMapOperator final : public UnaryOperator<IN, OUT>, public Collector<OUT> {
 public:
  explicit FlatMapOperator(F f) : f_(std::move(f)) {}
  void ProcessBatch(BatchBase& base) override {
    auto& in = static_cast<Batch<IN>&>(base);
    for (size_t i = 0; i < in.records.size(); ++i) {
      time_ = in.times[i];
      f_(in.records[i], time_, static_cast<Collector<OUT>&>(*this));
    }
    this->out_.Push();
  }
  void Emit(OUT v) override { this->out_.Add(std::move(v), time_); }
  void EmitAt(OUT v, EventTime t) override { this->out_.Add(std::move(v), t); }

 private:
  F f_;
  EventTime time_ = 0;
};

// ---- sinks and sources ------------------------------------------------------

inline constexpr uint32_t kSinkMagic = MakeMagic("CSNK");

template <class T>
class SinkOperator final : public Operator {
 public:
  explicit SinkOperator(std::function<std::unique_ptr<Sink<T>>(int)> factory) : factory_(std::move(factory)) {}
  absl::Status Open(OperatorContext& ctx, std::optional<std::string> restore_dir) override {
    sink_ = factory_(ctx.subtask);
    if (!sink_) return absl::InvalidArgumentError(fmt::format("sink '{}' could not be created", ctx.name));
    std::optional<std::string> restored;
    if (restore_dir) {
      CAIRN_ASSIGN_OR_RETURN(std::string s, ReadSealedFile(*restore_dir + "/sink.bin", kSinkMagic, "sink state"));
      restored = std::move(s);
    }
    SinkContext sc{ctx.name, ctx.subtask, ctx.parallelism, ctx.metrics, ctx.dead_letter};
    return sink_->Open(sc, std::move(restored));
  }
  void ProcessBatch(BatchBase& base) override {
    auto& in = static_cast<Batch<T>&>(base);
    if (!status_.ok()) return;
    status_ = sink_->Write(std::span<const T>(in.records), std::span<const EventTime>(in.times));
  }
  absl::Status Snapshot(int64_t id, const std::string& dir) override {
    CAIRN_RETURN_IF_ERROR(status_);
    CAIRN_ASSIGN_OR_RETURN(std::string state, sink_->PrepareCheckpoint(id));
    return WriteSealedFile(dir + "/sink.bin", kSinkMagic, state);
  }
  void NotifyCheckpointComplete(int64_t id) override {
    absl::Status s = sink_->CommitCheckpoint(id);
    if (!s.ok() && status_.ok()) status_ = s;
  }
  absl::Status Finish() override {
    CAIRN_RETURN_IF_ERROR(status_);
    return sink_->Close();
  }
  absl::Status status() const override { return status_; }
  std::optional<DeliveryGuarantee> guarantee() const override { return sink_->guarantee(); }

 private:
  std::function<std::unique_ptr<Sink<T>>(int)> factory_;
  std::unique_ptr<Sink<T>> sink_;
  absl::Status status_;
};

template <class T>
class CollectSink final : public Sink<T> {
 public:
  explicit CollectSink(std::shared_ptr<CollectedOutput<T>> out) : out_(std::move(out)) {}
  absl::Status Open(const SinkContext&, std::optional<std::string>) override { return absl::OkStatus(); }
  absl::Status Write(std::span<const T> records, std::span<const EventTime> times) override {
    out_->Add(records, times);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t) override { return std::string(); }
  absl::Status Close() override { return absl::OkStatus(); }
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kAtLeastOnce; }

 private:
  std::shared_ptr<CollectedOutput<T>> out_;
};

template <class T>
class TypedSourceDriver final : public SourceDriver {
 public:
  TypedSourceDriver(std::function<std::unique_ptr<Source<T>>(int)> factory, std::function<EventTime(const T&)> ts)
      : factory_(std::move(factory)), ts_(std::move(ts)) {}

  absl::Status Open(OperatorContext& ctx, std::optional<std::string> restored) override {
    source_ = factory_(ctx.subtask);
    if (!source_) return absl::InvalidArgumentError(fmt::format("source '{}' could not be created", ctx.name));
    clock_ = ctx.clock;
    out_.Bind(ctx.outputs.empty() ? nullptr : ctx.outputs[0], ctx.batch_size);
    SourceContext sc{ctx.name, ctx.subtask, ctx.parallelism, ctx.metrics, ctx.dead_letter};
    return source_->Open(sc, std::move(restored));
  }
  absl::StatusOr<PollStatus> PollOnce(size_t max_records, std::chrono::milliseconds max_wait, EventTime* max_time,
                                      size_t* records) override {
    polled_.clear();
    CAIRN_ASSIGN_OR_RETURN(PollStatus st, source_->Poll(polled_, max_records, max_wait));
    size_t n = polled_.records.size();
    *records = n;
    *max_time = kMinTime;
    if (n == 0) return st;
    batch_.records.swap(polled_.records);
    if (ts_) {
      batch_.times.resize(n);
      for (size_t i = 0; i < n; ++i) batch_.times[i] = ts_(batch_.records[i]);
    } else if (polled_.times.size() == n) {
      batch_.times.swap(polled_.times);
    } else {
      batch_.times.assign(n, clock_->NowNanos() / 1'000'000);
    }
    for (EventTime t : batch_.times) *max_time = std::max(*max_time, t);
    out_.PushWhole(batch_);
    batch_.clear();
    return st;
  }
  std::string Position() override { return source_->Position(); }
  void NotifyCheckpointComplete(int64_t id) override { source_->NotifyCheckpointComplete(id); }
  void Close() override {
    if (source_) source_->Close();
  }
  DeliveryGuarantee guarantee() const override { return source_->guarantee(); }

 private:
  std::function<std::unique_ptr<Source<T>>(int)> factory_;
  std::function<EventTime(const T&)> ts_;
  std::unique_ptr<Source<T>> source_;
  const Clock* clock_ = nullptr;
  SourceBatch<T> polled_;
  Batch<T> batch_;
  OutputBuffer<T> out_;
};

}  // namespace cairn::stream::internal

#include "cairn/stream/internal/keyed_operators.h"  // IWYU pragma: export
