// Throughput of CuckooFilter Insert/Contains/Erase, one thread, keys hashed
// inside the call. Filters are sized for 10 M keys; 16-bit fingerprints come
// from the default FPR 0.1%, 12-bit from 1%. Contains cases report the
// measured false positive rate ("fpr") at 90% slot load.
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

CuckooFilter FilledFilter(uint64_t n, double fpr) {
  CuckooFilter f = MakeFilter(n, fpr);
  for (uint64_t k = 0; k < n; ++k) {
    if (!f.Insert(k).ok()) std::abort();
  }
  return f;
}

// Inserts keys 0..10M-1 into a 10M-capacity filter: the average over a fill
// from empty to 90% slot load (so the kick walks of a full table count too).
void CuckooInsert(benchmark::State& state, double fpr) {
  CuckooFilter f = MakeFilter(k10M, fpr);
  uint64_t key = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.Insert(key++).ok());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
  state.counters["load"] = f.LoadFactor();
}
void BM_CuckooInsert_10M_16bit(benchmark::State& s) { CuckooInsert(s, 0.001); }
void BM_CuckooInsert_10M_12bit(benchmark::State& s) { CuckooInsert(s, 0.01); }
BENCHMARK(BM_CuckooInsert_10M_16bit)->Iterations(k10M);
BENCHMARK(BM_CuckooInsert_10M_12bit)->Iterations(k10M);

// Half the queries hit inserted keys, half miss.
void CuckooContains(benchmark::State& state, double fpr) {
  static CuckooFilter* filters[2] = {nullptr, nullptr};
  CuckooFilter*& slot = filters[fpr < 0.005 ? 0 : 1];
  if (slot == nullptr) slot = new CuckooFilter(FilledFilter(k10M, fpr));
  const CuckooFilter& f = *slot;
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

void BM_CuckooContainsString_10M_16bit(benchmark::State& state) {
  static const CuckooFilter* f = [] {
    auto* filter = new CuckooFilter(MakeFilter(k10M, 0.001));
    for (uint64_t i = 0; i < k10M; ++i) {
      if (!filter->Insert(fmt::format("sensor/{}/reading", i)).ok()) std::abort();
    }
    return filter;
  }();
  std::vector<std::string> keys;
  for (uint64_t i = 0; i < (1 << 20); ++i) {
    keys.push_back(fmt::format("sensor/{}/reading", i * 19 % (2 * k10M)));  // half present
  }
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f->Contains(keys[i]));
    i = (i + 1) & (keys.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f->MemoryBytes());
}
BENCHMARK(BM_CuckooContainsString_10M_16bit);

// Erases all 10M keys of a full filter, one per iteration.
void CuckooErase(benchmark::State& state, double fpr) {
  CuckooFilter f = FilledFilter(k10M, fpr);
  uint64_t key = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.Erase(key++));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(f.MemoryBytes());
  if (f.size() != k10M - key) state.SkipWithError("erase missed keys");
}
void BM_CuckooErase_10M_16bit(benchmark::State& s) { CuckooErase(s, 0.001); }
void BM_CuckooErase_10M_12bit(benchmark::State& s) { CuckooErase(s, 0.01); }
BENCHMARK(BM_CuckooErase_10M_16bit)->Iterations(k10M);
BENCHMARK(BM_CuckooErase_10M_12bit)->Iterations(k10M);

}  // namespace
}  // namespace cairn::sketch
