// Tokenizer behaviour on small hand-built vocabularies (conformance against real
// vocabularies is in tokenizer_conformance_test.cc).
#include "cairn/infer/tokenizer.h"

#include <string>
#include <thread>
#include <vector>

#include "cairn/infer/tokenizer_impl.h"
#include "cairn/infer/unicode.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::infer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Ids = std::vector<int32_t>;

// Adds a token and returns its id.
int32_t Add(Vocab* v, std::string text, float score = 0.0f, TokenType type = TokenType::kNormal) {
  v->tokens.push_back(std::move(text));
  v->scores.push_back(score);
  v->types.push_back(type);
  return static_cast<int32_t>(v->tokens.size() - 1);
}

Tokenizer Make(Vocab v) {
  auto t = Tokenizer::Create(std::move(v));
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

// ---- SentencePiece ----

struct SpmFixture {
  Vocab v;
  int32_t unk, bos, eos, tool, space, a, aa, he, ll, the, llo, hello;
  SpmFixture() {
    v.model = TokenizerModel::kSentencePiece;
    unk = Add(&v, "<unk>", 0, TokenType::kUnknown);
    bos = Add(&v, "<s>", 0, TokenType::kControl);
    eos = Add(&v, "</s>", 0, TokenType::kControl);
    for (int b = 0; b < 256; ++b) Add(&v, fmt::format("<0x{:02X}>", b), 0, TokenType::kByte);
    tool = Add(&v, "<tool>", 0, TokenType::kUserDefined);
    space = Add(&v, "\u2581", -1);
    for (const char* c : {"h", "e", "l", "o", "b"}) Add(&v, c, -2);
    a = Add(&v, "a", -2);
    aa = Add(&v, "aa", -1);
    Add(&v, "\u2581h", -5);
    he = Add(&v, "he", -1);
    ll = Add(&v, "ll", -2);
    the = Add(&v, "\u2581he", -3);
    llo = Add(&v, "llo", -4);
    hello = Add(&v, "\u2581hello", -0.5);
    v.unk_id = unk;
    v.bos_id = bos;
    v.eos_id = eos;
    v.add_bos = true;
    v.add_space_prefix = true;
  }
  int32_t Byte(uint8_t b) const { return 3 + b; }
};

TEST(SentencePieceTest, MergesHighestScoreFirst) {
  SpmFixture f;
  Tokenizer t = Make(f.v);
  EXPECT_EQ(t.Encode("hello", false), Ids({f.hello}));
  EXPECT_EQ(t.Encode("hello", true), Ids({f.bos, f.hello}));
  // Without the whole word, the pieces the merge order reaches.
  SpmFixture g;
  g.v.tokens[g.hello] = "\u2581hellx";
  Tokenizer t2 = Make(g.v);
  EXPECT_EQ(t2.Encode("hello", false), Ids({g.the, g.llo}));
}

TEST(SentencePieceTest, EqualScoresMergeLeftmostFirst) {
  SpmFixture f;
  Tokenizer t = Make(f.v);
  EXPECT_EQ(t.Encode("aaa", false), Ids({f.space, f.aa, f.a}));
}

TEST(SentencePieceTest, TokensAcrossWordStartsStillMerge) {
  // A token with U+2581 inside: text cannot be merged word by word.
  Vocab v;
  v.model = TokenizerModel::kSentencePiece;
  const int32_t mark = Add(&v, "\u2581", -3);
  Add(&v, "a", -3);
  Add(&v, "b", -3);
  Add(&v, "a\u2581", -1);
  const int32_t a_b = Add(&v, "a\u2581b", -0.5);
  v.add_space_prefix = true;
  Tokenizer t = Make(v);
  EXPECT_EQ(t.Encode("a b"), Ids({mark, a_b}));
  EXPECT_EQ(t.Decode(t.Encode("a b")), "a b");
}

TEST(SentencePieceTest, BytesFallBackAndRoundTrip) {
  SpmFixture f;
  Tokenizer t = Make(f.v);
  EXPECT_EQ(t.Encode("\xC3\xA9", false), Ids({f.space, f.Byte(0xC3), f.Byte(0xA9)}));
  for (std::string text : {"hello", " hello  b", "\xC3\xA9t\xC3\xA9", "a\nb\t", "\xFF\xFE", ""}) {
    EXPECT_EQ(t.Decode(t.Encode(text)), text);
    EXPECT_EQ(t.Decode(t.Encode(text, false)), text);
  }
}

TEST(SentencePieceTest, SpecialTokens) {
  SpmFixture f;
  Tokenizer t = Make(f.v);
  const Ids parsed = t.Encode("<s>hello</s>", false, /*parse_special=*/true);
  EXPECT_EQ(parsed, Ids({f.bos, f.hello, f.eos}));
  EXPECT_EQ(t.Decode(parsed), "hello");
  EXPECT_EQ(t.Decode(parsed, {.render_special = true}), "<s>hello</s>");
  // Without parse_special control strings are text...
  const Ids plain = t.Encode("<s>", false, false);
  EXPECT_THAT(plain, ::testing::Not(::testing::Contains(f.bos)));
  EXPECT_EQ(t.Decode(plain), "<s>");
  // ...but user-defined tokens are always cut out, and text after one gets the prefix space.
  EXPECT_EQ(t.Encode("hello<tool>hello", false, false), Ids({f.hello, f.tool, f.hello}));
  EXPECT_EQ(t.Decode(Ids({f.hello, f.tool, f.hello})), "hello<tool>hello");
}

TEST(SentencePieceTest, StreamDecoderHoldsPartialCharacters) {
  SpmFixture f;
  Tokenizer t = Make(f.v);
  const Ids ids = t.Encode("hello \xF0\x9F\x98\x80!", true);
  StreamDecoder stream(t);
  std::string all;
  std::vector<std::string> parts;
  for (int32_t id : ids) {
    parts.push_back(stream.Push(id));
    all += parts.back();
    EXPECT_EQ(unicode::Utf8CompletePrefixLength(all), all.size()) << "a part ended inside a character";
  }
  all += stream.Flush();
  EXPECT_EQ(all, "hello \xF0\x9F\x98\x80!");
  StreamDecoder cut(t);
  EXPECT_EQ(cut.Push(f.Byte(0xF0)), "");
  EXPECT_EQ(cut.Push(f.Byte(0x9F)), "");
  EXPECT_EQ(cut.Flush(), "\xF0\x9F");
}

// ---- byte-level BPE ----

struct BpeFixture {
  Vocab v;
  int32_t hello, world, ll, xyz, eot;
  BpeFixture() {
    v.model = TokenizerModel::kBytePair;
    v.pre = "gpt-2";
    for (int b = 0; b < 256; ++b) Add(&v, std::string(unicode::ByteToUnicode(static_cast<uint8_t>(b))));
    auto merge = [&](const std::string& l, const std::string& r) {
      v.merges.push_back(l + " " + r);
      return Add(&v, l + r);
    };
    merge("h", "e");
    ll = merge("l", "l");
    merge("he", "ll");
    hello = merge("hell", "o");
    merge("\u0120", "w");
    merge("o", "r");
    merge("\u0120w", "or");
    merge("\u0120wor", "l");
    world = merge("\u0120worl", "d");
    xyz = Add(&v, "\u0120xyz");
    eot = Add(&v, "<|endoftext|>", 0, TokenType::kControl);
    v.eos_id = eot;
  }
};

TEST(BytePairTest, MergesByRank) {
  BpeFixture f;
  Tokenizer t = Make(f.v);
  EXPECT_EQ(t.Encode("hello world"), Ids({f.hello, f.world}));
  // Byte b is token b in this vocabulary.
  EXPECT_EQ(t.Encode("lll"), Ids({f.ll, 'l'}));  // the leftmost of equal ranks
  EXPECT_EQ(t.Encode(" xyz"), Ids({' ', 'x', 'y', 'z'}));  // no merges reach the token
  EXPECT_EQ(t.Encode("hello<|endoftext|>", true, true), Ids({f.hello, f.eot}));
}

TEST(BytePairTest, IgnoreMergesTakesWholeWords) {
  BpeFixture f;
  f.v.pre = "llama-bpe";
  f.v.ignore_merges = true;
  Tokenizer t = Make(f.v);
  EXPECT_EQ(t.Encode(" xyz"), Ids({f.xyz}));
}

TEST(BytePairTest, RoundTripsArbitraryBytes) {
  BpeFixture f;
  Tokenizer t = Make(f.v);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (std::string text : {std::string("hello world\n\n  x"), all, std::string("\xE2\x82"), std::string()}) {
    EXPECT_EQ(t.Decode(t.Encode(text)), text);
  }
  EXPECT_EQ(t.TokenToPiece(f.world), " world");
  EXPECT_EQ(t.TokenToPiece(f.eot), "");
  EXPECT_EQ(t.TokenToPiece(f.eot, true), "<|endoftext|>");
}

// ---- WordPiece ----

TEST(WordPieceTest, NormalizesAndSplits) {
  EXPECT_THAT(WordPieceWords("H\xC3\xA9llo,\tWORLD\x0C!\xE4\xB8\xAD\xE6\x96\x87" "a\u0085b $5", true, true),
              ElementsAre("hello", ",", "world", "!", "\xE4\xB8\xAD", "\xE6\x96\x87", "ab", "$", "5"));
  EXPECT_THAT(WordPieceWords("Caf\xC3\xA9", false, false), ElementsAre("Caf\xC3\xA9"));
}

TEST(WordPieceTest, GreedyLongestMatch) {
  Vocab v;
  v.model = TokenizerModel::kWordPiece;
  Add(&v, "[PAD]", 0, TokenType::kControl);
  const int32_t unk = Add(&v, "[UNK]", 0, TokenType::kControl);
  const int32_t cls = Add(&v, "[CLS]", 0, TokenType::kControl);
  const int32_t sep = Add(&v, "[SEP]", 0, TokenType::kControl);
  const int32_t hello = Add(&v, "\u2581hello");
  const int32_t world = Add(&v, "\u2581world");
  const int32_t un = Add(&v, "\u2581un");
  const int32_t aff = Add(&v, "aff");
  const int32_t able = Add(&v, "able");
  Add(&v, "affablex");  // longer than any match: the search must step down past it
  const int32_t bang = Add(&v, "\u2581!");
  const int32_t comma = Add(&v, "\u2581,");
  v.unk_id = unk;
  v.bos_id = v.cls_id = cls;
  v.sep_id = sep;
  v.add_bos = v.add_sep = true;
  Tokenizer t = Make(v);
  EXPECT_EQ(t.Encode("Hello, WORLD! unaffable xyz"), Ids({cls, hello, comma, world, bang, un, aff, able, unk, sep}));
  EXPECT_EQ(t.Encode(std::string(101, 'a'), false), Ids({unk}));
  EXPECT_EQ(t.Decode(Ids({cls, hello, comma, world, bang, sep})), "hello , world !");
  EXPECT_EQ(t.Decode(Ids({hello, comma, world, bang}), {.clean_spaces = true}), "hello, world!");
}

// ---- validation and threads ----

TEST(TokenizerTest, CreateRejectsInconsistentVocabularies) {
  auto error = [](Vocab v) {
    auto t = Tokenizer::Create(std::move(v));
    return t.ok() ? std::string("ok") : std::string(t.status().message());
  };
  EXPECT_THAT(error(Vocab{}), HasSubstr("no tokens"));
  SpmFixture dup;
  dup.v.tokens[dup.he] = "ll";
  EXPECT_THAT(error(dup.v), HasSubstr("are both 'll'"));
  SpmFixture scores;
  scores.v.scores.pop_back();
  EXPECT_THAT(error(scores.v), HasSubstr("scores for"));
  SpmFixture range;
  range.v.eos_id = 1 << 20;
  EXPECT_THAT(error(range.v), HasSubstr("eos_id 1048576 is outside"));
  SpmFixture bos;
  bos.v.bos_id = kNoToken;
  EXPECT_THAT(error(bos.v), HasSubstr("add_bos without"));
  BpeFixture merge;
  merge.v.merges.push_back("q zz");
  EXPECT_THAT(error(merge.v), HasSubstr("merge 9 'q zz' refers to a string that is not a token ('zz')"));
  BpeFixture pre;
  pre.v.pre = "nonsense";
  EXPECT_THAT(error(pre.v), HasSubstr("unknown pre-tokenizer 'nonsense'"));
}

TEST(TokenizerTest, AccessorsAndInvalidIds) {
  SpmFixture f;
  Tokenizer t = Make(f.v);
  EXPECT_EQ(t.vocab_size(), static_cast<int32_t>(f.v.tokens.size()));
  EXPECT_EQ(t.TokenId("\u2581hello"), f.hello);
  EXPECT_EQ(t.TokenId("nope"), kNoToken);
  EXPECT_EQ(t.TokenText(f.hello), "\u2581hello");
  EXPECT_EQ(t.GetTokenType(f.bos), TokenType::kControl);
  EXPECT_TRUE(t.IsEndOfGeneration(f.eos));
  EXPECT_FALSE(t.IsEndOfGeneration(f.bos));
  EXPECT_EQ(t.Decode(Ids({-5, f.hello, 1 << 30})), "hello");
  EXPECT_EQ(t.TokenToPiece(-1), "");
  EXPECT_EQ(t.TokenText(1 << 30), "");
}

TEST(TokenizerTest, ConcurrentEncodeAgrees) {
  BpeFixture f;
  Tokenizer t = Make(f.v);
  const std::string text = "hello world, hello again\n\t hello\xF0\x9F\x98\x80 world";
  const Ids expected = t.Encode(text);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 200; ++n) mismatches[i] += t.Encode(text) != expected;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(mismatches, ElementsAre(0, 0, 0, 0));
}

}  // namespace
}  // namespace cairn::infer
