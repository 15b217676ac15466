// SentencePiece-style encoding (llama.cpp's "SPM" tokenizer): characters are merged
// pairwise, the pair that forms the highest-scoring token first, until no adjacent pair
// forms a token.
#include <algorithm>
#include <string>
#include <vector>

#include "cairn/infer/tokenizer_impl.h"
#include "cairn/infer/unicode.h"

namespace cairn::infer {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

struct Symbol {
  int prev;
  int next;
  size_t offset;
  size_t length;  // 0 once merged into its left neighbour
};

struct Bigram {
  float score;
  int left;
  int right;
  size_t length;  // of left + right when queued: a changed length means a stale entry
};

// Highest score first; among equal scores the leftmost pair, as SentencePiece does.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// Reused across the words of one text.
struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Bigram> queue;
};

void MergeWord(const Tokenizer::Impl& impl, std::string_view text, Scratch* scratch, std::vector<int32_t>* out) {
  std::vector<Symbol>& symbols = scratch->symbols;
  symbols.clear();
  for (size_t offset = 0; offset < text.size();) {
    const size_t n = unicode::Utf8CharLength(text, offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offset + n == text.size() ? -1 : index + 1, offset, n});
    offset += n;
  }

  // A binary heap in the reused vector (std::priority_queue cannot hand its storage back).
  std::vector<Bigram>& queue = scratch->queue;
  queue.clear();
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const int32_t id = impl.Find(text.substr(symbols[left].offset, length));
    if (id == kNoToken) return;
    queue.push_back({impl.Score(id), left, right, length});
    std::push_heap(queue.begin(), queue.end(), BigramOrder());
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), BigramOrder());
    const Bigram bigram = queue.back();
    queue.pop_back();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
    const int32_t id = impl.Find(piece);
    if (id != kNoToken) {
      out->push_back(id);
      continue;
    }
    for (char c : piece) impl.AppendByte(static_cast<uint8_t>(c), out);
  }
}

}  // namespace

void Tokenizer::Impl::EncodeSentencePiece(std::string_view raw, bool space_prefix, std::vector<int32_t>* out) const {
  std::string text;
  text.reserve(raw.size() + 8);
  if (space_prefix) text += kSpaceMark;
  for (char c : raw) {
    if (c == ' ') {
      text += kSpaceMark;
    } else {
      text += c;
    }
  }
  Scratch scratch;
  if (!spm_word_chunks) {
    MergeWord(*this, text, &scratch, out);
    return;
  }
  // No token has a U+2581 after another character, so no merge crosses the start of a
  // word (a U+2581 run): merging word by word gives the same tokens with small queues.
  const std::string_view all(text);
  size_t chunk_start = 0;
  bool previous_is_mark = false;
  for (size_t pos = 0; pos < all.size();) {
    const bool is_mark = all.substr(pos, kSpaceMark.size()) == kSpaceMark;
    if (is_mark && !previous_is_mark && pos > chunk_start) {
      MergeWord(*this, all.substr(chunk_start, pos - chunk_start), &scratch, out);
      chunk_start = pos;
    }
    previous_is_mark = is_mark;
    pos += is_mark ? kSpaceMark.size() : unicode::Utf8CharLength(all, pos);
  }
  MergeWord(*this, all.substr(chunk_start), &scratch, out);
}

}  // namespace cairn::infer
