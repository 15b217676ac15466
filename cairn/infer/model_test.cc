// The forward pass against a reference written for clarity, not speed.
//
// Reference: every weight dequantized to float32 with tensor_type.h's reference
// Dequantize, activations float32, every sum accumulated in double, the whole sequence
// recomputed from scratch for each position, no KV cache, no batching, no threads.
//
// Tolerances, per position: max |engine - reference| / max |reference| over the logits
// (decoders) or the final hidden states (bert):
//   f32, f16, bf16 weights       1e-3  float dot products; the decoders' error is the f16
//                                      KV cache (observed 3e-4; bert, no cache, 5e-7;
//                                      f32 weights with an f32 cache must reach 2e-5)
//   q8_0, q4_0                   5e-2  MatMul quantizes the activations to 8 bits per
//   q4_k, q4_k_m                 6e-2  block on the fly, as llama.cpp does: blocks of 32
//                                      (Q8_0) for the first two, of 256 (Q8_K, coarser)
//                                      for the k-quants. Observed on the logits of the
//                                      synthesized models (weights N(0, 1/row length),
//                                      whose random products cancel a lot, so the logits
//                                      are small): 2.9e-2 to 3.5e-2 (Q8_0 activations),
//                                      3.9e-2 to 4.4e-2 (Q8_K); 1.2e-2 to 1.8e-2 on bert's
//                                      layer-normed hidden states
// Greedy decoding of f32 models must pick exactly the reference's tokens. The test
// prints the measured errors.
#include "cairn/infer/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "cairn/infer/gguf_writer.h"
#include "cairn/infer/synth.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::infer {
namespace {

// ---------------------------------------------------------------- the reference

class Reference {
 public:
  explicit Reference(const GgufFile& file) : file_(file), c_(*ReadModelConfig(file)) {}

  const ModelConfig& config() const { return c_; }

  // The final hidden state of every position (after the output norm for decoders).
  std::vector<std::vector<float>> Hidden(const std::vector<int32_t>& tokens) {
    return c_.is_encoder() ? EncoderHidden(tokens) : DecoderHidden(tokens);
  }

  // Logits at every position (decoders).
  std::vector<std::vector<float>> Logits(const std::vector<int32_t>& tokens) {
    const Matrix& out = W(c_.tied_embeddings ? "token_embd.weight" : "output.weight");
    std::vector<std::vector<float>> logits;
    for (const std::vector<float>& h : DecoderHidden(tokens)) logits.push_back(MatVec(out, h));
    return logits;
  }

  // Greedy continuation of `prompt` by `n` tokens, recomputing everything each step.
  std::vector<int32_t> Greedy(std::vector<int32_t> tokens, int n) {
    std::vector<int32_t> generated;
    for (int i = 0; i < n; ++i) {
      const std::vector<float> last = Logits(tokens).back();
      const int32_t next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
      generated.push_back(next);
      tokens.push_back(next);
    }
    return generated;
  }

 private:
  struct Matrix {
    int64_t rows = 0, cols = 0;
    std::vector<float> v;  // row-major
    const float* row(int64_t r) const { return v.data() + r * cols; }
  };

  const Matrix& W(const std::string& name) {
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
    const GgufTensor* t = file_.FindTensor(name);
    EXPECT_NE(t, nullptr) << name;
    Matrix m;
    m.cols = t->ne[0];
    m.rows = t->n_rows();
    m.v.resize(static_cast<size_t>(t->n_elements()));
    EXPECT_TRUE(Dequantize(t->type, t->data, m.v.data(), t->n_elements()).ok()) << name;
    return cache_.emplace(name, std::move(m)).first->second;
  }
  const float* V(const std::string& name) { return W(name).v.data(); }

  static std::vector<float> MatVec(const Matrix& m, const std::vector<float>& x) {
    std::vector<float> y(static_cast<size_t>(m.rows));
    for (int64_t r = 0; r < m.rows; ++r) {
      double s = 0;
      for (int64_t i = 0; i < m.cols; ++i) s += static_cast<double>(m.row(r)[i]) * x[i];
      y[r] = static_cast<float>(s);
    }
    return y;
  }
  static void Add(std::vector<float>& x, const float* b) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += b[i];
  }

  std::vector<float> RmsNorm(const std::vector<float>& x, const float* w) const {
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double scale = 1.0 / std::sqrt(ss / x.size() + c_.norm_eps);
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(x[i] * scale * w[i]);
    return y;
  }
  std::vector<float> LayerNorm(const std::vector<float>& x, const float* w, const float* b) const {
    double mean = 0, var = 0;
    for (float v : x) mean += v;
    mean /= x.size();
    for (float v : x) var += (v - mean) * (v - mean);
    var /= x.size();
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>((x[i] - mean) / std::sqrt(var + c_.norm_eps) * w[i] + b[i]);
    return y;
  }

  // Rotates each head's first n_rot dimensions by angles pos * scale * base^(-2i/n_rot).
  void Rope(std::vector<float>& x, int n_heads, int32_t pos) const {
    const int hd = static_cast<int>(c_.head_dim), n_rot = static_cast<int>(c_.n_rot), half = n_rot / 2;
    for (int h = 0; h < n_heads; ++h) {
      for (int i = 0; i < half; ++i) {
        double theta = pos * static_cast<double>(c_.rope_freq_scale) *
                       std::pow(static_cast<double>(c_.rope_freq_base), -2.0 * i / n_rot);
        if (const GgufTensor* f = file_.FindTensor("rope_freqs.weight")) {
          theta /= reinterpret_cast<const float*>(f->data)[i];
        }
        const int a = h * hd + (c_.rope_type == RopeType::kNeox ? i : 2 * i);
        const int b = h * hd + (c_.rope_type == RopeType::kNeox ? i + half : 2 * i + 1);
        const double x0 = x[a], x1 = x[b];
        x[a] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
        x[b] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
      }
    }
  }

  // Multi-head attention of position t over positions [0, t] (causal) or all of them.
  std::vector<float> Attend(const std::vector<std::vector<float>>& q, const std::vector<std::vector<float>>& k,
                            const std::vector<std::vector<float>>& v, size_t t, bool causal) const {
    const size_t hd = c_.head_dim, group = c_.n_head / c_.n_head_kv;
    const size_t n_keys = causal ? t + 1 : q.size();
    std::vector<float> out(c_.n_embd_q());
    for (size_t h = 0; h < c_.n_head; ++h) {
      const size_t kvh = h / group;
      std::vector<double> p(n_keys);
      double max = -1e300;
      for (size_t j = 0; j < n_keys; ++j) {
        double s = 0;
        for (size_t i = 0; i < hd; ++i) s += static_cast<double>(q[t][h * hd + i]) * k[j][kvh * hd + i];
        p[j] = s / std::sqrt(static_cast<double>(hd));
        max = std::max(max, p[j]);
      }
      double sum = 0;
      for (double& x : p) sum += (x = std::exp(x - max));
      for (size_t i = 0; i < hd; ++i) {
        double o = 0;
        for (size_t j = 0; j < n_keys; ++j) o += p[j] / sum * v[j][kvh * hd + i];
        out[h * hd + i] = static_cast<float>(o);
      }
    }
    return out;
  }

  std::vector<std::vector<float>> DecoderHidden(const std::vector<int32_t>& tokens) {
    const size_t n = tokens.size();
    std::vector<std::vector<float>> x(n);
    const Matrix& embd = W("token_embd.weight");
    for (size_t t = 0; t < n; ++t) x[t].assign(embd.row(tokens[t]), embd.row(tokens[t]) + c_.n_embd);
    for (uint32_t il = 0; il < c_.n_layer; ++il) {
      const std::string b = fmt::format("blk.{}.", il);
      std::vector<std::vector<float>> q(n), k(n), v(n);
      for (size_t t = 0; t < n; ++t) {
        const std::vector<float> h = RmsNorm(x[t], V(b + "attn_norm.weight"));
        q[t] = MatVec(W(b + "attn_q.weight"), h);
        k[t] = MatVec(W(b + "attn_k.weight"), h);
        v[t] = MatVec(W(b + "attn_v.weight"), h);
        if (c_.qkv_bias) {
          Add(q[t], V(b + "attn_q.bias"));
          Add(k[t], V(b + "attn_k.bias"));
          Add(v[t], V(b + "attn_v.bias"));
        }
        Rope(q[t], static_cast<int>(c_.n_head), static_cast<int32_t>(t));
        Rope(k[t], static_cast<int>(c_.n_head_kv), static_cast<int32_t>(t));
      }
      for (size_t t = 0; t < n; ++t) Add(x[t], MatVec(W(b + "attn_output.weight"), Attend(q, k, v, t, true)).data());
      for (size_t t = 0; t < n; ++t) {
        const std::vector<float> h = RmsNorm(x[t], V(b + "ffn_norm.weight"));
        std::vector<float> g = MatVec(W(b + "ffn_gate.weight"), h);
        const std::vector<float> u = MatVec(W(b + "ffn_up.weight"), h);
        for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(g[i] / (1.0 + std::exp(-double{g[i]})) * u[i]);
        Add(x[t], MatVec(W(b + "ffn_down.weight"), g).data());
      }
    }
    for (size_t t = 0; t < n; ++t) x[t] = RmsNorm(x[t], V("output_norm.weight"));
    return x;
  }

  std::vector<std::vector<float>> EncoderHidden(const std::vector<int32_t>& tokens) {
    const size_t n = tokens.size();
    std::vector<std::vector<float>> x(n);
    for (size_t t = 0; t < n; ++t) {
      x[t].assign(W("token_embd.weight").row(tokens[t]), W("token_embd.weight").row(tokens[t]) + c_.n_embd);
      Add(x[t], W("token_types.weight").row(0));
      Add(x[t], W("position_embd.weight").row(static_cast<int64_t>(t)));
      x[t] = LayerNorm(x[t], V("token_embd_norm.weight"), V("token_embd_norm.bias"));
    }
    for (uint32_t il = 0; il < c_.n_layer; ++il) {
      const std::string b = fmt::format("blk.{}.", il);
      std::vector<std::vector<float>> q(n), k(n), v(n);
      for (size_t t = 0; t < n; ++t) {
        q[t] = MatVec(W(b + "attn_q.weight"), x[t]);
        Add(q[t], V(b + "attn_q.bias"));
        k[t] = MatVec(W(b + "attn_k.weight"), x[t]);
        Add(k[t], V(b + "attn_k.bias"));
        v[t] = MatVec(W(b + "attn_v.weight"), x[t]);
        Add(v[t], V(b + "attn_v.bias"));
      }
      std::vector<std::vector<float>> attn(n);
      for (size_t t = 0; t < n; ++t) attn[t] = Attend(q, k, v, t, c_.causal);
      for (size_t t = 0; t < n; ++t) {
        Add(x[t], MatVec(W(b + "attn_output.weight"), attn[t]).data());
        Add(x[t], V(b + "attn_output.bias"));
        x[t] = LayerNorm(x[t], V(b + "attn_output_norm.weight"), V(b + "attn_output_norm.bias"));
        std::vector<float> u = MatVec(W(b + "ffn_up.weight"), x[t]);
        Add(u, V(b + "ffn_up.bias"));
        for (float& e : u) {
          const double z = e;
          e = static_cast<float>(0.5 * z * (1 + std::tanh(std::sqrt(2 / M_PI) * z * (1 + 0.044715 * z * z))));
        }
        Add(x[t], MatVec(W(b + "ffn_down.weight"), u).data());
        Add(x[t], V(b + "ffn_down.bias"));
        x[t] = LayerNorm(x[t], V(b + "layer_output_norm.weight"), V(b + "layer_output_norm.bias"));
      }
    }
    return x;
  }

  const GgufFile& file_;
  ModelConfig c_;
  std::map<std::string, Matrix> cache_;
};

// ---------------------------------------------------------------- helpers

// Tiny shapes: rows of 256 so that the k-quants apply, grouped-query attention for
// the decoders (4 query heads, 2 kv heads of 64), two layers, a context of 96.
SynthOptions Tiny(Arch arch, const std::string& type) {
  SynthOptions o;
  o.arch = arch;
  o.shape = SynthShapeForArch(*SynthPreset("tiny"), arch);
  o.shape.n_ff = 256;
  o.shape.n_vocab = 384;
  o.shape.n_ctx = 96;
  o.shape.tied_embeddings = arch == Arch::kQwen2;  // Qwen2.5 ties them, Llama 2 does not
  o.shape.pooling = arch == Arch::kBert ? Pooling::kMean : Pooling::kNone;
  o.weight_type = type;
  o.seed = 11;
  return o;
}

// The reference and the engine each get their own copy of one synthesized file.
struct Files {
  std::unique_ptr<GgufFile> reference, engine;
};
Files Synthesize(const SynthOptions& o) {
  absl::StatusOr<std::string> bytes = SynthesizeModelToBuffer(o);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  Files f;
  f.reference = *GgufFile::FromBuffer(*bytes, "tiny.gguf");
  f.engine = *GgufFile::FromBuffer(*bytes, "tiny.gguf");
  return f;
}

std::vector<int32_t> RandomTokens(int n, int32_t n_vocab, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = static_cast<int32_t>(rng.Next() % static_cast<uint64_t>(n_vocab));
  return t;
}

// max |a - b| / max |b|.
double RelError(std::span<const float> a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

double Tolerance(const std::string& type) {
  if (type == "f32" || type == "f16" || type == "bf16") return 1e-3;
  return type == "q8_0" || type == "q4_0" ? 5e-2 : 6e-2;
}

constexpr int kPrompt = 64;

// ---------------------------------------------------------------- correctness

class ModelMatrixTest : public ::testing::TestWithParam<std::tuple<Arch, std::string>> {};

TEST_P(ModelMatrixTest, AgreesWithReferenceAtEveryPosition) {
  const auto [arch, type] = GetParam();
  const SynthOptions o = Tiny(arch, type);
  Files files = Synthesize(o);
  Reference ref(*files.reference);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::FromFile(std::move(files.engine));
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<int32_t> prompt = RandomTokens(kPrompt, (*model)->n_vocab(), 5);
  const double tol = Tolerance(type);

  ContextOptions copt;  // one thread: TwoSequencesInOneBatchMatchEachAlone runs two
  absl::StatusOr<std::unique_ptr<Context>> ctx = Context::Create(**model, copt);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  std::vector<BatchToken> batch;
  for (int i = 0; i < kPrompt; ++i) batch.push_back({prompt[i], 0, i, true});

  double worst_batch = 0, worst_single = 0;
  if (arch == Arch::kBert) {
    // An encoder sees its whole input at once: one batch, hidden states compared.
    const std::vector<std::vector<float>> want = ref.Hidden(prompt);
    ASSERT_TRUE((*ctx)->Forward(batch, OutputKind::kHidden).ok());
    ASSERT_EQ((*ctx)->n_outputs(), kPrompt);
    for (int i = 0; i < kPrompt; ++i) worst_batch = std::max(worst_batch, RelError((*ctx)->Output(i), want[i]));
    EXPECT_LT(worst_batch, tol);
  } else {
    const std::vector<std::vector<float>> want = ref.Logits(prompt);
    // The whole prompt in one batch, logits at every position.
    ASSERT_TRUE((*ctx)->Forward(batch, OutputKind::kLogits).ok());
    ASSERT_EQ((*ctx)->n_outputs(), kPrompt);
    for (int i = 0; i < kPrompt; ++i) {
      const double e = RelError((*ctx)->Output(i), want[i]);
      EXPECT_LT(e, tol) << "batched, position " << i;
      worst_batch = std::max(worst_batch, e);
    }
    if (type == "f32") {
      // With an f32 KV cache nothing is rounded but float sums: much tighter.
      ContextOptions f32kv;
      f32kv.kv_type = KvType::kF32;
      std::unique_ptr<Context> exact = *Context::Create(**model, f32kv);
      ASSERT_TRUE(exact->Forward(batch, OutputKind::kLogits).ok());
      for (int i = 0; i < kPrompt; ++i) EXPECT_LT(RelError(exact->Output(i), want[i]), 2e-5) << "f32 kv, " << i;
    }
    // Token by token through a session.
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(**model, copt);
    ASSERT_TRUE(session.ok()) << session.status();
    for (int i = 0; i < kPrompt; ++i) {
      absl::StatusOr<std::span<const float>> logits = (*session)->Decode(std::span(&prompt[i], 1));
      ASSERT_TRUE(logits.ok()) << logits.status();
      const double e = RelError(*logits, want[i]);
      EXPECT_LT(e, tol) << "token by token, position " << i;
      worst_single = std::max(worst_single, e);
    }
  }
  RecordProperty("worst_batched", fmt::format("{:.3g}", worst_batch));
  RecordProperty("worst_single", fmt::format("{:.3g}", worst_single));
  std::printf("  %s %s: worst relative error batched %.3g, token by token %.3g (tolerance %.0e)\n", ArchName(arch),
              type.c_str(), worst_batch, worst_single, tol);
}

INSTANTIATE_TEST_SUITE_P(
    ArchAndType, ModelMatrixTest,
    ::testing::Combine(::testing::Values(Arch::kLlama, Arch::kQwen2, Arch::kBert),
                       ::testing::Values("f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q4_k_m")),
    [](const ::testing::TestParamInfo<std::tuple<Arch, std::string>>& p) {
      return std::string(ArchName(std::get<0>(p.param))) + "_" + std::get<1>(p.param);
    });

// A feed-forward narrower than the model (n_ff < n_embd): its output, n_embd floats a
// token, does not fit where the working buffers put it for ordinary shapes.
TEST(ModelTest, NarrowFeedForwardAgreesWithReference) {
  for (Arch arch : {Arch::kLlama, Arch::kBert}) {
    SynthOptions o = Tiny(arch, "f32");
    o.shape.n_embd = 512;
    o.shape.n_ff = 256;
    Files files = Synthesize(o);
    Reference ref(*files.reference);
    std::unique_ptr<Model> model = *Model::FromFile(std::move(files.engine));
    const std::vector<int32_t> prompt = RandomTokens(kPrompt, model->n_vocab(), 9);
    std::unique_ptr<Context> ctx = *Context::Create(*model, ContextOptions{});
    std::vector<BatchToken> batch;
    for (int i = 0; i < kPrompt; ++i) batch.push_back({prompt[i], 0, i, true});
    const bool encoder = arch == Arch::kBert;
    const std::vector<std::vector<float>> want = encoder ? ref.Hidden(prompt) : ref.Logits(prompt);
    ASSERT_TRUE(ctx->Forward(batch, encoder ? OutputKind::kHidden : OutputKind::kLogits).ok());
    for (int i = 0; i < kPrompt; ++i) EXPECT_LT(RelError(ctx->Output(i), want[i]), 1e-3) << ArchName(arch) << " " << i;
  }
}

TEST(ModelTest, GreedyDecodingOfF32ModelsMatchesReference) {
  constexpr int kNew = 16;
  for (Arch arch : {Arch::kLlama, Arch::kQwen2}) {
    Files files = Synthesize(Tiny(arch, "f32"));
    Reference ref(*files.reference);
    std::unique_ptr<Model> model = *Model::FromFile(std::move(files.engine));
    // A prompt whose continuations change token (random models like to repeat one).
    const std::vector<int32_t> prompt = RandomTokens(8, model->n_vocab(), 9);
    const std::vector<int32_t> want = ref.Greedy(prompt, kNew);
    ASSERT_GE(std::set<int32_t>(want.begin(), want.end()).size(), 2u);
    for (KvType kv : {KvType::kF16, KvType::kF32}) {
      SCOPED_TRACE(fmt::format("{} kv {}", ArchName(arch), KvTypeName(kv)));
      ContextOptions copt;
      copt.kv_type = kv;
      std::unique_ptr<Session> s = *Session::Create(*model, copt);
      absl::StatusOr<std::span<const float>> logits = s->Decode(prompt);
      ASSERT_TRUE(logits.ok()) << logits.status();
      std::vector<int32_t> got;
      for (int i = 0; i < kNew; ++i) {
        const int32_t next = static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
        got.push_back(next);
        logits = s->Decode(std::span(&next, 1));
        ASSERT_TRUE(logits.ok()) << logits.status();
      }
      EXPECT_EQ(got, want);
    }
  }
}

// Q4_0 and Q8_0 matrices are packed at load (unless CAIRN_INFER_PACK=0). From a mapped file the packed rows'
// pages are dropped and the norms copied out, which must change nothing: the logits equal those of
// the same file loaded from memory, bit for bit. With packing off (CAIRN_INFER_PACK=0)
// they agree within the model tolerance (products of fewer than 4 tokens, such as the
// last layer's of a prompt, use the panel arithmetic only when packed).
TEST(ModelTest, PackedWeightsFromAMappedFileMatchUnpacked) {
  for (const std::string type : {"q4_0", "q8_0"}) {
    for (Arch arch : {Arch::kLlama, Arch::kQwen2}) {
      SCOPED_TRACE(fmt::format("{} {}", ArchName(arch), type));
      const absl::StatusOr<std::string> bytes = SynthesizeModelToBuffer(Tiny(arch, type));
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      const std::string path = ::testing::TempDir() + fmt::format("packed-{}-{}.gguf", ArchName(arch), type);
      {
        std::ofstream out(path, std::ios::binary);
        out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
      }
      const char* env = std::getenv("CAIRN_INFER_PACK");
      const std::string saved = env == nullptr ? "" : env;
      ::unsetenv("CAIRN_INFER_PACK");  // the default packs
      std::unique_ptr<Model> mapped = *Model::Load(path);
      ::setenv("CAIRN_INFER_PACK", "1", 1);
      std::unique_ptr<Model> memory = *Model::FromFile(*GgufFile::FromBuffer(*bytes));
      ::setenv("CAIRN_INFER_PACK", "0", 1);
      std::unique_ptr<Model> plain = *Model::FromFile(*GgufFile::FromBuffer(*bytes));
      if (env == nullptr) {
        ::unsetenv("CAIRN_INFER_PACK");
      } else {
        ::setenv("CAIRN_INFER_PACK", saved.c_str(), 1);
      }
      // The scalar path (CAIRN_INFER_ISA=scalar) has no panel layout and packs nothing.
      const std::vector<uint8_t> probe(16 * 34, 0);
      const bool packs = PackMatrix(WeightView{TensorType::kQ8_0, 16, 32, probe.data(), 34}, nullptr) != nullptr;
      EXPECT_EQ(mapped->packed_bytes() > 0, packs);
      EXPECT_EQ(mapped->packed_bytes(), memory->packed_bytes());
      EXPECT_EQ(plain->packed_bytes(), 0u);
      // Embedding rows come from the file once packing dropped mapped pages (the tied
      // embedding table of these models among them), and through memory otherwise.
      EXPECT_EQ(mapped->embeddings_by_read(), packs);
      EXPECT_FALSE(memory->embeddings_by_read());
      const std::vector<int32_t> tokens = RandomTokens(12, mapped->n_vocab(), 5);
      std::vector<std::unique_ptr<Session>> s;
      for (const Model* m : {mapped.get(), memory.get(), plain.get()}) s.push_back(*Session::Create(*m, {}));
      for (int step = 0; step < 5; ++step) {
        // A prompt of 8, then single tokens.
        const std::span<const int32_t> in =
            step == 0 ? std::span(tokens.data(), 8) : std::span(tokens.data() + 7 + step, 1);
        std::vector<std::vector<float>> out;
        for (auto& session : s) {
          absl::StatusOr<std::span<const float>> logits = session->Decode(in);
          ASSERT_TRUE(logits.ok()) << logits.status();
          out.emplace_back(logits->begin(), logits->end());
        }
        EXPECT_EQ(out[0], out[1]) << "step " << step;
        EXPECT_LE(RelError(out[1], out[2]), Tolerance(type)) << "step " << step;
      }
      std::remove(path.c_str());
    }
  }
}

TEST(ModelTest, TwoSequencesInOneBatchMatchEachAlone) {
  for (const char* type : {"f32", "q4_0"}) {
    SCOPED_TRACE(type);
    std::unique_ptr<Model> model = *Model::FromFile(Synthesize(Tiny(Arch::kLlama, type)).engine);
    const std::vector<int32_t> a = RandomTokens(20, model->n_vocab(), 1), b = RandomTokens(33, model->n_vocab(), 2);
    ContextOptions copt;
    copt.n_seq = 2;
    copt.n_threads = 2;
    std::unique_ptr<Context> both = *Context::Create(*model, copt);
    // Prompts interleaved in one batch, every position an output.
    std::vector<BatchToken> batch;
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      if (i < b.size()) batch.push_back({b[i], 1, static_cast<int32_t>(i), true});
      if (i < a.size()) batch.push_back({a[i], 0, static_cast<int32_t>(i), true});
    }
    ASSERT_TRUE(both->Forward(batch).ok());
    std::vector<std::vector<float>> got_a, got_b;
    for (int r = 0, i = 0; r < both->n_outputs(); ++r, ++i) {
      const std::span<const float> row = both->Output(r);
      (batch[i].seq == 0 ? got_a : got_b).emplace_back(row.begin(), row.end());
    }
    // Then three decode steps of both sequences together.
    for (int step = 0; step < 3; ++step) {
      const int32_t ta = (7 * step + 3) % model->n_vocab(), tb = (11 * step + 5) % model->n_vocab();
      const std::vector<BatchToken> pair = {{ta, 0, static_cast<int32_t>(a.size()) + step, true},
                                            {tb, 1, static_cast<int32_t>(b.size()) + step, true}};
      ASSERT_TRUE(both->Forward(pair).ok());
      got_a.emplace_back(both->Output(0).begin(), both->Output(0).end());
      got_b.emplace_back(both->Output(1).begin(), both->Output(1).end());
    }
    // Each alone, in its own context, prompt in one batch then the same steps.
    for (int which = 0; which < 2; ++which) {
      const std::vector<int32_t>& p = which == 0 ? a : b;
      const std::vector<std::vector<float>>& got = which == 0 ? got_a : got_b;
      ContextOptions one;
      std::unique_ptr<Context> alone = *Context::Create(*model, one);
      std::vector<BatchToken> pb;
      for (size_t i = 0; i < p.size(); ++i) pb.push_back({p[i], 0, static_cast<int32_t>(i), true});
      ASSERT_TRUE(alone->Forward(pb).ok());
      std::vector<std::vector<float>> want;
      for (int r = 0; r < alone->n_outputs(); ++r) want.emplace_back(alone->Output(r).begin(), alone->Output(r).end());
      for (int step = 0; step < 3; ++step) {
        const int32_t t = which == 0 ? (7 * step + 3) % model->n_vocab() : (11 * step + 5) % model->n_vocab();
        const BatchToken bt{t, 0, static_cast<int32_t>(p.size()) + step, true};
        ASSERT_TRUE(alone->Forward(std::span(&bt, 1)).ok());
        want.emplace_back(alone->Output(0).begin(), alone->Output(0).end());
      }
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) EXPECT_LT(RelError(got[i], want[i]), 1e-5) << which << " " << i;
    }
  }
}

TEST(ModelTest, ABatchLongerThanAMicroBatchMatchesShortBatches) {
  // 300 entries of two interleaved sequences pass through the layers in micro-batches of
  // Context::kMicroBatch (128): sequences continue across their boundaries. Every 7th entry
  // and each sequence's last one is an output; the same tokens fed to a context of their
  // own in batches of 50 must give the same rows, in batch order.
  static_assert(Context::kMicroBatch < 300);
  for (const char* type : {"f32", "q8_0"}) {
    SCOPED_TRACE(type);
    SynthOptions o = Tiny(Arch::kQwen2, type);
    o.shape.n_ctx = 512;
    std::unique_ptr<Model> model = *Model::FromFile(Synthesize(o).engine);
    const std::vector<int32_t> a = RandomTokens(170, model->n_vocab(), 3), b = RandomTokens(130, model->n_vocab(), 4);
    for (OutputKind kind : {OutputKind::kLogits, OutputKind::kHidden}) {
      ContextOptions copt;
      copt.n_seq = 2;
      copt.n_threads = 2;
      std::unique_ptr<Context> both = *Context::Create(*model, copt);
      std::vector<BatchToken> batch;
      for (size_t i = 0; i < a.size(); ++i) {
        if (i < b.size()) batch.push_back({b[i], 1, static_cast<int32_t>(i), i + 1 == b.size()});
        batch.push_back({a[i], 0, static_cast<int32_t>(i), i + 1 == a.size()});
      }
      for (size_t i = 0; i < batch.size(); i += 7) batch[i].output = true;
      ASSERT_TRUE(both->Forward(batch, kind).ok());
      std::vector<std::vector<float>> want[2];
      for (int seq = 0; seq < 2; ++seq) {
        const std::vector<int32_t>& p = seq == 0 ? a : b;
        std::unique_ptr<Context> alone = *Context::Create(*model, ContextOptions{});
        for (size_t b0 = 0; b0 < p.size(); b0 += 50) {
          std::vector<BatchToken> piece;
          for (size_t i = b0; i < std::min(p.size(), b0 + 50); ++i) {
            piece.push_back({p[i], 0, static_cast<int32_t>(i), true});
          }
          ASSERT_TRUE(alone->Forward(piece, kind).ok());
          for (int r = 0; r < alone->n_outputs(); ++r) {
            want[seq].emplace_back(alone->Output(r).begin(), alone->Output(r).end());
          }
        }
      }
      int r = 0;
      for (const BatchToken& bt : batch) {
        if (!bt.output) continue;
        ASSERT_LT(r, both->n_outputs());
        const std::span<const float> got = both->Output(r++);
        EXPECT_LT(RelError(std::vector<float>(got.begin(), got.end()), want[bt.seq][bt.pos]), 1e-5)
            << "seq " << bt.seq << " pos " << bt.pos;
      }
      EXPECT_EQ(r, both->n_outputs());
    }
  }
}

TEST(ModelTest, EmbeddingsArePooledNormalizedHiddenStates) {
  for (Arch arch : {Arch::kBert, Arch::kLlama}) {
    for (Pooling pooling : {Pooling::kMean, Pooling::kCls, Pooling::kLast}) {
      SCOPED_TRACE(fmt::format("{} {}", ArchName(arch), PoolingName(pooling)));
      const SynthOptions o = Tiny(arch, "f32");
      Files files = Synthesize(o);
      Reference ref(*files.reference);
      std::unique_ptr<Model> model = *Model::FromFile(std::move(files.engine));
      const std::vector<int32_t> tokens = RandomTokens(21, model->n_vocab(), 3);
      const std::vector<std::vector<float>> h = ref.Hidden(tokens);
      std::vector<float> want(h[0].size(), 0.0f);
      for (size_t t = 0; t < h.size(); ++t) {
        const bool use = pooling == Pooling::kMean || (pooling == Pooling::kCls && t == 0) ||
                         (pooling == Pooling::kLast && t + 1 == h.size());
        for (size_t i = 0; use && i < want.size(); ++i) want[i] += h[t][i];
      }
      double norm = 0;
      for (float v : want) norm += static_cast<double>(v) * v;
      for (float& v : want) v = static_cast<float>(v / std::sqrt(norm));
      ContextOptions copt;
      copt.n_batch = 8;  // decoders go in chunks
      if (arch == Arch::kBert) copt.n_batch = 32;
      std::unique_ptr<Session> s = *Session::Create(*model, copt);
      absl::StatusOr<std::vector<float>> got = s->Embed(tokens, pooling);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_LT(RelError(*got, want), 1e-3);
      EXPECT_EQ(s->pos(), 0);
    }
  }
}

// A copy of a GGUF file with metadata changed (keys in `drop` left out, then `set`
// run) and one more f32 tensor, for what the synthesizer does not write.
std::string Amend(const std::string& bytes, const std::set<std::string>& drop,
                  const std::function<void(GgufWriter&)>& set, const std::string& tensor = "",
                  const std::vector<float>& values = {}) {
  std::unique_ptr<GgufFile> in = *GgufFile::FromBuffer(bytes);
  GgufWriter w;
  for (const GgufKeyValue& kv : in->metadata()) {
    if (kv.key != "general.alignment" && !drop.contains(std::string(kv.key))) w.SetValue(kv.key, kv.value);
  }
  set(w);
  for (const GgufTensor& t : in->tensors()) {
    w.AddTensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims));
  }
  if (!tensor.empty()) w.AddTensor(tensor, TensorType::kF32, {static_cast<int64_t>(values.size())});
  std::string out;
  EXPECT_TRUE(w.Begin(&out).ok());
  for (const GgufTensor& t : in->tensors()) EXPECT_TRUE(w.Append(t.data, t.size).ok());
  if (!tensor.empty()) {
    EXPECT_TRUE(w.Append(values.data(), values.size() * sizeof(float)).ok());
  }
  EXPECT_TRUE(w.Finish().ok());
  return out;
}

TEST(ModelTest, RopeScalingAndFrequencyFactors) {
  const std::string bytes = *SynthesizeModelToBuffer(Tiny(Arch::kLlama, "f32"));
  // Linear scaling by 4 and Llama 3.1-style divisors, one per rotated pair (32).
  std::vector<float> factors(32);
  for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + static_cast<float>(i % 5);
  const std::string amended = Amend(
      bytes, {},
      [](GgufWriter& w) {
        w.SetString("llama.rope.scaling.type", "linear");
        w.SetF32("llama.rope.scaling.factor", 4.0f);
      },
      "rope_freqs.weight", factors);
  std::unique_ptr<GgufFile> ref_file = *GgufFile::FromBuffer(amended);
  Reference ref(*ref_file);
  EXPECT_FLOAT_EQ(ref.config().rope_freq_scale, 0.25f);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::FromFile(*GgufFile::FromBuffer(amended));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_NE((*model)->weights().rope_freqs, nullptr);
  const std::vector<int32_t> prompt = RandomTokens(24, (*model)->n_vocab(), 4);
  const std::vector<std::vector<float>> want = ref.Logits(prompt);
  ContextOptions o;
  o.kv_type = KvType::kF32;
  std::unique_ptr<Context> ctx = *Context::Create(**model, o);
  std::vector<BatchToken> batch;
  for (int i = 0; i < 24; ++i) batch.push_back({prompt[i], 0, i, true});
  ASSERT_TRUE(ctx->Forward(batch).ok());
  for (int i = 0; i < 24; ++i) EXPECT_LT(RelError(ctx->Output(i), want[i]), 2e-5) << i;
  // Without the factors and the scaling the logits differ: the test sees them.
  std::unique_ptr<Model> plain = *Model::FromFile(*GgufFile::FromBuffer(bytes));
  std::unique_ptr<Context> pctx = *Context::Create(*plain, o);
  ASSERT_TRUE(pctx->Forward(batch).ok());
  EXPECT_GT(RelError(pctx->Output(23), want[23]), 1e-3);
}

TEST(ModelTest, LoadRejectsWhatItCannotRun) {
  const std::string bytes = *SynthesizeModelToBuffer(Tiny(Arch::kLlama, "f32"));
  absl::StatusOr<std::unique_ptr<Model>> m = Model::FromFile(
      *GgufFile::FromBuffer(Amend(bytes, {}, [](GgufWriter& w) { w.SetString("llama.rope.scaling.type", "yarn"); })));
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr("RoPE scaling 'yarn' is not supported"));
  m = Model::FromFile(*GgufFile::FromBuffer(
      Amend(bytes, {}, [](GgufWriter&) {}, "rope_freqs.weight", std::vector<float>(31, 1.0f))));
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr("'rope_freqs.weight' has shape [31], expected [32]"));
  const std::string bert = *SynthesizeModelToBuffer(Tiny(Arch::kBert, "f32"));
  const std::string rank = Amend(bert, {"bert.pooling_type"}, [](GgufWriter& w) { w.SetU32("bert.pooling_type", 4); });
  m = Model::FromFile(*GgufFile::FromBuffer(rank));
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr("'rank'"));
}

// An encoder marked causal: each token sees itself and the tokens before it, in a
// tile (a batch) and alone.
TEST(ModelTest, CausalEncoderMasksLaterTokens) {
  const std::string bytes = Amend(*SynthesizeModelToBuffer(Tiny(Arch::kBert, "f32")), {"bert.attention.causal"},
                                  [](GgufWriter& w) { w.SetBool("bert.attention.causal", true); });
  std::unique_ptr<GgufFile> ref_file = *GgufFile::FromBuffer(bytes);
  Reference ref(*ref_file);
  ASSERT_TRUE(ref.config().causal);
  std::unique_ptr<Model> model = *Model::FromFile(*GgufFile::FromBuffer(bytes));
  const std::vector<int32_t> tokens = RandomTokens(40, model->n_vocab(), 12);
  const std::vector<std::vector<float>> want = ref.Hidden(tokens);
  std::unique_ptr<Context> ctx = *Context::Create(*model);
  std::vector<BatchToken> batch;
  for (int i = 0; i < 40; ++i) batch.push_back({tokens[i], 0, i, true});
  ASSERT_TRUE(ctx->Forward(batch, OutputKind::kHidden).ok());
  for (int i = 0; i < 40; ++i) EXPECT_LT(RelError(ctx->Output(i), want[i]), 1e-5) << i;
  // The first token alone gives the same as in the batch: later tokens are masked.
  ASSERT_TRUE(ctx->Forward(std::span(batch.data(), 1), OutputKind::kHidden).ok());
  EXPECT_LT(RelError(ctx->Output(0), want[0]), 1e-5);
}

}  // namespace
}  // namespace cairn::infer
