// Speed of the Nexmark generator on one core (goal: >= 20 M events/s for
// Next() into a reused event), of batch fills into fresh events (what the
// source does for the engine), and of the source's Poll.
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/nexmark/generator.h"
#include "bench/nexmark/source.h"

namespace cairn::nexmark {
namespace {

GeneratorConfig BenchConfig(int64_t out_of_order_ms, uint32_t bid_bytes) {
  GeneratorConfig config;
  config.seed = 42;
  config.rate = 10'000'000;
  config.max_out_of_order_ms = out_of_order_ms;
  config.avg_bid_bytes = bid_bytes;
  return config;
}

// Args: max out-of-order ms, average bid size (0 = no extra).
void BM_GeneratorNext(benchmark::State& state) {
  Generator gen = *Generator::Create(BenchConfig(state.range(0), static_cast<uint32_t>(state.range(1))));
  Event event;
  int64_t bytes = 0;
  for (auto _ : state) {
    gen.Next(&event);
    benchmark::DoNotOptimize(event);
    if (event.is_bid()) bytes += static_cast<int64_t>(event.bid().url.size());
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GeneratorNext)->Args({0, 0})->Args({100, 0})->Args({0, 100});

// Batches of 1024 into a vector that is cleared between batches, as the engine
// clears a SourceBatch: every long string is allocated again.
void BM_GeneratorFreshBatch(benchmark::State& state) {
  Generator gen = *Generator::Create(BenchConfig(0, 0));
  std::vector<Event> batch;
  for (auto _ : state) {
    batch.clear();
    gen.NextBatch(&batch, 1024);
    benchmark::DoNotOptimize(batch.data());
  }
  state.SetItemsProcessed(state.iterations() * 1024);
}
BENCHMARK(BM_GeneratorFreshBatch);

// The parallel split: subtask 3 of 8 (stride 8) costs the same per event.
void BM_GeneratorSubtask(benchmark::State& state) {
  Generator gen = *Generator::Create(BenchConfig(0, 0), 3, 8);
  Event event;
  for (auto _ : state) {
    gen.Next(&event);
    benchmark::DoNotOptimize(event);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GeneratorSubtask);

void BM_SourcePoll(benchmark::State& state) {
  NexmarkSource source(BenchConfig(0, 0));
  stream::SourceContext ctx;
  ctx.name = "nexmark";
  if (!source.Open(ctx, std::nullopt).ok()) {
    state.SkipWithError("open failed");
    return;
  }
  stream::SourceBatch<Event> batch;
  for (auto _ : state) {
    batch.clear();
    auto status = source.Poll(batch, 1024, std::chrono::milliseconds(0));
    benchmark::DoNotOptimize(status);
  }
  state.SetItemsProcessed(state.iterations() * 1024);
}
BENCHMARK(BM_SourcePoll);

}  // namespace
}  // namespace cairn::nexmark
