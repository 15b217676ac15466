#include "cairn/infer/pretokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::infer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Split(std::string_view name, std::string_view text) {
  auto pre = PreTokenizer::Create(name);
  EXPECT_TRUE(pre.ok()) << pre.status();
  if (!pre.ok()) return {};
  std::vector<std::string_view> words;
  (*pre)->Split(text, &words);
  std::string joined;
  for (std::string_view w : words) joined += w;
  EXPECT_EQ(joined, text) << "words must concatenate back to the text";
  return {words.begin(), words.end()};
}

TEST(PreTokenizerTest, Gpt2) {
  EXPECT_THAT(Split("gpt-2", "Hello, y'all!  How are you 123"),
              ElementsAre("Hello", ",", " y", "'", "all", "!", " ", " How", " are", " you", " 123"));
  EXPECT_THAT(Split("gpt-2", "it's\n =\t"), ElementsAre("it", "'s", "\n", " =", "\t"));
}

TEST(PreTokenizerTest, Llama3GroupsDigitsInThreesAndKeepsNewlineRuns) {
  EXPECT_THAT(Split("llama-bpe", "12345 abc\n\n  x"), ElementsAre("123", "45", " abc", "\n\n", " ", " x"));
  EXPECT_THAT(Split("llama3", "I'M here"), ElementsAre("I", "'M", " here"));  // contractions ignore case
}

TEST(PreTokenizerTest, DigitsOneByOne) {
  EXPECT_THAT(Split("qwen2", "abc12"), ElementsAre("abc", "1", "2"));
  EXPECT_THAT(Split("smollm", "x 2024!"), ElementsAre("x", " ", "2", "0", "2", "4", "!"));
}

TEST(PreTokenizerTest, DefaultSplitsPunctuationRunsAndDigitTriples) {
  EXPECT_THAT(Split("", "a+b 123456"), ElementsAre("a", "+", "b", " ", "123", "456"));
  EXPECT_THAT(Split("default", "a+b 123456"), ElementsAre("a", "+", "b", " ", "123", "456"));
}

TEST(PreTokenizerTest, NextLineIsWhitespace) {
  // U+0085 is White_Space for Hugging Face's regex engine, not for PCRE2's \s by default.
  EXPECT_THAT(Split("gpt-2", "a\u0085\u0085b"), ElementsAre("a", "\u0085", "\u0085", "b"));
}

TEST(PreTokenizerTest, InvalidUtf8EndsUpBetweenMatches) {
  EXPECT_THAT(Split("gpt-2", "ab\xFF" "cd"), ElementsAre("ab", "\xFF", "cd"));
  EXPECT_THAT(Split("llama3", "\xC3"), ElementsAre("\xC3"));
  EXPECT_TRUE(Split("gpt-2", "").empty());
}

TEST(PreTokenizerTest, EveryKnownNameCompiles) {
  for (const std::string& name : PreTokenizer::KnownNames()) {
    auto pre = PreTokenizer::Create(name);
    ASSERT_TRUE(pre.ok()) << name << ": " << pre.status();
    std::vector<std::string_view> words;
    (*pre)->Split("Hello world 12345 ÄÖü 中文 ... \n\n!", &words);
    EXPECT_FALSE(words.empty()) << name;
  }
}

TEST(PreTokenizerTest, UnknownNameIsAnError) {
  auto pre = PreTokenizer::Create("no-such-model");
  ASSERT_FALSE(pre.ok());
  EXPECT_THAT(std::string(pre.status().message()), HasSubstr("unknown pre-tokenizer 'no-such-model'"));
  EXPECT_FALSE(PreTokenizer::Traits("no-such-model").ok());
  EXPECT_TRUE(PreTokenizer::Traits("llama-bpe")->ignore_merges);
  EXPECT_FALSE(PreTokenizer::Traits("qwen2")->clean_spaces);
}

}  // namespace
}  // namespace cairn::infer
