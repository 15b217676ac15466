// Whole-model throughput, llama-bench style (see bench_support.h):
//   BM_InferPrompt/<threads>   prompt processing: 512 tokens from an empty sequence
//   BM_InferDecode/<threads>   decoding: 128 single-token steps from an empty sequence
// The `tokens_per_second` counter is the figure to compare with llama-bench's pp512 and
// tg128. The model is CAIRN_INFER_BENCH_MODEL (a GGUF path, e.g. one written by
// `cairn model synth --preset smollm2-135m --type q8_0`); without it a tiny synthesized
// llama in memory keeps the smoke run quick, with the prompt cut to its context.
#include <benchmark/benchmark.h>

#include <cstdlib>
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

BENCHMARK(BM_InferPrompt)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_InferDecode)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cairn::infer
