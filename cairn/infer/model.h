// cairn/infer/model.h — the transformer forward pass: a loaded model, a batched
// evaluation context with a KV cache, and a one-sequence session on top.
//
// Model: the weights of a llama, qwen2 or bert GGUF file, used in place from the
// file's mapping (matrices are never expanded to float32; embedding rows are
// dequantized per token as they are looked up). Load validates the metadata
// (ReadModelConfig) and every tensor (CheckModelTensors) before returning. Immutable
// after loading: one Model serves any number of Contexts on any threads.
//
// Context: the mutable state of evaluation — the KV cache (decoders), scratch
// buffers, the thread pool and the outputs of the last call. A batch, as in
// llama.cpp, is a list of (token, sequence slot, position, output?) entries; one
// Forward computes all of them, so the weight products always see every token of the
// batch at once (a prompt prefilled in one pass and one new token of each of several
// sequences are the same kind of call). Within a decoder batch a token attends to the
// cached positions of its own slot up to and including its own (causal); slots never
// see each other. An encoder (bert) keeps no cache: a token attends to the tokens of
// its slot in the same batch (all of them, bidirectionally, unless the model says
// causal), so a whole input must go in one batch.
// A Context is not thread-safe; use one per thread of control (the server's batching
// loop owns one and gives each request a slot).
//
// Session: one sequence in one slot — Decode (prefill in chunks of up to n_batch
// tokens, logits of the last), Truncate, Embed (pooled, L2-normalized vectors).
//
// Architectures: llama (Llama 2/3 incl. the rope_freqs.weight frequency factors of
// 3.1+, TinyLlama, SmolLM, Mistral without a sliding window), qwen2 (q/k/v biases,
// NeoX RoPE) and bert (token type and position embeddings, post-LayerNorm, GELU).
// Grouped-query attention, RoPE with the file's frequency base and linear scaling,
// tied embeddings (no output.weight: token_embd is the output projection).
//
// Numerics: activations are float32; weight products go through kernels.h's MatMul
// (quantized weights multiply activations quantized to 8 bits on the fly, as
// llama.cpp does); the KV cache is f16 by default, like llama.cpp's
// (ContextOptions::kv_type: kF32 doubles its memory and removes its rounding). RoPE
// angles and norm sums are computed in double. The last layer computes attention and
// the feed-forward only for the entries marked `output` (their K/V still go in the
// cache), as llama.cpp does. model_test.cc checks every architecture and weight type
// against a plain float reference; the tolerances are stated there.
//
// Threads: every weight product, the attention (over slots x kv heads x query tiles,
// or query heads when decoding) and the row-wise ops of large batches run on the
// context's ThreadPool. Results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/kernels.h"
#include "cairn/infer/kv_cache.h"
#include "cairn/infer/model_config.h"
#include "cairn/infer/thread_pool.h"

namespace cairn::infer {

class Model {
 public:
  // Opens, maps and validates `path`. Errors name the file and what is wrong: an
  // unsupported architecture, a missing key or tensor, a bad shape or type, an
  // unsupported RoPE scaling or pooling type.
  // Then the Q4_0 and Q8_0 matrices of the layers and the output are repacked once into
  // the kernels' panel layout (kernels.h, PackMatrix; same size as the rows, in huge
  // pages where the system allows), which every product reads from then on; with
  // CAIRN_INFER_PACK=0 in the environment they are not (see docs/infer.md). For a mapped file the packed rows' pages are then dropped
  // from the process (madvise), so memory holds one copy of each weight, not two; the
  // rare later reads of the original rows (an embedding lookup of a tied matrix) fault
  // them back in. The norm and bias vectors are copied out of the mapping first, so
  // reading them does not map dropped pages back.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path);
  // The same over an opened file (tests use GgufFile::FromBuffer). Takes ownership.
  static absl::StatusOr<std::unique_ptr<Model>> FromFile(std::unique_ptr<GgufFile> file);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }
  int32_t n_vocab() const { return static_cast<int32_t>(config_.n_vocab); }
  int32_t n_embd() const { return static_cast<int32_t>(config_.n_embd); }
  // Encoders have no language-model head (Forward with OutputKind::kLogits fails).
  bool has_logits() const { return !config_.is_encoder(); }
  // Bytes of weight data (all tensors).
  uint64_t weight_bytes() const { return weight_bytes_; }
  // Bytes of the matrices repacked at load for the kernels (see Load).
  uint64_t packed_bytes() const { return packed_bytes_; }
  // Whether token-embedding rows are read from the file (GgufFile::Read) instead of
  // through the mapping: after packing dropped the mapped pages of the matrices (the
  // embedding table itself when the output matrix is tied to it), reading rows through
  // the mapping would bring large pages back and count the table twice in memory.
  bool embeddings_by_read() const { return embeddings_by_read_; }

  // The pooling Session::Embed uses by default: the model's own
  // ({arch}.pooling_type), or mean when it declares none.
  Pooling default_pooling() const;

  // ---- internals shared with the forward pass (context.cc) ----
  struct Layer {
    // decoders (pre-norm): attn_norm, ffn_norm; encoders (post-norm): attn_out_norm
    // (+ bias) after attention, out_norm (+ bias) after the feed-forward.
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float *attn_out_norm = nullptr, *attn_out_norm_b = nullptr;
    const float *out_norm = nullptr, *out_norm_b = nullptr;
    WeightView wq{}, wk{}, wv{}, wo{};
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;
    WeightView gate{}, up{}, down{};  // gate: decoders only (SwiGLU); encoders: GELU(up)
    const float *b_up = nullptr, *b_down = nullptr;
  };
  struct Weights {
    WeightView token_embd{};
    WeightView token_types{};  // bert; rows == 0 when absent
    WeightView position_embd{};  // bert
    const float *embd_norm = nullptr, *embd_norm_b = nullptr;  // bert
    const float* output_norm = nullptr;  // decoders
    const float* rope_freqs = nullptr;   // optional per-frequency RoPE divisors (Llama 3.1+)
    WeightView output{};  // decoders: output.weight or token_embd (tied)
    std::vector<Layer> layers;
  };
  const Weights& weights() const { return weights_; }

 private:
  Model() = default;
  absl::Status Bind();

  void PackWeights();

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  Weights weights_;
  uint64_t weight_bytes_ = 0;
  std::vector<std::unique_ptr<PackedMatrix>> packed_;  // what weights_' views point to
  uint64_t packed_bytes_ = 0;
  bool embeddings_by_read_ = false;
  std::vector<std::vector<float>> owned_vectors_;  // norms and biases copied out of the mapping
};

// One entry of a batch.
struct BatchToken {
  int32_t token = 0;
  int32_t seq = 0;       // sequence slot, 0 <= seq < ContextOptions::n_seq
  int32_t pos = 0;       // position in its sequence
  bool output = false;   // produce an output row (logits or hidden state) for it
};

enum class OutputKind {
  kLogits,  // n_vocab logits per output token (decoders)
  kHidden,  // the final hidden state per output token, n_embd values: after the output
            // norm for decoders (what llama.cpp pools for embeddings), the last layer's
            // output for encoders
};

struct ContextOptions {
  // KV cache cells, shared by all slots; 0 means the model's training context length.
  // Larger than the training length is an error. Encoders: the longest input.
  uint32_t n_ctx = 0;
  uint32_t n_batch = 512;  // most tokens per Forward call
  uint32_t n_seq = 1;      // sequence slots
  int n_threads = 1;       // the context's own pool; ignored when `pool` is set
  KvType kv_type = KvType::kF16;
  ThreadPool* pool = nullptr;  // not owned; must outlive the context
};

class Context {
 public:
  // `model` must outlive the context. Allocates the KV cache (calloc: pages are
  // resident only once used) and scratch for n_batch tokens.
  static absl::StatusOr<std::unique_ptr<Context>> Create(const Model& model, const ContextOptions& options = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const Model& model() const { return model_; }
  uint32_t n_ctx() const { return n_ctx_; }
  uint32_t n_batch() const { return options_.n_batch; }
  uint32_t n_seq() const { return options_.n_seq; }
  ThreadPool* pool() const { return pool_; }
  const KvCache* kv_cache() const { return cache_.get(); }  // nullptr for encoders

  // Evaluates a batch (1 to n_batch entries). Checked before anything changes, with
  // InvalidArgument naming the entry: token ids in [0, n_vocab), slots in
  // [0, n_seq), decoder positions continuing their slot (the first new token of slot s
  // is at SeqLength(s), the next at SeqLength(s) + 1, ...), encoder positions below the
  // context length; ResourceExhausted when the KV cache lacks free cells. On success
  // the decoder tokens' K/V are in the cache and the outputs are readable until the
  // next Forward. A decoder batch passes through the layers kMicroBatch tokens at a time
  // (same results; working memory for kMicroBatch tokens, not n_batch).
  absl::Status Forward(std::span<const BatchToken> batch, OutputKind kind = OutputKind::kLogits);
  // Most decoder tokens per pass through the layers.
  static constexpr size_t kMicroBatch = 128;

  // Outputs of the last Forward, one row per entry marked `output`, in batch order.
  int32_t n_outputs() const { return n_outputs_; }
  int32_t output_width() const { return output_width_; }
  std::span<const float> Output(int32_t i) const {
    return {outputs_.data() + static_cast<size_t>(i) * output_width_, static_cast<size_t>(output_width_)};
  }

  // Sequence slots (decoders; encoders keep nothing between calls and report 0).
  int32_t SeqLength(int32_t seq) const;
  void TruncateSeq(int32_t seq, int32_t n);  // keeps positions [0, n)
  void ClearSeq(int32_t seq) { TruncateSeq(seq, 0); }
  uint32_t free_cells() const;  // n_ctx for encoders

 private:
  struct Scratch;
  Context(const Model& model, const ContextOptions& options);
  absl::Status Check(std::span<const BatchToken> batch, OutputKind kind) const;
  // Embedding and every layer for one micro-batch.
  void Layers(std::span<const BatchToken> batch);
  void Embed(std::span<const BatchToken> batch);
  void DecoderLayer(int il, std::span<const BatchToken> batch);
  void EncoderLayer(int il, std::span<const BatchToken> batch);
  // Returns the number of rows the rest of the layer carries (see Compact).
  int64_t Compact(int il, int64_t n);
  void Attention(int il, std::span<const BatchToken> batch, int64_t rows);
  void Outputs(OutputKind kind);
  // Runs fn over [0, n) tokens, on the pool when there is enough work.
  void ForTokens(int64_t n, int64_t cost_per_token, const std::function<void(int64_t, int64_t)>& fn);

  const Model& model_;
  ContextOptions options_;
  uint32_t n_ctx_ = 0;
  std::unique_ptr<ThreadPool> own_pool_;
  ThreadPool* pool_ = nullptr;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<Scratch> s_;
  std::vector<float> outputs_;
  int32_t n_outputs_ = 0, output_width_ = 0;
};

// One sequence in one slot of a Context.
class Session {
 public:
  // A session over slot `seq` of `ctx` (not owned; must outlive the session). The
  // slot's current contents are the session's history.
  Session(Context* ctx, int32_t seq);
  // A session with its own one-slot context.
  static absl::StatusOr<std::unique_ptr<Session>> Create(const Model& model, const ContextOptions& options = {});

  Context& context() { return *ctx_; }
  int32_t seq() const { return seq_; }
  // Positions in the sequence so far.
  int32_t pos() const { return ctx_->SeqLength(seq_); }

  // Appends `tokens` (at least one) to the sequence, in batches of up to n_batch, and
  // returns the logits after the last one (n_vocab values, owned by the session, valid
  // until its next call). Errors, before anything is evaluated: an empty list, a token
  // id out of range (naming index and id), more tokens than the context has room for
  // (naming both numbers), an encoder model (use Embed).
  absl::StatusOr<std::span<const float>> Decode(std::span<const int32_t> tokens);

  // Keeps the first n positions (n >= pos(): no change; negative: InvalidArgument).
  absl::Status Truncate(int32_t n);

  // An embedding of `tokens`: the final hidden states pooled (mean over all tokens,
  // the first token's for CLS, the last token's for last) and L2-normalized. Evaluates
  // the tokens as a fresh sequence in the session's slot and leaves the slot empty
  // (pos() == 0) afterwards. `pooling` overrides the model's default_pooling(); rank
  // pooling is not supported. Encoders need the whole input in one batch (at most
  // n_batch tokens); decoders go in chunks.
  absl::StatusOr<std::vector<float>> Embed(std::span<const int32_t> tokens,
                                           std::optional<Pooling> pooling = std::nullopt);

 private:
  absl::Status CheckTokens(std::span<const int32_t> tokens) const;

  std::unique_ptr<Context> own_ctx_;
  Context* ctx_;
  int32_t seq_;
  std::vector<float> logits_;
  std::vector<BatchToken> batch_;
};

}  // namespace cairn::infer
