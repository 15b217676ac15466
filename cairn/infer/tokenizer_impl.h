// Tokenizer internals shared by tokenizer.cc and the per-model encoders
// (tokenizer_spm.cc, tokenizer_bpe.cc, tokenizer_wpm.cc). Not part of the API.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "cairn/infer/pretokenizer.h"
#include "cairn/infer/tokenizer.h"
#include "cairn/infer/vocab.h"

namespace cairn::infer {

struct Tokenizer::Impl {
  Vocab vocab;
  std::vector<TokenType> types;  // one per token (Vocab::types may be empty)
  std::vector<std::string> pieces;  // TokenToPiece(id, render_special = true)
  absl::flat_hash_map<std::string, int32_t> ids;
  // Partition candidates: control, unknown and user-defined tokens, longest first.
  std::vector<int32_t> special_tokens;
  // SentencePiece: <0xXX> (or the one-byte token); BPE: GPT-2's character for the byte.
  std::array<int32_t, 256> byte_tokens{};
  size_t max_token_bytes = 0;
  // SentencePiece: no token has U+2581 after another character (true of real vocabularies),
  // so text can be merged one word at a time.
  bool spm_word_chunks = false;

  // Byte-level BPE.
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  absl::flat_hash_map<uint64_t, Merge> merges;  // (left id << 32 | right id) -> merge

  int32_t Find(std::string_view text) const {
    auto it = ids.find(absl::string_view(text.data(), text.size()));
    return it == ids.end() ? kNoToken : it->second;
  }
  float Score(int32_t id) const { return vocab.scores.empty() ? 0.0f : vocab.scores[id]; }
  // A byte no token covers becomes [UNK] where there is one, else it is dropped.
  void AppendByte(uint8_t byte, std::vector<int32_t>* out) const {
    const int32_t id = byte_tokens[byte] != kNoToken ? byte_tokens[byte] : vocab.unk_id;
    if (id != kNoToken) out->push_back(id);
  }

  // Encoders of one stretch of raw text (no special tokens in it).
  // `space_prefix`: put a space in front (SentencePiece's add_space_prefix at a text start).
  void EncodeSentencePiece(std::string_view text, bool space_prefix, std::vector<int32_t>* out) const;
  void EncodeBytePair(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeWordPiece(std::string_view text, std::vector<int32_t>* out) const;
};

// WordPiece's normalization and pre-tokenization (BertNormalizer + BertPreTokenizer):
// the words of `text`, exposed for tests.
std::vector<std::string> WordPieceWords(std::string_view text, bool lowercase, bool strip_accents);

}  // namespace cairn::infer
