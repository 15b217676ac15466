// Nanoseconds per kernel call, every kernel x every instruction set this CPU runs,
// at dims 128 and 384 (and 96 / 768 for the float kernels, the HNSW hot path).
// The scalar table runs in the same process, so speedups are ratios of lines of
// one run: e.g. `l2sq/avx512/128` against `l2sq/scalar/128`. Inputs cycle through
// 64 vectors that stay in L1/L2, so this is compute cost, not memory latency.
//
// Also ExactKnn (ground truth): 256 queries x 50 000 base rows x 128, 1 and 2 threads;
// `pairs/s` extrapolates to bigger runs (10 K x 1 M = 1e10 pairs).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/base/random.h"
#include "cairn/vector/distance.h"
#include "cairn/vector/flat.h"

namespace cairn::vector {
namespace {

constexpr size_t kPool = 64;

struct Inputs {
  explicit Inputs(size_t dim) : dim(dim) {
    SplitMix64 rng(dim);
    // +1 element so every vector starts at an odd offset (unaligned loads).
    f.resize(kPool * dim + 1);
    w.resize(dim);
    i8.resize(kPool * dim + 1);
    u8.resize(kPool * dim + 1);
    for (float& x : f) x = static_cast<float>(rng.NextDouble() * 2 - 1);
    for (float& x : w) x = static_cast<float>(rng.NextDouble());
    for (int8_t& x : i8) x = static_cast<int8_t>(rng.Next());
    for (uint8_t& x : u8) x = static_cast<uint8_t>(rng.Next());
  }
  const float* F(size_t i) const { return f.data() + 1 + (i % kPool) * dim; }
  const int8_t* I8(size_t i) const { return i8.data() + 1 + (i % kPool) * dim; }
  const uint8_t* U8(size_t i) const { return u8.data() + 1 + (i % kPool) * dim; }
  size_t dim;
  std::vector<float> f, w;
  std::vector<int8_t> i8;
  std::vector<uint8_t> u8;
};

enum class Op { kL2, kDot, kL2I8, kDotI8, kL2F32U8, kDotF32U8, kL2X4, kDotX4 };

void Run(benchmark::State& state, const KernelTable* t, Op op, size_t dim) {
  const Inputs in(dim);
  const float* q = in.F(kPool - 1);
  const int8_t* qi = in.I8(kPool - 1);
  const float* four[4] = {in.F(kPool - 1), in.F(kPool - 2), in.F(kPool - 3), in.F(kPool - 4)};
  float out[4];
  size_t i = 0;
  for (auto _ : state) {
    switch (op) {
      case Op::kL2: benchmark::DoNotOptimize(t->l2sq(q, in.F(i), dim)); break;
      case Op::kDot: benchmark::DoNotOptimize(t->dot(q, in.F(i), dim)); break;
      case Op::kL2I8: benchmark::DoNotOptimize(t->l2sq_i8(qi, in.I8(i), dim)); break;
      case Op::kDotI8: benchmark::DoNotOptimize(t->dot_i8(qi, in.I8(i), dim)); break;
      case Op::kL2F32U8:
        benchmark::DoNotOptimize(t->l2sq_f32_u8(q, in.U8(i), in.w.data(), dim));
        break;
      case Op::kDotF32U8: benchmark::DoNotOptimize(t->dot_f32_u8(q, in.U8(i), dim)); break;
      case Op::kL2X4:
        t->l2sq_x4(four, in.F(i), dim, out);
        benchmark::DoNotOptimize(out);
        break;
      case Op::kDotX4:
        t->dot_x4(four, in.F(i), dim, out);
        benchmark::DoNotOptimize(out);
        break;
    }
    ++i;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void ExactKnnBench(benchmark::State& state) {
  const size_t dim = 128, n = 50'000, nq = 256;
  const size_t threads = static_cast<size_t>(state.range(0));
  SplitMix64 rng(3);
  std::vector<float> base(n * dim), queries(nq * dim);
  for (float& x : base) x = static_cast<float>(rng.NextDouble());
  for (float& x : queries) x = static_cast<float>(rng.NextDouble());
  for (auto _ : state) {
    benchmark::DoNotOptimize(ExactKnn(base, dim, queries, Metric::kL2, 10, threads));
  }
  state.counters["pairs/s"] = benchmark::Counter(
      static_cast<double>(n * nq) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

const bool kRegistered = [] {
  const struct {
    const char* name;
    Op op;
    std::vector<size_t> dims;
  } kOps[] = {
      {"l2sq", Op::kL2, {96, 128, 384, 768}},
      {"dot", Op::kDot, {96, 128, 384, 768}},
      {"l2sq_i8", Op::kL2I8, {128, 384}},
      {"dot_i8", Op::kDotI8, {128, 384}},
      {"l2sq_f32_u8", Op::kL2F32U8, {128, 384}},
      {"dot_f32_u8", Op::kDotF32U8, {128, 384}},
      {"l2sq_x4", Op::kL2X4, {128, 384}},  // one call = four distances
      {"dot_x4", Op::kDotX4, {128, 384}},
  };
  for (const auto& op : kOps) {
    for (size_t dim : op.dims) {
      for (std::string_view isa : AvailableIsas()) {
        const KernelTable* t = KernelsFor(isa);
        benchmark::RegisterBenchmark(fmt::format("{}/{}/{}", op.name, isa, dim).c_str(),
                                     [t, o = op.op, dim](benchmark::State& s) { Run(s, t, o, dim); });
      }
    }
  }
  benchmark::RegisterBenchmark("ExactKnn/l2/128/q256xn50000/threads", ExactKnnBench)
      ->Arg(1)
      ->Arg(2)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  return true;
}();

}  // namespace
}  // namespace cairn::vector
