#include "cairn/infer/unicode.h"

#include <string>

#include "gtest/gtest.h"

namespace cairn::infer::unicode {
namespace {

std::string Utf8(char32_t cp) {
  std::string s;
  AppendUtf8(cp, &s);
  return s;
}

TEST(UnicodeTest, Utf8RoundTripsEveryScalarValue) {
  for (char32_t cp = 0; cp <= kMaxCodePoint; cp += (cp < 0x800 ? 1 : 61)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const std::string s = Utf8(cp);
    size_t pos = 0;
    ASSERT_EQ(DecodeUtf8(s, &pos), cp) << std::hex << static_cast<uint32_t>(cp);
    ASSERT_EQ(pos, s.size());
    ASSERT_EQ(Utf8CharLength(s, 0), s.size());
  }
}

TEST(UnicodeTest, InvalidBytesStandAlone) {
  // Overlong, surrogate, truncated, stray continuation, and bytes that never start a sequence.
  for (std::string bad : {"\xC0\xAF", "\xED\xA0\x80", "\xE2\x82", "\x80", "\xF5\x80\x80\x80", "\xF4\x90\x80\x80"}) {
    size_t pos = 0;
    EXPECT_EQ(DecodeUtf8(bad, &pos), kReplacementChar);
    EXPECT_EQ(pos, 1u);
    EXPECT_EQ(Utf8CharLength(bad, 0), 1u);
  }
  EXPECT_EQ(Utf8(0xD800), "\xEF\xBF\xBD");  // surrogates are not encodable
}

TEST(UnicodeTest, CompletePrefixHoldsOnlyUnfinishedSequences) {
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(Utf8CompletePrefixLength("ab"), 2u);
  EXPECT_EQ(Utf8CompletePrefixLength("a" + euro), 4u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE2\x82"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE2"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(Utf8CompletePrefixLength("\xF0\x9F\x98\x80"), 4u);
  // Never completable: emitted at once.
  EXPECT_EQ(Utf8CompletePrefixLength("a\xFF"), 2u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE0\x80"), 3u);  // E0 needs A0..BF next
  EXPECT_EQ(Utf8CompletePrefixLength("\x80\x80\x80"), 3u);
}

TEST(UnicodeTest, Categories) {
  EXPECT_EQ(GetCategory('A'), Category::kLu);
  EXPECT_EQ(GetCategory('a'), Category::kLl);
  EXPECT_EQ(GetCategory('5'), Category::kNd);
  EXPECT_EQ(GetCategory(' '), Category::kZs);
  EXPECT_EQ(GetCategory('\n'), Category::kCc);
  EXPECT_EQ(GetCategory(0x301), Category::kMn);
  EXPECT_EQ(GetCategory(0x4E2D), Category::kLo);    // 中
  EXPECT_EQ(GetCategory(0x1F600), Category::kSo);   // 😀
  EXPECT_EQ(GetCategory(0x10FFFF), Category::kCn);
  EXPECT_EQ(GetCategory(0x110000), Category::kCn);
  EXPECT_TRUE(IsPunctuation(0x3002));  // 。
  EXPECT_TRUE(IsSymbol('$'));
  EXPECT_TRUE(IsNumber(0x2167));  // Ⅷ
  EXPECT_TRUE(IsWhitespace(0x85));
  EXPECT_TRUE(IsWhitespace(0x3000));
  EXPECT_FALSE(IsWhitespace(0x200B));
}

TEST(UnicodeTest, LowerAndDecompose) {
  EXPECT_EQ(ToLower('Q'), U'q');
  EXPECT_EQ(ToLower(0xC9), 0xE9u);   // É
  EXPECT_EQ(ToLower(0x41F), 0x43Fu);  // П
  EXPECT_EQ(ToLower(0x4E2D), 0x4E2Du);
  std::u32string out;
  AppendLower(0x130, &out);
  EXPECT_EQ(out, U"i\u0307");
  out.clear();
  AppendNfd(0xE9, &out);  // é
  EXPECT_EQ(out, U"e\u0301");
  out.clear();
  AppendNfd(0x1E08, &out);  // Ḉ: C + cedilla + acute, recursively
  EXPECT_EQ(out, U"C\u0327\u0301");
  out.clear();
  AppendNfd(0xD55C, &out);  // 한
  EXPECT_EQ(out, U"\u1112\u1161\u11AB");
  out.clear();
  AppendNfd('x', &out);
  EXPECT_EQ(out, U"x");
}

TEST(UnicodeTest, Gpt2ByteMapping) {
  EXPECT_EQ(ByteToUnicode('!'), "!");
  EXPECT_EQ(ByteToUnicode(' '), Utf8(0x120));   // Ġ
  EXPECT_EQ(ByteToUnicode('\n'), Utf8(0x10A));  // Ċ
  EXPECT_EQ(ByteToUnicode(0xAD), Utf8(0x143));  // the last moved byte
  for (int b = 0; b < 256; ++b) {
    const std::string s(ByteToUnicode(static_cast<uint8_t>(b)));
    size_t pos = 0;
    ASSERT_EQ(UnicodeToByte(DecodeUtf8(s, &pos)), b);
  }
  EXPECT_EQ(UnicodeToByte(0x144), -1);
  EXPECT_EQ(UnicodeToByte(0x4E2D), -1);
}

}  // namespace
}  // namespace cairn::infer::unicode

namespace cairn::infer::unicode {
namespace {

TEST(ToValidUtf8, ReplacesEachByteThatStartsNoValidSequence) {
  EXPECT_EQ(ToValidUtf8("plain"), "plain");
  EXPECT_EQ(ToValidUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(ToValidUtf8("a\x80" "b"), "a\xEF\xBF\xBD" "b");         // stray continuation byte
  EXPECT_EQ(ToValidUtf8("\xC3" "A"), "\xEF\xBF\xBD" "A");            // lead byte followed by ASCII
  EXPECT_EQ(ToValidUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");    // truncated sequence: each byte
}

}  // namespace
}  // namespace cairn::infer::unicode
