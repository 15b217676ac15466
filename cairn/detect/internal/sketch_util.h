#pragma once
// Shared helpers of the sketch-based detectors (cardinality, heavy_hitters,
// novelty, drift): tail probabilities that turn their statistics into
// calibrated scores, and the wording of durations and counts in reasons.
// Stateless and thread-safe.

#include <cstdint>
#include <string>

namespace cairn::detect::internal {

// P(Z >= z) for a standard normal Z.
double NormalUpperTail(double z);

// P(X >= k) for X ~ Binomial(n, q), 0 <= q <= 1 (1 when k <= 0, 0 when k > n).
// Exact up to floating point: the regularized incomplete beta I_q(k, n - k + 1).
double BinomialUpperTail(uint64_t n, uint64_t k, double q);

// Kolmogorov's limiting distribution: P(K > lambda) = 2 sum_{j>=1} (-1)^(j-1)
// exp(-2 j^2 lambda^2), where K = sup |Brownian bridge|. 1 for lambda <= 0.
double KolmogorovUpperTail(double lambda);

// A score from a p-value: 1 - p, clamped to [0, 1] (NaN scores 0).
double ScoreFromP(double p);

// "1 h", "15 min", "30 s", "250 ms": the largest unit that divides `ms` exactly.
std::string FormatDuration(int64_t ms);

// 1234567 -> "1,234,567".
std::string GroupThousands(uint64_t n);

// A count estimate for a sentence: "912", "1,204", or "about 1.2 M" when large.
std::string FormatCount(double n);

// A value for a sentence: at most 4 significant digits, no exponent for
// ordinary magnitudes ("74.0", "81.3", "1.25", "0.0123").
std::string FormatValue(double v);

}  // namespace cairn::detect::internal
