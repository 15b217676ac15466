// cairn/cli/llm_support.h — what `cairn generate`, `cairn chat` and `cairn embed`
// share: loading a model with its tokenizer, the sampling flags, the thread default
// and the timing line.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "cairn/infer/generate.h"
#include "cairn/infer/model.h"
#include "cairn/infer/sampler.h"
#include "cairn/infer/tokenizer.h"

namespace cairn::cli {

using infer::LoadedModel;
using infer::LoadModelAndTokenizer;

// The default thread count: the hardware's, at most 8 (decode is bound by memory
// bandwidth long before that on edge CPUs).
int DefaultThreads();

struct SamplingFlags {
  infer::SamplerParams params;   // llama.cpp's defaults
  std::optional<uint64_t> seed;  // unset: a random seed, reported on stderr
};
// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n,
// --presence-penalty, --frequency-penalty, --seed.
void AddSamplingFlags(CLI::App* cmd, SamplingFlags* flags);
// The parameters with the seed filled in; InvalidArgument for nonsense values.
absl::StatusOr<infer::SamplerParams> SamplerParamsFrom(const SamplingFlags& flags);

// "prompt 12 tokens (3 cached) 4.1 ms, 2927.0 t/s | decode 31 tokens 40.2 ms, 771.1 t/s |
//  sample 0.52 ms | finish length"
std::string TimingLine(const infer::GenerateResult& r);

}  // namespace cairn::cli
