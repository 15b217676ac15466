// Micro benchmarks of the engine's per-record costs: a chained stateless
// pipeline, a keyed tumbling-window count behind a hash exchange, and the same
// with checkpoints every 100 ms.
#include <filesystem>

#include "benchmark/benchmark.h"
#include "cairn/stream/pipeline.h"

namespace cairn::stream {
namespace {

// Generates (key, value) records with increasing event times, as fast as asked.
class CountingSource final : public Source<std::pair<int64_t, int64_t>> {
 public:
  CountingSource(int64_t n, int64_t keys) : n_(n), keys_(keys) {}
  absl::Status Open(const SourceContext& ctx, std::optional<std::string> restored) override {
    next_ = ctx.subtask;
    step_ = ctx.parallelism;
    if (restored) next_ = std::stoll(*restored);
    return absl::OkStatus();
  }
  absl::StatusOr<PollStatus> Poll(SourceBatch<std::pair<int64_t, int64_t>>& out, size_t max, Millis) override {
    for (size_t i = 0; i < max && next_ < n_; ++i, next_ += step_) {
      out.records.emplace_back((next_ * 0x9E3779B97F4A7C15ULL >> 40) % keys_, next_);
      out.times.push_back(next_ / 100);  // 100 records per millisecond of event time
    }
    return next_ < n_ ? PollStatus::kRecords : PollStatus::kEndOfInput;
  }
  std::string Position() override { return std::to_string(next_); }
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kExactlyOnce; }

 private:
  int64_t n_, keys_, next_ = 0, step_ = 1;
};

template <class T>
class CountSink final : public Sink<T> {
 public:
  explicit CountSink(std::atomic<int64_t>* n) : n_(n) {}
  absl::Status Open(const SinkContext&, std::optional<std::string>) override { return absl::OkStatus(); }
  absl::Status Write(std::span<const T> r, std::span<const EventTime>) override {
    n_->fetch_add(static_cast<int64_t>(r.size()), std::memory_order_relaxed);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t) override { return std::string(); }
  absl::Status Close() override { return absl::OkStatus(); }
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kAtLeastOnce; }

 private:
  std::atomic<int64_t>* n_;
};

using KV = std::pair<int64_t, int64_t>;
constexpr int64_t kRecords = 2'000'000;

void BM_ChainedFilterMap(benchmark::State& state) {
  for (auto _ : state) {
    std::atomic<int64_t> out{0};
    Pipeline p;
    p.AddSource<KV>("gen", [](int) { return std::make_unique<CountingSource>(kRecords, 1000); })
        .Filter("odd", [](const KV& kv) { return kv.second % 2 == 1; })
        .Map("scale", [](const KV& kv) { return kv.second * 3; })
        .AddSink("count", [&](int) { return std::make_unique<CountSink<int64_t>>(&out); });
    if (!p.Run().ok()) state.SkipWithError("run failed");
    benchmark::DoNotOptimize(out.load());
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
}
BENCHMARK(BM_ChainedFilterMap)->Unit(benchmark::kMillisecond)->UseRealTime();

void WindowCount(benchmark::State& state, int parallelism, bool checkpoints) {
  std::string dir = (std::filesystem::temp_directory_path() / "cairn-bench-ckpt").string();
  for (auto _ : state) {
    std::filesystem::remove_all(dir);
    std::atomic<int64_t> out{0};
    PipelineOptions o;
    o.default_parallelism = parallelism;
    if (checkpoints) {
      o.checkpoint_dir = dir;
      o.checkpoint_interval = Millis(100);
    }
    Pipeline p(o);
    p.AddSource<KV>("gen", [](int) { return std::make_unique<CountingSource>(kRecords, 10000); })
        .KeyBy([](const KV& kv) { return kv.first; })
        .Window(Windows::Tumbling(Millis(1000)))
        .Aggregate("count", Count<KV>())
        .results.AddSink("count", [&](int) { return std::make_unique<CountSink<WindowResult<int64_t, int64_t>>>(&out); });
    if (!p.Run().ok()) state.SkipWithError("run failed");
    benchmark::DoNotOptimize(out.load());
  }
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations() * kRecords);
}
void BM_KeyedWindowCount(benchmark::State& state) { WindowCount(state, static_cast<int>(state.range(0)), false); }
BENCHMARK(BM_KeyedWindowCount)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_KeyedWindowCountCheckpointed(benchmark::State& state) { WindowCount(state, 1, true); }
BENCHMARK(BM_KeyedWindowCountCheckpointed)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cairn::stream
