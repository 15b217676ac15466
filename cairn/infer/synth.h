// cairn/infer/synth.h — synthesizing GGUF models with random weights.
//
// SynthesizeModel writes a complete model of architecture llama, qwen2 or bert, of a
// named shape (a preset, any dimension overridable) and a weight type, with llama.cpp's
// metadata keys and tensor names and shapes, so that both cairn and llama.cpp load the
// same file. Tests and benchmarks need no download.
//
// Weights: matrices and embeddings are approximately N(0, 1/row length) (0.02 for rows
// of 2048); norm weights are 1 + N(0, 0.05)-ish and biases N(0, 0.02)-ish, so
// activations stay in a sane range at any depth and width. Each tensor's values depend only on (seed, tensor name, shape), not on
// the weight type: the f32 and q4_0 files of one seed hold the same model, quantized
// differently.
//
// Weight types: f32, f16, bf16, q8_0, q4_0 and q4_k put every matrix in that type
// (like llama-quantize --pure); norms and biases stay f32, as do bert's position and
// token-type embeddings (llama.cpp adds them to f32 activations, which its CPU backend
// does not do from bf16). q4_k_m follows llama-quantize's Q4_K_M
// mix: the output matrix (the token embedding when it is tied) in q6_K, attn_v and
// ffn_down in q6_K on the layers llama.cpp's use_more_bits picks, everything else in
// q4_K. A matrix whose rows are not a multiple of 256 cannot be a k-quant: llama.cpp
// then falls back to q5_0 (for q4_K) or q8_0 (for q6_K and the output); cairn, which
// does not run q5_0, uses q4_0 instead of q5_0.
//
// Vocabulary: copied from another GGUF (every `tokenizer.*` key, chat template
// included; the vocabulary size becomes that file's), or else generated: a
// SentencePiece-style vocabulary with <unk>, <s>, </s>, 256 byte tokens and filler
// pieces for decoders, a WordPiece vocabulary with [PAD] [UNK] [CLS] [SEP] [MASK] for
// bert.
//
// The file is written streaming (one chunk of rows at a time) through GgufWriter, so
// memory stays small whatever the model size. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/infer/model_config.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::infer {

struct SynthShape {
  Arch arch = Arch::kLlama;  // the preset's natural architecture
  uint32_t n_vocab = 0;
  uint32_t n_ctx = 0;
  uint32_t n_embd = 0;
  uint32_t n_ff = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  float rope_freq_base = 10000.0f;
  float norm_eps = 1e-5f;
  bool tied_embeddings = false;     // decoders: no output.weight
  Pooling pooling = Pooling::kNone;  // bert
};

// Presets: "tiny" (every architecture; a few MB, for tests), "smollm2-135m",
// "qwen2.5-0.5b", "tinyllama-1.1b", "bge-small".
std::vector<std::string> SynthPresetNames();
absl::StatusOr<SynthShape> SynthPreset(std::string_view preset);

// A preset's shape made fit for `arch`: bert gets full multi-head attention
// (n_head_kv = n_head), no tied output, CLS pooling and eps 1e-12 when the preset is a
// decoder's; a decoder made from a bert preset gets no pooling and eps 1e-5.
SynthShape SynthShapeForArch(SynthShape shape, Arch arch);

// "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q4_k_m" (case-insensitive).
std::vector<std::string> SynthWeightTypeNames();

struct SynthOptions {
  Arch arch = Arch::kLlama;
  SynthShape shape;
  std::string weight_type = "f32";
  uint64_t seed = 1;
  std::string vocab_from;  // a GGUF file whose tokenizer.* metadata to copy; empty: generate
  std::string name;        // general.name; empty: "cairn-synth <arch> <type>"
  // Called after each chunk of tensor data with bytes written and the total.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// The type a tensor gets under a weight-type name (see the file comment). `layer` is
// the block index, or -1 for tensors outside the blocks.
absl::StatusOr<TensorType> SynthTensorType(std::string_view weight_type, const std::string& tensor_name,
                                           const std::vector<int64_t>& ne, int layer, uint32_t n_layer,
                                           bool has_output_tensor);

// Checks the shape and weight type (not the vocabulary file) without writing anything.
absl::Status CheckSynthOptions(const SynthOptions& options);

absl::Status SynthesizeModel(const SynthOptions& options, const std::string& path);
// The same, into memory (tests, small shapes).
absl::StatusOr<std::string> SynthesizeModelToBuffer(const SynthOptions& options);

}  // namespace cairn::infer
