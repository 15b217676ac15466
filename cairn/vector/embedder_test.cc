#include "cairn/vector/embedder.h"

#include <cmath>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "cairn/base/hash.h"

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

// The embedding as its definition states it, written plainly: words are the runs of ASCII
// letters and digits and of bytes >= 0x80, lower-cased; features are each word (weight 1),
// each pair of adjacent words joined by a space (0.7) and each 3-, 4- and 5-byte piece of
// "<word>" (0.35), hashed with a seed per family (and per piece length); a feature seen tf
// times adds sign(hash) * weight * (1 + ln tf) to bucket hash % dim; then the vector is
// normalized.
std::vector<float> Reference(std::string_view text, size_t dim) {
  std::vector<std::string> words;
  std::string cur;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      cur += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    } else if (!cur.empty()) {
      words.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(cur);
  std::map<uint64_t, std::pair<float, int>> features;
  for (size_t i = 0; i < words.size(); ++i) {
    features[Hash64(words[i], 0x5157a11e)] = {1.0f, features[Hash64(words[i], 0x5157a11e)].second + 1};
    if (i + 1 < words.size()) {
      const uint64_t h = Hash64(words[i] + " " + words[i + 1], 0xb16a3);
      features[h] = {0.7f, features[h].second + 1};
    }
    const std::string marked = "<" + words[i] + ">";
    for (size_t n = 3; n <= 5; ++n)
      for (size_t s = 0; s + n <= marked.size(); ++s) {
        const uint64_t h = Hash64(marked.substr(s, n), 0xc4a7 + n);
        features[h] = {0.35f, features[h].second + 1};
      }
  }
  std::vector<double> sum(dim);
  for (const auto& [h, f] : features) sum[h % dim] += ((h >> 63) ? -1.0 : 1.0) * f.first * (1 + std::log(f.second));
  double norm = 0;
  for (double v : sum) norm += v * v;
  std::vector<float> out(dim);
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(sum[i] / std::sqrt(norm));
  return out;
}

TEST(EmbedderHashing, MatchesItsDefinition) {
  for (size_t dim : {16, 64, 256}) {
    HashingEmbedder e(dim);
    for (const char* text : {"Pressure spike on press 7", "the the the pump pump, THE pump", "a",
                             "Zoë met Łukasz in São Paulo at 9:30 -- twice!", "x y x y x y x y",
                             "I met Bruno Novak to talk about the harbour and the boat engine."}) {
      auto got = e.Embed(text);
      ASSERT_TRUE(got.ok()) << text;
      std::vector<float> want = Reference(text, dim);
      for (size_t i = 0; i < dim; ++i) ASSERT_NEAR((*got)[i], want[i], 2e-6) << text << ", dim " << dim << ", " << i;
    }
  }
}

TEST(EmbedderFactory, Names) {
  EXPECT_NE(*MakeEmbedder("hash", 16), nullptr);
  EXPECT_EQ(*MakeEmbedder("none", 16), nullptr);
  EXPECT_FALSE(MakeEmbedder("bert", 16).ok());
}

}  // namespace
}  // namespace cairn::vector
