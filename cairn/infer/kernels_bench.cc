// MatMul throughput in GB/s of weights streamed (bytes_per_second), per type, at
// n_tokens 1 (decode) and 64 (prompt batches), on 1 and 2 threads:
//   BM_MatMul/<type>/<rows>/<tokens>/<threads>   2048x2048 and 5632x2048 matrices used
//       over and over (they stay in L2/L3 where the caches are big: compute cost).
//   BM_MatMulPacked/<type>/<rows>/<tokens>/<threads>/<packed>  Q4_0 and Q8_0 as BM_MatMul,
//       read from the rows (packed 0: batches repack each panel per call) or from the
//       panels PackMatrix made once (packed 1), at 1, 16 and 64 tokens.
//   BM_MatMulStream/<type>/<threads>            one token, successive calls walk 5632x2048
//       matrices through a 1 GiB buffer, so every byte comes from DRAM (the decode case
//       for a model larger than the caches).
//   BM_MatMulStreamPacked/<type>/<threads>      the same for Q4_0 and Q8_0 matrices packed
//       once beforehand (PackMatrix), reading only the panels.
//   BM_ReadBandwidth/<threads>/<streams>         a plain streaming read of the same buffer,
//       1, 4 or 8 interleaved streams per thread: the decode bound is the best of these
//       rates / bytes of weights per token.
//   BM_MatMulIsa/<type>/<isa>/<tokens>/<rows>    one thread, each instruction set; 256 rows
//       stay in L2 (compute cost alone), 5632 rows come from L3 or DRAM.
//   BM_Dispatch/<threads>                        an empty ParallelFor and a tiny MatMul:
//       the per-call overhead decode pays hundreds of times per token.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/base/random.h"
#include "cairn/infer/kernels.h"
#include "cairn/infer/thread_pool.h"

namespace cairn::infer {
namespace {

constexpr TensorType kTypes[] = {TensorType::kQ4_0, TensorType::kQ8_0, TensorType::kQ4_K, TensorType::kQ6_K,
                                 TensorType::kF16,  TensorType::kBF16, TensorType::kF32};
constexpr int64_t kCols = 2048;
constexpr size_t kStreamBytes = size_t{1} << 30;

// Weights that look like a model's: random quantized values with small sane scales.
void Fill(TensorType type, uint8_t* p, size_t bytes, uint64_t seed) {
  SplitMix64 rng(seed);
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t v = rng.Next();
    std::memcpy(p + i, &v, 8);
  }
  const uint16_t small = Fp32ToFp16(0.01f);
  auto set16 = [&](size_t off) { std::memcpy(p + off, &small, 2); };
  switch (type) {
    case TensorType::kQ4_0:
    case TensorType::kQ8_0:
      for (size_t o = 0; o + BlockBytes(type) <= bytes; o += BlockBytes(type)) set16(o);
      break;
    case TensorType::kQ4_K:
      for (size_t o = 0; o + 144 <= bytes; o += 144) set16(o), set16(o + 2);
      break;
    case TensorType::kQ6_K:
      for (size_t o = 0; o + 210 <= bytes; o += 210) set16(o + 208);
      break;
    case TensorType::kF16:
    case TensorType::kBF16:
      for (size_t o = 0; o + 2 <= bytes; o += 2) {
        const float f = static_cast<float>(static_cast<int>(p[o]) - 128) / 1024;
        const uint16_t h = type == TensorType::kF16 ? Fp32ToFp16(f) : Fp32ToBf16(f);
        std::memcpy(p + o, &h, 2);
      }
      break;
    default:
      for (size_t o = 0; o + 4 <= bytes; o += 4) {
        const float f = static_cast<float>(static_cast<int>(p[o]) - 128) / 1024;
        std::memcpy(p + o, &f, 4);
      }
      break;
  }
}

struct Buffer {
  std::vector<uint8_t> bytes;
  size_t row_bytes = 0;
};

const Buffer& Weights(TensorType type, int64_t rows) {
  static auto* cache = new std::map<std::pair<TensorType, int64_t>, std::unique_ptr<Buffer>>;
  auto& slot = (*cache)[{type, rows}];
  if (!slot) {
    slot = std::make_unique<Buffer>();
    slot->row_bytes = *RowBytes(type, kCols);
    slot->bytes.resize(slot->row_bytes * static_cast<size_t>(rows));
    Fill(type, slot->bytes.data(), slot->bytes.size(), static_cast<uint64_t>(rows) * 31 + static_cast<uint64_t>(type));
  }
  return *slot;
}

std::vector<float> Activations(int64_t n) {
  SplitMix64 rng(7);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = static_cast<float>(rng.NextDouble() * 2 - 1);
  return x;
}

ThreadPool* Pool(int threads) {
  static auto* pools = new std::map<int, std::unique_ptr<ThreadPool>>;
  auto& p = (*pools)[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return p.get();
}

void BM_MatMul(benchmark::State& state) {
  const auto type = static_cast<TensorType>(state.range(0));
  const int64_t rows = state.range(1), tokens = state.range(2);
  const Buffer& buf = Weights(type, rows);
  const WeightView w{type, rows, kCols, buf.bytes.data(), buf.row_bytes};
  const std::vector<float> x = Activations(tokens * kCols);
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  ThreadPool* pool = Pool(static_cast<int>(state.range(3)));
  for (auto _ : state) {
    MatMul(w, x.data(), tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(buf.bytes.size()));
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(rows * kCols * tokens) * 1e-9 *
                                                    static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} {}", TensorTypeName(type), ActiveIsaDescription()));
}

void MatMulArgs(benchmark::internal::Benchmark* b) {
  for (TensorType type : kTypes) {
    for (int64_t rows : {2048, 5632}) {
      for (int64_t tokens : {1, 64}) {
        for (int64_t threads : {1, 2}) b->Args({static_cast<int64_t>(type), rows, tokens, threads});
      }
    }
  }
}
BENCHMARK(BM_MatMul)->Apply(MatMulArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_MatMulPacked(benchmark::State& state) {
  const auto type = static_cast<TensorType>(state.range(0));
  const int64_t rows = state.range(1), tokens = state.range(2);
  const Buffer& buf = Weights(type, rows);
  WeightView w{type, rows, kCols, buf.bytes.data(), buf.row_bytes};
  std::unique_ptr<PackedMatrix> packed = state.range(4) != 0 ? PackMatrix(w, nullptr) : nullptr;
  w.packed = packed.get();
  const std::vector<float> x = Activations(tokens * kCols);
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  ThreadPool* pool = Pool(static_cast<int>(state.range(3)));
  for (auto _ : state) {
    MatMul(w, x.data(), tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(buf.bytes.size()));
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(rows * kCols * tokens) * 1e-9 *
                                                    static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} {}{}", TensorTypeName(type), ActiveIsaDescription(), packed ? " packed" : ""));
}

void MatMulPackedArgs(benchmark::internal::Benchmark* b) {
  for (TensorType type : {TensorType::kQ4_0, TensorType::kQ8_0}) {
    for (int64_t rows : {2048, 5632}) {
      for (int64_t tokens : {1, 16, 64}) {
        for (int64_t threads : {1, 2}) {
          for (int64_t packed : {0, 1}) b->Args({static_cast<int64_t>(type), rows, tokens, threads, packed});
        }
      }
    }
  }
}
BENCHMARK(BM_MatMulPacked)->Apply(MatMulPackedArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A GiB of one type's weights, viewed as consecutive 5632 x 2048 matrices.
const Buffer& StreamWeights(TensorType type) {
  static auto* cache = new std::map<TensorType, std::unique_ptr<Buffer>>;
  auto& slot = (*cache)[type];
  if (!slot) {
    cache->clear();  // one GiB at a time
    auto& fresh = (*cache)[type];
    fresh = std::make_unique<Buffer>();
    fresh->row_bytes = *RowBytes(type, kCols);
    const size_t matrix = fresh->row_bytes * 5632;
    fresh->bytes.resize(kStreamBytes / matrix * matrix);
    Fill(type, fresh->bytes.data(), fresh->bytes.size(), 11);
    return *fresh;
  }
  return *slot;
}

void BM_MatMulStream(benchmark::State& state) {
  const auto type = static_cast<TensorType>(state.range(0));
  const Buffer& buf = StreamWeights(type);
  const size_t matrix = buf.row_bytes * 5632;
  const size_t count = buf.bytes.size() / matrix;
  const std::vector<float> x = Activations(kCols);
  std::vector<float> y(5632);
  ThreadPool* pool = Pool(static_cast<int>(state.range(1)));
  size_t i = 0;
  for (auto _ : state) {
    const WeightView w{type, 5632, kCols, buf.bytes.data() + (i++ % count) * matrix, buf.row_bytes};
    MatMul(w, x.data(), 1, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * matrix));
  state.SetLabel(fmt::format("{} {}", TensorTypeName(type), ActiveIsaDescription()));
}
BENCHMARK(BM_MatMulStream)
    ->ArgsProduct({{static_cast<int64_t>(TensorType::kQ4_0), static_cast<int64_t>(TensorType::kQ8_0),
                    static_cast<int64_t>(TensorType::kQ4_K), static_cast<int64_t>(TensorType::kQ6_K),
                    static_cast<int64_t>(TensorType::kF16)},
                   {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// BM_MatMulStream over packed matrices (Q4_0, Q8_0): every matrix of the GiB is packed
// once before timing (another GiB), and the timed calls read only the panels.
void BM_MatMulStreamPacked(benchmark::State& state) {
  const auto type = static_cast<TensorType>(state.range(0));
  const Buffer& buf = StreamWeights(type);
  const size_t matrix = buf.row_bytes * 5632;
  const size_t count = buf.bytes.size() / matrix;
  std::vector<std::unique_ptr<PackedMatrix>> packed;
  std::vector<WeightView> views;
  for (size_t m = 0; m < count; ++m) {
    WeightView w{type, 5632, kCols, buf.bytes.data() + m * matrix, buf.row_bytes};
    packed.push_back(PackMatrix(w, nullptr));
    w.packed = packed.back().get();
    views.push_back(w);
  }
  const std::vector<float> x = Activations(kCols);
  std::vector<float> y(5632);
  ThreadPool* pool = Pool(static_cast<int>(state.range(1)));
  size_t i = 0;
  for (auto _ : state) {
    MatMul(views[i++ % count], x.data(), 1, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * matrix));
  state.SetLabel(fmt::format("{} {}{}", TensorTypeName(type), ActiveIsaDescription(), packed[0] ? " packed" : ""));
}
BENCHMARK(BM_MatMulStreamPacked)
    ->ArgsProduct({{static_cast<int64_t>(TensorType::kQ4_0), static_cast<int64_t>(TensorType::kQ8_0)}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_ReadBandwidth(benchmark::State& state) {
  const Buffer& buf = StreamWeights(TensorType::kQ8_0);
  const size_t n = buf.bytes.size() / 8;
  const auto* words = reinterpret_cast<const uint64_t*>(buf.bytes.data());
  ThreadPool* pool = Pool(static_cast<int>(state.range(0)));
  const int streams = static_cast<int>(state.range(1));
  constexpr size_t kChunkWords = size_t{1} << 17;  // 1 MiB
  for (auto _ : state) {
    // Each 1 MiB chunk is read as `streams` interleaved sequential streams (a kernel reads
    // several rows at once; one core draws more bandwidth from several streams than one).
    pool->ParallelForGrain(static_cast<int64_t>(n / kChunkWords), 1, [&](int64_t b, int64_t e) {
      uint64_t s[8] = {};
      const size_t len = kChunkWords / static_cast<size_t>(streams);
      for (int64_t c = b; c < e; ++c) {
        const uint64_t* base = words + static_cast<size_t>(c) * kChunkWords;
        for (size_t i = 0; i < len; i += 2) {
          for (int k = 0; k < streams; ++k) s[k] += base[k * len + i] + base[k * len + i + 1];
        }
      }
      uint64_t total = 0;
      for (uint64_t v : s) total += v;
      benchmark::DoNotOptimize(total);
    });
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (n / kChunkWords) * kChunkWords * 8));
  state.SetLabel(fmt::format("{} stream(s) per thread", streams));
}
BENCHMARK(BM_ReadBandwidth)->ArgsProduct({{1, 2}, {1, 4, 8}})->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_MatMulIsa(benchmark::State& state) {
  const auto type = static_cast<TensorType>(state.range(0));
  const auto isa = static_cast<Isa>(state.range(1));
  const int64_t tokens = state.range(2), rows = state.range(3);
  if (!IsaAvailable(isa)) {
    state.SkipWithError("instruction set not available");
    return;
  }
  const Buffer& buf = Weights(type, rows);
  const WeightView w{type, rows, kCols, buf.bytes.data(), buf.row_bytes};
  const std::vector<float> x = Activations(tokens * kCols);
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  for (auto _ : state) {
    MatMulIsa(isa, w, x.data(), tokens, y.data(), nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(buf.bytes.size()));
  state.SetLabel(fmt::format("{} {}", TensorTypeName(type), IsaName(isa)));
}
void IsaArgs(benchmark::internal::Benchmark* b) {
  for (TensorType type : kTypes) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
      if (!IsaAvailable(isa)) continue;
      for (int64_t tokens : {1, 64}) {
        if (isa == Isa::kScalar && tokens > 1) continue;  // seconds per call
        for (int64_t rows : {256, 5632}) b->Args({static_cast<int64_t>(type), static_cast<int64_t>(isa), tokens, rows});
      }
    }
  }
}
BENCHMARK(BM_MatMulIsa)->Apply(IsaArgs)->Unit(benchmark::kMicrosecond);

void BM_Dispatch(benchmark::State& state) {
  ThreadPool* pool = Pool(static_cast<int>(state.range(0)));
  const bool matmul = state.range(1) != 0;
  const Buffer& buf = Weights(TensorType::kQ8_0, 64);
  const WeightView w{TensorType::kQ8_0, 64, 256, buf.bytes.data(), buf.row_bytes};
  const std::vector<float> x = Activations(256);
  std::vector<float> y(64);
  for (auto _ : state) {
    if (matmul) {
      MatMul(w, x.data(), 1, y.data(), pool);
    } else {
      pool->ParallelForGrain(pool->size(), 1, [](int64_t, int64_t) {});
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(matmul ? "64x256 q8_0 matmul" : "empty ParallelFor");
}
BENCHMARK(BM_Dispatch)->ArgsProduct({{1, 2}, {0, 1}})->UseRealTime();

}  // namespace
}  // namespace cairn::infer
