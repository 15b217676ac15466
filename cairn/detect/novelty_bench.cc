// Per-record cost of NoveltyDetector::UpdateHash on a Zipf stream (mostly known
// items), with the filter in cache (100 K items) and beyond it (10 M).
#include <benchmark/benchmark.h>

#include <vector>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/detect/novelty.h"

namespace cairn::detect {
namespace {

void BM_NoveltyUpdate(benchmark::State& state) {
  const auto expected = static_cast<uint64_t>(state.range(0));
  const auto d = *NoveltyDetector::Create({.expected_items = expected});
  constexpr size_t kRing = 1 << 16;
  ZipfGenerator zipf(expected, 1.1, 2);
  std::vector<uint64_t> item(kRing);
  for (uint64_t& h : item) h = d.HashItem(std::to_string(zipf.Next()));
  NoveltyState st;
  uint64_t i = 0;
  double sum = 0.0;
  for (auto _ : state) {
    sum += d.UpdateHash(st, item[i & (kRing - 1)]).score;
    ++i;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(st.MemoryBytes());
}
BENCHMARK(BM_NoveltyUpdate)->ArgName("items")->Arg(100'000)->Arg(10'000'000);

// The same with the item hashed inside the call (Update with a string).
void BM_NoveltyUpdateString(benchmark::State& state) {
  const auto d = *NoveltyDetector::Create({.expected_items = 100'000});
  constexpr size_t kRing = 1 << 14;
  ZipfGenerator zipf(100'000, 1.1, 3);
  std::vector<std::string> item(kRing);
  for (auto& s : item) s = "device-" + std::to_string(zipf.Next());
  NoveltyState st;
  uint64_t i = 0;
  double sum = 0.0;
  for (auto _ : state) {
    sum += d.Update(st, {.item = item[i & (kRing - 1)]}).score;
    ++i;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NoveltyUpdateString);

}  // namespace
}  // namespace cairn::detect
