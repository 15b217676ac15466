// Throughput of CuckooFilter Insert/Contains/Erase, one thread, keys hashed
// inside the call. Filters are sized for 10 M keys; 16-bit fingerprints come
// from the default FPR 0.1%, 12-bit from 1%. Contains cases run at 90% slot
// load (10 M keys) and report the measured false positive rate ("fpr").
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cairn/sketch/cuckoo_filter.h"

namespace cairn::sketch {
namespace {

constexpr uint64_t k10M = 10'000'000;

CuckooFilter MakeFilter(uint64_t capacity, double fpr) {
  auto f = CuckooFilter::Create(capacity, fpr);
  if (!f.ok()) std::abort();
  return *std::move(f);
}

// A filter holding keys [0, 10M), built once per fingerprint size.
const CuckooFilter& FilledFilter(double fpr) {
  static CuckooFilter* filters[2] = {nullptr, nullptr};
  CuckooFilter*& slot = filters[fpr < 0.002 ? 0 : 1];
  if (slot == nullptr) {
    slot = new CuckooFilter(MakeFilter(k10M, fpr));
    for (uint64_t k = 0; k < k10M; ++k) {
      if (!slot->Insert(k).ok()) std::abort();
    }
  }
  return *slot;
}

// One iteration fills an empty 10M-capacity filter with 10M keys (to 90% slot
// load), so the eviction walks of the fuller table count in the average.
void CuckooInsert(benchmark::State& state, double fpr) {
  uint64_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    CuckooFilter f = MakeFilter(k10M, fpr);
    state.ResumeTiming();
    for (uint64_t key = 0; key < k10M; ++key) {
      benchmark::DoNotOptimize(f.Insert(key).ok());
    }
    bytes = f.MemoryBytes();
  }
  state.SetItemsProcessed(state.iterations() * k10M);
  state.counters["bytes"] = static_cast<double>(bytes);
}
void BM_CuckooInsert_10M_16bit(benchmark::State& s) { CuckooInsert(s, 0.001); }
void BM_CuckooInsert_10M_12bit(benchmark::State& s) { CuckooInsert(s, 0.01); }
BENCHMARK(BM_CuckooInsert_10M_16bit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CuckooInsert_10M_12bit)->Unit(benchmark::kMillisecond);

// Half the queries hit inserted keys, half miss.
void CuckooContains(benchmark::State& state, double fpr) {
  const CuckooFilter& f = FilledFilter(fpr);
  uint64_t key = 0;
  uint64_t absent_hits = 0;
  uint64_t absent_queries = 0;
  for (auto _ : state) {
    const bool hit = f.Contains(key);
    benchmark::DoNotOptimize(hit);
    if (key >= k10M) {
      absent_hits += hit;
      ++absent_queries;
    }
    key = key + 1 == 2 * k10M ? 0 : key + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
  state.counters["fpr"] =
      absent_queries ? static_cast<double>(absent_hits) / static_cast<double>(absent_queries) : 0;
}
void BM_CuckooContains_10M_16bit(benchmark::State& s) { CuckooContains(s, 0.001); }
void BM_CuckooContains_10M_12bit(benchmark::State& s) { CuckooContains(s, 0.01); }
BENCHMARK(BM_CuckooContains_10M_16bit);
BENCHMARK(BM_CuckooContains_10M_12bit);

// String keys (~20 bytes) against the integer-keyed filter: all miss, which
// costs the same as a hit (both buckets are always read).
void BM_CuckooContainsString_10M_16bit(benchmark::State& state) {
  const CuckooFilter& f = FilledFilter(0.001);
  std::vector<std::string> keys;
  keys.reserve(1 << 20);
  for (uint64_t i = 0; i < (1 << 20); ++i) keys.push_back(fmt::format("sensor/{}/reading", i));
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
BENCHMARK(BM_CuckooContainsString_10M_16bit);

// One iteration erases all 10M keys of a copy of the full (90% load) filter.
void CuckooErase(benchmark::State& state, double fpr) {
  bool all_found = true;
  uint64_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    CuckooFilter f = FilledFilter(fpr);
    state.ResumeTiming();
    for (uint64_t key = 0; key < k10M; ++key) all_found &= f.Erase(key);
    bytes = f.MemoryBytes();
  }
  state.SetItemsProcessed(state.iterations() * k10M);
  state.counters["bytes"] = static_cast<double>(bytes);
  if (!all_found) state.SkipWithError("erase missed an inserted key");
}
void BM_CuckooErase_10M_16bit(benchmark::State& s) { CuckooErase(s, 0.001); }
void BM_CuckooErase_10M_12bit(benchmark::State& s) { CuckooErase(s, 0.01); }
BENCHMARK(BM_CuckooErase_10M_16bit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CuckooErase_10M_12bit)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn::sketch
