#include "cairn/vector/embedder.h"

#include <cmath>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "cairn/base/hash.h"

namespace cairn::vector {
namespace {

// Seeds keep the three feature families in separate hash spaces, so the word "abc"
// and the 3-gram "abc" do not collide by construction.
constexpr uint64_t kWordSeed = 0x5157a11e;
constexpr uint64_t kBigramSeed = 0xb16a3;
constexpr uint64_t kCharSeed = 0xc4a7;
// Relative weights: whole words carry the meaning, bigrams word order, character
// n-grams robustness to inflection and typos ("pump"/"pumps").
constexpr float kWordWeight = 1.0f;
constexpr float kBigramWeight = 0.7f;
constexpr float kCharWeight = 0.35f;

bool IsWordByte(unsigned char c) {
  // Bytes >= 0x80 are parts of UTF-8 sequences: kept inside words, so non-ASCII
  // scripts still tokenize on ASCII spaces and punctuation.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (unsigned char c : text) {
    if (IsWordByte(c)) {
      cur.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
    } else if (!cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

}  // namespace

absl::StatusOr<std::vector<float>> Embedder::Embed(std::string_view text) const {
  std::vector<float> out(dim());
  auto st = Embed(text, out);
  if (!st.ok()) return st;
  return out;
}

absl::Status HashingEmbedder::Embed(std::string_view text, std::span<float> out) const {
  if (out.size() != dim_) {
    return absl::InvalidArgumentError(
        fmt::format("embedding output has {} values; the embedder has dimension {}", out.size(), dim_));
  }
  std::vector<std::string> words = Words(text);
  if (words.empty()) {
    return absl::InvalidArgumentError("text has no letters or digits to embed");
  }
  // Feature hash -> (weight of its family, term frequency).
  absl::flat_hash_map<uint64_t, std::pair<float, int>> tf;
  auto add = [&](uint64_t h, float w) {
    auto& e = tf[h];
    e.first = w;
    e.second++;
  };
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    add(Hash64(w, kWordSeed), kWordWeight);
    if (i + 1 < words.size()) add(Hash64(w + ' ' + words[i + 1], kBigramSeed), kBigramWeight);
    const std::string marked = "<" + w + ">";
    for (size_t n = 3; n <= 5; ++n) {
      for (size_t s = 0; s + n <= marked.size(); ++s) {
        add(Hash64(std::string_view(marked).substr(s, n), kCharSeed + n), kCharWeight);
      }
    }
  }
  std::fill(out.begin(), out.end(), 0.0f);
  for (const auto& [h, e] : tf) {
    const float weight = e.first * (1.0f + std::log(static_cast<float>(e.second)));
    const size_t bucket = static_cast<size_t>(h % dim_);
    const float sign = (h >> 63) ? -1.0f : 1.0f;
    out[bucket] += sign * weight;
  }
  double norm = 0;
  for (float v : out) norm += static_cast<double>(v) * v;
  if (norm == 0) {
    // Every feature cancelled out (possible only for tiny dims): fall back to a fixed
    // bucket so the vector stays usable for cosine.
    out[Hash64(words[0], kWordSeed) % dim_] = 1.0f;
    return absl::OkStatus();
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& v : out) v *= inv;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Embedder>> MakeEmbedder(std::string_view name, size_t dim) {
  if (name == "hash") return std::unique_ptr<Embedder>(std::make_unique<HashingEmbedder>(dim));
  if (name == "none" || name.empty()) return std::unique_ptr<Embedder>();
  return absl::InvalidArgumentError(
      fmt::format("unknown embedder '{}' (expected hash or none)", std::string(name)));
}

}  // namespace cairn::vector
