#include "cairn/vector/embedder.h"

#include <cmath>

#include <gtest/gtest.h>

namespace cairn::vector {
namespace {

float Cos(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] * b[i];
  return static_cast<float>(d);
}

TEST(EmbedderHashing, NormalizedAndDeterministic) {
  HashingEmbedder e(128);
  auto a = e.Embed("Pressure spike on press 7");
  ASSERT_TRUE(a.ok());
  double n = 0;
  for (float v : *a) n += v * v;
  EXPECT_NEAR(n, 1.0, 1e-5);
  EXPECT_EQ(*a, *e.Embed("pressure SPIKE on press 7!"));  // case and punctuation do not matter
  EXPECT_FALSE(e.Embed("  ...  ").ok());
  std::vector<float> wrong(3);
  EXPECT_FALSE(e.Embed("x", wrong).ok());
}

TEST(EmbedderHashing, ParaphrasesAreCloserThanUnrelatedText) {
  HashingEmbedder e(256);
  auto q = *e.Embed("the hydraulic pump on press 7 is overheating");
  auto para = *e.Embed("press 7 hydraulic pumps overheated again");
  auto unrelated = *e.Embed("quarterly invoice sent to the customer by email");
  auto para2 = *e.Embed("overheating of the pump");
  EXPECT_GT(Cos(q, para), Cos(q, unrelated) + 0.2f);
  EXPECT_GT(Cos(q, para2), Cos(q, unrelated) + 0.1f);
  // Character n-grams connect inflections: "pumps" is closer to "pump" than to "valve".
  EXPECT_GT(Cos(*e.Embed("pumps"), *e.Embed("pump")), Cos(*e.Embed("valve"), *e.Embed("pump")) + 0.3f);
}

TEST(EmbedderFactory, Names) {
  EXPECT_NE(*MakeEmbedder("hash", 16), nullptr);
  EXPECT_EQ(*MakeEmbedder("none", 16), nullptr);
  EXPECT_FALSE(MakeEmbedder("bert", 16).ok());
}

}  // namespace
}  // namespace cairn::vector
