// TopK (SpaceSaving) throughput (items/s) with memory and top-100 recall next to it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/sketch/top_k.h"

namespace cairn::sketch {
namespace {

constexpr size_t kStream = 1 << 20;  // a power of two: the loops wrap with a mask

// Zipf(1.1) over a million ranks, scrambled into 64-bit keys.
const std::vector<uint64_t>& ZipfKeys() {
  static const std::vector<uint64_t> keys = [] {
    ZipfGenerator zipf(1000000, 1.1, 1);
    std::vector<uint64_t> v(kStream);
    for (auto& k : v) k = Mix64(zipf.Next());
    return v;
  }();
  return keys;
}

// True counts of the stream, and the 100th largest of them.
struct Truth {
  std::unordered_map<uint64_t, uint64_t> counts;
  uint64_t kth;
};
const Truth& StreamTruth() {
  static const Truth truth = [] {
    Truth t;
    for (uint64_t k : ZipfKeys()) ++t.counts[k];
    std::vector<uint64_t> c;
    for (const auto& [k, n] : t.counts) c.push_back(n);
    std::nth_element(c.begin(), c.begin() + 99, c.end(), std::greater<>());
    t.kth = c[99];
    return t;
  }();
  return truth;
}

// Fraction of the true top-100 of one pass over the stream found in the top-100 of a
// sketch of that pass (ties at the 100th count included). `rank_of` maps a sketch key
// back to the stream's key.
template <typename Key, typename RankOf>
double Recall100(const TopK<Key>& sketch, RankOf rank_of) {
  const Truth& truth = StreamTruth();
  size_t hits = 0;
  for (const auto& item : sketch.Top(100)) {
    const auto it = truth.counts.find(rank_of(item.key));
    hits += it != truth.counts.end() && it->second >= truth.kth;
  }
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
  static std::map<size_t, double> recall;  // per capacity; the function runs repeatedly
  if (!recall.count(sketch.capacity())) {
    auto one_pass = *TopK<uint64_t>::Create(sketch.capacity());
    for (uint64_t k : keys) one_pass.Add(k);
    recall[sketch.capacity()] = Recall100(one_pass, [](uint64_t k) { return k; });
  }
  state.counters["recall@100"] = recall[sketch.capacity()];
}
BENCHMARK(BM_TopKAdd_Zipf11_u64)->ArgName("capacity")->Arg(1000)->Arg(10000)->Arg(100000);

void BM_TopKAdd_string(benchmark::State& state) {
  auto sketch = *TopK<std::string>::Create(static_cast<size_t>(state.range(0)));
  // Keys are the decimal 64-bit stream keys: "sensor/<key>", 13-27 bytes.
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> v;
    v.reserve(kStream);
    for (uint64_t k : ZipfKeys()) v.push_back("sensor/" + std::to_string(k));
    return v;
  }();
  size_t i = 0;
  for (auto _ : state) {
    sketch.Add(std::string_view(keys[i++ & (kStream - 1)]));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(sketch.MemoryBytes());
  static std::map<size_t, double> recall;  // per capacity; the function runs repeatedly
  if (!recall.count(sketch.capacity())) {
    auto one_pass = *TopK<std::string>::Create(sketch.capacity());
    for (const auto& k : keys) one_pass.Add(std::string_view(k));
    recall[sketch.capacity()] = Recall100(one_pass, [](const std::string& k) {
      return std::stoull(k.substr(7));
    });
  }
  state.counters["recall@100"] = recall[sketch.capacity()];
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
