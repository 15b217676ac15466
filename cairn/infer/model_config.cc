#include "cairn/infer/model_config.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

namespace cairn::infer {
namespace {

absl::Status ConfigError(const GgufFile& file, const std::string& what) {
  return absl::InvalidArgumentError(fmt::format("model {}: {}", file.path(), what));
}

// A required u32 key.
absl::StatusOr<uint32_t> Required(const GgufFile& file, const std::string& key) {
  absl::StatusOr<uint32_t> v = file.GetU32(key);
  if (!v.ok()) {
    if (v.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(fmt::format("model {}: required metadata key '{}' is missing", file.path(), key));
    }
    return v.status();
  }
  return *v;
}

absl::StatusOr<uint32_t> Optional(const GgufFile& file, const std::string& key, uint32_t fallback) {
  if (!file.Has(key)) return fallback;
  return file.GetU32(key);
}

absl::StatusOr<float> OptionalF32(const GgufFile& file, const std::string& key, float fallback) {
  if (!file.Has(key)) return fallback;
  return file.GetF32(key);
}

// llama.cpp allows some per-layer keys to be arrays (one value per layer). cairn runs
// uniform layers only: an array is accepted when all its values agree.
absl::StatusOr<uint32_t> PerLayer(const GgufFile& file, const std::string& key, std::optional<uint32_t> fallback) {
  const GgufValue* v = file.Find(key);
  if (v == nullptr) {
    if (fallback) return *fallback;
    return absl::NotFoundError(fmt::format("model {}: required metadata key '{}' is missing", file.path(), key));
  }
  if (!v->is_array()) return file.GetU32(key);
  absl::StatusOr<std::vector<int32_t>> values = file.GetI32Array(key);
  if (!values.ok()) return values.status();
  if (values->empty()) return ConfigError(file, fmt::format("'{}' is an empty array", key));
  for (int32_t x : *values) {
    if (x != (*values)[0]) {
      return ConfigError(file, fmt::format("'{}' differs between layers, which cairn does not support", key));
    }
  }
  if ((*values)[0] < 0) return ConfigError(file, fmt::format("'{}' is negative", key));
  return static_cast<uint32_t>((*values)[0]);
}

#define CAIRN_ASSIGN(lhs, expr)                   \
  do {                                            \
    auto cairn_v_ = (expr);                       \
    if (!cairn_v_.ok()) return cairn_v_.status(); \
    lhs = *cairn_v_;                              \
  } while (0)

std::string Shape(const std::vector<int64_t>& ne) {
  std::string out = "[";
  for (size_t i = 0; i < ne.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return out + "]";
}

}  // namespace

const char* ArchName(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen2: return "qwen2";
    case Arch::kBert: return "bert";
  }
  return "?";
}

absl::StatusOr<Arch> ParseArch(std::string_view name) {
  if (name == "llama") return Arch::kLlama;
  if (name == "qwen2") return Arch::kQwen2;
  if (name == "bert") return Arch::kBert;
  return absl::InvalidArgumentError(
      fmt::format("architecture '{}' is not supported (cairn runs llama, qwen2 and bert)", name));
}

const char* PoolingName(Pooling p) {
  switch (p) {
    case Pooling::kNone: return "none";
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
    case Pooling::kLast: return "last";
    case Pooling::kRank: return "rank";
  }
  return "?";
}

absl::StatusOr<ModelConfig> ReadModelConfig(const GgufFile& file) {
  ModelConfig c;
  absl::StatusOr<std::string_view> arch_name = file.GetString("general.architecture");
  if (!arch_name.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("model {}: {}", file.path(), std::string(arch_name.status().message())));
  }
  absl::StatusOr<Arch> arch = ParseArch(*arch_name);
  if (!arch.ok()) return ConfigError(file, std::string(arch.status().message()));
  c.arch = *arch;
  const std::string a(*arch_name);
  if (absl::StatusOr<std::string_view> name = file.GetString("general.name"); name.ok()) c.name = *name;

  CAIRN_ASSIGN(c.n_ctx_train, Required(file, a + ".context_length"));
  CAIRN_ASSIGN(c.n_embd, Required(file, a + ".embedding_length"));
  CAIRN_ASSIGN(c.n_layer, Required(file, a + ".block_count"));
  CAIRN_ASSIGN(c.n_ff, PerLayer(file, a + ".feed_forward_length", std::nullopt));
  CAIRN_ASSIGN(c.n_head, PerLayer(file, a + ".attention.head_count", std::nullopt));
  CAIRN_ASSIGN(c.n_head_kv, PerLayer(file, a + ".attention.head_count_kv", c.n_head));
  if (c.n_embd == 0 || c.n_layer == 0 || c.n_head == 0 || c.n_ff == 0 || c.n_ctx_train == 0) {
    return ConfigError(file, fmt::format("zero dimension (embedding_length {}, block_count {}, head_count {}, "
                                         "feed_forward_length {}, context_length {})",
                                         c.n_embd, c.n_layer, c.n_head, c.n_ff, c.n_ctx_train));
  }
  if (c.n_head_kv == 0 || c.n_head % c.n_head_kv != 0) {
    return ConfigError(file, fmt::format("head_count {} is not a multiple of head_count_kv {}", c.n_head,
                                         c.n_head_kv));
  }
  if (c.n_embd % c.n_head != 0 && !file.Has(a + ".attention.key_length")) {
    return ConfigError(file, fmt::format("embedding_length {} is not a multiple of head_count {}", c.n_embd,
                                         c.n_head));
  }
  CAIRN_ASSIGN(c.head_dim, Optional(file, a + ".attention.key_length", c.n_embd / c.n_head));
  uint32_t value_dim = 0;
  CAIRN_ASSIGN(value_dim, Optional(file, a + ".attention.value_length", c.head_dim));
  if (value_dim != c.head_dim || c.head_dim == 0) {
    return ConfigError(file, fmt::format("attention key_length {} and value_length {} must be equal and positive",
                                         c.head_dim, value_dim));
  }

  if (c.arch == Arch::kBert) {
    c.rms_norm = false;
    c.rope_type = RopeType::kNone;
    CAIRN_ASSIGN(c.norm_eps, file.GetF32(a + ".attention.layer_norm_epsilon"));
    bool causal = false;
    if (file.Has(a + ".attention.causal")) CAIRN_ASSIGN(causal, file.GetBool(a + ".attention.causal"));
    c.causal = causal;
    c.qkv_bias = true;
  } else {
    c.rms_norm = true;
    c.rope_type = c.arch == Arch::kQwen2 ? RopeType::kNeox : RopeType::kNorm;
    absl::StatusOr<float> eps = file.GetF32(a + ".attention.layer_norm_rms_epsilon");
    if (!eps.ok()) {
      return absl::Status(eps.status().code(), fmt::format("model {}: {}", file.path(),
                                                           std::string(eps.status().message())));
    }
    c.norm_eps = *eps;
    c.causal = true;
    CAIRN_ASSIGN(c.n_rot, Optional(file, a + ".rope.dimension_count", c.head_dim));
    if (c.n_rot > c.head_dim || c.n_rot % 2 != 0) {
      return ConfigError(file, fmt::format("rope.dimension_count {} must be even and at most the head size {}",
                                           c.n_rot, c.head_dim));
    }
    CAIRN_ASSIGN(c.rope_freq_base, OptionalF32(file, a + ".rope.freq_base", 10000.0f));
    if (file.Has(a + ".rope.scaling.type")) {
      std::string_view type;
      CAIRN_ASSIGN(type, file.GetString(a + ".rope.scaling.type"));
      c.rope_scaling = std::string(type);
    }
    float factor = 0;
    CAIRN_ASSIGN(factor, OptionalF32(file, a + ".rope.scaling.factor", 0.0f));
    if (factor == 0 && file.Has(a + ".rope.scale_linear")) {
      CAIRN_ASSIGN(factor, file.GetF32(a + ".rope.scale_linear"));
      if (c.rope_scaling.empty()) c.rope_scaling = "linear";
    }
    if (factor > 0 && (c.rope_scaling == "linear" || c.rope_scaling.empty())) c.rope_freq_scale = 1.0f / factor;
    c.qkv_bias = c.arch == Arch::kQwen2 || file.FindTensor("blk.0.attn_q.bias") != nullptr;
    c.tied_embeddings = file.FindTensor("output.weight") == nullptr;
  }
  if (!(c.norm_eps > 0) || !(c.rope_freq_base > 0)) {
    return ConfigError(file, fmt::format("norm epsilon {} and rope frequency base {} must be positive", c.norm_eps,
                                         c.rope_freq_base));
  }
  uint32_t pooling = 0;
  CAIRN_ASSIGN(pooling, Optional(file, a + ".pooling_type", 0));
  if (pooling > static_cast<uint32_t>(Pooling::kRank)) {
    return ConfigError(file, fmt::format("unknown pooling_type {}", pooling));
  }
  c.pooling = static_cast<Pooling>(pooling);

  // Vocabulary size: the explicit key, else the token list, else the embedding table.
  if (file.Has(a + ".vocab_size")) {
    CAIRN_ASSIGN(c.n_vocab, file.GetU32(a + ".vocab_size"));
  } else if (file.Has("tokenizer.ggml.tokens")) {
    uint64_t n = 0;
    CAIRN_ASSIGN(n, file.GetArraySize("tokenizer.ggml.tokens"));
    if (n > UINT32_MAX) return ConfigError(file, "the token list is too long");
    c.n_vocab = static_cast<uint32_t>(n);
  } else if (const GgufTensor* t = file.FindTensor("token_embd.weight"); t != nullptr && t->n_dims == 2) {
    c.n_vocab = static_cast<uint32_t>(t->ne[1]);
  }
  if (c.n_vocab == 0) {
    return ConfigError(file, fmt::format("the vocabulary size is unknown ('{}.vocab_size', 'tokenizer.ggml.tokens' "
                                         "and token_embd.weight are all missing)",
                                         a));
  }
  if (c.arch == Arch::kBert) {
    if (file.Has("tokenizer.ggml.token_type_count")) {
      CAIRN_ASSIGN(c.n_token_types, file.GetU32("tokenizer.ggml.token_type_count"));
    } else if (const GgufTensor* t = file.FindTensor("token_types.weight"); t != nullptr && t->n_dims == 2) {
      c.n_token_types = static_cast<uint32_t>(t->ne[1]);
    }
  }
  return c;
}

std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& c) {
  const int64_t e = c.n_embd, q = c.n_embd_q(), kv = c.n_embd_kv(), ff = c.n_ff, v = c.n_vocab;
  std::vector<ExpectedTensor> out;
  auto matrix = [&out](std::string name, int64_t cols, int64_t rows, bool required = true) {
    out.push_back({std::move(name), {cols, rows}, true, required});
  };
  auto vec = [&out](std::string name, int64_t n) { out.push_back({std::move(name), {n}, false, true}); };

  matrix("token_embd.weight", e, v);
  if (c.arch == Arch::kBert) {
    if (c.n_token_types > 0) matrix("token_types.weight", e, c.n_token_types);
    matrix("position_embd.weight", e, c.n_ctx_train);
    vec("token_embd_norm.weight", e);
    vec("token_embd_norm.bias", e);
    for (uint32_t i = 0; i < c.n_layer; ++i) {
      const std::string b = fmt::format("blk.{}.", i);
      matrix(b + "attn_q.weight", e, q);
      vec(b + "attn_q.bias", q);
      matrix(b + "attn_k.weight", e, kv);
      vec(b + "attn_k.bias", kv);
      matrix(b + "attn_v.weight", e, kv);
      vec(b + "attn_v.bias", kv);
      matrix(b + "attn_output.weight", q, e);
      vec(b + "attn_output.bias", e);
      vec(b + "attn_output_norm.weight", e);
      vec(b + "attn_output_norm.bias", e);
      matrix(b + "ffn_up.weight", e, ff);
      vec(b + "ffn_up.bias", ff);
      matrix(b + "ffn_down.weight", ff, e);
      vec(b + "ffn_down.bias", e);
      vec(b + "layer_output_norm.weight", e);
      vec(b + "layer_output_norm.bias", e);
    }
    return out;
  }
  vec("output_norm.weight", e);
  matrix("output.weight", e, v, /*required=*/false);
  for (uint32_t i = 0; i < c.n_layer; ++i) {
    const std::string b = fmt::format("blk.{}.", i);
    vec(b + "attn_norm.weight", e);
    matrix(b + "attn_q.weight", e, q);
    matrix(b + "attn_k.weight", e, kv);
    matrix(b + "attn_v.weight", e, kv);
    if (c.qkv_bias) {
      vec(b + "attn_q.bias", q);
      vec(b + "attn_k.bias", kv);
      vec(b + "attn_v.bias", kv);
    }
    matrix(b + "attn_output.weight", q, e);
    vec(b + "ffn_norm.weight", e);
    matrix(b + "ffn_gate.weight", e, ff);
    matrix(b + "ffn_up.weight", e, ff);
    matrix(b + "ffn_down.weight", ff, e);
  }
  return out;
}

absl::Status CheckModelTensors(const GgufFile& file, const ModelConfig& config) {
  for (const ExpectedTensor& want : ExpectedTensors(config)) {
    const GgufTensor* t = file.FindTensor(want.name);
    if (t == nullptr) {
      if (!want.required) continue;
      return absl::NotFoundError(fmt::format("model {}: {} tensor '{}' is missing (expected shape {})", file.path(),
                                             ArchName(config.arch), want.name, Shape(want.ne)));
    }
    bool same = t->n_dims == want.ne.size();
    for (size_t d = 0; same && d < want.ne.size(); ++d) same = t->ne[d] == want.ne[d];
    if (!same) {
      return absl::InvalidArgumentError(fmt::format("model {}: tensor '{}' has shape {}, expected {}", file.path(),
                                                    want.name, t->ShapeString(), Shape(want.ne)));
    }
    if (want.matrix && !IsSupported(t->type)) {
      return absl::InvalidArgumentError(fmt::format(
          "model {}: tensor '{}' has type {}, which cairn cannot run (supported: f32, f16, bf16, q8_0, q4_0, q4_K, "
          "q6_K)",
          file.path(), want.name, TensorTypeName(t->type)));
    }
    if (!want.matrix && t->type != TensorType::kF32) {
      return absl::InvalidArgumentError(fmt::format("model {}: tensor '{}' has type {}, expected f32 (norms and "
                                                    "biases)",
                                                    file.path(), want.name, TensorTypeName(t->type)));
    }
  }
  return absl::OkStatus();
}

uint64_t ParameterCount(const GgufFile& file) {
  uint64_t n = 0;
  for (const GgufTensor& t : file.tensors()) n += static_cast<uint64_t>(t.n_elements());
  return n;
}

MemoryEstimate EstimateMemory(const GgufFile& file, const ModelConfig& c, uint32_t n_ctx, uint32_t n_batch) {
  MemoryEstimate m;
  for (const GgufTensor& t : file.tensors()) m.weights += t.size;
  const uint64_t ctx = n_ctx != 0 ? n_ctx : c.n_ctx_train;
  if (!c.is_encoder()) m.kv_cache = 2ull * c.n_layer * ctx * c.n_embd_kv() * 2;  // K and V, f16
  const uint64_t batch = std::min<uint64_t>(n_batch, c.is_encoder() ? c.n_ctx_train : ctx);
  // Per token in flight: the residual, normed input, q/k/v, attention output, and the
  // feed-forward's two (or one) wide vectors, in f32; attention scores for one head at a
  // time; logits for the last token (or pooled output).
  const uint64_t per_token = 4ull * (3ull * c.n_embd + c.n_embd_q() + 2ull * c.n_embd_kv() + 2ull * c.n_ff);
  m.compute = batch * per_token + 4ull * batch * ctx + 4ull * c.n_vocab;
  return m;
}

}  // namespace cairn::infer
