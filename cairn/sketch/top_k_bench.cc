// TopK (SpaceSaving) throughput (items/s) with memory and top-100 recall next to it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cairn/base/hash.h"
#include "cairn/sketch/internal/zipf.h"
#include "cairn/sketch/top_k.h"

namespace cairn::sketch {
namespace {

constexpr size_t kStream = 1 << 20;  // a power of two: the loops wrap with a mask

// Zipf(1.1) over a million ranks, scrambled into 64-bit keys.
const std::vector<uint64_t>& ZipfKeys() {
  static const std::vector<uint64_t> keys = [] {
    internal::ZipfGenerator zipf(1000000, 1.1, 1);
    std::vector<uint64_t> v(kStream);
    for (auto& k : v) k = Mix64(zipf.Next());
    return v;
  }();
  return keys;
}

// Fraction of the true top-100 of one pass over the stream found in the sketch's
// top-100 (ties at the 100th count included).
template <typename Key, typename Conv>
double Recall100(const TopK<Key>& sketch, Conv key_of) {
  std::unordered_map<uint64_t, uint64_t> truth;
  for (uint64_t k : ZipfKeys()) ++truth[k];
  std::vector<uint64_t> counts;
  for (const auto& [k, c] : truth) counts.push_back(c);
  std::nth_element(counts.begin(), counts.begin() + 99, counts.end(), std::greater<>());
  const uint64_t kth = counts[99];
  std::unordered_map<Key, uint64_t> by_key;
  for (const auto& [k, c] : truth) by_key[key_of(k)] = c;
  size_t hits = 0;
  for (const auto& item : sketch.Top(100)) hits += by_key[item.key] >= kth;
  return hits / 100.0;
}

void BM_TopKAdd_Zipf11_u64(benchmark::State& state) {
  auto sketch = *TopK<uint64_t>::Create(static_cast<size_t>(state.range(0)));
  const auto& keys = ZipfKeys();
  size_t i = 0;
  for (auto _ : state) {
    sketch.Add(keys[i++ & (kStream - 1)]);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(sketch.MemoryBytes());
  auto one_pass = *TopK<uint64_t>::Create(sketch.capacity());
  for (uint64_t k : keys) one_pass.Add(k);
  state.counters["recall@100"] = Recall100(one_pass, [](uint64_t k) { return k; });
}
BENCHMARK(BM_TopKAdd_Zipf11_u64)->ArgName("capacity")->Arg(1000)->Arg(10000)->Arg(100000);

void BM_TopKAdd_string(benchmark::State& state) {
  auto sketch = *TopK<std::string>::Create(static_cast<size_t>(state.range(0)));
  const auto& ranks = ZipfKeys();
  std::vector<std::string> keys;
  keys.reserve(kStream);
  for (uint64_t k : ranks) keys.push_back("sensor/" + std::to_string(k % 100000000));
  size_t i = 0;
  for (auto _ : state) {
    sketch.Add(std::string_view(keys[i++ & (kStream - 1)]));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(sketch.MemoryBytes());
  auto one_pass = *TopK<std::string>::Create(sketch.capacity());
  for (const auto& k : keys) one_pass.Add(std::string_view(k));
  state.counters["recall@100"] = Recall100(
      one_pass, [](uint64_t k) { return "sensor/" + std::to_string(k % 100000000); });
}
BENCHMARK(BM_TopKAdd_string)->ArgName("capacity")->Arg(1000)->Arg(10000);

// Baseline: exact counting of the same stream in a hash map (memory grows with the
// number of distinct keys; recall is 1 by construction).
void BM_TopKBaseline_ExactMap_Zipf11_u64(benchmark::State& state) {
  absl::flat_hash_map<uint64_t, uint64_t> counts;
  const auto& keys = ZipfKeys();
  size_t i = 0;
  for (auto _ : state) {
    ++counts[keys[i++ & (kStream - 1)]];
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(
      counts.capacity() * (sizeof(std::pair<uint64_t, uint64_t>) + 1));
}
BENCHMARK(BM_TopKBaseline_ExactMap_Zipf11_u64);

void BM_TopKMerge(benchmark::State& state) {
  const auto& keys = ZipfKeys();
  auto a = *TopK<uint64_t>::Create(1000);
  auto b = *TopK<uint64_t>::Create(1000);
  for (size_t i = 0; i < kStream / 2; ++i) a.Add(keys[i]);
  for (size_t i = kStream / 2; i < kStream; ++i) b.Add(keys[i]);
  for (auto _ : state) {
    auto c = a;
    benchmark::DoNotOptimize(c.Merge(b));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopKMerge);

}  // namespace
}  // namespace cairn::sketch
