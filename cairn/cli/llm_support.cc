#include "cairn/cli/llm_support.h"

#include <algorithm>
#include <random>
#include <thread>
#include <utility>

#include <fmt/format.h>

namespace cairn::cli {

int DefaultThreads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(hw, 1u, 8u));
}

void AddSamplingFlags(CLI::App* cmd, SamplingFlags* f) {
  infer::SamplerParams& p = f->params;
  cmd->add_option("--temp", p.temperature, "Temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", p.top_k, "Keep the k most likely tokens; 0 is off")->capture_default_str();
  cmd->add_option("--top-p", p.top_p, "Keep the most likely tokens up to this total probability; 1 is off")
      ->capture_default_str();
  cmd->add_option("--min-p", p.min_p, "Drop tokens less likely than this fraction of the best; 0 is off")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", p.repeat_penalty, "Penalty for tokens seen in the last --repeat-last-n; 1 is off")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", p.repeat_last_n, "Tokens the penalties look back on; -1 is all")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", p.presence_penalty, "Subtracted once from tokens seen")->capture_default_str();
  cmd->add_option("--frequency-penalty", p.frequency_penalty, "Subtracted per occurrence of tokens seen")
      ->capture_default_str();
  cmd->add_option("--seed", f->seed, "Random seed: the same seed gives the same text (default: random)");
}

absl::StatusOr<infer::SamplerParams> SamplerParamsFrom(const SamplingFlags& flags) {
  infer::SamplerParams p = flags.params;
  if (flags.seed.has_value()) {
    p.seed = *flags.seed;
  } else {
    std::random_device rd;
    p.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  if (absl::Status st = infer::ValidateSamplerParams(p); !st.ok()) return st;
  return p;
}

std::string TimingLine(const infer::GenerateResult& r) {
  const infer::GenerateTimings& t = r.timings;
  return fmt::format("prompt {} tokens ({} cached) {:.1f} ms, {:.1f} t/s | decode {} tokens {:.1f} ms, {:.1f} t/s | "
                     "sample {:.2f} ms | finish {}",
                     r.usage.prompt_tokens, r.usage.cached_tokens, t.prompt_ms, t.prompt_tokens_per_second(),
                     t.decode_tokens, t.decode_ms, t.decode_tokens_per_second(), t.sample_ms,
                     infer::FinishReasonName(r.finish));
}

}  // namespace cairn::cli
