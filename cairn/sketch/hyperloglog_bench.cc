// Throughput of HyperLogLog next to its accuracy: the Add benchmarks report the
// relative error of the final estimate against the exact count of distinct keys.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "cairn/sketch/hyperloglog.h"

namespace cairn::sketch {
namespace {

HyperLogLog DenseSketch(int precision, uint64_t first_key, uint64_t count) {
  HyperLogLog s = *HyperLogLog::Create(precision);
  for (uint64_t k = 0; k < count; ++k) s.Add(first_key + k);
  return s;
}

void ReportAccuracy(benchmark::State& state, const HyperLogLog& s, double distinct) {
  state.counters["bytes"] = static_cast<double>(s.MemoryBytes());
  state.counters["rel_err"] = std::abs(s.Estimate() / distinct - 1.0);
}

// Add of distinct 64-bit keys, hashed inside the call, on a dense sketch.
void BM_HllAdd_u64(benchmark::State& state) {
  const int p = static_cast<int>(state.range(0));
  constexpr uint64_t kWarm = 1 << 20;  // well past the sparse limit
  HyperLogLog s = DenseSketch(p, 0, kWarm);
  uint64_t key = kWarm;
  for (auto _ : state) {
    s.Add(key++);
  }
  benchmark::DoNotOptimize(s);
  state.SetItemsProcessed(state.iterations());
  ReportAccuracy(state, s, static_cast<double>(key));
}
BENCHMARK(BM_HllAdd_u64)->ArgName("p")->Arg(12)->Arg(14);

// Add of keys that have been seen already (a skewed stream): no register changes.
void BM_HllAdd_u64_repeated(benchmark::State& state) {
  HyperLogLog s = DenseSketch(12, 0, 1 << 16);
  uint64_t key = 0;
  for (auto _ : state) {
    s.Add(key++ & 0xffff);
  }
  benchmark::DoNotOptimize(s);
  state.SetItemsProcessed(state.iterations());
  ReportAccuracy(state, s, 65536.0);
}
BENCHMARK(BM_HllAdd_u64_repeated);

// AddHash of precomputed hashes (the cost without hashing).
void BM_HllAddHash(benchmark::State& state) {
  HyperLogLog s = DenseSketch(12, 0, 1 << 16);
  uint64_t h = 0x1234567;
  for (auto _ : state) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    s.AddHash(h ^ (h >> 29));
  }
  benchmark::DoNotOptimize(s);
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(s.MemoryBytes());
}
BENCHMARK(BM_HllAddHash);

// Add while sparse: 768 distinct keys at p = 12 (the sparse limit), then reset.
void BM_HllAdd_sparse(benchmark::State& state) {
  const HyperLogLog empty = *HyperLogLog::Create(12);
  const uint64_t n = HyperLogLog::SparseLimit(12);
  HyperLogLog s = empty;
  uint64_t key = 0;
  for (auto _ : state) {
    for (uint64_t i = 0; i < n; ++i) s.Add(key++);
    state.PauseTiming();
    ReportAccuracy(state, s, static_cast<double>(n));
    s = empty;
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_HllAdd_sparse);

// Add of 16-byte string keys.
void BM_HllAdd_string(benchmark::State& state) {
  constexpr size_t kKeys = 1 << 16;
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (size_t i = 0; i < kKeys; ++i) keys.push_back("sensor-" + std::to_string(1000000000 + i));
  HyperLogLog s = DenseSketch(12, 1ULL << 40, 1 << 16);
  size_t i = 0;
  for (auto _ : state) {
    s.Add(std::string_view(keys[i++ & (kKeys - 1)]));
  }
  benchmark::DoNotOptimize(s);
  state.SetItemsProcessed(state.iterations());
  ReportAccuracy(state, s, 65536.0 + kKeys);
}
BENCHMARK(BM_HllAdd_string);

void BM_HllEstimate(benchmark::State& state) {
  const int p = static_cast<int>(state.range(0));
  const uint64_t n = state.range(1);
  const HyperLogLog s = DenseSketch(p, 0, n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.Estimate());
  }
  state.SetItemsProcessed(state.iterations());
  ReportAccuracy(state, s, static_cast<double>(n));
  state.SetLabel(s.is_sparse() ? "sparse" : "dense");
}
BENCHMARK(BM_HllEstimate)
    ->ArgNames({"p", "n"})
    ->Args({12, 500})
    ->Args({12, 1000000})
    ->Args({14, 1000000})
    ->Args({18, 10000000});

// Merge of two dense sketches; the second pair folds p = 14 into p = 12.
void BM_HllMerge(benchmark::State& state) {
  const int p_into = static_cast<int>(state.range(0));
  const int p_from = static_cast<int>(state.range(1));
  const HyperLogLog base = DenseSketch(p_into, 0, 1000000);
  const HyperLogLog other = DenseSketch(p_from, 500000, 1000000);
  HyperLogLog s = base;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.Merge(other));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * (int64_t{1} << p_from));
  ReportAccuracy(state, s, 1500000.0);
}
BENCHMARK(BM_HllMerge)->ArgNames({"into", "from"})->Args({12, 12})->Args({14, 14})->Args({12, 14});

void BM_HllSerialize(benchmark::State& state) {
  const HyperLogLog s = DenseSketch(12, 0, 1000000);
  for (auto _ : state) {
    std::string bytes = s.Serialize();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(s.Serialize().size());
}
BENCHMARK(BM_HllSerialize);

}  // namespace
}  // namespace cairn::sketch
