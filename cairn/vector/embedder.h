// Text -> vector embedders.
//
// Embedder is the interface collections use to embed a point's text (when it comes
// without a vector) and text queries. HashingEmbedder is the built-in default that
// needs no model: lower-cased word unigrams and bigrams plus character 3..5-grams of
// each word (with boundary marks), feature-hashed into `dim` buckets with a hashed
// sign, weighted by 1 + log(tf), and L2-normalized. Texts that share words or word
// pieces land close in cosine / inner product; it captures no synonymy (that is the
// job of the model-based embedder that comes with inference).
//
// Thread-safety: Embed is const and thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn::vector {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual size_t dim() const = 0;
  virtual std::string_view name() const = 0;
  // Writes dim() values to `out` (out.size() must equal dim()). InvalidArgument when the
  // text has nothing to embed (no letters or digits).
  [[nodiscard]] virtual absl::Status Embed(std::string_view text, std::span<float> out) const = 0;

  absl::StatusOr<std::vector<float>> Embed(std::string_view text) const;
};

class HashingEmbedder final : public Embedder {
 public:
  explicit HashingEmbedder(size_t dim) : dim_(dim) {}
  size_t dim() const override { return dim_; }
  std::string_view name() const override { return "hash"; }
  absl::Status Embed(std::string_view text, std::span<float> out) const override;
  using Embedder::Embed;

 private:
  size_t dim_;
};

// "hash" -> HashingEmbedder(dim); "none" -> nullptr; anything else InvalidArgument.
absl::StatusOr<std::unique_ptr<Embedder>> MakeEmbedder(std::string_view name, size_t dim);

}  // namespace cairn::vector
