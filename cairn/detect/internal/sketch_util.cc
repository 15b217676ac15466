#include "cairn/detect/internal/sketch_util.h"

#include <math.h>  // lgamma_r: std::lgamma writes the global signgam, a data race between threads

#include <algorithm>
#include <cmath>
#include <numbers>

#include "fmt/format.h"

namespace cairn::detect::internal {
namespace {

double LogGamma(double x) {
  int sign = 0;
  return lgamma_r(x, &sign);
}

// Continued fraction of the incomplete beta function (modified Lentz), valid
// for x < (a + 1) / (a + b + 2), where it converges quickly.
double BetaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-14;
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 2000; ++m) {
    const double m2 = 2.0 * m;
    // Even step.
    double aa = m * (b - m) * x / ((a - 1.0 + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    // Odd step.
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1.0 + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1.0) < kEps) break;
  }
  return h;
}

// Regularized incomplete beta I_x(a, b) for a, b > 0, 0 < x < 1.
double RegularizedBeta(double a, double b, double x) {
  const double log_front =
      LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(log_front) * BetaContinuedFraction(a, b, x) / a;
  return 1.0 - std::exp(log_front) * BetaContinuedFraction(b, a, 1.0 - x) / b;
}

}  // namespace

double NormalUpperTail(double z) { return 0.5 * std::erfc(z / std::numbers::sqrt2); }

double BinomialUpperTail(uint64_t n, uint64_t k, double q) {
  if (k == 0) return 1.0;
  if (k > n || q <= 0.0) return 0.0;
  if (q >= 1.0) return 1.0;
  const double nd = static_cast<double>(n);
  const double kd = static_cast<double>(k);
  const double var = nd * q * (1.0 - q);
  // The continued fraction needs O(sqrt(var)) steps; far from the tails' shape
  // problems (skewness (1 - 2q) / sqrt(var) < 0.03) the normal approximation with
  // continuity correction is as good to the precision a score needs.
  if (var > 1000.0) return NormalUpperTail((kd - 0.5 - nd * q) / std::sqrt(var));
  return std::clamp(RegularizedBeta(kd, nd - kd + 1.0, q), 0.0, 1.0);
}

double KolmogorovUpperTail(double lambda) {
  if (!(lambda > 0.0)) return 1.0;
  constexpr double kPi = std::numbers::pi;
  if (lambda < 1.18) {
    // The theta-function form, which converges fast for small lambda.
    const double w = kPi * kPi / (8.0 * lambda * lambda);
    double sum = 0.0;
    for (int j = 1; j <= 9; j += 2) sum += std::exp(-static_cast<double>(j * j) * w);
    return std::clamp(1.0 - std::sqrt(2.0 * kPi) / lambda * sum, 0.0, 1.0);
  }
  double sum = 0.0;
  double sign = 1.0;
  for (int j = 1; j <= 100; ++j) {
    const double term = std::exp(-2.0 * j * j * lambda * lambda);
    sum += sign * term;
    if (term < 1e-18) break;
    sign = -sign;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

double ScoreFromP(double p) {
  if (!(p == p)) return 0.0;
  return std::clamp(1.0 - p, 0.0, 1.0);
}

std::string FormatDuration(int64_t ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{} h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{} min", ms / 60'000);
  if (ms != 0 && ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
  return fmt::format("{} ms", ms);
}

std::string GroupThousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  const size_t len = digits.size();
  for (size_t i = 0; i < len; ++i) {
    if (i > 0 && (len - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string FormatCount(double n) {
  if (!(n >= 0.0)) return "0";
  if (n >= 1e7) return fmt::format("about {:.3g} M", n / 1e6);
  return GroupThousands(static_cast<uint64_t>(std::llround(n)));
}

std::string FormatValue(double v) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  const double a = std::fabs(v);
  if (a != 0.0 && (a >= 1e7 || a < 1e-4)) return fmt::format("{:.4g}", v);
  if (a >= 1000.0) return fmt::format("{:.0f}", v);
  if (a >= 10.0) return fmt::format("{:.1f}", v);
  if (a >= 1.0) return fmt::format("{:.2f}", v);
  return fmt::format("{:.3g}", v);
}

}  // namespace cairn::detect::internal
