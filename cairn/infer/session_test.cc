// Context and Session behaviour: batching, slots, truncation and the errors. The
// numerical agreement with a reference is model_test.cc's.
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "cairn/infer/bench_support.h"
#include "cairn/infer/kv_cache.h"
#include "cairn/infer/model.h"
#include "cairn/infer/synth.h"

namespace cairn::infer {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::unique_ptr<Model> TinyModel(Arch arch, const std::string& type = "q8_0") {
  SynthOptions o;
  o.arch = arch;
  o.shape = SynthShapeForArch(*SynthPreset("tiny"), arch);
  o.shape.n_ff = 256;
  o.shape.n_vocab = 384;
  o.shape.n_ctx = 48;
  o.weight_type = type;
  o.seed = 3;
  absl::StatusOr<std::string> bytes = SynthesizeModelToBuffer(o);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<std::unique_ptr<Model>> m = Model::FromFile(*GgufFile::FromBuffer(*bytes, "tiny.gguf"));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

std::vector<int32_t> Tokens(int n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = static_cast<int32_t>(rng.Next() % 384);
  return t;
}

std::vector<float> Copy(absl::StatusOr<std::span<const float>> s) {
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::vector<float>(s->begin(), s->end()) : std::vector<float>{};
}

float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST(KvCacheTest, SlotsShareCellsAndFreeThemOnTruncate) {
  std::unique_ptr<KvCache> c = *KvCache::Create(2, 8, 6, 2, KvType::kF16);
  EXPECT_EQ(c->bytes(), 2u * 2 * 6 * 8 * 2);
  EXPECT_EQ(c->free(), 6u);
  EXPECT_EQ(c->Append(0), 0);
  EXPECT_EQ(c->Append(1), 1);
  EXPECT_EQ(c->Append(0), 2);
  EXPECT_EQ(c->SeqLength(0), 2);
  EXPECT_EQ(c->SeqCells(0)[1], 2);
  EXPECT_EQ(c->used(), 3u);
  c->Clear(0);
  EXPECT_EQ(c->SeqLength(0), 0);
  EXPECT_EQ(c->free(), 5u);
  // The lowest free cells come back first.
  EXPECT_EQ(c->Append(1), 0);
  EXPECT_EQ(c->Append(1), 2);
  c->Truncate(1, 1);
  EXPECT_EQ(c->SeqLength(1), 1);
  EXPECT_EQ(c->SeqCells(1)[0], 1);
  c->Truncate(1, 10);  // longer than the slot: no change
  EXPECT_EQ(c->SeqLength(1), 1);
  // Distinct rows per layer and cell.
  EXPECT_NE(c->K(0, 1), c->K(1, 1));
  EXPECT_NE(c->K(0, 1), c->V(0, 1));
  EXPECT_EQ(static_cast<char*>(c->K(0, 2)) - static_cast<char*>(c->K(0, 1)), 16);
  EXPECT_FALSE(KvCache::Create(2, 0, 6, 1, KvType::kF32).ok());
}

TEST(SessionTest, DecodeErrorsNameTheProblemAndChangeNothing) {
  std::unique_ptr<Model> model = TinyModel(Arch::kLlama);
  std::unique_ptr<Session> s = *Session::Create(*model);
  EXPECT_EQ(s->context().n_ctx(), 48u);  // the training context by default

  EXPECT_THAT(s->Decode({}).status().message(), HasSubstr("no tokens"));
  const std::vector<int32_t> bad = {5, 6, 384, 7};
  absl::Status st = s->Decode(bad).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), AllOf(HasSubstr("token id 384"), HasSubstr("index 2"), HasSubstr("384 tokens")));
  EXPECT_EQ(s->pos(), 0);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THAT(s->Decode(negative).status().message(), HasSubstr("token id -1"));

  // Longer than the context: both numbers in the message.
  st = s->Decode(Tokens(50, 1)).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(st.message(), AllOf(HasSubstr("50 tokens"), HasSubstr("48")));
  EXPECT_EQ(s->pos(), 0);
  // Filling the context exactly works; one more does not.
  ASSERT_TRUE(s->Decode(Tokens(40, 2)).ok());
  ASSERT_TRUE(s->Decode(Tokens(8, 3)).ok());
  EXPECT_EQ(s->pos(), 48);
  st = s->Decode(Tokens(1, 4)).status();
  EXPECT_THAT(st.message(), AllOf(HasSubstr("holds 48 of 48"), HasSubstr("0 are left")));
  EXPECT_FALSE(s->Truncate(-1).ok());
}

TEST(SessionTest, TruncateRewindsToTheSameState) {
  std::unique_ptr<Model> model = TinyModel(Arch::kQwen2, "f32");
  std::unique_ptr<Session> s = *Session::Create(*model);
  const std::vector<int32_t> prompt = Tokens(12, 5), more = Tokens(5, 6), other = Tokens(3, 7);
  ASSERT_TRUE(s->Decode(prompt).ok());
  const std::vector<float> first = Copy(s->Decode(more));
  ASSERT_TRUE(s->Truncate(12).ok());
  EXPECT_EQ(s->pos(), 12);
  ASSERT_TRUE(s->Decode(other).ok());
  ASSERT_TRUE(s->Truncate(12).ok());
  EXPECT_EQ(Copy(s->Decode(more)), first);  // bit for bit
  ASSERT_TRUE(s->Truncate(0).ok());
  EXPECT_EQ(s->pos(), 0);
}

TEST(SessionTest, ChunkedPrefillMatchesOneBatch) {
  std::unique_ptr<Model> model = TinyModel(Arch::kLlama, "q4_k");
  const std::vector<int32_t> prompt = Tokens(30, 8);
  ContextOptions whole, chunks;
  chunks.n_batch = 7;
  std::unique_ptr<Session> a = *Session::Create(*model, whole);
  std::unique_ptr<Session> b = *Session::Create(*model, chunks);
  EXPECT_EQ(b->context().n_batch(), 7u);
  const std::vector<float> la = Copy(a->Decode(prompt)), lb = Copy(b->Decode(prompt));
  ASSERT_EQ(la.size(), 384u);
  EXPECT_LT(MaxDiff(la, lb), 1e-4f);
  EXPECT_EQ(b->pos(), 30);
}

TEST(SessionTest, ResultsDoNotDependOnThreadCount) {
  for (Arch arch : {Arch::kLlama, Arch::kBert}) {
    std::unique_ptr<Model> model = TinyModel(arch, "q4_k");
    const std::vector<int32_t> prompt = Tokens(40, 12);
    std::vector<std::vector<float>> got;
    for (int threads : {1, 2, 3}) {
      ContextOptions o;
      o.n_threads = threads;
      std::unique_ptr<Session> s = *Session::Create(*model, o);
      if (arch == Arch::kBert) {
        got.push_back(*s->Embed(prompt, Pooling::kMean));
      } else {
        got.push_back(Copy(s->Decode(prompt)));
        got.push_back(Copy(s->Decode(std::span(prompt.data(), 1))));
      }
    }
    for (size_t i = arch == Arch::kBert ? 1 : 2; i < got.size(); ++i) {
      EXPECT_EQ(got[i], got[i % (arch == Arch::kBert ? 1 : 2)]) << ArchName(arch) << " " << i;
    }
  }
}

TEST(SessionTest, SessionsOnSlotsOfOneContextAreIndependent) {
  std::unique_ptr<Model> model = TinyModel(Arch::kLlama);
  ContextOptions o;
  o.n_seq = 3;
  o.n_ctx = 40;
  o.n_threads = 2;
  std::unique_ptr<Context> ctx = *Context::Create(*model, o);
  Session s0(ctx.get(), 0), s2(ctx.get(), 2);
  std::unique_ptr<Session> alone = *Session::Create(*model);
  const std::vector<int32_t> p = Tokens(10, 9), q = Tokens(13, 10);
  ASSERT_TRUE(s0.Decode(p).ok());
  const std::vector<float> got = Copy(s2.Decode(q));
  EXPECT_EQ(s0.pos(), 10);
  EXPECT_EQ(s2.pos(), 13);
  EXPECT_EQ(ctx->free_cells(), 17u);
  EXPECT_LT(MaxDiff(got, Copy(alone->Decode(q))), 1e-5f);
  // The slots share the 40 cells: 18 more do not fit, and the message says why.
  absl::Status st = s0.Decode(Tokens(18, 11)).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("17 of its 40 cells are free"));
  s2.context().ClearSeq(2);
  EXPECT_TRUE(s0.Decode(Tokens(18, 11)).ok());
}

TEST(ContextTest, ForwardChecksTheBatch) {
  std::unique_ptr<Model> model = TinyModel(Arch::kLlama);
  ContextOptions o;
  o.n_seq = 2;
  o.n_batch = 4;
  std::unique_ptr<Context> ctx = *Context::Create(*model, o);
  auto forward = [&](std::vector<BatchToken> b) { return ctx->Forward(b).ToString(); };
  EXPECT_THAT(forward({}), HasSubstr("empty"));
  EXPECT_THAT(forward({{1, 0, 0}, {2, 0, 1}, {3, 0, 2}, {4, 0, 3}, {5, 0, 4}}), HasSubstr("exceeds n_batch 4"));
  EXPECT_THAT(forward({{1, 2, 0}}), HasSubstr("slot 2 is out of range"));
  EXPECT_THAT(forward({{1, 0, 1}}), HasSubstr("sequence 0 continues at position 0, but the entry has position 1"));
  EXPECT_THAT(forward({{1, 0, 0}, {2, 0, 0}}), HasSubstr("batch entry 1"));
  EXPECT_THAT(forward({{1, 0, 0}, {999, 1, 0}}), HasSubstr("token id 999"));
  EXPECT_EQ(ctx->SeqLength(0), 0);
  // Slots advance independently; an entry without `output` gives no row.
  ASSERT_TRUE(ctx->Forward(std::vector<BatchToken>{{1, 0, 0}, {2, 1, 0, true}, {3, 0, 1, true}}).ok());
  EXPECT_EQ(ctx->n_outputs(), 2);
  EXPECT_EQ(ctx->output_width(), 384);
  EXPECT_EQ(ctx->SeqLength(0), 2);
  EXPECT_EQ(ctx->SeqLength(1), 1);
  ASSERT_TRUE(ctx->Forward(std::vector<BatchToken>{{4, 1, 1, true}}, OutputKind::kHidden).ok());
  EXPECT_EQ(ctx->output_width(), 256);
  ASSERT_TRUE(ctx->Forward(std::vector<BatchToken>{{4, 1, 2, false}}).ok());
  EXPECT_EQ(ctx->n_outputs(), 0);

  ContextOptions too_long;
  too_long.n_ctx = 49;
  EXPECT_THAT(Context::Create(*model, too_long).status().message(), HasSubstr("49 tokens is longer than the model's 48"));
}

TEST(ContextTest, EncoderRules) {
  std::unique_ptr<Model> model = TinyModel(Arch::kBert);
  EXPECT_FALSE(model->has_logits());
  EXPECT_EQ(model->default_pooling(), Pooling::kCls);  // the tiny preset made bert-like
  ContextOptions o;
  o.n_batch = 16;
  std::unique_ptr<Session> s = *Session::Create(*model, o);
  EXPECT_EQ(s->Decode(Tokens(3, 1)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->context().kv_cache(), nullptr);
  EXPECT_THAT(s->context().Forward(std::vector<BatchToken>{{1, 0, 0, true}}).message(), HasSubstr("encoder"));
  absl::StatusOr<std::vector<float>> e = s->Embed(Tokens(17, 2));
  EXPECT_THAT(e.status().message(), HasSubstr("whole input in one batch"));
  e = s->Embed(Tokens(16, 2));
  ASSERT_TRUE(e.ok()) << e.status();
  double norm = 0;
  for (float v : *e) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  // Two inputs in one batch, in two slots, each see only themselves.
  ContextOptions two = o;
  two.n_seq = 2;
  std::unique_ptr<Context> ctx = *Context::Create(*model, two);
  const std::vector<int32_t> a = Tokens(5, 3), b = Tokens(7, 4);
  std::vector<BatchToken> batch;
  for (int i = 0; i < 7; ++i) {
    if (i < 5) batch.push_back({a[i], 0, i, i == 0});
    batch.push_back({b[i], 1, i, i == 0});
  }
  ASSERT_TRUE(ctx->Forward(batch, OutputKind::kHidden).ok());
  const std::vector<float> cls_a(ctx->Output(0).begin(), ctx->Output(0).end());
  const std::vector<float> cls_b(ctx->Output(1).begin(), ctx->Output(1).end());
  std::vector<BatchToken> only_a;
  for (int i = 0; i < 5; ++i) only_a.push_back({a[i], 0, i, i == 0});
  ASSERT_TRUE(ctx->Forward(only_a, OutputKind::kHidden).ok());
  EXPECT_LT(MaxDiff(cls_a, {ctx->Output(0).begin(), ctx->Output(0).end()}), 1e-5f);
  EXPECT_GT(MaxDiff(cls_a, cls_b), 1e-2f);
}

TEST(ModelLoadTest, ErrorsNameTheFile) {
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load("/nonexistent/model.gguf");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(m.status().message(), HasSubstr("/nonexistent/model.gguf"));
  EXPECT_FALSE(Model::FromFile(nullptr).ok());
}

TEST(BenchInferTest, ReportsBothRates) {
  std::unique_ptr<Model> model = TinyModel(Arch::kLlama);
  InferBenchOptions o;
  o.n_prompt = 16;
  o.n_decode = 4;
  o.repetitions = 2;
  absl::StatusOr<InferBenchResult> r = BenchInfer(*model, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->prompt_tokens_per_s, 0);
  EXPECT_GT(r->decode_tokens_per_s, 0);
  EXPECT_EQ(r->n_threads, 1);
  EXPECT_FALSE(r->isa.empty());
  o.n_prompt = 49;
  EXPECT_THAT(BenchInfer(*model, o).status().message(), HasSubstr("context of 48"));
  // An encoder: prompt processing only.
  std::unique_ptr<Model> bert = TinyModel(Arch::kBert);
  o.n_prompt = 100;
  r = BenchInfer(*bert, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->n_prompt, 48);
  EXPECT_EQ(r->n_decode, 0);
  EXPECT_GT(r->prompt_tokens_per_s, 0);
}

}  // namespace
}  // namespace cairn::infer
