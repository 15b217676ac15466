// Per-record cost of CardinalityDetector::UpdateHash with pre-hashed items, for
// a few keys (states in cache) and many (a cache miss per record).
#include <benchmark/benchmark.h>

#include <vector>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/detect/cardinality.h"

namespace cairn::detect {
namespace {

void BM_CardinalityUpdate(benchmark::State& state) {
  const auto keys = static_cast<uint32_t>(state.range(0));
  const auto d = *CardinalityDetector::Create({});
  constexpr size_t kRing = 1 << 16;
  SplitMix64 rng(1);
  std::vector<uint32_t> key(kRing);
  std::vector<uint64_t> item(kRing);
  for (size_t i = 0; i < kRing; ++i) {
    key[i] = static_cast<uint32_t>(rng.Next() % keys);
    item[i] = Hash64(uint64_t{key[i]} * 64 + rng.Next() % 64, 7);  // 64 usual destinations per key
  }
  std::vector<CardinalityState> st(keys);
  uint64_t i = 0;
  double sum = 0.0;
  for (auto _ : state) {
    const size_t r = i & (kRing - 1);
    sum += d.UpdateHash(st[key[r]], item[r], static_cast<EventTime>(i / 100)).score;
    ++i;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  size_t bytes = 0;
  for (const auto& s : st) bytes += s.MemoryBytes();
  state.counters["bytes_per_key"] = static_cast<double>(bytes) / keys;
}
BENCHMARK(BM_CardinalityUpdate)->ArgName("keys")->Arg(1000)->Arg(100'000);

}  // namespace
}  // namespace cairn::detect
