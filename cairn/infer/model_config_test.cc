#include "cairn/infer/model_config.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/infer/gguf.h"
#include "cairn/infer/gguf_writer.h"
#include "cairn/infer/synth.h"

namespace cairn::infer {
namespace {

using ::testing::HasSubstr;

SynthOptions Tiny(Arch arch) {
  SynthOptions o;
  o.arch = arch;
  o.shape = SynthShapeForArch(*SynthPreset("tiny"), arch);
  o.shape.n_ff = 256;
  o.shape.n_vocab = 400;
  o.weight_type = "q8_0";
  return o;
}

std::unique_ptr<GgufFile> Synth(const SynthOptions& o) {
  auto bytes = SynthesizeModelToBuffer(o);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  auto f = GgufFile::FromBuffer(*bytes, "m.gguf");
  EXPECT_TRUE(f.ok()) << f.status();
  return std::move(*f);
}

// A llama model written by hand: `edit` may change the metadata and tensors before
// they are written (tensor data is zeros).
struct HandModel {
  std::vector<std::pair<std::string, uint32_t>> u32 = {
      {"llama.context_length", 128}, {"llama.embedding_length", 64}, {"llama.block_count", 1},
      {"llama.feed_forward_length", 128}, {"llama.attention.head_count", 4}, {"llama.attention.head_count_kv", 2},
      {"llama.vocab_size", 32}};
  std::vector<ExpectedTensor> tensors;
  std::vector<TensorType> types;
  std::vector<int32_t> ff_array;  // llama.feed_forward_length as an array when not empty
  bool with_eps = true;
  std::string arch = "llama";

  HandModel() {
    ModelConfig c;
    c.n_vocab = 32;
    c.n_ctx_train = 128;
    c.n_embd = 64;
    c.n_ff = 128;
    c.n_layer = 1;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.head_dim = 16;
    tensors = ExpectedTensors(c);
    for (const ExpectedTensor& t : tensors) types.push_back(t.matrix ? TensorType::kF16 : TensorType::kF32);
  }
  void Remove(const std::string& name) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].name == name) {
        tensors.erase(tensors.begin() + static_cast<long>(i));
        types.erase(types.begin() + static_cast<long>(i));
        return;
      }
    }
  }
  size_t Index(const std::string& name) const {
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].name == name) return i;
    }
    return tensors.size();
  }
  std::unique_ptr<GgufFile> Build() const {
    GgufWriter w;
    w.SetString("general.architecture", arch);
    for (const auto& [k, v] : u32) {
      if (k == "llama.feed_forward_length" && !ff_array.empty()) {
        w.SetI32Array(k, ff_array);
      } else {
        w.SetU32(k, v);
      }
    }
    if (with_eps) w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    for (size_t i = 0; i < tensors.size(); ++i) w.AddTensor(tensors[i].name, types[i], tensors[i].ne);
    std::string out;
    EXPECT_TRUE(w.Begin(&out).ok());
    std::string zeros(w.total_data_bytes(), '\0');
    // Append writes the tensors' bytes; the padding is the writer's.
    uint64_t need = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      uint64_t rows = 1;
      for (size_t d = 1; d < tensors[i].ne.size(); ++d) rows *= static_cast<uint64_t>(tensors[i].ne[d]);
      need += *RowBytes(types[i], tensors[i].ne[0]) * rows;
    }
    EXPECT_TRUE(w.Append(zeros.data(), need).ok());
    EXPECT_TRUE(w.Finish().ok());
    auto f = GgufFile::FromBuffer(out, "hand.gguf");
    EXPECT_TRUE(f.ok()) << f.status();
    return std::move(*f);
  }
};

TEST(ModelConfigTest, ReadsEachArchitecture) {
  auto llama = Synth(Tiny(Arch::kLlama));
  auto c = ReadModelConfig(*llama);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->head_dim, 64u);
  EXPECT_EQ(c->n_rot, 64u);
  EXPECT_EQ(c->n_embd_kv(), 128u);
  EXPECT_EQ(c->rope_type, RopeType::kNorm);
  EXPECT_TRUE(c->rms_norm);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->tied_embeddings);
  EXPECT_FLOAT_EQ(c->norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c->rope_freq_base, 10000.0f);
  EXPECT_TRUE(c->causal);

  SynthOptions q = Tiny(Arch::kQwen2);
  q.shape.tied_embeddings = true;
  q.shape.rope_freq_base = 1e6f;
  auto qwen = Synth(q);
  auto qc = ReadModelConfig(*qwen);
  ASSERT_TRUE(qc.ok()) << qc.status();
  EXPECT_EQ(qc->rope_type, RopeType::kNeox);
  EXPECT_TRUE(qc->qkv_bias);
  EXPECT_TRUE(qc->tied_embeddings);
  EXPECT_FLOAT_EQ(qc->rope_freq_base, 1e6f);
  EXPECT_EQ(qwen->FindTensor("output.weight"), nullptr);
  EXPECT_TRUE(CheckModelTensors(*qwen, *qc).ok());

  auto bert = Synth(Tiny(Arch::kBert));
  auto bc = ReadModelConfig(*bert);
  ASSERT_TRUE(bc.ok()) << bc.status();
  EXPECT_EQ(bc->arch, Arch::kBert);
  EXPECT_FALSE(bc->rms_norm);
  EXPECT_FALSE(bc->causal);
  EXPECT_EQ(bc->pooling, Pooling::kCls);
  EXPECT_EQ(bc->rope_type, RopeType::kNone);
  EXPECT_EQ(bc->n_token_types, 2u);
  EXPECT_FLOAT_EQ(bc->norm_eps, 1e-12f);
  EXPECT_TRUE(bc->is_encoder());
}

TEST(ModelConfigTest, HandModelIsValid) {
  HandModel m;
  auto f = m.Build();
  auto c = ReadModelConfig(*f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(CheckModelTensors(*f, *c).ok()) << CheckModelTensors(*f, *c);
}

TEST(ModelConfigTest, MissingKeysAreNamed) {
  HandModel m;
  m.u32.erase(m.u32.begin() + 2);  // llama.block_count
  auto c = ReadModelConfig(*m.Build());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("'llama.block_count' is missing"));

  HandModel no_eps;
  no_eps.with_eps = false;
  EXPECT_THAT(std::string(ReadModelConfig(*no_eps.Build()).status().message()),
              HasSubstr("llama.attention.layer_norm_rms_epsilon"));

  HandModel phi;
  phi.arch = "phi3";
  EXPECT_THAT(std::string(ReadModelConfig(*phi.Build()).status().message()),
              HasSubstr("architecture 'phi3' is not supported"));
}

TEST(ModelConfigTest, InconsistentHyperparameters) {
  HandModel gqa;
  gqa.u32[5].second = 3;  // head_count_kv 3 with 4 heads
  EXPECT_THAT(std::string(ReadModelConfig(*gqa.Build()).status().message()),
              HasSubstr("head_count 4 is not a multiple of head_count_kv 3"));
  HandModel ff;
  ff.ff_array = {128};
  EXPECT_EQ(ReadModelConfig(*ff.Build())->n_ff, 128u);
  ff.ff_array = {128, 256};
  EXPECT_THAT(std::string(ReadModelConfig(*ff.Build()).status().message()), HasSubstr("differs between layers"));
}

TEST(ModelConfigTest, VocabularySizeFallsBackToTheEmbedding) {
  HandModel m;
  m.u32.pop_back();  // no llama.vocab_size, no token list
  auto c = ReadModelConfig(*m.Build());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->n_vocab, 32u);
}

TEST(ModelConfigTest, TensorProblemsAreNamed) {
  {
    HandModel m;
    m.Remove("blk.0.ffn_up.weight");
    auto f = m.Build();
    absl::Status s = CheckModelTensors(*f, *ReadModelConfig(*f));
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(s.message()), HasSubstr("tensor 'blk.0.ffn_up.weight' is missing (expected shape [64, "
                                                    "128])"));
  }
  {
    HandModel m;
    m.tensors[m.Index("blk.0.attn_k.weight")].ne = {64, 64};
    auto f = m.Build();
    EXPECT_THAT(std::string(CheckModelTensors(*f, *ReadModelConfig(*f)).message()),
                HasSubstr("'blk.0.attn_k.weight' has shape [64, 64], expected [64, 32]"));
  }
  {
    HandModel m;
    m.types[m.Index("blk.0.attn_norm.weight")] = TensorType::kF16;
    auto f = m.Build();
    EXPECT_THAT(std::string(CheckModelTensors(*f, *ReadModelConfig(*f)).message()),
                HasSubstr("'blk.0.attn_norm.weight' has type f16, expected f32"));
  }
  {
    HandModel m;
    m.types[m.Index("blk.0.ffn_down.weight")] = TensorType::kQ5_0;
    auto f = m.Build();
    EXPECT_THAT(std::string(CheckModelTensors(*f, *ReadModelConfig(*f)).message()),
                HasSubstr("'blk.0.ffn_down.weight' has type q5_0, which cairn cannot run"));
  }
  {
    HandModel m;
    m.Remove("output.weight");  // tied: fine
    auto f = m.Build();
    auto c = ReadModelConfig(*f);
    EXPECT_TRUE(c->tied_embeddings);
    EXPECT_TRUE(CheckModelTensors(*f, *c).ok());
  }
}

TEST(ModelConfigTest, ParametersAndMemory) {
  HandModel m;
  auto f = m.Build();
  auto c = *ReadModelConfig(*f);
  // Embedding and output 2 x 64 x 32, norms 3 x 64, q and o 2 x 64 x 64, k and v 2 x 64 x 32,
  // ffn 3 x 64 x 128.
  EXPECT_EQ(ParameterCount(*f), 2u * 64 * 32 + 3 * 64 + 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128);
  MemoryEstimate mem = EstimateMemory(*f, c);
  uint64_t bytes = 0;
  for (const GgufTensor& t : f->tensors()) bytes += t.size;
  EXPECT_EQ(mem.weights, bytes);
  EXPECT_EQ(mem.kv_cache, 2u * 1 * 128 * 32 * 2);  // K and V, 1 layer, 128 positions, 2 heads of 16, f16
  EXPECT_EQ(EstimateMemory(*f, c, 64).kv_cache, mem.kv_cache / 2);
  EXPECT_GT(mem.compute, 0u);
  EXPECT_EQ(mem.total(), mem.weights + mem.kv_cache + mem.compute);

  auto bert = Synth(Tiny(Arch::kBert));
  EXPECT_EQ(EstimateMemory(*bert, *ReadModelConfig(*bert)).kv_cache, 0u);
}

}  // namespace
}  // namespace cairn::infer
