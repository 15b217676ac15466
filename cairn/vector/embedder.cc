#include "cairn/vector/embedder.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

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

// Per-thread buffers, so embedding a text allocates nothing once they have grown.
struct Scratch {
  std::string lower;                                  // the text's words, lower-cased, each as "<word>"
  std::vector<std::pair<size_t, size_t>> words;       // (offset of '<', length with the marks)
  std::string pair;                                   // "word next"
  // Distinct features in the order first added, and an open-addressing table of indexes
  // into them (kEmpty: a free slot), its size a power of two at least twice the features.
  struct Feature {
    uint64_t hash;
    float weight;  // of the family that added it last
    uint32_t tf;
  };
  std::vector<Feature> feats;
  std::vector<uint32_t> table;
  static constexpr uint32_t kEmpty = ~uint32_t{0};
};

// Splits `text` into lower-cased words, each stored as "<word>" in sc.lower.
void Words(std::string_view text, Scratch& sc) {
  sc.lower.clear();
  sc.words.clear();
  size_t start = std::string::npos;
  for (unsigned char c : text) {
    if (IsWordByte(c)) {
      if (start == std::string::npos) {
        start = sc.lower.size();
        sc.lower.push_back('<');
      }
      sc.lower.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
    } else if (start != std::string::npos) {
      sc.lower.push_back('>');
      sc.words.emplace_back(start, sc.lower.size() - start);
      start = std::string::npos;
    }
  }
  if (start != std::string::npos) {
    sc.lower.push_back('>');
    sc.words.emplace_back(start, sc.lower.size() - start);
  }
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
  thread_local Scratch sc;
  Words(text, sc);
  if (sc.words.empty()) {
    return absl::InvalidArgumentError("text has no letters or digits to embed");
  }
  const std::string_view all(sc.lower);
  auto word = [&](size_t i) { return all.substr(sc.words[i].first + 1, sc.words[i].second - 2); };
  // Each word adds at most 1 + 1 + 3 * (its length + 2) features.
  size_t bound = 0;
  for (const auto& [at, len] : sc.words) bound += 2 + 3 * len;
  size_t slots = 64;
  while (slots < 2 * bound) slots *= 2;
  sc.table.assign(slots, Scratch::kEmpty);
  sc.feats.clear();
  const size_t mask = slots - 1;
  auto add = [&](uint64_t h, float w) {
    for (size_t i = static_cast<size_t>(h ^ (h >> 29)) & mask;; i = (i + 1) & mask) {
      const uint32_t f = sc.table[i];
      if (f == Scratch::kEmpty) {
        sc.table[i] = static_cast<uint32_t>(sc.feats.size());
        sc.feats.push_back({h, w, 1});
        return;
      }
      if (sc.feats[f].hash == h) {
        sc.feats[f].weight = w;
        ++sc.feats[f].tf;
        return;
      }
    }
  };
  for (size_t i = 0; i < sc.words.size(); ++i) {
    const std::string_view w = word(i);
    add(Hash64(w, kWordSeed), kWordWeight);
    if (i + 1 < sc.words.size()) {
      sc.pair.assign(w);
      sc.pair.push_back(' ');
      sc.pair.append(word(i + 1));
      add(Hash64(sc.pair, kBigramSeed), kBigramWeight);
    }
    const std::string_view marked = all.substr(sc.words[i].first, sc.words[i].second);
    for (size_t n = 3; n <= 5; ++n) {
      for (size_t s = 0; s + n <= marked.size(); ++s) add(Hash64(marked.substr(s, n), kCharSeed + n), kCharWeight);
    }
  }
  // Each distinct feature once, in the order the text first names it.
  std::fill(out.begin(), out.end(), 0.0f);
  for (const Scratch::Feature& f : sc.feats) {
    const float weight = f.tf == 1 ? f.weight : f.weight * (1.0f + std::log(static_cast<float>(f.tf)));
    const float sign = (f.hash >> 63) ? -1.0f : 1.0f;
    out[static_cast<size_t>(f.hash % dim_)] += sign * weight;
  }
  double norm = 0;
  for (float v : out) norm += static_cast<double>(v) * v;
  if (norm == 0) {
    // Every feature cancelled out (possible only for tiny dims): fall back to a fixed
    // bucket so the vector stays usable for cosine.
    out[Hash64(word(0), kWordSeed) % dim_] = 1.0f;
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
