// cairn/infer/model_config.h — a model's hyperparameters and tensor layout, read from
// GGUF metadata with llama.cpp's key and tensor names.
//
// ReadModelConfig reads `general.architecture` and the `{arch}.*` keys of the three
// supported architectures (llama, qwen2, bert) with llama.cpp's defaults for optional
// keys. CheckModelTensors then checks that every tensor the architecture needs is
// present with the shape the hyperparameters imply and a type cairn can run (matrices:
// any supported type; norms and biases: f32). Errors name the missing key or tensor and
// what was expected. Both are pure functions of the file; ModelConfig is a value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/infer/gguf.h"

namespace cairn::infer {

enum class Arch { kLlama, kQwen2, kBert };
const char* ArchName(Arch arch);
absl::StatusOr<Arch> ParseArch(std::string_view name);  // "llama", "qwen2", "bert"

// How RoPE pairs dimensions: kNorm rotates (2i, 2i+1) (llama), kNeox rotates
// (i, i + n_rot/2) (qwen2). Encoders have none.
enum class RopeType { kNone, kNorm, kNeox };
// llama.cpp's pooling ids (the `{arch}.pooling_type` key).
enum class Pooling : uint32_t { kNone = 0, kMean = 1, kCls = 2, kLast = 3, kRank = 4 };
const char* PoolingName(Pooling p);

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string name;  // general.name, may be empty

  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;  // {arch}.context_length
  uint32_t n_embd = 0;
  uint32_t n_ff = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;  // == n_head without grouped-query attention
  uint32_t head_dim = 0;   // attention.key_length, default n_embd / n_head
  uint32_t n_rot = 0;      // rope.dimension_count, default head_dim

  RopeType rope_type = RopeType::kNone;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling
  std::string rope_scaling;      // "" / "none" / "linear" / "yarn" ... as in the file

  bool rms_norm = true;  // RMSNorm (decoders) or LayerNorm with bias (bert)
  float norm_eps = 1e-5f;
  bool causal = true;
  Pooling pooling = Pooling::kNone;
  uint32_t n_token_types = 0;  // bert's token type vocabulary

  bool tied_embeddings = false;  // no output.weight: the output projection is token_embd
  bool qkv_bias = false;         // qwen2 (and bert) have attention biases

  uint32_t n_embd_q() const { return n_head * head_dim; }
  uint32_t n_embd_kv() const { return n_head_kv * head_dim; }
  bool is_encoder() const { return arch == Arch::kBert; }
};

// Hyperparameters from metadata. Tensor-derived facts (tied embeddings, vocabulary size
// when neither {arch}.vocab_size nor the token list is present) come from the tensor
// list, but tensors are not validated here.
absl::StatusOr<ModelConfig> ReadModelConfig(const GgufFile& file);

// One tensor an architecture expects.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> ne;  // GGUF order: ne[0] is the row length
  bool matrix = true;       // a weight matrix (any supported type) or a vector (f32)
  bool required = true;
};
std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& config);

// Checks presence, shape and type of every expected tensor.
absl::Status CheckModelTensors(const GgufFile& file, const ModelConfig& config);

// Sum of the element counts of all tensors.
uint64_t ParameterCount(const GgufFile& file);

struct MemoryEstimate {
  uint64_t weights = 0;   // tensor bytes, used in place from the mapping
  uint64_t kv_cache = 0;  // f16 K and V for every layer at n_ctx positions (0 for encoders)
  uint64_t compute = 0;   // activations, scratch and logits for a batch of n_batch tokens
  uint64_t total() const { return weights + kv_cache + compute; }
};
// n_ctx == 0 means the training context length.
MemoryEstimate EstimateMemory(const GgufFile& file, const ModelConfig& config, uint32_t n_ctx = 0,
                              uint32_t n_batch = 512);

}  // namespace cairn::infer
