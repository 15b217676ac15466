// KLL sketch micro benchmarks: update throughput (with the rank error reached,
// next to it), quantile queries, and merging.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cairn/sketch/kll.h"

namespace cairn::sketch {
namespace {

template <typename T>
std::vector<T> UniformValues(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<T> v(count);
  for (T& x : v) x = static_cast<T>(u(rng));
  return v;
}

// Uniform(0, 1) input: the true rank of x is x, so the worst deviation over a
// grid is the sketch's rank error (plus a sampling term ~1/sqrt(n), negligible
// at benchmark stream lengths).
template <typename T>
double MaxRankError(const KllSketch<T>& s) {
  double worst = 0;
  for (int j = 1; j < 1000; ++j) {
    const double x = j / 1000.0;
    worst = std::max(worst, std::fabs(s.Rank(static_cast<T>(x)) - x));
  }
  return worst;
}

template <typename T>
void BM_KllUpdate(benchmark::State& state, uint16_t k) {
  const std::vector<T> values = UniformValues<T>(1 << 16, 1);
  KllSketch<T> s = *KllSketch<T>::Create(k);
  size_t i = 0;
  for (auto _ : state) {
    s.Update(values[i]);
    i = (i + 1) & (values.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(s.MemoryBytes());
  state.counters["retained"] = s.num_retained();
  state.counters["rank_err"] = MaxRankError(s);
  state.counters["rank_err_bound"] = KllSketch<T>::NormalizedRankError(k);
}

// Builds a sketch from n uniform values.
template <typename T>
KllSketch<T> Filled(uint16_t k, uint64_t n, uint64_t seed) {
  KllSketch<T> s = *KllSketch<T>::Create(k, seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (uint64_t i = 0; i < n; ++i) s.Update(static_cast<T>(u(rng)));
  return s;
}

// Quantile queries at random ranks on an unchanging sketch (the sorted view is
// built once, by the first query).
void BM_KllQuantile(benchmark::State& state) {
  const KllSketch<float> s = Filled<float>(200, state.range(0), 2);
  std::vector<double> ranks(1024);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (double& r : ranks) r = u(rng);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.Quantile(ranks[i]));
    i = (i + 1) & (ranks.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(s.MemoryBytes());
  state.counters["rank_err"] = MaxRankError(s);
}

// The first query after a change pays for the sorted view: Update + Quantile.
void BM_KllQuantileAfterUpdate(benchmark::State& state) {
  KllSketch<float> s = Filled<float>(200, 1000000, 2);
  float v = 0.5f;
  for (auto _ : state) {
    s.Update(v);
    v = v * 0.999f + 0.0005f;
    benchmark::DoNotOptimize(s.Quantile(0.99));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(s.MemoryBytes());
}

// Merges one sketch of 1e6 items (k = 200) into an accumulating sketch, the way
// a node folds in its peers' sketches. Items/s counts merges.
void BM_KllMerge(benchmark::State& state) {
  std::vector<KllSketch<float>> parts;
  for (int p = 0; p < 16; ++p) parts.push_back(Filled<float>(200, 1000000, 10 + p));
  KllSketch<float> acc = *KllSketch<float>::Create(200);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(acc.Merge(parts[i]));
    i = (i + 1) & 15;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(acc.MemoryBytes());
  state.counters["rank_err"] = MaxRankError(acc);
}

// Baseline in the same run: the cost of only storing each value (the floor an
// update can approach), to read the update numbers against.
void BM_BaselineVectorAppend_float(benchmark::State& state) {
  const std::vector<float> values = UniformValues<float>(1 << 16, 1);
  std::vector<float> out;
  out.reserve(1 << 16);
  size_t i = 0;
  for (auto _ : state) {
    out.push_back(values[i]);
    i = (i + 1) & (values.size() - 1);
    if (i == 0) out.clear();
  }
  benchmark::DoNotOptimize(out.data());
  state.SetItemsProcessed(state.iterations());
}

void BM_KllUpdate_float(benchmark::State& state, uint16_t k) { BM_KllUpdate<float>(state, k); }
void BM_KllUpdate_double(benchmark::State& state, uint16_t k) { BM_KllUpdate<double>(state, k); }

BENCHMARK_CAPTURE(BM_KllUpdate_float, k200, 200);
BENCHMARK_CAPTURE(BM_KllUpdate_float, k400, 400);
BENCHMARK_CAPTURE(BM_KllUpdate_double, k200, 200);
BENCHMARK(BM_KllQuantile)->Arg(1000000);
BENCHMARK(BM_KllQuantileAfterUpdate);
BENCHMARK(BM_KllMerge);
BENCHMARK(BM_BaselineVectorAppend_float);

}  // namespace
}  // namespace cairn::sketch
