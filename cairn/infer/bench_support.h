// cairn/infer/bench_support.h — timing prompt processing and decoding the way
// llama-bench does, for `cairn bench infer` and cairn_infer_bench.
//
// Prompt processing (pp): n_prompt random tokens evaluated from an empty sequence in
// batches of n_batch, logits of the last one only; tokens/s = n_prompt / seconds.
// Decoding (tg): n_decode single-token steps from an empty sequence, each computing
// full logits; tokens/s = n_decode / seconds. One untimed warm-up of each first (page
// in the weights, spin up the pool), then `repetitions` timed runs; the mean and
// standard deviation are reported, as llama-bench reports them, and every run's rate is
// kept (the CLI reports the median, which a loaded machine's outliers move less).
//
// Encoders (bert) have no decoding: pp evaluates min(n_prompt, n_ctx) tokens in one
// batch (hidden states of all of them), and tg is reported as 0.
//
// Thread-safety: BenchInfer builds its own Context; the Model may be shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/infer/kv_cache.h"
#include "cairn/infer/model.h"

namespace cairn::infer {

struct InferBenchOptions {
  int n_prompt = 512;  // 0 skips pp
  int n_decode = 128;  // 0 skips tg
  int n_threads = 1;
  uint32_t n_batch = 512;
  KvType kv_type = KvType::kF16;
  int repetitions = 3;
  uint64_t seed = 1;  // the random token ids
};

struct InferBenchResult {
  int n_prompt = 0, n_decode = 0, n_threads = 0, repetitions = 0;
  double prompt_tokens_per_s = 0, prompt_stddev = 0;  // mean and stddev over repetitions
  double decode_tokens_per_s = 0, decode_stddev = 0;
  std::vector<double> prompt_samples, decode_samples;  // tokens/s of each repetition, in run order
  std::string isa;  // the kernels' active instruction set, e.g. "avx2"
};

absl::StatusOr<InferBenchResult> BenchInfer(const Model& model, const InferBenchOptions& options);

}  // namespace cairn::infer
