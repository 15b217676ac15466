#include "cairn/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace cairn::infer {
namespace {

// Most likely first; the lower id first on a tie, so the order (and with it every
// cut) never depends on how the candidates happened to be arranged.
bool Before(const TokenCandidate& a, const TokenCandidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Top-p keeps the shortest most-likely-first prefix whose probabilities reach `top_p`.
// Sorting all candidates (a whole 32 K vocabulary when no top-k runs first) costs
// milliseconds, paid per sequence per decode step, while the prefix is usually short.
// So: move the candidates with logit >= max - delta to the front, sort just those, and
// walk the running sum; if it reaches top_p inside them, that prefix is exactly the one a
// full sort would give (everything left out has a strictly lower logit, and the sum runs
// over the same values in the same order). If not, widen delta and repeat; at the end
// the whole set is sorted, as before.
void SortTopPPrefix(float max_logit, double z, float top_p, std::vector<TokenCandidate>* cands) {
  std::vector<TokenCandidate>& c = *cands;
  auto cut_within = [&](size_t m) {  // walks the sorted front [0, m); true when it cut
    double cum = 0.0;
    for (size_t i = 0; i < m; ++i) {
      cum += std::exp(static_cast<double>(c[i].logit) - max_logit) / z;
      if (cum >= top_p) {
        c.resize(i + 1);
        return true;
      }
    }
    return false;
  };
  for (float delta = 4.0f; delta < 64.0f && c.size() > 256; delta *= 2.0f) {
    const float threshold = max_logit - delta;
    const auto front_end =
        std::partition(c.begin(), c.end(), [&](const TokenCandidate& t) { return t.logit >= threshold; });
    const size_t m = static_cast<size_t>(front_end - c.begin());
    if (m == c.size()) break;  // nothing left out: sort the lot below
    std::sort(c.begin(), front_end, Before);
    if (cut_within(m)) return;
  }
  std::sort(c.begin(), c.end(), Before);
  cut_within(c.size());
}

}  // namespace

absl::Status ValidateSamplerParams(const SamplerParams& p) {
  auto bad = [](std::string_view name, double value, std::string_view want) {
    return absl::InvalidArgumentError(fmt::format("sampler: {} = {} ({})", name, value, want));
  };
  if (!std::isfinite(p.temperature)) return bad("temperature", p.temperature, "must be a number; 0 is greedy");
  if (!(p.top_p >= 0.0f) || !std::isfinite(p.top_p)) return bad("top_p", p.top_p, "must be in [0, 1]");
  if (!(p.min_p >= 0.0f) || !(p.min_p <= 1.0f)) return bad("min_p", p.min_p, "must be in [0, 1]");
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
    return bad("repeat_penalty", p.repeat_penalty, "must be > 0; 1 is off");
  }
  if (p.repeat_last_n < -1) return bad("repeat_last_n", p.repeat_last_n, "must be >= -1; -1 is the whole history");
  if (!std::isfinite(p.presence_penalty)) return bad("presence_penalty", p.presence_penalty, "must be a number");
  if (!std::isfinite(p.frequency_penalty)) return bad("frequency_penalty", p.frequency_penalty, "must be a number");
  return absl::OkStatus();
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::Accept(int32_t token) { history_.push_back(token); }

void Sampler::Accept(std::span<const int32_t> tokens) { history_.insert(history_.end(), tokens.begin(), tokens.end()); }

void Sampler::Reset() {
  history_.clear();
  rng_ = SplitMix64(params_.seed);
}

void Sampler::ApplyPenalties(std::vector<float>* logits) const {
  const SamplerParams& p = params_;
  if (p.repeat_last_n == 0 || history_.empty()) return;
  if (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) return;
  const size_t window = p.repeat_last_n < 0 ? history_.size()
                                            : std::min(history_.size(), static_cast<size_t>(p.repeat_last_n));
  // The window is short (64 by default): count by sorting a copy.
  std::vector<int32_t> seen(history_.end() - static_cast<std::ptrdiff_t>(window), history_.end());
  std::sort(seen.begin(), seen.end());
  for (size_t i = 0; i < seen.size();) {
    size_t j = i;
    while (j < seen.size() && seen[j] == seen[i]) ++j;
    const int32_t id = seen[i];
    const int count = static_cast<int>(j - i);
    i = j;
    if (id < 0 || static_cast<size_t>(id) >= logits->size()) continue;
    float& logit = (*logits)[static_cast<size_t>(id)];
    // Dividing a negative logit would raise it; llama.cpp multiplies instead.
    logit = logit <= 0.0f ? logit * p.repeat_penalty : logit / p.repeat_penalty;
    logit -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
  }
}

void Sampler::PrepareLogits(std::span<const float> logits) const {
  std::vector<float>& l = logits_;
  l.resize(logits.size());
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  // A NaN logit would poison every comparison; treat it as impossible.
  for (size_t i = 0; i < logits.size(); ++i) l[i] = std::isnan(logits[i]) ? kNegInf : logits[i];
  ApplyPenalties(&l);
}

bool Sampler::KeepsWholeVocabulary(size_t n) const {
  const SamplerParams& p = params_;
  return p.temperature > 0.0f && (p.top_k <= 0 || static_cast<size_t>(p.top_k) >= n) && p.top_p >= 1.0f &&
         p.min_p <= 0.0f;
}

void Sampler::Filter(std::span<const float> logits, std::vector<TokenCandidate>* out) const {
  std::vector<TokenCandidate>& c = *out;
  c.clear();
  if (logits.empty()) return;
  PrepareLogits(logits);
  const std::vector<float>& l = logits_;
  const size_t n = l.size();

  const SamplerParams& p = params_;
  if (p.temperature <= 0.0f) {
    const size_t best = static_cast<size_t>(std::max_element(l.begin(), l.end()) - l.begin());  // first of ties
    c.push_back({static_cast<int32_t>(best), l[best], 1.0});
    return;
  }

  // 2. top-k: one pass with a heap of the k best so far (its front the worst of
  // them); ids come in increasing order, so a later token replaces the worst only
  // with a strictly higher logit, which keeps the lower id on ties.
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    const size_t k = static_cast<size_t>(p.top_k);
    c.reserve(k);
    for (size_t i = 0; i < k; ++i) c.push_back({static_cast<int32_t>(i), l[i], 0.0});
    std::make_heap(c.begin(), c.end(), Before);
    float worst = c.front().logit;
    for (size_t i = k; i < n; ++i) {
      if (!(l[i] > worst)) continue;
      std::pop_heap(c.begin(), c.end(), Before);
      c.back() = {static_cast<int32_t>(i), l[i], 0.0};
      std::push_heap(c.begin(), c.end(), Before);
      worst = c.front().logit;
    }
  } else {
    c.resize(n);
    for (size_t i = 0; i < n; ++i) c[i] = {static_cast<int32_t>(i), l[i], 0.0};
  }

  // 3. top-p and 4. min-p. Both keep a most-likely-first prefix. min-p's cut (a
  // ratio to the best token's probability) does not depend on the normalization, so
  // the tokens below it can be set aside before sorting; top-p's running sum is over
  // the softmax of all current candidates, so its normalizer is taken first.
  const float max_logit = std::min_element(c.begin(), c.end(), Before)->logit;
  if (!std::isfinite(max_logit)) {  // every token ruled out (all -inf): the first is as good as any
    const auto first = std::min_element(c.begin(), c.end(), Before);
    c = {{first->id, first->logit, 1.0}};
    return;
  }
  double z = 0.0;
  for (const TokenCandidate& t : c) z += std::exp(static_cast<double>(t.logit) - max_logit);
  if (p.min_p > 0.0f) {
    const float threshold = max_logit + std::log(p.min_p);
    c.erase(std::partition(c.begin(), c.end(), [&](const TokenCandidate& t) { return t.logit >= threshold; }),
            c.end());
  }
  if (p.top_p < 1.0f) {
    SortTopPPrefix(max_logit, z, p.top_p, &c);
  } else {
    std::sort(c.begin(), c.end(), Before);
  }

  // 5. temperature, then the softmax the draw uses.
  for (TokenCandidate& t : c) t.logit /= p.temperature;
  const double top = c.front().logit;
  double sum = 0.0;
  for (TokenCandidate& t : c) {
    t.p = std::exp(static_cast<double>(t.logit) - top);
    sum += t.p;
  }
  for (TokenCandidate& t : c) t.p /= sum;
}

std::vector<TokenCandidate> Sampler::Candidates(std::span<const float> logits) const {
  std::vector<TokenCandidate> c;
  Filter(logits, &c);
  return c;
}

int32_t Sampler::DrawFromWholeVocabulary(std::span<const float> logits) {
  PrepareLogits(logits);
  const std::vector<float>& l = logits_;
  const size_t best = static_cast<size_t>(std::max_element(l.begin(), l.end()) - l.begin());  // first of ties
  // Every token ruled out (all -inf), or one certain (+inf): as in Filter, no draw.
  if (!std::isfinite(l[best]) || l.size() == 1) return static_cast<int32_t>(best);
  // The same softmax Filter computes (logits divided by T in float, exponents in double),
  // drawn in id order: no sort, one pass to weigh and one to find the draw.
  const float t = params_.temperature;
  const double top = static_cast<double>(l[best] / t);
  std::vector<double>& w = weights_;
  w.resize(l.size());
  double sum = 0.0;
  for (size_t i = 0; i < l.size(); ++i) {
    w[i] = std::exp(static_cast<double>(l[i] / t) - top);
    sum += w[i];
  }
  const double target = rng_.NextDouble() * sum;
  double cum = 0.0;
  size_t last = best;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] <= 0.0) continue;
    cum += w[i];
    last = i;
    if (target < cum) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(last);  // rounding left the sum a hair above the running total
}

int32_t Sampler::Sample(std::span<const float> logits) {
  if (logits.empty()) return 0;
  if (KeepsWholeVocabulary(logits.size())) return DrawFromWholeVocabulary(logits);
  Filter(logits, &scratch_);
  if (scratch_.empty()) return 0;
  if (scratch_.size() == 1) return scratch_.front().id;
  const double u = rng_.NextDouble();
  double cum = 0.0;
  for (const TokenCandidate& t : scratch_) {
    cum += t.p;
    if (u < cum) return t.id;
  }
  return scratch_.back().id;  // rounding left the sum a hair below 1
}

}  // namespace cairn::infer
