// Throughput of the Nexmark queries on the cairn engine: generated events per
// second of wall time, source included, for a bounded stream of 200,000
// events. Args: query (0-8; 9 = winning bids alone), parallelism.
#include <benchmark/benchmark.h>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "bench/nexmark/queries.h"

namespace cairn::nexmark {
namespace {

constexpr uint64_t kEvents = 200'000;

// Counts the rows and drops them, as Flink nexmark's blackhole sink.
template <class T>
class BlackholeSink final : public stream::Sink<T> {
 public:
  absl::Status Open(const stream::SinkContext&, std::optional<std::string>) override { return absl::OkStatus(); }
  absl::Status Write(std::span<const T> rows, std::span<const EventTime>) override {
    rows_ += rows.size();
    benchmark::DoNotOptimize(rows_);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t) override { return std::string(); }
  absl::Status Close() override { return absl::OkStatus(); }
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kExactlyOnce; }

 private:
  uint64_t rows_ = 0;
};

template <class T>
absl::Status Discard(absl::StatusOr<stream::Stream<T>> out) {
  if (!out.ok()) return out.status();
  out->AddSink("blackhole", [](int) { return std::make_unique<BlackholeSink<T>>(); });
  return absl::OkStatus();
}

absl::Status AddQuery(int query, stream::Stream<Event> events) {
  switch (query) {
    case 0:
      return Discard<Event>(AddQ0(events));
    case 1:
      return Discard(AddQ1(events));
    case 2:
      return Discard(AddQ2(events));
    case 3:
      return Discard(AddQ3(events));
    case 4:
      return Discard(AddQ4(events));
    case 5:
      return Discard(AddQ5(events));
    case 6:
      return Discard(AddQ6(events));
    case 7:
      return Discard(AddQ7(events));
    case 8:
      return Discard(AddQ8(events));
    default:
      return Discard<ClosedAuction>(AddWinningBids(events));
  }
}

void BM_Query(benchmark::State& state) {
  const int query = static_cast<int>(state.range(0));
  GeneratorConfig config;
  config.seed = 1;
  config.events = kEvents;
  // Flink nexmark's rate: 10 M events per second of event time, so this run spans 20 ms of event
  // time (one window of the windowed queries; auctions last about 0.2 ms).
  config.rate = 10'000'000;
  for (auto _ : state) {
    stream::PipelineOptions options;
    options.default_parallelism = static_cast<int>(state.range(1));
    stream::Pipeline p(options);
    absl::Status s = AddQuery(query, AddNexmarkSource(p, config));
    if (s.ok()) s = p.Run();
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kEvents));
}
BENCHMARK(BM_Query)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2}})
    ->ArgNames({"q", "parallelism"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace cairn::nexmark
