// Conformance with the reference tokenizers: llama.cpp's vocabulary fixtures
// (testdata/tokenizers, see its README) with the ids the Hugging Face tokenizers give.
// Every text must encode to exactly its ids.
#include <cctype>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/infer/gguf.h"
#include "cairn/infer/tokenizer.h"
#include "cairn/infer/vocab.h"
#include "gtest/gtest.h"

#ifndef CAIRN_INFER_TESTDATA_DIR
#error "CAIRN_INFER_TESTDATA_DIR must name cairn/infer/testdata (cairn/infer/CMakeLists.txt sets it)"
#endif

namespace cairn::infer {
namespace {

std::string FixturePath(const std::string& name) {
  return std::string(CAIRN_INFER_TESTDATA_DIR) + "/tokenizers/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// llama.cpp's test-tokenizer-0 format: texts separated by "\n__ggml_vocab_test__\n" (the
// file ends with one), and one line of space-separated ids per text.
struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> ReadCases(const std::string& vocab) {
  const std::string inp = ReadFile(FixturePath(vocab + ".inp"));
  const std::string out = ReadFile(FixturePath(vocab + ".out"));
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    size_t next = inp.find(separator, pos);
    if (next == std::string::npos) next = inp.size();
    cases.push_back({inp.substr(pos, next - pos), {}});
    pos = next + separator.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    if (i >= cases.size()) break;
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) cases[i].ids.push_back(id);
  }
  EXPECT_EQ(i, cases.size()) << vocab << ": .inp and .out disagree on the number of cases";
  return cases;
}

const Tokenizer& Load(const std::string& vocab) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[vocab];
  if (!slot) {
    auto file = GgufFile::Open(FixturePath(vocab));
    EXPECT_TRUE(file.ok()) << file.status();
    auto v = LoadVocab(**file);
    EXPECT_TRUE(v.ok()) << v.status();
    auto t = Tokenizer::Create(*std::move(v));
    EXPECT_TRUE(t.ok()) << t.status();
    slot = std::make_unique<Tokenizer>(*std::move(t));
  }
  return *slot;
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

class ConformanceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ConformanceTest, EveryTextEncodesToTheReferenceIds) {
  const std::string vocab = GetParam();
  const Tokenizer& tokenizer = Load(vocab);
  const std::vector<Case> cases = ReadCases(vocab);
  ASSERT_GE(cases.size(), 40u);
  int passed = 0;
  for (const Case& c : cases) {
    const std::vector<int32_t> ids = tokenizer.Encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, c.ids) << vocab << " text '" << c.text << "'\n  want" << Show(c.ids) << "\n  got " << Show(ids);
    passed += ids == c.ids;
  }
  EXPECT_EQ(passed, static_cast<int>(cases.size()));
}

TEST_P(ConformanceTest, DecodeInvertsEncodeWhereLossless) {
  const std::string vocab = GetParam();
  const Tokenizer& tokenizer = Load(vocab);
  if (tokenizer.model() == TokenizerModel::kWordPiece) GTEST_SKIP() << "WordPiece lowercases and drops accents";
  for (const Case& c : ReadCases(vocab)) {
    EXPECT_EQ(tokenizer.Decode(tokenizer.Encode(c.text, true, false)), c.text);
    EXPECT_EQ(tokenizer.Decode(c.ids), c.text);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ConformanceTest,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-bert-bge.gguf"),
                         [](const auto& info) {
                           std::string name = info.param;
                           name = name.substr(11, name.size() - 16);  // "ggml-vocab-" ... ".gguf"
                           for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return name;
                         });

TEST(ConformanceFilesTest, SpecialTokensAndFlags) {
  const Tokenizer& spm = Load("ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(spm.bos_id(), 1);
  EXPECT_EQ(spm.eos_id(), 2);
  EXPECT_EQ(spm.unk_id(), 0);
  EXPECT_TRUE(spm.vocab().add_space_prefix);
  EXPECT_EQ(spm.Encode("Hello world"), std::vector<int32_t>({1, 15043, 3186}));
  EXPECT_EQ(spm.Encode("<s>Hi</s>", false, true).front(), 1);
  EXPECT_EQ(spm.Encode("<s>Hi</s>", false, true).back(), 2);

  const Tokenizer& gpt2 = Load("ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(gpt2.vocab().pre, "gpt-2");
  EXPECT_EQ(gpt2.eos_id(), 50256);
  EXPECT_TRUE(gpt2.IsEndOfGeneration(50256));
  EXPECT_EQ(gpt2.Encode("Hello<|endoftext|>", true, true), std::vector<int32_t>({15496, 50256}));
  EXPECT_EQ(gpt2.Decode(std::vector<int32_t>({15496, 11, 995, 0})), "Hello, world!");

  const Tokenizer& bert = Load("ggml-vocab-bert-bge.gguf");
  EXPECT_EQ(bert.cls_id(), 101);
  EXPECT_EQ(bert.sep_id(), 102);
  EXPECT_EQ(bert.Encode("Hello world"), std::vector<int32_t>({101, 7592, 2088, 102}));
  EXPECT_EQ(bert.Decode(bert.Encode("Hello, world!"), {.clean_spaces = true}), "hello, world!");
}

}  // namespace
}  // namespace cairn::infer
