// Cost of drawing one token from a 32 K vocabulary, per sampling setting. The server
// samples every active sequence once per decode step, so with 16 sequences this cost
// is paid 16 times a step on the step's critical path.
//
//   ./build/release/cairn/infer/cairn_infer_bench --benchmark_filter=Sample
//
// Two logit shapes: "peaked" (a trained model's: a few likely tokens, a long tail) and
// "flat" (a random-weight synthesized model's: nearly uniform, so top-p keeps most of the
// vocabulary).
#include <cmath>
#include <vector>

#include "benchmark/benchmark.h"
#include "cairn/base/random.h"
#include "cairn/infer/sampler.h"

namespace cairn::infer {
namespace {

std::vector<float> Logits(bool peaked) {
  SplitMix64 rng(7);
  std::vector<float> l(32000);
  for (float& x : l) {
    const double u = rng.NextDouble();
    // Peaked: a Gumbel-like tail stretched wide; flat: small noise around zero.
    x = peaked ? static_cast<float>(-8.0 * std::log(-std::log(u * 0.999 + 0.0005))) : static_cast<float>(0.5 * u);
  }
  return l;
}

void Run(benchmark::State& state, SamplerParams p, bool peaked) {
  const std::vector<float> l = Logits(peaked);
  Sampler s(p);
  for (auto _ : state) benchmark::DoNotOptimize(s.Sample(l));
}

SamplerParams OpenAiDefaults() {  // temperature 1, top_p 1, no top-k / min-p: the whole vocabulary
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

void BM_SampleFullVocab(benchmark::State& state) { Run(state, OpenAiDefaults(), state.range(0) != 0); }
BENCHMARK(BM_SampleFullVocab)->Arg(0)->Arg(1)->ArgName("peaked");

void BM_SampleTopP95(benchmark::State& state) {
  SamplerParams p = OpenAiDefaults();
  p.top_p = 0.95f;
  Run(state, p, state.range(0) != 0);
}
BENCHMARK(BM_SampleTopP95)->Arg(0)->Arg(1)->ArgName("peaked");

void BM_SampleLlamaDefaults(benchmark::State& state) { Run(state, SamplerParams{}, state.range(0) != 0); }
BENCHMARK(BM_SampleLlamaDefaults)->Arg(0)->Arg(1)->ArgName("peaked");

void BM_SampleGreedy(benchmark::State& state) { Run(state, SamplerParams::Greedy(), state.range(0) != 0); }
BENCHMARK(BM_SampleGreedy)->Arg(0)->Arg(1)->ArgName("peaked");

}  // namespace
}  // namespace cairn::infer
