// WordPiece encoding as BERT does it (Hugging Face's BertNormalizer, BertPreTokenizer and
// WordPiece model). GGUF vocabularies store word-initial pieces with a U+2581 prefix and
// continuation pieces ("##ing") bare, so a word is matched as U+2581 + word.
#include <algorithm>
#include <string>
#include <vector>

#include "cairn/infer/tokenizer_impl.h"
#include "cairn/infer/unicode.h"

namespace cairn::infer {
namespace {

constexpr std::string_view kWordStart = "\xE2\x96\x81";  // U+2581
// Longer words are [UNK] without trying (WordPiece's max_input_chars_per_word).
constexpr size_t kMaxWordChars = 100;

// BERT's "Chinese character" blocks (CJK ideographs), taken as words of their own. The
// 0x2B920 lower bound is the reference implementation's (the block starts at 0x2B820).
bool IsCjkIdeograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// ASCII punctuation counts even where Unicode calls it a symbol ($, +, <, ^, `, |, ~).
bool IsBertPunctuation(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
           (cp >= 0x7B && cp <= 0x7E);
  }
  return unicode::IsPunctuation(cp);
}

}  // namespace

std::vector<std::string> WordPieceWords(std::string_view text, bool lowercase, bool strip_accents) {
  std::vector<std::string> words;
  std::string current;
  auto finish = [&] {
    if (!current.empty()) words.push_back(std::move(current));
    current.clear();
  };
  std::u32string decomposed;
  std::u32string normalized;
  for (size_t pos = 0; pos < text.size();) {
    const char32_t cp = unicode::DecodeUtf8(text, &pos);
    // clean_text: NUL, U+FFFD (also what invalid bytes decode to) and control characters
    // other than tab, CR and LF go (NEL and form feed too, although they are White_Space);
    // whitespace separates.
    const bool tab_or_newline = cp == '\t' || cp == '\n' || cp == '\r';
    if (cp == 0 || cp == unicode::kReplacementChar || (unicode::IsOther(cp) && !tab_or_newline)) continue;
    if (unicode::IsWhitespace(cp)) {
      finish();
      continue;
    }
    if (IsCjkIdeograph(cp)) {
      finish();
      unicode::AppendUtf8(lowercase ? unicode::ToLower(cp) : cp, &current);
      finish();
      continue;
    }
    decomposed.clear();
    if (strip_accents) {
      unicode::AppendNfd(cp, &decomposed);
    } else {
      decomposed.push_back(cp);
    }
    normalized.clear();
    for (char32_t d : decomposed) {
      if (strip_accents && unicode::GetCategory(d) == unicode::Category::kMn) continue;
      if (lowercase) {
        unicode::AppendLower(d, &normalized);
      } else {
        normalized.push_back(d);
      }
    }
    for (char32_t n : normalized) {
      if (unicode::IsWhitespace(n)) {
        finish();
      } else if (IsBertPunctuation(n)) {
        finish();
        unicode::AppendUtf8(n, &current);
        finish();
      } else {
        unicode::AppendUtf8(n, &current);
      }
    }
  }
  finish();
  return words;
}

void Tokenizer::Impl::EncodeWordPiece(std::string_view text, std::vector<int32_t>* out) const {
  std::string word;
  for (const std::string& w : WordPieceWords(text, vocab.lowercase, vocab.strip_accents)) {
    size_t chars = 0;
    for (size_t pos = 0; pos < w.size(); pos += unicode::Utf8CharLength(w, pos)) ++chars;
    const size_t first = out->size();
    bool matched = chars <= kMaxWordChars;
    word.assign(kWordStart);
    word += w;
    // Longest piece first at every position; one position without any piece makes the
    // whole word [UNK].
    for (size_t i = 0; matched && i < word.size();) {
      matched = false;
      for (size_t j = std::min(word.size(), i + max_token_bytes); j > i; --j) {
        const int32_t id = Find(std::string_view(word).substr(i, j - i));
        if (id != kNoToken) {
          out->push_back(id);
          i = j;
          matched = true;
          break;
        }
      }
    }
    if (!matched) {
      out->resize(first);
      if (vocab.unk_id != kNoToken) out->push_back(vocab.unk_id);
    }
  }
}

}  // namespace cairn::infer
