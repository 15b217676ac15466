// ModelEmbedder over small synthesized models. Random weights put similar texts
// nowhere in particular, so the tests check shape, normalization, determinism,
// thread-safety and the errors, not similarity.
#include "cairn/server/model_embedder.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/infer/gguf.h"
#include "cairn/infer/synth.h"
#include "cairn/infer/vocab.h"

namespace cairn::server {
namespace {

using ::testing::HasSubstr;

struct Parts {
  std::shared_ptr<const infer::Model> model;
  infer::Tokenizer tokenizer;
};

Parts Tiny(infer::Arch arch) {
  infer::SynthOptions o;
  o.arch = arch;
  o.shape = infer::SynthShapeForArch(*infer::SynthPreset("tiny"), arch);
  o.shape.n_layer = 1;
  o.shape.n_ff = 256;
  o.shape.n_vocab = 512;
  o.shape.n_ctx = 32;
  o.weight_type = "q8_0";
  o.seed = 11;
  o.name = "tiny-embed";
  absl::StatusOr<std::string> bytes = infer::SynthesizeModelToBuffer(o);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<std::unique_ptr<infer::Model>> m =
      infer::Model::FromFile(*infer::GgufFile::FromBuffer(*bytes, "tiny.gguf"));
  EXPECT_TRUE(m.ok()) << m.status();
  absl::StatusOr<infer::Tokenizer> t = infer::Tokenizer::Create(*infer::LoadVocab((*m)->file()));
  EXPECT_TRUE(t.ok()) << t.status();
  return {std::shared_ptr<const infer::Model>(std::move(*m)), *std::move(t)};
}

std::unique_ptr<ModelEmbedder> Make(infer::Arch arch, ModelEmbedderOptions o = {}) {
  Parts p = Tiny(arch);
  absl::StatusOr<std::unique_ptr<ModelEmbedder>> e = ModelEmbedder::Create(p.model, p.tokenizer, o);
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

double Norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

TEST(ModelEmbedderTest, BertGivesNormalizedVectorsOfTheModelsDimension) {
  std::unique_ptr<ModelEmbedder> e = Make(infer::Arch::kBert);
  EXPECT_EQ(e->dim(), static_cast<size_t>(e->model().n_embd()));
  EXPECT_EQ(e->name(), "model:tiny-embed");
  const std::vector<std::string> texts = {"pump seven is overheating", "the valve is closed", "a"};
  std::vector<std::vector<float>> vs;
  for (const std::string& t : texts) {
    absl::StatusOr<std::vector<float>> v = e->Embed(t);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->size(), e->dim());
    EXPECT_NEAR(Norm(*v), 1.0, 1e-5);
    vs.push_back(*v);
  }
  EXPECT_NE(vs[0], vs[1]);
  // Deterministic: the same text, the same vector, bit for bit.
  EXPECT_EQ(*e->Embed(texts[0]), vs[0]);
  // The vocabulary's CLS and SEP are added.
  const std::vector<int32_t> tokens = e->Tokens("a");
  ASSERT_GE(tokens.size(), 3u);
  EXPECT_EQ(tokens.front(), 2);  // [CLS]
  EXPECT_EQ(tokens.back(), 3);   // [SEP]
}

TEST(ModelEmbedderTest, DecodersEmbedWithTheChosenPooling) {
  std::unique_ptr<ModelEmbedder> mean = Make(infer::Arch::kLlama, {.pooling = infer::Pooling::kMean});
  std::unique_ptr<ModelEmbedder> last = Make(infer::Arch::kLlama, {.pooling = infer::Pooling::kLast});
  absl::StatusOr<std::vector<float>> a = mean->Embed("hello there");
  absl::StatusOr<std::vector<float>> b = last->Embed("hello there");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NEAR(Norm(*a), 1.0, 1e-5);
  EXPECT_NEAR(Norm(*b), 1.0, 1e-5);
  EXPECT_NE(*a, *b);
}

TEST(ModelEmbedderTest, ConcurrentCallsAgreeWithSerialOnes) {
  std::unique_ptr<ModelEmbedder> e = Make(infer::Arch::kBert, {.max_sessions = 2});
  std::vector<std::string> texts;
  for (int i = 0; i < 8; ++i) texts.push_back("reading " + std::to_string(i * 37) + " from sensor " + std::to_string(i));
  std::vector<std::vector<float>> serial;
  for (const std::string& t : texts) serial.push_back(*e->Embed(t));
  std::vector<std::vector<float>> parallel(texts.size());
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (size_t i = static_cast<size_t>(w); i < texts.size(); i += 4) {
        for (int rep = 0; rep < 3; ++rep) parallel[i] = *e->Embed(texts[i]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(parallel, serial);
}

TEST(ModelEmbedderTest, LongInputsAreCutKeepingTheClosingToken) {
  std::unique_ptr<ModelEmbedder> e = Make(infer::Arch::kBert);  // context 32
  std::string text;
  for (int i = 0; i < 100; ++i) text += "word ";
  const std::vector<int32_t> tokens = e->Tokens(text);
  EXPECT_EQ(tokens.size(), 32u);
  EXPECT_EQ(tokens.back(), 3);  // [SEP]
  absl::StatusOr<std::vector<float>> v = e->Embed(text);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_NEAR(Norm(*v), 1.0, 1e-5);
}

TEST(ModelEmbedderTest, Errors) {
  std::unique_ptr<ModelEmbedder> e = Make(infer::Arch::kBert);
  EXPECT_EQ(e->Embed("  \n").status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> small(3);
  EXPECT_THAT(std::string(e->Embed("hi", small).message()), HasSubstr("has 3 values"));

  Parts p = Tiny(infer::Arch::kBert);
  EXPECT_FALSE(ModelEmbedder::Create(p.model, p.tokenizer, {.pooling = infer::Pooling::kRank}).ok());
  EXPECT_FALSE(ModelEmbedder::Create(p.model, p.tokenizer, {.max_sessions = 0}).ok());
  EXPECT_FALSE(ModelEmbedder::Create(p.model, p.tokenizer, {.n_ctx = 1000}).ok());
  EXPECT_FALSE(ModelEmbedder::Load("/nonexistent/model.gguf").ok());
}

TEST(ModelEmbedderTest, ServesAsAVectorEmbedder) {
  std::unique_ptr<ModelEmbedder> e = Make(infer::Arch::kBert);
  const vector::Embedder& base = *e;
  std::vector<float> out(base.dim());
  ASSERT_TRUE(base.Embed("through the interface", out).ok());
  EXPECT_NEAR(Norm(out), 1.0, 1e-5);
}

}  // namespace
}  // namespace cairn::server
