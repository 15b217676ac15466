// Tokenizer: text <-> token ids for the vocabularies of GGUF models, matching llama.cpp
// (and the Hugging Face tokenizers it reproduces) id for id.
//
//   SentencePiece ("llama")  spaces become U+2581, a space is put in front, characters are
//                            merged highest score first; characters no token covers fall
//                            back to <0xXX> byte tokens.
//   Byte-level BPE ("gpt2")  a regex pre-tokenizer (pretokenizer.h) cuts words; each word's
//                            bytes are mapped to GPT-2's printable characters and merged by
//                            rank.
//   WordPiece ("bert")       BertNormalizer (clean, CJK isolation, accent stripping, lower
//                            case), whitespace/punctuation split, greedy longest match with
//                            continuation pieces; a word that does not match is [UNK].
//
// Special tokens: Encode first cuts the text at user-defined tokens' strings and, with
// parse_special, at control tokens' strings ("<|im_start|>") too; those parts become their
// ids directly and the rest is tokenized.
//
// Ownership and thread-safety: Tokenizer is an immutable value; copies are cheap and share
// the same tables. Every method is const and thread-safe. A StreamDecoder belongs to one
// stream (not thread-safe); it keeps its own Tokenizer copy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/infer/vocab.h"

namespace cairn::infer {

struct DecodeOptions {
  // Control, unknown and unused tokens print their text ("<s>", "[CLS]"); otherwise nothing.
  bool render_special = false;
  // SentencePiece and WordPiece: drop the space the encoder put before the text (at the
  // start and after each special token), so that Decode(Encode(x)) == x.
  bool strip_prefix_space = true;
  // Undo the spaces a word-level tokenizer leaves before punctuation (" ," -> ",",
  // " 's" -> "'s"), as Hugging Face's clean_up_tokenization_spaces. Lossy.
  bool clean_spaces = false;
};

class Tokenizer {
 public:
  // Validates `vocab` (sizes agree, ids in range, tokens unique, merges refer to tokens,
  // pre-tokenizer known) and builds the lookup tables.
  static absl::StatusOr<Tokenizer> Create(Vocab vocab);

  // Token ids of `text` (any bytes; invalid UTF-8 goes through byte tokens or [UNK]).
  // add_special adds BOS/EOS/SEP as the vocabulary asks (Vocab::add_bos, ...);
  // parse_special lets control-token strings in the text become their ids.
  std::vector<int32_t> Encode(std::string_view text, bool add_special = true, bool parse_special = false) const;

  // The text of `ids`. Ids outside [0, vocab_size()) decode to nothing (check with
  // IsValidId first where they come from outside).
  std::string Decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

  // The bytes token `id` stands for: U+2581 and GPT-2 characters turned back into spaces
  // and raw bytes, <0xXX> into its byte. A piece can be part of a UTF-8 sequence (see
  // StreamDecoder). Control, unknown, unused and undefined tokens give their text with
  // render_special, else ""; user-defined tokens always give their text.
  std::string_view TokenToPiece(int32_t id, bool render_special = false) const;

  bool IsValidId(int32_t id) const { return id >= 0 && id < vocab_size(); }
  // The token's string as stored in the vocabulary ("▁Hello", "Ġworld", "##ing" as
  // converted, "<0x0A>"); "" for an invalid id.
  std::string_view TokenText(int32_t id) const;
  TokenType GetTokenType(int32_t id) const;
  // The id whose string is exactly `text`, or kNoToken.
  int32_t TokenId(std::string_view text) const;
  // EOS, EOT, EOM: tokens that end generation.
  bool IsEndOfGeneration(int32_t id) const;

  int32_t vocab_size() const;
  const Vocab& vocab() const;
  TokenizerModel model() const { return vocab().model; }
  int32_t bos_id() const { return vocab().bos_id; }
  int32_t eos_id() const { return vocab().eos_id; }
  int32_t unk_id() const { return vocab().unk_id; }
  int32_t sep_id() const { return vocab().sep_id; }
  int32_t pad_id() const { return vocab().pad_id; }
  int32_t cls_id() const { return vocab().cls_id; }
  int32_t mask_id() const { return vocab().mask_id; }
  int32_t eot_id() const { return vocab().eot_id; }

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Decodes a stream of ids one at a time, as a generator produces them: Push returns the
// text that is complete so far, holding back the bytes of a UTF-8 character whose last
// bytes are still to come (a byte-fallback emoji arrives as four tokens). Applies the
// same prefix-space rule as Decode; clean_spaces is ignored (it needs lookahead).
class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer, DecodeOptions options = {});
  std::string Push(int32_t id);
  // Whatever is still held (an incomplete sequence at the end of the stream), as is.
  std::string Flush();

 private:
  Tokenizer tokenizer_;
  DecodeOptions options_;
  std::string pending_;
  bool at_text_start_ = true;
};

}  // namespace cairn::infer
