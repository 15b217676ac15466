// Count-Min throughput (items/s) with its memory and accuracy next to it.
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cairn/sketch/count_min.h"
#include "cairn/base/random.h"

namespace cairn::sketch {
namespace {

constexpr size_t kKeys = 1 << 16;  // a power of two: the loops wrap with a mask

std::vector<uint64_t> RandomKeys() {
  SplitMix64 rng(1);
  std::vector<uint64_t> keys(kKeys);
  for (auto& k : keys) k = rng.Next();
  return keys;
}

std::vector<uint64_t> ZipfKeys(size_t n, uint64_t seed) {
  ZipfGenerator zipf(1000000, 1.1, seed);
  std::vector<uint64_t> keys(n);
  for (auto& k : keys) k = zipf.Next();
  return keys;
}

// Mean over-count of the distinct keys of a Zipf(1.1) stream, in units of epsilon * N.
// Cached per shape: Google Benchmark calls a benchmark function several times.
double MeanOvercount(CountMinSketch sketch) {
  static std::map<std::tuple<uint32_t, uint32_t, bool>, double> cache;
  const auto shape = std::make_tuple(sketch.depth(), sketch.width(), sketch.conservative_update());
  if (auto it = cache.find(shape); it != cache.end()) return it->second;
  static const auto stream = ZipfKeys(1 << 20, 77);
  std::unordered_map<uint64_t, uint64_t> truth;
  for (uint64_t k : stream) {
    sketch.Add(k);
    ++truth[k];
  }
  double sum = 0;
  for (const auto& [k, c] : truth) sum += static_cast<double>(sketch.Estimate(k) - c);
  return cache[shape] = sum / static_cast<double>(truth.size()) / (sketch.epsilon() * stream.size());
}

void AddU64(benchmark::State& state, bool conservative) {
  auto sketch = *CountMinSketch::CreateWithShape(static_cast<uint32_t>(state.range(0)),
                                                 static_cast<uint32_t>(state.range(1)),
                                                 conservative);
  const auto keys = RandomKeys();
  size_t i = 0;
  for (auto _ : state) {
    sketch.Add(keys[i++ & (kKeys - 1)]);
  }
  benchmark::DoNotOptimize(sketch.counters().data());
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(sketch.MemoryBytes());
  state.counters["overcount_per_epsN"] = MeanOvercount(
      *CountMinSketch::CreateWithShape(sketch.depth(), sketch.width(), conservative));
}

void BM_CountMinAdd_u64(benchmark::State& state) { AddU64(state, false); }
BENCHMARK(BM_CountMinAdd_u64)->ArgNames({"d", "w"})->Args({4, 2048})->Args({5, 2719})->Args({8, 65536});

void BM_CountMinAdd_u64_conservative(benchmark::State& state) { AddU64(state, true); }
BENCHMARK(BM_CountMinAdd_u64_conservative)->ArgNames({"d", "w"})->Args({4, 2048});

void BM_CountMinAdd_string(benchmark::State& state) {
  auto sketch = *CountMinSketch::CreateWithShape(4, 2048);
  std::vector<std::string> keys;
  SplitMix64 rng(2);
  for (size_t i = 0; i < 4096; ++i) keys.push_back("sensor/press-" + std::to_string(rng.Next() % 100000));
  size_t i = 0;
  for (auto _ : state) {
    sketch.Add(std::string_view(keys[i++ & 4095]));
  }
  benchmark::DoNotOptimize(sketch.counters().data());
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(sketch.MemoryBytes());
}
BENCHMARK(BM_CountMinAdd_string);

void BM_CountMinEstimate(benchmark::State& state) {
  auto sketch = *CountMinSketch::CreateWithShape(4, 2048);
  const auto keys = RandomKeys();
  for (uint64_t k : keys) sketch.Add(k);
  size_t i = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    sum += sketch.Estimate(keys[i++ & (kKeys - 1)]);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(sketch.MemoryBytes());
}
BENCHMARK(BM_CountMinEstimate);

// Baseline: exact counting of the same keys in a hash map.
void BM_CountMinBaseline_ExactMap_u64(benchmark::State& state) {
  absl::flat_hash_map<uint64_t, uint64_t> counts;
  const auto keys = RandomKeys();
  size_t i = 0;
  for (auto _ : state) {
    ++counts[keys[i++ & (kKeys - 1)]];
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(
      counts.capacity() * (sizeof(std::pair<uint64_t, uint64_t>) + 1));
}
BENCHMARK(BM_CountMinBaseline_ExactMap_u64);

void BM_CountMinMerge(benchmark::State& state) {
  auto a = *CountMinSketch::CreateWithShape(4, 2048);
  auto b = *CountMinSketch::CreateWithShape(4, 2048);
  for (uint64_t k : RandomKeys()) b.Add(k);
  for (auto _ : state) {
    benchmark::DoNotOptimize(a.Merge(b));
  }
  state.SetBytesProcessed(state.iterations() * a.counters().size() * sizeof(uint64_t));
}
BENCHMARK(BM_CountMinMerge);

}  // namespace
}  // namespace cairn::sketch
