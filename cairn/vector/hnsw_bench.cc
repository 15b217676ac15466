// Micro benchmarks of HnswIndex search (float32 and SQ8) and build on clustered
// synthetic data. Sizes stay small so a CI smoke run (--benchmark_min_time=0.001)
// is quick; set CAIRN_HNSW_BENCH_N for a larger base (e.g. 100000).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "cairn/base/random.h"
#include "cairn/vector/hnsw.h"

namespace cairn::vector {
namespace {

constexpr size_t kDim = 64;

size_t BaseSize() {
  const char* e = std::getenv("CAIRN_HNSW_BENCH_N");
  return e ? std::strtoul(e, nullptr, 10) : 10000;
}

std::vector<float> Clustered(size_t n, uint64_t seed) {
  SplitMix64 rng(seed), crng(77);
  auto g = [](SplitMix64& r) {
    double u1 = r.NextDouble() + 1e-12, u2 = r.NextDouble();
    return float(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  const size_t clusters = 64, latent = 12;
  std::vector<float> centres(clusters * kDim), basis(clusters * latent * kDim);
  for (auto& c : centres) c = 2 * g(crng);
  for (auto& b : basis) b = g(crng) / std::sqrt(float(latent));
  std::vector<float> out(n * kDim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng.Next() % clusters;
    float z[latent];
    for (auto& x : z) x = g(rng);
    for (size_t d = 0; d < kDim; ++d) {
      float v = centres[c * kDim + d] + 0.4f * g(rng);
      for (size_t l = 0; l < latent; ++l) v += z[l] * basis[(c * latent + l) * kDim + d];
      out[i * kDim + d] = v;
    }
  }
  return out;
}

struct Fixture {
  std::vector<float> base, queries;
  std::unique_ptr<HnswIndex> flat, sq8;
};

Fixture& Data() {
  static Fixture* f = [] {
    auto* f = new Fixture;
    const size_t n = BaseSize();
    f->base = Clustered(n, 1);
    f->queries = Clustered(1000, 2);
    std::vector<uint64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = i;
    HnswOptions o;
    o.dim = kDim;
    o.ef_construction = 100;
    o.initial_capacity = n;
    f->flat = std::move(*HnswIndex::Create(o));
    (void)f->flat->AddBatch(ids, f->base, 2);
    o.storage = HnswStorage::kSq8;
    f->sq8 = std::move(*HnswIndex::Create(o));
    (void)f->sq8->AddBatch(ids, f->base, 2);
    return f;
  }();
  return *f;
}

void Search(benchmark::State& state, bool sq8) {
  Fixture& f = Data();
  const HnswIndex& idx = sq8 ? *f.sq8 : *f.flat;
  SearchParams p;
  p.k = 10;
  p.ef = static_cast<size_t>(state.range(0));
  size_t qi = 0;
  for (auto _ : state) {
    auto r = idx.Search(std::span<const float>(f.queries.data() + (qi++ % 1000) * kDim, kDim), p);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_HnswSearchF32(benchmark::State& state) { Search(state, false); }
void BM_HnswSearchSq8(benchmark::State& state) { Search(state, true); }
BENCHMARK(BM_HnswSearchF32)->Arg(32)->Arg(64)->Arg(128);
BENCHMARK(BM_HnswSearchSq8)->Arg(32)->Arg(64)->Arg(128);

void BM_HnswBuild(benchmark::State& state) {
  Fixture& f = Data();
  const size_t n = std::min<size_t>(BaseSize(), 5000);
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = i;
  for (auto _ : state) {
    HnswOptions o;
    o.dim = kDim;
    o.ef_construction = 100;
    auto idx = std::move(*HnswIndex::Create(o));
    (void)idx->AddBatch(ids, std::span<const float>(f.base.data(), n * kDim),
                        static_cast<size_t>(state.range(0)));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_HnswBuild)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn::vector
