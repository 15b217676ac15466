// Sampler: each filter on hand-made logits, the penalties, seeding, and a chi-square
// check that the draw follows the softmax.
#include "cairn/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"

namespace cairn::infer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Everything off: the draw is the plain softmax of the logits.
SamplerParams Plain(float temperature = 1.0f) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

std::vector<int32_t> Ids(const std::vector<TokenCandidate>& c) {
  std::vector<int32_t> ids;
  for (const TokenCandidate& t : c) ids.push_back(t.id);
  return ids;
}

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::vector<float> RandomLogits(int n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> l(static_cast<size_t>(n));
  for (float& x : l) x = static_cast<float>(rng.NextDouble() * 8.0 - 4.0);
  return l;
}

TEST(SamplerTest, GreedyPicksArgmax) {
  Sampler s(SamplerParams::Greedy());
  EXPECT_EQ(s.Sample(std::vector<float>{0.1f, 2.0f, -1.0f, 1.9f}), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{-5.0f, -3.0f, -4.0f}), 1);
  // A tie goes to the lower id.
  EXPECT_EQ(s.Sample(std::vector<float>{1.0f, 3.0f, 3.0f}), 1);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::vector<float> l = RandomLogits(500, seed);
    EXPECT_EQ(s.Sample(l), std::max_element(l.begin(), l.end()) - l.begin());
  }
  EXPECT_THAT(Ids(s.Candidates(std::vector<float>{0.0f, 5.0f, 1.0f})), ElementsAre(1));
}

TEST(SamplerTest, TopKOneEqualsGreedy) {
  SamplerParams p = Plain(1.5f);
  p.top_k = 1;
  p.seed = 7;
  Sampler s(p);
  Sampler greedy(SamplerParams::Greedy());
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    std::vector<float> l = RandomLogits(300, seed);
    EXPECT_EQ(s.Sample(l), greedy.Sample(l)) << "seed " << seed;
  }
}

TEST(SamplerTest, TopKKeepsTheKHighest) {
  SamplerParams p = Plain();
  p.top_k = 3;
  Sampler s(p);
  EXPECT_THAT(Ids(s.Candidates(std::vector<float>{0.5f, 4.0f, -1.0f, 3.0f, 2.0f, 1.0f})), ElementsAre(1, 3, 4));
  // k larger than the vocabulary keeps everything.
  p.top_k = 10;
  EXPECT_EQ(Sampler(p).Candidates(std::vector<float>{1, 2, 3}).size(), 3u);
}

TEST(SamplerTest, TopPCutsTheSmallestSetReachingP) {
  // Probabilities 0.5, 0.25, 0.15, 0.07, 0.03 (ids shuffled).
  const std::vector<float> l = LogitsOf({0.07, 0.5, 0.03, 0.25, 0.15});
  SamplerParams p = Plain();
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.75: two tokens
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1, 3));
  p.top_p = 0.8f;  // 0.75 < 0.8 <= 0.9: three
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1, 3, 4));
  p.top_p = 0.95f;  // 0.9 < 0.95 <= 0.97: four
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1, 3, 4, 0));
  p.top_p = 0.3f;  // the first token alone reaches it
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1));
  p.top_p = 0.0f;  // still keeps one
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1));
  p.top_p = 1.0f;  // off
  EXPECT_EQ(Sampler(p).Candidates(l).size(), 5u);
  // The kept set is renormalized.
  p.top_p = 0.7f;
  std::vector<TokenCandidate> c = Sampler(p).Candidates(l);
  EXPECT_NEAR(c[0].p, 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(c[1].p, 1.0 / 3.0, 1e-6);
}

// Top-p sorts only a front of likely candidates when that front already reaches p; the
// kept list must be exactly the one a sort of every candidate gives.
TEST(SamplerTest, TopPOverALargeVocabularyMatchesAFullSort) {
  for (uint64_t seed = 0; seed < 40; ++seed) {
    SplitMix64 rng(seed);
    const double spread = 0.2 + 40.0 * rng.NextDouble();  // from nearly flat to very peaked
    std::vector<float> l(5000);
    for (float& x : l) x = static_cast<float>(spread * rng.NextDouble() * rng.NextDouble());
    l[rng.Next() % l.size()] = -std::numeric_limits<float>::infinity();
    SamplerParams p = Plain();
    p.top_p = static_cast<float>(0.05 + 0.94 * rng.NextDouble());
    // The reference: every candidate sorted most likely first, lower id on ties.
    std::vector<int32_t> order(l.size());
    for (size_t i = 0; i < l.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      const float la = l[static_cast<size_t>(a)], lb = l[static_cast<size_t>(b)];
      return la > lb || (la == lb && a < b);
    });
    const double max_logit = l[static_cast<size_t>(order[0])];
    double z = 0.0;
    for (float x : l) z += std::exp(static_cast<double>(x) - max_logit);
    std::vector<int32_t> want;
    double cum = 0.0;
    for (int32_t id : order) {
      want.push_back(id);
      cum += std::exp(static_cast<double>(l[static_cast<size_t>(id)]) - max_logit) / z;
      if (cum >= p.top_p) break;
    }
    EXPECT_EQ(Ids(Sampler(p).Candidates(l)), want) << "seed " << seed << " spread " << spread << " top_p " << p.top_p;
  }
}

// With no filter cutting, the draw skips the candidate list; the penalties and the
// special logits must still count.
TEST(SamplerTest, WholeVocabularyDrawSeesPenaltiesAndOddLogits) {
  SamplerParams p = Plain();
  p.presence_penalty = 1000.0f;
  Sampler s(p);
  s.Accept(2);
  for (int i = 0; i < 200; ++i) EXPECT_NE(s.Sample(std::vector<float>{0.0f, 0.0f, 50.0f, 0.0f}), 2);
  Sampler t(Plain());
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(t.Sample(std::vector<float>{-kInf, -kInf, -kInf}), 0);
  EXPECT_EQ(t.Sample(std::vector<float>{0.0f, kInf, 3.0f, kInf}), 1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(t.Sample(std::vector<float>{nan, 1.0f, -kInf, nan}), 1);
  EXPECT_EQ(t.Sample(std::vector<float>{}), 0);
}

TEST(SamplerTest, TopPIsTakenOverTheTopKSurvivors) {
  // After top-k = 2 the two survivors have probabilities 2/3 and 1/3.
  const std::vector<float> l = LogitsOf({0.4, 0.2, 0.4 * 0.5, 0.1, 0.1});
  SamplerParams p = Plain();
  p.top_k = 2;
  p.top_p = 0.6f;
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(0));
  p.top_p = 0.7f;
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(0, 1));
}

TEST(SamplerTest, MinPKeepsTokensWithinTheRatioOfTheBest) {
  // Probabilities 0.4, 0.3, 0.15, 0.1, 0.05: ratios to the best 1, 0.75, 0.375, 0.25, 0.125.
  const std::vector<float> l = LogitsOf({0.1, 0.4, 0.05, 0.3, 0.15});
  SamplerParams p = Plain();
  p.min_p = 0.3f;
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1, 3, 4));
  p.min_p = 0.2f;
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1, 3, 4, 0));
  p.min_p = 0.8f;
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1));
  p.min_p = 1.0f;  // only the best (and any tie with it)
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1));
  // With top-p first: top-p 0.8 keeps {1, 3, 4} (0.85), min-p 0.5 then {1, 3}.
  p.top_p = 0.8f;
  p.min_p = 0.5f;
  EXPECT_THAT(Ids(Sampler(p).Candidates(l)), ElementsAre(1, 3));
}

TEST(SamplerTest, TemperatureScalesTheKeptLogits) {
  const std::vector<float> l = {2.0f, 1.0f, 0.0f};
  std::vector<TokenCandidate> c = Sampler(Plain(0.5f)).Candidates(l);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_FLOAT_EQ(c[0].logit, 4.0f);
  EXPECT_FLOAT_EQ(c[2].logit, 0.0f);
  const double z = std::exp(4.0) + std::exp(2.0) + 1.0;
  EXPECT_NEAR(c[0].p, std::exp(4.0) / z, 1e-9);
  EXPECT_NEAR(c[1].p, std::exp(2.0) / z, 1e-9);
}

TEST(SamplerTest, PenaltiesChangeExactlyTheTokensSeen) {
  const std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  SamplerParams p = Plain();
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.25f;
  p.presence_penalty = 0.5f;
  Sampler s(p);
  s.Accept(std::vector<int32_t>{0, 1, 0, 0});  // 0 three times, 1 once
  std::vector<TokenCandidate> c = s.Candidates(l);
  std::vector<float> got(l.size());
  for (const TokenCandidate& t : c) got[static_cast<size_t>(t.id)] = t.logit;
  EXPECT_FLOAT_EQ(got[0], 2.0f / 2.0f - 3 * 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(got[1], -1.0f * 2.0f - 1 * 0.25f - 0.5f);  // negative: multiplied
  for (size_t i = 2; i < l.size(); ++i) EXPECT_FLOAT_EQ(got[i], l[i]) << "token " << i;

  // The window: only the last repeat_last_n tokens count.
  p.repeat_last_n = 2;
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.0f;
  Sampler w(p);
  w.Accept(std::vector<int32_t>{3, 5, 2});
  c = w.Candidates(l);
  for (const TokenCandidate& t : c) got[static_cast<size_t>(t.id)] = t.logit;
  EXPECT_FLOAT_EQ(got[3], 3.0f);  // outside the window
  EXPECT_FLOAT_EQ(got[5], 0.5f);
  EXPECT_FLOAT_EQ(got[2], 0.25f);
  // repeat_last_n = 0 turns every penalty off.
  p.repeat_last_n = 0;
  Sampler off(p);
  off.Accept(std::vector<int32_t>{3, 5, 2});
  for (const TokenCandidate& t : off.Candidates(l)) EXPECT_FLOAT_EQ(t.logit, l[static_cast<size_t>(t.id)]);
}

TEST(SamplerTest, GreedySeesThePenalties) {
  SamplerParams p = SamplerParams::Greedy();
  p.repeat_penalty = 4.0f;
  Sampler s(p);
  const std::vector<float> l = {1.0f, 3.0f, 2.0f};
  EXPECT_EQ(s.Sample(l), 1);
  s.Accept(1);
  EXPECT_EQ(s.Sample(l), 2);  // 3 / 4 < 2
  s.Reset();
  EXPECT_EQ(s.Sample(l), 1);
}

TEST(SamplerTest, SameSeedSameSequence) {
  SamplerParams p;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, T 0.8
  p.temperature = 1.5f;
  p.min_p = 0.0f;
  p.seed = 1234;
  auto run = [&](uint64_t seed) {
    SamplerParams q = p;
    q.seed = seed;
    Sampler s(q);
    std::vector<int32_t> out;
    for (uint64_t i = 0; i < 200; ++i) out.push_back(s.Sample(RandomLogits(1000, i)));
    return out;
  };
  const std::vector<int32_t> a = run(1234);
  EXPECT_EQ(a, run(1234));
  EXPECT_NE(a, run(1235));
  // Reset restarts the stream.
  Sampler s(p);
  const int32_t first = s.Sample(RandomLogits(1000, 0));
  s.Sample(RandomLogits(1000, 1));
  s.Reset();
  EXPECT_EQ(s.Sample(RandomLogits(1000, 0)), first);
}

// Pearson's chi-square of `draws` samples against the softmax of `logits` / T.
double ChiSquare(const std::vector<float>& logits, float temperature, int draws, uint64_t seed) {
  SamplerParams p = Plain(temperature);
  p.seed = seed;
  Sampler s(p);
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(s.Sample(logits))];
  double z = 0.0;
  for (float l : logits) z += std::exp(l / temperature);
  double chi2 = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double expected = draws * std::exp(logits[i] / temperature) / z;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

TEST(SamplerTest, DrawsFollowTheSoftmax) {
  // 8 tokens, 7 degrees of freedom: the 0.999 quantile of chi-square(7) is 24.32.
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, 1.5f, -1.0f, 0.2f, 0.8f};
  for (uint64_t seed : {1u, 2u, 3u}) {
    EXPECT_LT(ChiSquare(logits, 1.0f, 20000, seed), 24.32) << "seed " << seed;
    EXPECT_LT(ChiSquare(logits, 0.6f, 20000, seed), 24.32) << "seed " << seed;
  }
  // The test has power: sampling at T = 1 is far from the T = 0.6 distribution.
  SamplerParams p = Plain(1.0f);
  p.seed = 9;
  Sampler s(p);
  std::vector<int> counts(logits.size());
  for (int i = 0; i < 20000; ++i) ++counts[static_cast<size_t>(s.Sample(logits))];
  double z = 0.0;
  for (float l : logits) z += std::exp(l / 0.6);
  double chi2 = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double e = 20000 * std::exp(logits[i] / 0.6) / z;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  EXPECT_GT(chi2, 100.0);
}

TEST(SamplerTest, ValidatesParams) {
  SamplerParams p;
  EXPECT_TRUE(ValidateSamplerParams(p).ok());
  p.top_p = -0.1f;
  EXPECT_THAT(std::string(ValidateSamplerParams(p).message()), HasSubstr("top_p"));
  p = SamplerParams();
  p.repeat_penalty = 0.0f;
  EXPECT_THAT(std::string(ValidateSamplerParams(p).message()), HasSubstr("repeat_penalty"));
  p = SamplerParams();
  p.temperature = NAN;
  EXPECT_FALSE(ValidateSamplerParams(p).ok());
  p = SamplerParams();
  p.repeat_last_n = -2;
  EXPECT_FALSE(ValidateSamplerParams(p).ok());
}

TEST(SamplerTest, OddLogits) {
  Sampler s(Plain());
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(s.Sample(std::vector<float>{-inf, 0.0f, -inf}), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{NAN, -inf, 1.0f}), 2);
  EXPECT_EQ(s.Sample(std::vector<float>{-inf, -inf}), 0);
  EXPECT_EQ(s.Sample(std::vector<float>{}), 0);
}

}  // namespace
}  // namespace cairn::infer
