#include "cairn/infer/vocab.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/infer/gguf.h"
#include "cairn/infer/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cairn::infer {
namespace {

using ::testing::HasSubstr;

// A vocabulary-only GGUF in memory: `model`, five tokens, plus whatever `extra` writes.
absl::StatusOr<Vocab> LoadWith(const std::string& model, const std::function<void(GgufWriter&)>& extra) {
  GgufWriter w;
  if (!model.empty()) w.SetString("tokenizer.ggml.model", model);
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b"});
  extra(w);
  std::string bytes;
  if (absl::Status s = w.Begin(&bytes); !s.ok()) return s;
  if (absl::Status s = w.Finish(); !s.ok()) return s;
  auto file = GgufFile::FromBuffer(bytes, "test.gguf");
  if (!file.ok()) return file.status();
  return LoadVocab(**file);
}

std::string ErrorOf(const std::string& model, const std::function<void(GgufWriter&)>& extra) {
  auto v = LoadWith(model, extra);
  return v.ok() ? "ok" : std::string(v.status().message());
}

void Nothing(GgufWriter&) {}

TEST(VocabTest, SentencePieceDefaults) {
  auto v = LoadWith("llama", [](GgufWriter& w) {
    w.SetF32Array("tokenizer.ggml.scores", {0, 0, 0, -1, -2});
    w.SetI32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
  });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, TokenizerModel::kSentencePiece);
  EXPECT_EQ(v->tokens.size(), 5u);
  EXPECT_EQ(v->scores[4], -2.0f);
  EXPECT_EQ(v->types[0], TokenType::kUnknown);
  EXPECT_EQ(v->unk_id, 0);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);
}

TEST(VocabTest, KeysOverrideDefaults) {
  auto v = LoadWith("llama", [](GgufWriter& w) {
    w.SetU32("tokenizer.ggml.eos_token_id", 4);
    w.SetU32("tokenizer.ggml.eot_token_id", 3);
    w.SetBool("tokenizer.ggml.add_bos_token", false);
    w.SetBool("tokenizer.ggml.add_space_prefix", false);
  });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->eos_id, 4);
  EXPECT_EQ(v->eot_id, 3);
  EXPECT_FALSE(v->add_bos);
  EXPECT_FALSE(v->add_space_prefix);
}

TEST(VocabTest, BytePairReadsMergesAndPreTokenizerTraits) {
  auto v = LoadWith("gpt2", [](GgufWriter& w) {
    w.SetString("tokenizer.ggml.pre", "llama-bpe");
    w.SetStringArray("tokenizer.ggml.merges", {"a b"});
    w.SetU32("tokenizer.ggml.bos_token_id", 1);
  });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->pre, "llama-bpe");
  EXPECT_EQ(v->merges, std::vector<std::string>({"a b"}));
  EXPECT_TRUE(v->ignore_merges);
  EXPECT_TRUE(v->add_bos);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->unk_id, kNoToken);
}

TEST(VocabTest, WordPieceNormalizerFlags) {
  auto v = LoadWith("bert", [](GgufWriter& w) {
    w.SetU32("tokenizer.ggml.cls_token_id", 1);
    w.SetU32("tokenizer.ggml.seperator_token_id", 2);
    w.SetBool("tokenizer.ggml.normalizer.lowercase", false);
  });
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->bos_id, 1);  // [CLS]
  EXPECT_EQ(v->sep_id, 2);
  EXPECT_EQ(v->unk_id, kNoToken);  // the default 100 is outside these five tokens
  EXPECT_FALSE(v->lowercase);
  EXPECT_FALSE(v->strip_accents);  // follows lowercase
  EXPECT_TRUE(v->add_sep);
}

TEST(VocabTest, FindsEndOfTurnByName) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "qwen2");
  w.SetStringArray("tokenizer.ggml.tokens", {"a", "<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  w.SetStringArray("tokenizer.ggml.merges", {});
  w.SetU32("tokenizer.ggml.eos_token_id", 3);
  std::string bytes;
  ASSERT_TRUE(w.Begin(&bytes).ok());
  ASSERT_TRUE(w.Finish().ok());
  auto file = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  auto v = LoadVocab(**file);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->eot_id, 3);  // <|im_end|> before <|endoftext|>
  EXPECT_EQ(v->eom_id, kNoToken);
  EXPECT_FALSE(v->clean_spaces);
  EXPECT_FALSE(v->add_bos);
}

TEST(VocabTest, ErrorsNameTheKey) {
  EXPECT_THAT(ErrorOf("", Nothing), HasSubstr("test.gguf: no tokenizer.ggml.model"));
  EXPECT_THAT(ErrorOf("rwkv", Nothing), HasSubstr("unsupported tokenizer model 'rwkv'"));
  EXPECT_THAT(ErrorOf("none", Nothing), HasSubstr("no vocabulary"));
  EXPECT_THAT(ErrorOf("llama", [](GgufWriter& w) { w.SetF32Array("tokenizer.ggml.scores", {0, 0}); }),
              HasSubstr("tokenizer.ggml.scores has 2 entries, expected 5"));
  EXPECT_THAT(ErrorOf("llama", [](GgufWriter& w) { w.SetString("tokenizer.ggml.scores", "x"); }),
              HasSubstr("tokenizer.ggml.scores"));
  EXPECT_THAT(ErrorOf("llama", [](GgufWriter& w) { w.SetI32Array("tokenizer.ggml.token_type", {1, 1, 9, 1, 1}); }),
              HasSubstr("tokenizer.ggml.token_type[2] is 9"));
  EXPECT_THAT(ErrorOf("llama", [](GgufWriter& w) { w.SetU32("tokenizer.ggml.eos_token_id", 5); }),
              HasSubstr("tokenizer.ggml.eos_token_id is 5, outside the vocabulary (5 tokens)"));
  EXPECT_THAT(ErrorOf("llama", [](GgufWriter& w) { w.SetString("tokenizer.ggml.bos_token_id", "1"); }),
              HasSubstr("bos_token_id"));
  EXPECT_THAT(ErrorOf("gpt2", Nothing), HasSubstr("needs tokenizer.ggml.merges"));
  EXPECT_THAT(ErrorOf("gpt2",
                      [](GgufWriter& w) {
                        w.SetStringArray("tokenizer.ggml.merges", {});
                        w.SetString("tokenizer.ggml.pre", "mystery");
                      }),
              HasSubstr("unknown pre-tokenizer 'mystery'"));
  EXPECT_THAT(ErrorOf("gpt2",
                      [](GgufWriter& w) {
                        w.SetStringArray("tokenizer.ggml.merges", {});
                        w.SetBool("tokenizer.ggml.add_eos_token", true);
                      }),
              HasSubstr("add_eos_token is true but the vocabulary has no such token"));
}

}  // namespace
}  // namespace cairn::infer
