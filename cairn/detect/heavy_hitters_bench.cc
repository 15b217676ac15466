// Per-record cost of HeavyHitterDetector::UpdateHash on Zipf(1.1) traffic,
// evaluations and window closes included.
#include <benchmark/benchmark.h>

#include <vector>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/detect/heavy_hitters.h"

namespace cairn::detect {
namespace {

void BM_HeavyHitterUpdate(benchmark::State& state) {
  const auto d = *HeavyHitterDetector::Create({.window_ms = 1000, .capacity = static_cast<int>(state.range(0))});
  constexpr size_t kRing = 1 << 16;
  ZipfGenerator zipf(1'000'000, 1.1, 4);
  std::vector<uint64_t> item(kRing);
  for (uint64_t& h : item) h = Hash64(zipf.Next(), 11);
  HeavyHitterState st;
  uint64_t i = 0;
  double sum = 0.0;
  for (auto _ : state) {
    sum += d.UpdateHash(st, item[i & (kRing - 1)], static_cast<EventTime>(i / 100)).score;
    ++i;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(st.MemoryBytes());
}
BENCHMARK(BM_HeavyHitterUpdate)->ArgName("capacity")->Arg(256)->Arg(1024);

}  // namespace
}  // namespace cairn::detect
