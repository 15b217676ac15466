#include "cairn/infer/synth.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/infer/gguf.h"
#include "cairn/infer/model_config.h"

namespace cairn::infer {
namespace {

using ::testing::HasSubstr;

// Small enough to synthesize 21 times in a test, wide enough (256) for the k-quants.
SynthOptions Small(Arch arch, const std::string& type) {
  SynthOptions o;
  o.arch = arch;
  o.shape = SynthShapeForArch(*SynthPreset("tiny"), arch);
  o.shape.n_ff = 256;
  o.shape.n_vocab = 400;
  o.shape.n_ctx = 64;
  o.weight_type = type;
  o.seed = 7;
  return o;
}

std::unique_ptr<GgufFile> Load(const std::string& bytes) {
  auto f = GgufFile::FromBuffer(bytes, "synth.gguf");
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? std::move(*f) : nullptr;
}

std::vector<float> Weights(const GgufTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  EXPECT_TRUE(Dequantize(t.type, t.data, out.data(), t.n_elements()).ok());
  return out;
}

double RelativeRmse(const std::vector<float>& want, const std::vector<float>& got) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (want[i] - got[i]) * static_cast<double>(want[i] - got[i]);
    ref += want[i] * static_cast<double>(want[i]);
  }
  return std::sqrt(err / ref);
}

TEST(SynthTest, EveryArchitectureAndTypeRoundTrips) {
  const std::map<std::string, double> tolerance = {{"f32", 0},      {"f16", 0.001}, {"bf16", 0.005}, {"q8_0", 0.01},
                                                   {"q4_0", 0.15},  {"q4_k", 0.12}, {"q4_k_m", 0.12}};
  for (Arch arch : {Arch::kLlama, Arch::kQwen2, Arch::kBert}) {
    auto reference = Load(*SynthesizeModelToBuffer(Small(arch, "f32")));
    ASSERT_NE(reference, nullptr);
    for (const std::string& type : SynthWeightTypeNames()) {
      SCOPED_TRACE(std::string(ArchName(arch)) + " " + type);
      absl::StatusOr<std::string> bytes = SynthesizeModelToBuffer(Small(arch, type));
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      auto file = Load(*bytes);
      ASSERT_NE(file, nullptr);
      absl::StatusOr<ModelConfig> c = ReadModelConfig(*file);
      ASSERT_TRUE(c.ok()) << c.status();
      EXPECT_EQ(c->arch, arch);
      EXPECT_EQ(c->n_embd, 256u);
      EXPECT_EQ(c->n_ff, 256u);
      EXPECT_EQ(c->n_layer, 2u);
      EXPECT_EQ(c->n_vocab, 400u);
      EXPECT_EQ(c->n_ctx_train, 64u);
      EXPECT_EQ(c->n_head, 4u);
      EXPECT_EQ(c->n_head_kv, arch == Arch::kBert ? 4u : 2u);
      ASSERT_TRUE(CheckModelTensors(*file, *c).ok()) << CheckModelTensors(*file, *c);
      EXPECT_EQ(file->tensors().size(), ExpectedTensors(*c).size());
      // Same seed, same model: every tensor is the f32 model's within the type's error.
      for (const GgufTensor& t : file->tensors()) {
        const GgufTensor* ref = reference->FindTensor(t.name);
        ASSERT_NE(ref, nullptr) << t.name;
        const double err = RelativeRmse(Weights(*ref), Weights(t));
        ASSERT_LE(err, t.n_dims == 1 ? 0.0 : tolerance.at(type)) << t.name;
      }
      const GgufTensor* norm = file->FindTensor(arch == Arch::kBert ? "blk.0.attn_output_norm.weight"
                                                                    : "blk.0.attn_norm.weight");
      ASSERT_NE(norm, nullptr);
      EXPECT_EQ(norm->type, TensorType::kF32);
    }
  }
}

TEST(SynthTest, TensorTypesOfEachWeightType) {
  std::map<std::string, std::unique_ptr<GgufFile>> files;
  auto type_of = [&files](const std::string& weight_type, const char* tensor) {
    std::unique_ptr<GgufFile>& file = files[weight_type];
    if (file == nullptr) file = Load(*SynthesizeModelToBuffer(Small(Arch::kLlama, weight_type)));
    return file->FindTensor(tensor)->type;
  };
  EXPECT_EQ(type_of("f16", "blk.0.attn_q.weight"), TensorType::kF16);
  EXPECT_EQ(type_of("f16", "token_embd.weight"), TensorType::kF16);
  EXPECT_EQ(type_of("bf16", "blk.1.ffn_down.weight"), TensorType::kBF16);
  EXPECT_EQ(type_of("q8_0", "output.weight"), TensorType::kQ8_0);
  EXPECT_EQ(type_of("q4_0", "blk.0.attn_k.weight"), TensorType::kQ4_0);
  EXPECT_EQ(type_of("q4_k", "blk.0.ffn_gate.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type_of("q4_k_m", "output.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type_of("q4_k_m", "token_embd.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type_of("q4_k_m", "blk.0.attn_v.weight"), TensorType::kQ4_K);  // n_layer 2: layer 1 gets more bits
  EXPECT_EQ(type_of("q4_k_m", "blk.1.attn_v.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type_of("q4_k_m", "blk.1.ffn_down.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type_of("q4_k_m", "blk.1.attn_q.weight"), TensorType::kQ4_K);
  auto file = Load(*SynthesizeModelToBuffer(Small(Arch::kBert, "q4_0")));
  EXPECT_EQ(file->FindTensor("position_embd.weight")->type, TensorType::kF32);
  EXPECT_EQ(file->FindTensor("token_types.weight")->type, TensorType::kF32);
  EXPECT_EQ(file->FindTensor("blk.0.attn_q.bias")->type, TensorType::kF32);
}

// llama-quantize's Q4_K_M choices for the real shapes (rows of 576 and 896 cannot be
// k-quants; llama.cpp's q5_0 fallback is q4_0 here).
TEST(SynthTest, Q4KMFollowsLlamaCppRules) {
  auto t = [](const std::string& name, int64_t cols, int layer, uint32_t n_layer, bool has_output) {
    return *SynthTensorType("q4_k_m", name, {cols, 1024}, layer, n_layer, has_output);
  };
  // TinyLlama: 22 layers, untied. use_more_bits: layers 0, 1, 19, 20, 21 and 4, 7, 10, 13, 16.
  EXPECT_EQ(t("output.weight", 2048, -1, 22, true), TensorType::kQ6_K);
  EXPECT_EQ(t("token_embd.weight", 2048, -1, 22, true), TensorType::kQ4_K);
  std::set<int> more_bits;
  for (int i = 0; i < 22; ++i) {
    if (t(fmt::format("blk.{}.attn_v.weight", i), 2048, i, 22, true) == TensorType::kQ6_K) more_bits.insert(i);
    EXPECT_EQ(t(fmt::format("blk.{}.ffn_down.weight", i), 5632, i, 22, true),
              more_bits.count(i) ? TensorType::kQ6_K : TensorType::kQ4_K);
    EXPECT_EQ(t(fmt::format("blk.{}.attn_q.weight", i), 2048, i, 22, true), TensorType::kQ4_K);
  }
  EXPECT_EQ(more_bits, (std::set<int>{0, 1, 4, 7, 10, 13, 16, 19, 20, 21}));
  // SmolLM2-135M: tied, rows of 576.
  EXPECT_EQ(t("token_embd.weight", 576, -1, 30, false), TensorType::kQ8_0);
  EXPECT_EQ(t("blk.3.attn_q.weight", 576, 3, 30, false), TensorType::kQ4_0);
  EXPECT_EQ(t("blk.0.attn_v.weight", 576, 0, 30, false), TensorType::kQ8_0);
  EXPECT_EQ(t("blk.0.ffn_down.weight", 1536, 0, 30, false), TensorType::kQ6_K);
  EXPECT_EQ(t("blk.3.ffn_down.weight", 1536, 3, 30, false), TensorType::kQ4_K);
  EXPECT_EQ(t("blk.5.ffn_down.weight", 1536, 5, 30, false), TensorType::kQ6_K);
  // Vectors stay f32; odd rows fall back to f16.
  EXPECT_EQ(*SynthTensorType("q4_k_m", "blk.0.attn_norm.weight", {2048}, 0, 22, true), TensorType::kF32);
  EXPECT_EQ(*SynthTensorType("q8_0", "blk.0.attn_q.weight", {100, 100}, 0, 22, true), TensorType::kF16);
  EXPECT_FALSE(SynthTensorType("q5_k", "x", {256, 2}, 0, 1, true).ok());
}

TEST(SynthTest, DeterministicPerSeed) {
  const std::string a = *SynthesizeModelToBuffer(Small(Arch::kQwen2, "q8_0"));
  const std::string b = *SynthesizeModelToBuffer(Small(Arch::kQwen2, "q8_0"));
  EXPECT_EQ(a, b);
  SynthOptions other = Small(Arch::kQwen2, "q8_0");
  other.seed = 8;
  EXPECT_NE(a, *SynthesizeModelToBuffer(other));
}

TEST(SynthTest, WeightsAreSane) {
  auto file = Load(*SynthesizeModelToBuffer(Small(Arch::kLlama, "f32")));
  std::vector<float> w = Weights(*file->FindTensor("blk.0.ffn_up.weight"));
  double sum = 0, sq = 0;
  for (float x : w) {
    sum += x;
    sq += x * static_cast<double>(x);
  }
  const double mean = sum / w.size(), sd = std::sqrt(sq / w.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(sd, 1 / 16.0, 0.002);  // 1/sqrt(256)
  std::vector<float> norm = Weights(*file->FindTensor("output_norm.weight"));
  for (float x : norm) EXPECT_NEAR(x, 1.0f, 0.25f);
}

TEST(SynthTest, GeneratedVocabularies) {
  auto spm = Load(*SynthesizeModelToBuffer(Small(Arch::kLlama, "q4_0")));
  auto tokens = *spm->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 400u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(tokens[258], "<0xFF>");
  EXPECT_EQ(std::set<std::string_view>(tokens.begin(), tokens.end()).size(), tokens.size());
  EXPECT_EQ(*spm->GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(spm->GetI32Array("tokenizer.ggml.token_type")->at(10), 6);
  EXPECT_EQ(spm->GetF32Array("tokenizer.ggml.scores")->size(), 400u);
  EXPECT_EQ(*spm->GetU32("tokenizer.ggml.eos_token_id"), 2u);

  auto wpm = Load(*SynthesizeModelToBuffer(Small(Arch::kBert, "q4_0")));
  auto words = *wpm->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_EQ(words.size(), 400u);
  EXPECT_EQ(words[2], "[CLS]");
  EXPECT_EQ(std::set<std::string_view>(words.begin(), words.end()).size(), words.size());
  EXPECT_EQ(*wpm->GetString("tokenizer.ggml.model"), "bert");
  EXPECT_EQ(*wpm->GetU32("tokenizer.ggml.seperator_token_id"), 3u);
  EXPECT_EQ(*wpm->GetU32("tokenizer.ggml.token_type_count"), 2u);

  SynthOptions tiny_vocab = Small(Arch::kLlama, "f32");
  tiny_vocab.shape.n_vocab = 100;
  EXPECT_THAT(std::string(SynthesizeModelToBuffer(tiny_vocab).status().message()), HasSubstr("too small"));
}

std::string Fixture(const std::string& name) {
  return (std::filesystem::path(CAIRN_INFER_TESTDATA_DIR) / "tokenizers" / name).string();
}

TEST(SynthTest, VocabularyFromAnotherFile) {
  SynthOptions o = Small(Arch::kLlama, "q4_0");
  o.shape.n_embd = 64;
  o.shape.n_ff = 128;
  o.vocab_from = Fixture("ggml-vocab-llama-spm.gguf");
  auto file = Load(*SynthesizeModelToBuffer(o));
  auto c = ReadModelConfig(*file);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->n_vocab, 32000u);
  EXPECT_TRUE(CheckModelTensors(*file, *c).ok());
  EXPECT_EQ(file->FindTensor("token_embd.weight")->ne[1], 32000);
  EXPECT_EQ(*file->GetString("tokenizer.ggml.pre"), "default");
  EXPECT_TRUE(*file->GetBool("tokenizer.ggml.add_bos_token"));

  SynthOptions b = Small(Arch::kBert, "q8_0");
  b.shape.n_embd = 64;
  b.shape.n_ff = 128;
  b.vocab_from = Fixture("ggml-vocab-bert-bge.gguf");
  auto bert = Load(*SynthesizeModelToBuffer(b));
  auto bc = ReadModelConfig(*bert);
  ASSERT_TRUE(bc.ok()) << bc.status();
  EXPECT_EQ(bc->n_vocab, 30522u);
  EXPECT_EQ(bc->n_token_types, 2u);
  EXPECT_EQ(*bert->GetU32("tokenizer.ggml.cls_token_id"), 101u);
  EXPECT_TRUE(CheckModelTensors(*bert, *bc).ok());

  SynthOptions missing = o;
  missing.vocab_from = "/nonexistent.gguf";
  EXPECT_EQ(SynthesizeModelToBuffer(missing).status().code(), absl::StatusCode::kNotFound);
}

TEST(SynthTest, WritesAFileWithProgress) {
  const std::string path = ::testing::TempDir() + "/synth_test_model.gguf";
  SynthOptions o = Small(Arch::kLlama, "q4_k_m");
  uint64_t last = 0, total = 0;
  int calls = 0;
  o.progress = [&](uint64_t done, uint64_t all) {
    EXPECT_GE(done, last);
    last = done;
    total = all;
    ++calls;
  };
  ASSERT_TRUE(SynthesizeModel(o, path).ok());
  EXPECT_GT(calls, 10);
  EXPECT_EQ(last, total);
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*(*f)->GetU32("general.file_type"), 15u);
  EXPECT_EQ(*(*f)->GetU32("general.quantization_version"), 2u);
  EXPECT_GE((*f)->file_size(), total);
  std::filesystem::remove(path);
}

TEST(SynthTest, RejectsBadOptions) {
  SynthOptions o = Small(Arch::kLlama, "q5_k");
  EXPECT_THAT(std::string(SynthesizeModelToBuffer(o).status().message()), HasSubstr("unknown weight type 'q5_k'"));
  o = Small(Arch::kLlama, "f32");
  o.shape.n_head = 3;
  EXPECT_THAT(std::string(SynthesizeModelToBuffer(o).status().message()), HasSubstr("not a multiple of n_head 3"));
  o = Small(Arch::kLlama, "f32");
  o.shape.n_head_kv = 3;
  EXPECT_FALSE(SynthesizeModelToBuffer(o).ok());
  o = Small(Arch::kLlama, "f32");
  o.shape.n_layer = 0;
  EXPECT_FALSE(SynthesizeModelToBuffer(o).ok());
  EXPECT_FALSE(SynthPreset("gpt-4").ok());
}

TEST(SynthTest, PresetsHaveThePublicShapes) {
  for (const std::string& name : SynthPresetNames()) EXPECT_TRUE(SynthPreset(name).ok()) << name;
  SynthShape smol = *SynthPreset("smollm2-135m");
  EXPECT_EQ(smol.n_embd, 576u);
  EXPECT_EQ(smol.n_layer, 30u);
  EXPECT_TRUE(smol.tied_embeddings);
  SynthShape qwen = *SynthPreset("qwen2.5-0.5b");
  EXPECT_EQ(qwen.arch, Arch::kQwen2);
  EXPECT_EQ(qwen.n_head_kv, 2u);
  SynthShape bge = *SynthPreset("bge-small");
  EXPECT_EQ(bge.arch, Arch::kBert);
  EXPECT_EQ(bge.pooling, Pooling::kCls);
  SynthShape bert_tiny = SynthShapeForArch(*SynthPreset("tiny"), Arch::kBert);
  EXPECT_EQ(bert_tiny.n_head_kv, bert_tiny.n_head);
}

}  // namespace
}  // namespace cairn::infer
