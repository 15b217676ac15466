// cairn/server/model_embedder.h — a vector::Embedder backed by a language model.
//
// ModelEmbedder embeds text with a GGUF model through cairn/infer: the text is
// tokenized with the model's own vocabulary (BOS/CLS/SEP added as the model asks),
// evaluated, and the final hidden states pooled (the model's pooling unless one is
// chosen: mean, CLS or last) and L2-normalized (infer::Session::Embed). Encoders
// (bge, nomic-style bert) are what it is for; decoder models work too.
//
// Inputs longer than the context (and, for encoders, than one batch) are cut to fit,
// keeping the closing special token (SEP/EOS) when the vocabulary adds one, as
// embedding servers truncate.
//
// Thread-safety: Embed is const and thread-safe. Each call borrows a Session from a
// small pool (created on demand, at most `max_sessions`; further callers wait for
// one to come back), so concurrent calls run in parallel up to that bound and the
// result never depends on which session served it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/infer/model.h"
#include "cairn/infer/tokenizer.h"
#include "cairn/vector/embedder.h"

namespace cairn::server {

struct ModelEmbedderOptions {
  std::optional<infer::Pooling> pooling;  // the model's default_pooling() when unset
  int n_threads = 1;                      // per session
  size_t max_sessions = 2;                // sessions (and so concurrent embeddings) at most
  uint32_t n_ctx = 0;                     // tokens per input at most; 0: the model's context length
  std::string name;                       // name(); empty: "model:" + general.name (or the file name)
};

class ModelEmbedder final : public vector::Embedder {
 public:
  // Loads a GGUF file (Model::Load) and its vocabulary.
  static absl::StatusOr<std::unique_ptr<ModelEmbedder>> Load(const std::string& path,
                                                             const ModelEmbedderOptions& options = {});
  // Over a loaded model (shared: it may serve generation too) and its tokenizer.
  // InvalidArgument for rank pooling, max_sessions 0 or n_threads < 1.
  static absl::StatusOr<std::unique_ptr<ModelEmbedder>> Create(std::shared_ptr<const infer::Model> model,
                                                               infer::Tokenizer tokenizer,
                                                               const ModelEmbedderOptions& options = {});
  ~ModelEmbedder() override;

  size_t dim() const override;
  std::string_view name() const override { return name_; }
  // InvalidArgument when out.size() != dim() or the text is empty or only
  // whitespace; errors of the forward pass are passed on.
  absl::Status Embed(std::string_view text, std::span<float> out) const override;
  using vector::Embedder::Embed;

  // The tokens Embed evaluates for `text` (after truncation).
  std::vector<int32_t> Tokens(std::string_view text) const;
  const infer::Model& model() const { return *model_; }

 private:
  ModelEmbedder(std::shared_ptr<const infer::Model> model, infer::Tokenizer tokenizer,
                const ModelEmbedderOptions& options);
  absl::StatusOr<std::unique_ptr<infer::Session>> Borrow() const;
  void Return(std::unique_ptr<infer::Session> session) const;

  std::shared_ptr<const infer::Model> model_;
  infer::Tokenizer tokenizer_;
  ModelEmbedderOptions options_;
  std::string name_;
  size_t max_tokens_ = 0;

  mutable std::mutex mu_;
  mutable std::condition_variable returned_;
  mutable std::vector<std::unique_ptr<infer::Session>> idle_;
  mutable size_t sessions_ = 0;  // created, idle or lent
};

}  // namespace cairn::server
