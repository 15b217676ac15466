// Byte-level BPE encoding: the pre-tokenizer cuts words, each word starts as one symbol
// per byte (GPT-2's character for it), and the adjacent pair with the lowest merge rank
// is merged until no pair has a merge. Works on ids: a merge is (left id, right id) ->
// (rank, result id), so no strings are built in the loop.
#include <queue>
#include <string>
#include <vector>

#include "cairn/infer/tokenizer_impl.h"
#include "cairn/infer/unicode.h"

namespace cairn::infer {
namespace {

struct Symbol {
  int prev;
  int next;
  int32_t id;  // kNoToken for a byte without a token; -2 once merged into its left neighbour
};
constexpr int32_t kMerged = -2;

struct Candidate {
  int32_t rank;
  int left;
  int right;
  int32_t left_id;  // the ids when queued: a changed id means a stale entry
  int32_t right_id;
  int32_t result;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

uint64_t MergeKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

void Tokenizer::Impl::EncodeBytePair(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<std::string_view> words;
  pre_tokenizer->Split(text, &words);

  std::vector<Symbol> symbols;
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  std::string mapped;
  for (std::string_view word : words) {
    if (vocab.ignore_merges) {
      mapped.clear();
      for (char c : word) mapped += unicode::ByteToUnicode(static_cast<uint8_t>(c));
      const int32_t id = Find(mapped);
      if (id != kNoToken) {
        out->push_back(id);
        continue;
      }
    }

    symbols.clear();
    for (size_t i = 0; i < word.size(); ++i) {
      const int n = static_cast<int>(i);
      symbols.push_back({n - 1, i + 1 == word.size() ? -1 : n + 1, byte_tokens[static_cast<uint8_t>(word[i])]});
    }
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const int32_t a = symbols[left].id;
      const int32_t b = symbols[right].id;
      if (a < 0 || b < 0) return;
      auto it = merges.find(MergeKey(a, b));
      if (it == merges.end()) return;
      queue.push({it->second.rank, left, right, a, b, it->second.result});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& left = symbols[c.left];
      Symbol& right = symbols[c.right];
      if (left.id != c.left_id || right.id != c.right_id || left.next != c.right) continue;
      left.id = c.result;
      right.id = kMerged;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = c.left;
      try_add(left.prev, c.left);
      try_add(c.left, left.next);
    }

    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
      if (symbols[i].id >= 0) {
        out->push_back(symbols[i].id);
      } else if (vocab.unk_id != kNoToken) {
        out->push_back(vocab.unk_id);
      }
    }
  }
}

}  // namespace cairn::infer
