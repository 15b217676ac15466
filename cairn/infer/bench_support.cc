#include "cairn/infer/bench_support.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "cairn/base/random.h"
#include "cairn/base/status.h"
#include "cairn/infer/kernels.h"

namespace cairn::infer {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int32_t> RandomTokens(int n, int32_t n_vocab, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = static_cast<int32_t>(rng.Next() % static_cast<uint64_t>(n_vocab));
  return t;
}

void MeanStddev(const std::vector<double>& v, double* mean, double* stddev) {
  double s = 0;
  for (double x : v) s += x;
  *mean = s / static_cast<double>(v.size());
  double d = 0;
  for (double x : v) d += (x - *mean) * (x - *mean);
  *stddev = v.size() > 1 ? std::sqrt(d / static_cast<double>(v.size() - 1)) : 0.0;
}

}  // namespace

absl::StatusOr<InferBenchResult> BenchInfer(const Model& model, const InferBenchOptions& options) {
  if (options.n_prompt < 0 || options.n_decode < 0 || options.repetitions < 1) {
    return absl::InvalidArgumentError(fmt::format("bench: bad options (prompt {}, decode {}, repetitions {})",
                                                  options.n_prompt, options.n_decode, options.repetitions));
  }
  const ModelConfig& c = model.config();
  const bool encoder = c.is_encoder();
  InferBenchResult r;
  r.n_threads = std::max(1, options.n_threads);
  r.repetitions = options.repetitions;
  r.isa = std::string(ActiveIsaDescription());
  r.n_prompt = encoder ? std::min<int>(options.n_prompt, static_cast<int>(c.n_ctx_train)) : options.n_prompt;
  r.n_decode = encoder ? 0 : options.n_decode;

  ContextOptions co;
  const uint32_t needed = static_cast<uint32_t>(std::max({r.n_prompt, r.n_decode, 1}));
  if (needed > c.n_ctx_train) {
    return absl::InvalidArgumentError(fmt::format("bench: {} tokens do not fit the model's context of {}", needed,
                                                  c.n_ctx_train));
  }
  co.n_ctx = needed;
  co.n_batch = encoder ? needed : options.n_batch;
  co.n_threads = r.n_threads;
  co.kv_type = options.kv_type;
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, co));

  const std::vector<int32_t> prompt = RandomTokens(r.n_prompt, model.n_vocab(), options.seed);
  const std::vector<int32_t> steps = RandomTokens(r.n_decode, model.n_vocab(), options.seed + 1);
  auto run_prompt = [&]() -> absl::Status {
    if (encoder) return session->Embed(prompt, Pooling::kMean).status();
    CAIRN_RETURN_IF_ERROR(session->Truncate(0));
    return session->Decode(prompt).status();
  };
  auto run_decode = [&](int n) -> absl::Status {
    CAIRN_RETURN_IF_ERROR(session->Truncate(0));
    for (int i = 0; i < n; ++i) CAIRN_RETURN_IF_ERROR(session->Decode(std::span(&steps[i], 1)).status());
    return absl::OkStatus();
  };
  auto seconds_since = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };

  // Warm-up: pages the weights in and wakes the pool.
  if (r.n_prompt > 0) CAIRN_RETURN_IF_ERROR(run_prompt());
  if (r.n_decode > 0) CAIRN_RETURN_IF_ERROR(run_decode(std::min(r.n_decode, 4)));

  std::vector<double> pp, tg;
  for (int rep = 0; rep < options.repetitions; ++rep) {
    if (r.n_prompt > 0) {
      const Clock::time_point t0 = Clock::now();
      CAIRN_RETURN_IF_ERROR(run_prompt());
      pp.push_back(r.n_prompt / seconds_since(t0));
    }
    if (r.n_decode > 0) {
      const Clock::time_point t0 = Clock::now();
      CAIRN_RETURN_IF_ERROR(run_decode(r.n_decode));
      tg.push_back(r.n_decode / seconds_since(t0));
    }
  }
  r.prompt_samples = pp;
  r.decode_samples = tg;
  if (!pp.empty()) MeanStddev(pp, &r.prompt_tokens_per_s, &r.prompt_stddev);
  if (!tg.empty()) MeanStddev(tg, &r.decode_tokens_per_s, &r.decode_stddev);
  return r;
}

}  // namespace cairn::infer
