#include "cairn/infer/vocab.h"

#include "fmt/format.h"

namespace cairn::infer {

std::string_view TokenizerModelName(TokenizerModel model) {
  switch (model) {
    case TokenizerModel::kSentencePiece: return "llama";
    case TokenizerModel::kBytePair: return "gpt2";
    case TokenizerModel::kWordPiece: return "bert";
  }
  return "unknown";
}

absl::StatusOr<TokenizerModel> ParseTokenizerModel(std::string_view name) {
  if (name == "llama") return TokenizerModel::kSentencePiece;
  if (name == "gpt2") return TokenizerModel::kBytePair;
  if (name == "bert") return TokenizerModel::kWordPiece;
  return absl::InvalidArgumentError(fmt::format(
      "tokenizer: unsupported tokenizer model '{}' (tokenizer.ggml.model); supported: llama, gpt2, bert", name));
}

}  // namespace cairn::infer
