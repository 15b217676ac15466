// cairn/base/random.h — deterministic random streams for tests, benchmarks and the demo:
// SplitMix64, and a fast Zipf(s) generator over [1..n].
//
// For tests, micro benchmarks and the CLI benchmark: P(k) is proportional to k^-s for
// k in 1..n (rank 1 is the most frequent). Any s > 0 (including s == 1) and any
// n >= 1. Sampling is O(1) with no table: rejection-inversion (W. Hörmann and
// G. Derflinger, "Rejection-inversion to generate variates from monotone discrete
// distributions", 1996), a handful of exp/log per draw and a rejection rate that
// is small for every s. The stream depends only on (n, s, seed) and on the host's
// libm (exp/log/expm1/log1p), so it is reproducible on one platform; tests that
// use it must check statistical bounds, not exact values.
//
// Not thread-safe (it owns its random state); cheap to copy.
#pragma once

#include <cassert>
#include <cmath>
#include <cstdint>

namespace cairn {

// splitmix64: a small, fast, well-mixed 64-bit generator for fixed-seed streams.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

class ZipfGenerator {
 public:
  // n >= 1, s > 0 (programmer errors otherwise).
  ZipfGenerator(uint64_t n, double s, uint64_t seed) : n_(n), s_(s), rng_(seed) {
    assert(n >= 1 && s > 0 && std::isfinite(s));
    // The sampler draws x from the continuous density proportional to
    // (x)^-s on [0.5, n + 0.5] by inverting its integral H, rounds to the nearest
    // integer k, and accepts k when the area under the continuous curve on
    // [k - 0.5, k + 0.5] is at most k^-s (the discrete mass) — the rest is rejected.
    // Rank 1 gets the mass to the left of 1.5 directly (h_integral_x1_).
    h_integral_x1_ = HIntegral(1.5) - 1.0;
    h_integral_n_ = HIntegral(static_cast<double>(n) + 0.5);
    squeeze_ = 2.0 - HIntegralInverse(HIntegral(2.5) - H(2.0));
  }

  uint64_t Next() {
    for (;;) {
      const double u =
          h_integral_n_ + rng_.NextDouble() * (h_integral_x1_ - h_integral_n_);
      const double x = HIntegralInverse(u);
      double kd = std::floor(x + 0.5);
      if (kd < 1.0) kd = 1.0;
      if (kd > static_cast<double>(n_)) kd = static_cast<double>(n_);
      // The squeeze accepts most draws without evaluating H again.
      if (kd - x <= squeeze_ || u >= HIntegral(kd + 0.5) - H(kd)) {
        return static_cast<uint64_t>(kd);
      }
    }
  }

  uint64_t n() const { return n_; }
  double s() const { return s_; }

 private:
  // h(x) = x^-s, the unnormalized probability of rank x.
  double H(double x) const { return std::exp(-s_ * std::log(x)); }

  // An antiderivative of h: (x^(1-s) - 1) / (1 - s), or log(x) when s == 1,
  // evaluated without cancellation near s == 1.
  double HIntegral(double x) const {
    const double log_x = std::log(x);
    return ExpM1OverX((1.0 - s_) * log_x) * log_x;
  }

  // The inverse of HIntegral.
  double HIntegralInverse(double y) const {
    double t = y * (1.0 - s_);
    if (t < -1.0) t = -1.0;  // guards rounding at the far end of the range
    return std::exp(Log1pOverX(t) * y);
  }

  // expm1(x) / x, continuous at 0.
  static double ExpM1OverX(double x) {
    if (std::fabs(x) > 1e-8) return std::expm1(x) / x;
    return 1.0 + x * 0.5 * (1.0 + x / 3.0);
  }
  // log1p(x) / x, continuous at 0.
  static double Log1pOverX(double x) {
    if (std::fabs(x) > 1e-8) return std::log1p(x) / x;
    return 1.0 - x * (0.5 - x / 3.0);
  }

  uint64_t n_;
  double s_;
  SplitMix64 rng_;
  double h_integral_x1_ = 0;
  double h_integral_n_ = 0;
  double squeeze_ = 0;
};

}  // namespace cairn
