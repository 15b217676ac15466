// Throughput of BloomFilter Insert/Contains, one thread, keys hashed inside the
// call. Contains cases also report the measured false positive rate ("fpr").
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/sketch/bloom_filter.h"

namespace cairn::sketch {
namespace {

constexpr uint64_t k10M = 10'000'000;

BloomFilter MakeFilter(uint64_t keys, double fpr) {
  auto f = BloomFilter::Create(keys, fpr);
  if (!f.ok()) std::abort();
  return *std::move(f);
}

// A filter holding keys [0, n), built once per size.
const BloomFilter& FullFilter(uint64_t n) {
  static BloomFilter* f10m = nullptr;
  static BloomFilter* f100k = nullptr;
  BloomFilter*& slot = n == k10M ? f10m : f100k;
  if (slot == nullptr) {
    slot = new BloomFilter(MakeFilter(n, 0.01));
    for (uint64_t k = 0; k < n; ++k) slot->Insert(k);
  }
  return *slot;
}

const std::vector<std::string>& StringKeys() {
  static const auto* keys = [] {
    auto* v = new std::vector<std::string>();
    v->reserve(1 << 20);
    for (uint64_t i = 0; i < (1 << 20); ++i) v->push_back(fmt::format("sensor/{}/reading", i));
    return v;
  }();
  return *keys;
}

void BM_BloomInsert_10M_1pct(benchmark::State& state) {
  BloomFilter f = MakeFilter(k10M, 0.01);
  uint64_t key = 0;
  for (auto _ : state) {
    f.Insert(key);
    key = key + 1 == k10M ? 0 : key + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
}
BENCHMARK(BM_BloomInsert_10M_1pct);

// Half the queries hit inserted keys, half miss.
void BloomContains(benchmark::State& state, uint64_t n) {
  const BloomFilter& f = FullFilter(n);
  uint64_t key = 0;
  uint64_t absent_hits = 0;
  uint64_t absent_queries = 0;
  for (auto _ : state) {
    const bool hit = f.Contains(key);
    benchmark::DoNotOptimize(hit);
    if (key >= n) {
      absent_hits += hit;
      ++absent_queries;
    }
    key = key + 1 == 2 * n ? 0 : key + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
  state.counters["fpr"] =
      absent_queries ? static_cast<double>(absent_hits) / static_cast<double>(absent_queries) : 0;
}
void BM_BloomContains_10M_1pct(benchmark::State& state) { BloomContains(state, k10M); }
BENCHMARK(BM_BloomContains_10M_1pct);
void BM_BloomContains_100K_1pct(benchmark::State& state) { BloomContains(state, 100'000); }
BENCHMARK(BM_BloomContains_100K_1pct);

void BM_BloomInsertString_10M_1pct(benchmark::State& state) {
  BloomFilter f = MakeFilter(k10M, 0.01);
  const auto& keys = StringKeys();
  size_t i = 0;
  for (auto _ : state) {
    f.Insert(keys[i]);
    i = (i + 1) & (keys.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
}
BENCHMARK(BM_BloomInsertString_10M_1pct);

void BM_BloomContainsString_10M_1pct(benchmark::State& state) {
  const BloomFilter& f = FullFilter(k10M);  // holds integer keys: strings miss
  const auto& keys = StringKeys();
  size_t i = 0;
  uint64_t hits = 0;
  for (auto _ : state) {
    const bool hit = f.Contains(keys[i]);
    benchmark::DoNotOptimize(hit);
    hits += hit;
    i = (i + 1) & (keys.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
  state.counters["fpr"] = static_cast<double>(hits) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_BloomContainsString_10M_1pct);

// The bit work alone, on a prehashed stream (no XXH3 in the loop).
void BM_BloomContainsHash_10M_1pct(benchmark::State& state) {
  const BloomFilter& f = FullFilter(k10M);
  uint64_t h = 0x9E3779B97F4A7C15ULL;
  for (auto _ : state) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    benchmark::DoNotOptimize(f.ContainsHash(h));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
}
BENCHMARK(BM_BloomContainsHash_10M_1pct);

}  // namespace
}  // namespace cairn::sketch
