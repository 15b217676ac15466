// cairn/infer/sampler.h — choosing the next token from a model's logits.
//
// A Sampler turns one row of logits into one token id. The steps run in llama.cpp's
// default order (common_params_sampling's samplers list, with the ones cairn does not
// have left out):
//
//   1. penalties    over the last `repeat_last_n` tokens of the history: a token seen
//                   there has its logit divided by `repeat_penalty` (multiplied when
//                   the logit is negative), then `frequency_penalty` x its count and
//                   `presence_penalty` once are subtracted;
//   2. top-k        keeps the k highest logits;
//   3. top-p        keeps the smallest set of most likely tokens whose probabilities
//                   (softmax of the logits as they are now, temperature 1) add up to
//                   at least p;
//   4. min-p        keeps the tokens whose probability is at least min_p times the
//                   most likely token's;
//   5. temperature  divides the remaining logits by T; then one token is drawn from
//                   their softmax.
//
// Temperature 0 (or below) is greedy decoding: the highest logit after the penalties
// (the lowest id on a tie); the filters and the random stream are skipped. Every
// filter keeps at least one token.
//
// Reproducibility: the draw uses SplitMix64 (cairn/base/random.h) seeded from
// `seed`, one 53-bit uniform per drawn token, and the probabilities are summed in
// double in a fixed order, so the same seed, logits and history give the same tokens
// on every run and at any thread count (the sampler itself is single-threaded). The
// order is most likely first after a cut, and token id order when no filter cuts
// (temperature > 0 with top-k, top-p and min-p off, the OpenAI API's defaults), which
// spares sorting the whole vocabulary for every token.
//
// Cost (cairn_infer_bench --benchmark_filter=Sample, 32 K vocabulary): a draw from the
// whole vocabulary or a top-p cut over a peaked distribution is a few hundred
// microseconds or less; top-p over a nearly flat distribution still sorts most of it.
//
// Thread-safety: a Sampler belongs to one generation stream; not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cairn/base/random.h"

namespace cairn::infer {

struct SamplerParams {
  float temperature = 0.8f;     // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;   // the look-back window of all penalties; 0: off, -1: the whole history
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;

  // Greedy decoding with no penalties (what `--temp 0` gives).
  static SamplerParams Greedy() {
    SamplerParams p;
    p.temperature = 0.0f;
    return p;
  }
};

// InvalidArgument naming the parameter for values that make no sense (NaN, a negative
// top_p, repeat_penalty <= 0, repeat_last_n < -1, ...).
absl::Status ValidateSamplerParams(const SamplerParams& params);

// A token still in the running after the filters, with its probability.
struct TokenCandidate {
  int32_t id = 0;
  float logit = 0.0f;  // after penalties and temperature
  double p = 0.0;      // softmax over the candidates
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  const SamplerParams& params() const { return params_; }

  // Adds a token to the history the penalties look at: the prompt's tokens and every
  // token chosen (llama.cpp's common_sampler_accept).
  void Accept(int32_t token);
  void Accept(std::span<const int32_t> tokens);
  // Forgets the history and restarts the random stream from the seed.
  void Reset();
  const std::vector<int32_t>& history() const { return history_; }

  // The next token for `logits` (one value per vocabulary entry). Does not Accept it.
  int32_t Sample(std::span<const float> logits);

  // The candidates the draw would choose from, most likely first (for greedy, the one
  // token Sample returns). Deterministic; does not touch the random stream.
  std::vector<TokenCandidate> Candidates(std::span<const float> logits) const;

 private:
  // Applies steps 1-5 to `c` (filled from the logits), leaving it sorted by logit
  // descending with softmax probabilities.
  void Filter(std::span<const float> logits, std::vector<TokenCandidate>* c) const;
  void ApplyPenalties(std::vector<float>* logits) const;
  // Copies the logits into logits_ with NaN made -inf and the penalties applied.
  void PrepareLogits(std::span<const float> logits) const;
  // No filter would remove a token (temperature > 0, top-k, top-p and min-p off): the
  // draw needs no sorted candidate list.
  bool KeepsWholeVocabulary(size_t n) const;
  int32_t DrawFromWholeVocabulary(std::span<const float> logits);

  SamplerParams params_;
  SplitMix64 rng_;
  std::vector<int32_t> history_;
  std::vector<TokenCandidate> scratch_;
  mutable std::vector<float> logits_;  // scratch of Filter
  std::vector<double> weights_;        // scratch of DrawFromWholeVocabulary
};

}  // namespace cairn::infer
