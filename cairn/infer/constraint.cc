#include "cairn/infer/constraint.h"

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cairn/infer/json_recognizer.h"
#include "cairn/infer/json_schema.h"
#include "cairn/infer/tokenizer.h"

namespace cairn::infer {
namespace {

bool IsTextToken(TokenType type) {
  return type == TokenType::kNormal || type == TokenType::kByte || type == TokenType::kUserDefined;
}

// The vocabulary's byte strings as a trie laid out in preorder: node i's subtree is
// nodes [i, end[i]), so a walk that finds node i dead jumps straight to end[i], and
// the state after node i's byte only ever needs its parent's (at depth[i] - 1).
struct TokenTrie {
  std::vector<uint8_t> byte;       // node 0 is the root (no byte)
  std::vector<uint16_t> depth;
  std::vector<uint32_t> end;
  std::vector<uint32_t> ids_begin;  // tokens spelled by node i: ids[ids_begin[i] .. ids_begin[i + 1])
  std::vector<int32_t> ids;
  // next_special[i]: the first node >= i whose byte is not a plain string byte; when
  // it is >= end[i], every token in i's subtree is plain text.
  std::vector<uint32_t> next_special;
  int max_depth = 0;

  static std::shared_ptr<const TokenTrie> Build(const Tokenizer& t) {
    std::vector<std::pair<std::string_view, int32_t>> pieces;
    for (int32_t id = 0; id < t.vocab_size(); ++id) {
      if (!IsTextToken(t.GetTokenType(id))) continue;
      std::string_view p = t.TokenToPiece(id);
      if (!p.empty() && p.size() < 0xFFFF) pieces.emplace_back(p, id);
    }
    std::sort(pieces.begin(), pieces.end());
    auto trie = std::make_shared<TokenTrie>();
    TokenTrie& r = *trie;
    r.byte.push_back(0);
    r.depth.push_back(0);
    r.end.push_back(0);
    r.ids_begin.push_back(0);
    std::vector<uint32_t> path = {0};  // path[d]: the node at depth d on the current string
    std::string_view prev;
    for (const auto& [piece, id] : pieces) {
      size_t common = 0;
      while (common < prev.size() && common < piece.size() && prev[common] == piece[common]) ++common;
      while (path.size() > common + 1) {
        r.end[path.back()] = static_cast<uint32_t>(r.byte.size());
        path.pop_back();
      }
      for (size_t d = common; d < piece.size(); ++d) {
        path.push_back(static_cast<uint32_t>(r.byte.size()));
        r.byte.push_back(static_cast<uint8_t>(piece[d]));
        r.depth.push_back(static_cast<uint16_t>(d + 1));
        r.end.push_back(0);
        r.ids_begin.push_back(static_cast<uint32_t>(r.ids.size()));
      }
      r.ids.push_back(id);  // the newest node is the one that spells `piece`
      r.max_depth = std::max(r.max_depth, static_cast<int>(piece.size()));
      prev = piece;
    }
    for (uint32_t node : path) r.end[node] = static_cast<uint32_t>(r.byte.size());
    r.ids_begin.push_back(static_cast<uint32_t>(r.ids.size()));
    const uint32_t n = static_cast<uint32_t>(r.byte.size());
    r.next_special.assign(n + 1, n);
    for (uint32_t i = n; i-- > 1;) r.next_special[i] = json::IsPlainStringByte(r.byte[i]) ? r.next_special[i + 1] : i;
    r.next_special[0] = 0;
    return trie;
  }
};

// One trie per vocabulary, shared by the constraints built from it while any lives.
std::shared_ptr<const TokenTrie> TrieFor(const Tokenizer& t) {
  static std::mutex mu;
  static auto* cache = new std::map<const Vocab*, std::weak_ptr<const TokenTrie>>();
  std::lock_guard<std::mutex> lock(mu);
  std::weak_ptr<const TokenTrie>& slot = (*cache)[&t.vocab()];
  std::shared_ptr<const TokenTrie> trie = slot.lock();
  if (!trie) {
    trie = TokenTrie::Build(t);
    slot = trie;
  }
  return trie;
}

class JsonConstraint final : public TokenConstraint {
 public:
  JsonConstraint(const Tokenizer& tokenizer, json::JsonGrammar grammar)
      : tokenizer_(tokenizer), trie_(TrieFor(tokenizer)), rec_(std::move(grammar)), state_(rec_.Start()) {
    for (int32_t id = 0; id < tokenizer_.vocab_size(); ++id) {
      if (tokenizer_.IsEndOfGeneration(id)) eog_.push_back(id);
    }
    walk_.resize(static_cast<size_t>(trie_->max_depth) + 1);
    at_.resize(walk_.size());
  }

  void Apply(std::span<float> logits) override {
    allowed_.assign(logits.size(), 0);
    if (!ended_) {
      const TokenTrie& t = *trie_;
      // at_[d]: the state after the current trie path's first d bytes; it is either
      // walk_[d] or, when a byte changed nothing, the same state as at_[d - 1].
      at_[0] = &state_;
      const uint32_t n = static_cast<uint32_t>(t.byte.size());
      for (uint32_t i = 1; i < n;) {
        const uint16_t d = t.depth[i];
        if (rec_.Neutral(*at_[d - 1], t.byte[i])) {
          if (t.next_special[i] >= t.end[i]) {
            // Plain text all the way down: every token below is allowed, and they
            // are the contiguous run of ids the subtree spells.
            for (uint32_t k = t.ids_begin[i]; k < t.ids_begin[t.end[i]]; ++k) Allow(t.ids[k]);
            i = t.end[i];
            continue;
          }
          at_[d] = at_[d - 1];
        } else if (rec_.Advance(*at_[d - 1], t.byte[i], &walk_[d])) {
          at_[d] = &walk_[d];
        } else {
          i = t.end[i];
          continue;
        }
        for (uint32_t k = t.ids_begin[i]; k < t.ids_begin[i + 1]; ++k) Allow(t.ids[k]);
        ++i;
      }
      if (rec_.CanEnd(state_)) {
        for (int32_t id : eog_) Allow(id);
      }
    }
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < logits.size(); ++i) {
      if (!allowed_[i]) logits[i] = kNegInf;
    }
  }

  void Allow(int32_t id) {
    if (static_cast<size_t>(id) < allowed_.size()) allowed_[static_cast<size_t>(id)] = 1;
  }

  absl::Status Accept(int32_t token) override {
    if (ended_) return absl::InvalidArgumentError("json constraint: the value is complete; no token may follow");
    if (!tokenizer_.IsValidId(token)) {
      return absl::InvalidArgumentError(fmt::format("json constraint: token {} is outside the vocabulary", token));
    }
    if (tokenizer_.IsEndOfGeneration(token)) {
      if (!rec_.CanEnd(state_)) {
        return absl::InvalidArgumentError("json constraint: the end of generation came before the value was complete");
      }
      ended_ = true;
      return absl::OkStatus();
    }
    const std::string_view piece = tokenizer_.TokenToPiece(token);
    if (!IsTextToken(tokenizer_.GetTokenType(token)) || piece.empty() ||
        !rec_.Advance(&state_, piece, &scratch_)) {
      const std::string shown =
          nlohmann::json(std::string(piece)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return absl::InvalidArgumentError(fmt::format("json constraint: token {} ({}) cannot come next", token, shown));
    }
    return absl::OkStatus();
  }

  bool Complete() const override { return ended_ || rec_.Finished(state_); }

 private:
  Tokenizer tokenizer_;  // a copy shares the tables and keeps them (and the trie cache key) alive
  std::shared_ptr<const TokenTrie> trie_;
  json::JsonRecognizer rec_;
  json::JsonState state_;
  json::JsonState scratch_;
  std::vector<json::JsonState> walk_;
  std::vector<const json::JsonState*> at_;
  std::vector<uint8_t> allowed_;
  std::vector<int32_t> eog_;
  bool ended_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TokenConstraint>> MakeJsonConstraint(const Tokenizer& tokenizer,
                                                                    const nlohmann::json& schema) {
  absl::StatusOr<json::JsonGrammar> grammar = json::CompileJsonSchema(schema);
  if (!grammar.ok()) return grammar.status();
  return std::unique_ptr<TokenConstraint>(new JsonConstraint(tokenizer, *std::move(grammar)));
}

}  // namespace cairn::infer
