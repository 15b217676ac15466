#include "cairn/server/model_embedder.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "cairn/infer/generate.h"
#include "cairn/infer/vocab.h"

namespace cairn::server {

absl::StatusOr<std::unique_ptr<ModelEmbedder>> ModelEmbedder::Load(const std::string& path,
                                                                   const ModelEmbedderOptions& options) {
  absl::StatusOr<infer::LoadedModel> loaded = infer::LoadModelAndTokenizer(path);
  if (!loaded.ok()) return loaded.status();
  ModelEmbedderOptions o = options;
  if (o.name.empty() && loaded->model->config().name.empty()) {
    o.name = "model:" + std::filesystem::path(path).filename().string();
  }
  return Create(std::shared_ptr<const infer::Model>(std::move(loaded->model)), std::move(loaded->tokenizer), o);
}

absl::StatusOr<std::unique_ptr<ModelEmbedder>> ModelEmbedder::Create(std::shared_ptr<const infer::Model> model,
                                                                     infer::Tokenizer tokenizer,
                                                                     const ModelEmbedderOptions& options) {
  if (model == nullptr) return absl::InvalidArgumentError("model embedder: no model");
  const infer::Pooling pooling = options.pooling.value_or(model->default_pooling());
  if (pooling == infer::Pooling::kRank || pooling == infer::Pooling::kNone) {
    return absl::InvalidArgumentError(
        fmt::format("model embedder: pooling '{}' gives no vector per text (use mean, cls or last)",
                    infer::PoolingName(pooling)));
  }
  if (options.max_sessions == 0) return absl::InvalidArgumentError("model embedder: max_sessions must be at least 1");
  if (options.n_threads < 1) return absl::InvalidArgumentError("model embedder: n_threads must be at least 1");
  if (tokenizer.vocab_size() > model->n_vocab()) {
    return absl::InvalidArgumentError(fmt::format("model embedder: the vocabulary has {} tokens, the model only {}",
                                                  tokenizer.vocab_size(), model->n_vocab()));
  }
  if (options.n_ctx > model->config().n_ctx_train) {
    return absl::InvalidArgumentError(fmt::format("model embedder: n_ctx {} is beyond the model's context of {}",
                                                  options.n_ctx, model->config().n_ctx_train));
  }
  return std::unique_ptr<ModelEmbedder>(new ModelEmbedder(std::move(model), std::move(tokenizer), options));
}

ModelEmbedder::ModelEmbedder(std::shared_ptr<const infer::Model> model, infer::Tokenizer tokenizer,
                             const ModelEmbedderOptions& options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options) {
  options_.pooling = options.pooling.value_or(model_->default_pooling());
  const std::string& model_name = model_->config().name;
  name_ = !options.name.empty()   ? options.name
          : !model_name.empty() ? "model:" + model_name
                                : std::string("model:") + infer::ArchName(model_->config().arch);
  const uint32_t n_ctx = options.n_ctx != 0 ? options.n_ctx : model_->config().n_ctx_train;
  // An encoder takes its whole input in one batch (Session::Embed), so the batch
  // size caps it too.
  max_tokens_ = model_->config().is_encoder() ? std::min<uint32_t>(n_ctx, infer::ContextOptions{}.n_batch) : n_ctx;
}

ModelEmbedder::~ModelEmbedder() = default;

size_t ModelEmbedder::dim() const { return static_cast<size_t>(model_->n_embd()); }

std::vector<int32_t> ModelEmbedder::Tokens(std::string_view text) const {
  std::vector<int32_t> tokens = tokenizer_.Encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (tokens.size() > max_tokens_ && max_tokens_ > 0) {
    const infer::Vocab& v = tokenizer_.vocab();
    const bool closing = (v.add_sep && v.sep_id != infer::kNoToken) || (v.add_eos && v.eos_id != infer::kNoToken);
    const int32_t last = tokens.back();
    tokens.resize(max_tokens_);
    if (closing) tokens.back() = last;
  }
  return tokens;
}

absl::StatusOr<std::unique_ptr<infer::Session>> ModelEmbedder::Borrow() const {
  std::unique_lock<std::mutex> lock(mu_);
  returned_.wait(lock, [&] { return !idle_.empty() || sessions_ < options_.max_sessions; });
  if (!idle_.empty()) {
    std::unique_ptr<infer::Session> s = std::move(idle_.back());
    idle_.pop_back();
    return s;
  }
  ++sessions_;
  lock.unlock();
  infer::ContextOptions co;
  co.n_ctx = options_.n_ctx;
  co.n_threads = options_.n_threads;
  absl::StatusOr<std::unique_ptr<infer::Session>> s = infer::Session::Create(*model_, co);
  if (!s.ok()) {
    lock.lock();
    --sessions_;
    returned_.notify_one();
  }
  return s;
}

void ModelEmbedder::Return(std::unique_ptr<infer::Session> session) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(session));
  }
  returned_.notify_one();
}

absl::Status ModelEmbedder::Embed(std::string_view text, std::span<float> out) const {
  if (out.size() != dim()) {
    return absl::InvalidArgumentError(
        fmt::format("embedding output has {} values; the model embeds in {} dimensions", out.size(), dim()));
  }
  if (text.find_first_not_of(" \t\n\r\f\v") == std::string_view::npos) {
    return absl::InvalidArgumentError("text is empty: nothing to embed");
  }
  const std::vector<int32_t> tokens = Tokens(text);
  if (tokens.empty()) return absl::InvalidArgumentError("text gives no tokens to embed");
  absl::StatusOr<std::unique_ptr<infer::Session>> session = Borrow();
  if (!session.ok()) return session.status();
  absl::StatusOr<std::vector<float>> v = (*session)->Embed(tokens, options_.pooling);
  Return(*std::move(session));
  if (!v.ok()) return v.status();
  std::copy(v->begin(), v->end(), out.begin());
  return absl::OkStatus();
}

}  // namespace cairn::server
