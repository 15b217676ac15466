#include "cairn/detect/internal/sketch_util.h"

#include <cmath>

#include <gtest/gtest.h>

namespace cairn::detect::internal {
namespace {

// P(X >= k) for Binomial(n, q) by direct summation, for small n.
double DirectBinomialTail(int n, int k, double q) {
  double total = 0.0;
  for (int j = k; j <= n; ++j) {
    total += std::exp(std::lgamma(n + 1.0) - std::lgamma(j + 1.0) - std::lgamma(n - j + 1.0) + j * std::log(q) +
                      (n - j) * std::log1p(-q));
  }
  return total;
}

TEST(SketchUtil, NormalTail) {
  EXPECT_NEAR(NormalUpperTail(0.0), 0.5, 1e-12);
  EXPECT_NEAR(NormalUpperTail(1.959964), 0.025, 1e-6);
  EXPECT_NEAR(NormalUpperTail(3.090232), 0.001, 1e-7);
  EXPECT_NEAR(NormalUpperTail(-1.644854), 0.95, 1e-6);
}

TEST(SketchUtil, BinomialTailMatchesDirectSum) {
  for (int n : {1, 5, 20, 100, 400}) {
    for (double q : {0.01, 0.2, 0.5, 0.93}) {
      for (int k = 0; k <= n; k += std::max(1, n / 13)) {
        const double want = k == 0 ? 1.0 : DirectBinomialTail(n, k, q);
        EXPECT_NEAR(BinomialUpperTail(n, k, q), want, 1e-9 + 1e-7 * want) << n << " " << k << " " << q;
      }
    }
  }
  EXPECT_EQ(BinomialUpperTail(10, 11, 0.5), 0.0);
  EXPECT_EQ(BinomialUpperTail(10, 0, 0.5), 1.0);
  EXPECT_EQ(BinomialUpperTail(10, 3, 0.0), 0.0);
  EXPECT_EQ(BinomialUpperTail(10, 3, 1.0), 1.0);
  // The normal branch for large variance: Binomial(1e6, 0.5) >= mean + 3 sd.
  EXPECT_NEAR(BinomialUpperTail(1'000'000, 501'500, 0.5), NormalUpperTail(2.999), 1e-4);
}

TEST(SketchUtil, KolmogorovTail) {
  // Classic critical values of the Kolmogorov distribution.
  EXPECT_NEAR(KolmogorovUpperTail(1.2238), 0.10, 5e-4);
  EXPECT_NEAR(KolmogorovUpperTail(1.3581), 0.05, 5e-4);
  EXPECT_NEAR(KolmogorovUpperTail(1.6276), 0.01, 5e-4);
  EXPECT_NEAR(KolmogorovUpperTail(1.9495), 0.001, 5e-5);
  EXPECT_NEAR(KolmogorovUpperTail(0.5), 0.9639, 1e-3);
  // The two series agree where they switch.
  EXPECT_NEAR(KolmogorovUpperTail(1.1799999), KolmogorovUpperTail(1.1800001), 1e-6);
  EXPECT_EQ(KolmogorovUpperTail(0.0), 1.0);
  EXPECT_EQ(KolmogorovUpperTail(-1.0), 1.0);
  EXPECT_LT(KolmogorovUpperTail(5.0), 1e-20);
}

TEST(SketchUtil, Wording) {
  EXPECT_EQ(FormatDuration(3'600'000), "1 h");
  EXPECT_EQ(FormatDuration(60'000), "1 min");
  EXPECT_EQ(FormatDuration(90'000), "90 s");
  EXPECT_EQ(FormatDuration(250), "250 ms");
  EXPECT_EQ(GroupThousands(0), "0");
  EXPECT_EQ(GroupThousands(999), "999");
  EXPECT_EQ(GroupThousands(1204), "1,204");
  EXPECT_EQ(GroupThousands(1234567), "1,234,567");
  EXPECT_EQ(FormatCount(912.4), "912");
  EXPECT_EQ(FormatValue(74.0), "74.0");
  EXPECT_EQ(FormatValue(81.25), "81.2");
  EXPECT_EQ(ScoreFromP(0.25), 0.75);
  EXPECT_EQ(ScoreFromP(std::nan("")), 0.0);
  EXPECT_EQ(ScoreFromP(-1.0), 1.0);
}

}  // namespace
}  // namespace cairn::detect::internal
