// Whole-model throughput, llama-bench style (see bench_support.h):
//   BM_InferPrompt/<threads>   prompt processing: 512 tokens from an empty sequence
//   BM_InferDecode/<threads>   decoding: 128 single-token steps from an empty sequence
//   BM_InferBatchStep/<threads>/<n_seq>  n_seq sequences decoding together (continuous
//                              batching): 32 steps of one token per sequence
// The `tokens_per_second` counter is the figure to compare with llama-bench's pp512 and
// tg128. The model is CAIRN_INFER_BENCH_MODEL (a GGUF path, e.g. one written by
// `cairn model synth --preset smollm2-135m --type q8_0`); without it a tiny synthesized
// llama in memory keeps the smoke run quick, with the prompt cut to its context.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cairn/base/random.h"
#include "cairn/infer/model.h"
#include "cairn/infer/synth.h"

namespace cairn::infer {
namespace {

const Model* BenchModel() {
  static std::unique_ptr<Model> model = []() -> std::unique_ptr<Model> {
    const char* path = std::getenv("CAIRN_INFER_BENCH_MODEL");
    absl::StatusOr<std::unique_ptr<Model>> m;
    if (path != nullptr && *path != '\0') {
      m = Model::Load(path);
    } else {
      SynthOptions o;
      o.shape = *SynthPreset("tiny");
      o.weight_type = "q8_0";
      absl::StatusOr<std::string> bytes = SynthesizeModelToBuffer(o);
      if (!bytes.ok()) return nullptr;
      absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(*bytes, "tiny-q8_0.gguf");
      if (!f.ok()) return nullptr;
      m = Model::FromFile(std::move(*f));
    }
    if (!m.ok()) {
      std::fprintf(stderr, "cairn_infer_bench: %s\n", std::string(m.status().message()).c_str());
      return nullptr;
    }
    return std::move(*m);
  }();
  return model.get();
}

std::vector<int32_t> Tokens(int n, int32_t n_vocab) {
  SplitMix64 rng(1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = static_cast<int32_t>(rng.Next() % static_cast<uint64_t>(n_vocab));
  return t;
}

std::unique_ptr<Session> NewSession(benchmark::State& state, const Model& model, int n) {
  ContextOptions o;
  o.n_ctx = static_cast<uint32_t>(n);
  o.n_threads = static_cast<int>(state.range(0));
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(model, o);
  if (!s.ok()) state.SkipWithError(std::string(s.status().message()).c_str());
  return s.ok() ? std::move(*s) : nullptr;
}

void BM_InferPrompt(benchmark::State& state) {
  const Model* model = BenchModel();
  if (model == nullptr || !model->has_logits()) return state.SkipWithError("no decoder model");
  const int n = std::min<int>(512, static_cast<int>(model->config().n_ctx_train));
  std::unique_ptr<Session> s = NewSession(state, *model, n);
  if (s == nullptr) return;
  const std::vector<int32_t> prompt = Tokens(n, model->n_vocab());
  for (auto _ : state) {
    if (!s->Truncate(0).ok() || !s->Decode(prompt).ok()) return state.SkipWithError("decode failed");
  }
  state.counters["tokens_per_second"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(model->config().name);
}

void BM_InferDecode(benchmark::State& state) {
  const Model* model = BenchModel();
  if (model == nullptr || !model->has_logits()) return state.SkipWithError("no decoder model");
  const int n = std::min<int>(128, static_cast<int>(model->config().n_ctx_train));
  std::unique_ptr<Session> s = NewSession(state, *model, n);
  if (s == nullptr) return;
  const std::vector<int32_t> tokens = Tokens(n, model->n_vocab());
  for (auto _ : state) {
    if (!s->Truncate(0).ok()) return state.SkipWithError("truncate failed");
    for (int i = 0; i < n; ++i) {
      if (!s->Decode(std::span(&tokens[i], 1)).ok()) return state.SkipWithError("decode failed");
    }
  }
  state.counters["tokens_per_second"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(model->config().name);
}

// A /proc/self/status field in MiB (0 where there is none).
double ResidentMiB(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::strtod(line.c_str() + std::strlen(field), nullptr) / 1024;
  }
  return 0;
}

// What continuous batching does: n_seq sequences decoding together, one token of each
// per Forward (logits for all), 32 steps from empty slots per iteration.
void BM_InferBatchStep(benchmark::State& state) {
  const Model* model = BenchModel();
  if (model == nullptr || !model->has_logits()) return state.SkipWithError("no decoder model");
  const int n_seq = static_cast<int>(state.range(1));
  constexpr int kSteps = 32;
  ContextOptions o;
  o.n_ctx = static_cast<uint32_t>(n_seq * kSteps);
  o.n_seq = static_cast<uint32_t>(n_seq);
  o.n_threads = static_cast<int>(state.range(0));
  absl::StatusOr<std::unique_ptr<Context>> ctx = Context::Create(*model, o);
  if (!ctx.ok()) return state.SkipWithError(std::string(ctx.status().message()).c_str());
  const std::vector<int32_t> tokens = Tokens(n_seq * kSteps, model->n_vocab());
  std::vector<BatchToken> batch(static_cast<size_t>(n_seq));
  for (auto _ : state) {
    for (int s = 0; s < n_seq; ++s) (*ctx)->ClearSeq(s);
    for (int step = 0; step < kSteps; ++step) {
      for (int s = 0; s < n_seq; ++s) batch[static_cast<size_t>(s)] = {tokens[static_cast<size_t>(step * n_seq + s)], s, step, true};
      if (!(*ctx)->Forward(batch).ok()) return state.SkipWithError("forward failed");
    }
  }
  state.counters["tokens_per_second"] =
      benchmark::Counter(static_cast<double>(n_seq * kSteps), benchmark::Counter::kIsIterationInvariantRate);
  // Seconds per Forward (Google Benchmark prints it with an SI prefix, e.g. 27m = 27 ms).
  state.counters["step"] = benchmark::Counter(
      kSteps, benchmark::Counter::Flags(benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert));
  state.counters["packed_MiB"] = static_cast<double>(model->packed_bytes()) / (1 << 20);
  state.counters["weights_MiB"] = static_cast<double>(model->weight_bytes()) / (1 << 20);
  state.counters["rss_MiB"] = ResidentMiB("VmRSS:");
  state.counters["peak_rss_MiB"] = ResidentMiB("VmHWM:");
  state.SetLabel(model->config().name);
}

BENCHMARK(BM_InferPrompt)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_InferBatchStep)->ArgsProduct({{1, 2}, {1, 4, 16}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_InferDecode)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cairn::infer
