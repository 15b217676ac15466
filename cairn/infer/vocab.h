// Vocab: everything a tokenizer needs, as a model file describes it.
//
// A Vocab is plain data: LoadVocab fills one from a GGUF file's `tokenizer.ggml.*` metadata
// (with llama.cpp's defaults for keys a file leaves out), and tests build small ones by
// hand. Tokenizer::Create (tokenizer.h) checks it for consistency and builds the lookup
// structures; a Vocab itself is not validated.
//
// Thread-safety: plain data; LoadVocab is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::infer {

class GgufFile;

inline constexpr int32_t kNoToken = -1;

// `tokenizer.ggml.model`.
enum class TokenizerModel {
  kSentencePiece,  // "llama": merges by score over characters, byte fallback <0xXX>
  kBytePair,       // "gpt2": byte-level BPE with merge ranks and a regex pre-tokenizer
  kWordPiece,      // "bert": normalization, whitespace/punctuation split, greedy longest match
};

// `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // <s>, </s>, <|endoftext|>, [CLS]: matched in text only with parse_special
  kUserDefined = 4,  // added tokens: always matched in text before tokenizing the rest
  kUnused = 5,
  kByte = 6,         // <0x0A>-style byte fallback
};

// The name a GGUF file uses for `model` ("llama", "gpt2", "bert").
std::string_view TokenizerModelName(TokenizerModel model);
// InvalidArgument naming the supported ones for anything else.
absl::StatusOr<TokenizerModel> ParseTokenizerModel(std::string_view name);

struct Vocab {
  TokenizerModel model = TokenizerModel::kSentencePiece;
  // `tokenizer.ggml.pre`: which pre-tokenizer a BPE vocabulary was trained with ("gpt-2",
  // "llama-bpe", "qwen2", "smollm", ...); empty for "default". Unused by the other models.
  std::string pre;

  std::vector<std::string> tokens;  // the token strings, indexed by id
  std::vector<float> scores;        // one per token, or empty (all 0)
  std::vector<TokenType> types;     // one per token, or empty (all kNormal)
  std::vector<std::string> merges;  // BPE: "left right", highest priority first

  // Special tokens; kNoToken when the vocabulary has none.
  int32_t bos_id = kNoToken;
  int32_t eos_id = kNoToken;
  int32_t unk_id = kNoToken;
  int32_t sep_id = kNoToken;
  int32_t pad_id = kNoToken;
  int32_t cls_id = kNoToken;
  int32_t mask_id = kNoToken;
  int32_t eot_id = kNoToken;  // end of turn (<|eot_id|>, <|im_end|>, ...)
  int32_t eom_id = kNoToken;  // end of message (<|eom_id|>)

  // What Encode(add_special = true) adds: bos first; eos, then sep, last.
  bool add_bos = false;
  bool add_eos = false;
  bool add_sep = false;
  // SentencePiece: a space is put before the text (and after each special token).
  bool add_space_prefix = false;
  // BPE: a pre-tokenized word that is itself a token is taken whole (llama3, tekken).
  bool ignore_merges = false;
  // Decode's clean_spaces default ("a ." -> "a."), as the original tokenizer decodes.
  bool clean_spaces = false;
  // WordPiece normalization (BertNormalizer).
  bool lowercase = true;
  bool strip_accents = true;
};

// Reads the vocabulary of a GGUF model file. Errors name the key that is missing or
// malformed ("gguf vocab: tokenizer.ggml.scores has 31999 entries, expected 32000").
absl::StatusOr<Vocab> LoadVocab(const GgufFile& file);

}  // namespace cairn::infer
