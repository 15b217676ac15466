// Pre-tokenizers of byte-level BPE vocabularies: the regular expressions that cut text
// into words before merges run, keyed by a GGUF file's `tokenizer.ggml.pre`.
//
// A pre-tokenizer is a list of patterns applied in turn: each one splits every piece the
// previous one left into its matches and the text between them (both kept, as llama.cpp
// and Hugging Face's Split(behavior = Isolated) do), with the piece as the whole subject
// so lookarounds stop at its ends. The patterns are the models' own (tokenizer.json),
// compiled by PCRE2 in UTF + UCP mode; invalid UTF-8 never matches and ends up between
// matches, so arbitrary bytes still tokenize.
//
// Thread-safety: a PreTokenizer is immutable after Create; Split is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cairn::infer {

// What a `tokenizer.ggml.pre` name implies besides its patterns (llama.cpp's defaults).
struct PreTokenizerTraits {
  bool ignore_merges = false;    // a word that is a token is taken whole
  bool add_bos = false;          // the model expects BOS (llama3 family)
  bool clean_spaces = true;      // Decode tidies " ." -> "." by default
};

class PreTokenizer {
 public:
  // `name` as in `tokenizer.ggml.pre`; "" and "default" give llama.cpp's default. Unknown
  // names are InvalidArgument, listing the known ones.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(std::string_view name);
  static absl::StatusOr<PreTokenizerTraits> Traits(std::string_view name);
  // Every name Create accepts.
  static std::vector<std::string> KnownNames();

  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Appends the words of `text` to `words`, in order; they concatenate back to `text`.
  void Split(std::string_view text, std::vector<std::string_view>* words) const;

 private:
  struct Pattern;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Pattern>> patterns_;
};

}  // namespace cairn::infer
