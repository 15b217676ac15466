// Per-record cost of DriftDetector::Update: a KLL update per value, an
// evaluation every eval_every values of a key and at each window close.
#include <benchmark/benchmark.h>

#include <vector>

#include "cairn/base/random.h"
#include "cairn/detect/drift.h"

namespace cairn::detect {
namespace {

void BM_DriftUpdate(benchmark::State& state) {
  const auto keys = static_cast<uint32_t>(state.range(0));
  const auto d = *DriftDetector::Create({.window_ms = 60'000});
  constexpr size_t kRing = 1 << 16;
  SplitMix64 rng(5);
  std::vector<uint32_t> key(kRing);
  std::vector<double> value(kRing);
  for (size_t i = 0; i < kRing; ++i) {
    key[i] = static_cast<uint32_t>(rng.Next() % keys);
    value[i] = key[i] % 100 + rng.NextDouble();
  }
  std::vector<DriftState> st(keys);
  uint64_t i = 0;
  double sum = 0.0;
  for (auto _ : state) {
    const size_t r = i & (kRing - 1);
    // 100,000 values a second of event time: each key sees 100,000 / keys a second.
    sum += d.Update(st[key[r]], {.value = value[r], .time = static_cast<EventTime>(i / 100)}).score;
    ++i;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  size_t bytes = 0;
  for (const auto& s : st) bytes += s.MemoryBytes();
  state.counters["bytes_per_key"] = static_cast<double>(bytes) / keys;
}
BENCHMARK(BM_DriftUpdate)->ArgName("keys")->Arg(100)->Arg(10'000);

}  // namespace
}  // namespace cairn::detect
