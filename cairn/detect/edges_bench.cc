// Micro benchmarks of the edge detector's Update: pre-hashed node ids (the
// detector alone) and string node names (hashing included), on a Zipf stream
// of 20 000 records per second of event time.
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "cairn/base/random.h"
#include "cairn/detect/edges.h"

namespace cairn::detect {
namespace {

struct Stream {
  std::vector<uint64_t> src, dst;
  std::vector<int64_t> time;
  std::vector<std::string> src_names, dst_names;
};

const Stream& GetStream() {
  static const Stream s = [] {
    constexpr size_t kN = 1 << 18;
    Stream st;
    ZipfGenerator zs(20'000, 1.0, 1), zd(20'000, 1.0, 2);
    const EdgeDetector d;
    for (size_t i = 0; i < kN; ++i) {
      const uint64_t a = zs.Next(), b = zd.Next();
      st.src.push_back(d.HashNode(a));
      st.dst.push_back(d.HashNode(b));
      st.time.push_back(static_cast<int64_t>(i / 20));  // 20 records per ms: a tick per 20 000
      st.src_names.push_back(fmt::format("10.0.{}.{}", a >> 8, a & 255));
      st.dst_names.push_back(fmt::format("10.1.{}.{}", b >> 8, b & 255));
    }
    return st;
  }();
  return s;
}

void BM_EdgeUpdateHashed(benchmark::State& state) {
  const Stream& s = GetStream();
  const EdgeDetector d;
  EdgeState st;
  size_t i = 0;
  const size_t n = s.src.size();
  int64_t shift = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d.UpdateHashed(st, s.src[i], s.dst[i], s.time[i] + shift));
    if (++i == n) {
      i = 0;
      shift += s.time.back() + 1;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["state_bytes"] = static_cast<double>(st.MemoryBytes());
}
BENCHMARK(BM_EdgeUpdateHashed);

// The same records through UpdateBatch, 4,096 at a time (the same scores).
void BM_EdgeUpdateBatch(benchmark::State& state) {
  const Stream& s = GetStream();
  const EdgeDetector d;
  EdgeState st;
  constexpr size_t kBatch = 4096;
  const size_t n = s.src.size();
  std::vector<int64_t> time(s.time);
  std::vector<Scored> out(kBatch);
  size_t i = 0;
  for (auto _ : state) {
    d.UpdateBatch(st, std::span(s.src).subspan(i, kBatch), std::span(s.dst).subspan(i, kBatch),
                  std::span(time).subspan(i, kBatch), out);
    benchmark::DoNotOptimize(out.data());
    i += kBatch;
    if (i + kBatch > n) {  // next lap, later in event time
      i = 0;
      const int64_t shift = time.back() + 1 - time.front();
      for (int64_t& t : time) t += shift;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_EdgeUpdateBatch);

void BM_EdgeUpdateStrings(benchmark::State& state) {
  const Stream& s = GetStream();
  const EdgeDetector d;
  EdgeState st;
  size_t i = 0;
  const size_t n = s.src.size();
  int64_t shift = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        d.Update(st, {.key = s.src_names[i], .item = s.dst_names[i], .time = s.time[i] + shift}));
    if (++i == n) {
      i = 0;
      shift += s.time.back() + 1;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EdgeUpdateStrings);

}  // namespace
}  // namespace cairn::detect
