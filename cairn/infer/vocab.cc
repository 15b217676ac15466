#include "cairn/infer/vocab.h"

#include <initializer_list>
#include <utility>

#include "cairn/base/status.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/pretokenizer.h"
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

namespace {

constexpr std::string_view kPrefix = "tokenizer.ggml.";

// Adds the file to a reader error, keeping its code.
absl::Status InFile(const GgufFile& file, const absl::Status& status) {
  return absl::Status(status.code(), fmt::format("vocabulary of {}: {}", file.path(), std::string(status.message())));
}

absl::Status Invalid(const GgufFile& file, std::string message) {
  return absl::InvalidArgumentError(fmt::format("vocabulary of {}: {}", file.path(), message));
}

std::string Key(std::string_view name) { return fmt::format("{}{}", kPrefix, name); }

// Sets `*id` from `name` when the file has it; it must name a token.
absl::Status ReadId(const GgufFile& file, std::string_view name, size_t n_tokens, int32_t* id) {
  const std::string key = Key(name);
  if (!file.Has(key)) return absl::OkStatus();
  absl::StatusOr<uint32_t> value = file.GetU32(key);
  if (!value.ok()) return InFile(file, value.status());
  if (*value >= n_tokens) {
    return Invalid(file, fmt::format("{} is {}, outside the vocabulary ({} tokens)", key, *value, n_tokens));
  }
  *id = static_cast<int32_t>(*value);
  return absl::OkStatus();
}

absl::Status ReadFlag(const GgufFile& file, std::string_view name, bool* flag) {
  const std::string key = Key(name);
  if (!file.Has(key)) return absl::OkStatus();
  absl::StatusOr<bool> value = file.GetBool(key);
  if (!value.ok()) return InFile(file, value.status());
  *flag = *value;
  return absl::OkStatus();
}

// Model-specific defaults for what a file leaves out (llama.cpp's, so that the same file
// tokenizes the same way in both).
absl::Status ApplyDefaults(const GgufFile& file, Vocab* v) {
  switch (v->model) {
    case TokenizerModel::kSentencePiece:
      v->unk_id = 0;
      v->bos_id = 1;
      v->eos_id = 2;
      v->add_bos = true;
      v->add_space_prefix = true;
      break;
    case TokenizerModel::kWordPiece:
      v->pad_id = 0;
      v->unk_id = 100;
      v->cls_id = 101;
      v->sep_id = 102;
      v->mask_id = 103;
      v->add_bos = true;  // [CLS] text [SEP]
      v->add_sep = true;
      v->clean_spaces = true;
      break;
    case TokenizerModel::kBytePair: {
      absl::StatusOr<PreTokenizerTraits> traits = PreTokenizer::Traits(v->pre);
      if (!traits.ok()) return InFile(file, traits.status());
      v->ignore_merges = traits->ignore_merges;
      v->add_bos = traits->add_bos;
      v->clean_spaces = traits->clean_spaces;
      break;
    }
  }
  // A default id the vocabulary does not reach means the vocabulary has no such token.
  const int32_t n = static_cast<int32_t>(v->tokens.size());
  for (int32_t* id : {&v->unk_id, &v->bos_id, &v->eos_id, &v->pad_id, &v->cls_id, &v->sep_id, &v->mask_id}) {
    if (*id >= n) *id = kNoToken;
  }
  return absl::OkStatus();
}

// The first of these strings the vocabulary has, as end-of-turn when the file names none.
int32_t FindEndOfTurn(const Vocab& v) {
  static constexpr std::string_view kNames[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                                "<|end_of_text|>", "<|endoftext|>", "<EOT>",
                                                "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};
  for (std::string_view name : kNames) {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == name) return static_cast<int32_t>(i);
    }
  }
  return kNoToken;
}

}  // namespace

absl::StatusOr<Vocab> LoadVocab(const GgufFile& file) {
  Vocab v;
  const std::string model_key = Key("model");
  if (!file.Has(model_key)) return Invalid(file, "no tokenizer.ggml.model: the file has no tokenizer");
  absl::StatusOr<std::string_view> model = file.GetString(model_key);
  if (!model.ok()) return InFile(file, model.status());
  if (*model == "none" || *model == "no_vocab") {
    return Invalid(file, "the model has no vocabulary (tokenizer.ggml.model is 'none')");
  }
  absl::StatusOr<TokenizerModel> parsed = ParseTokenizerModel(*model);
  if (!parsed.ok()) return InFile(file, parsed.status());
  v.model = *parsed;

  if (file.Has(Key("pre"))) {
    absl::StatusOr<std::string_view> pre = file.GetString(Key("pre"));
    if (!pre.ok()) return InFile(file, pre.status());
    v.pre = std::string(*pre);
    if (v.pre == "default") v.pre.clear();
  }

  absl::StatusOr<std::vector<std::string_view>> tokens = file.GetStringArray(Key("tokens"));
  if (!tokens.ok()) return InFile(file, tokens.status());
  if (tokens->empty()) return Invalid(file, "tokenizer.ggml.tokens is empty");
  const size_t n = tokens->size();
  v.tokens.assign(tokens->begin(), tokens->end());

  if (file.Has(Key("scores"))) {
    absl::StatusOr<std::vector<float>> scores = file.GetF32Array(Key("scores"));
    if (!scores.ok()) {
      // Some converters wrote integer scores.
      absl::StatusOr<std::vector<int32_t>> integers = file.GetI32Array(Key("scores"));
      if (!integers.ok()) return InFile(file, scores.status());
      scores = std::vector<float>(integers->begin(), integers->end());
    }
    if (scores->size() != n) {
      return Invalid(file, fmt::format("tokenizer.ggml.scores has {} entries, expected {} (one per token)",
                                       scores->size(), n));
    }
    v.scores = *std::move(scores);
  }

  if (file.Has(Key("token_type"))) {
    absl::StatusOr<std::vector<int32_t>> types = file.GetI32Array(Key("token_type"));
    if (!types.ok()) return InFile(file, types.status());
    if (types->size() != n) {
      return Invalid(file, fmt::format("tokenizer.ggml.token_type has {} entries, expected {} (one per token)",
                                       types->size(), n));
    }
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int32_t t = (*types)[i];
      if (t < 0 || t > static_cast<int32_t>(TokenType::kByte)) {
        return Invalid(file, fmt::format("tokenizer.ggml.token_type[{}] is {}, not a token type (0..6)", i, t));
      }
      v.types.push_back(static_cast<TokenType>(t));
    }
  }

  if (v.model == TokenizerModel::kBytePair) {
    if (!file.Has(Key("merges"))) return Invalid(file, "a gpt2 (BPE) vocabulary needs tokenizer.ggml.merges");
    absl::StatusOr<std::vector<std::string_view>> merges = file.GetStringArray(Key("merges"));
    if (!merges.ok()) return InFile(file, merges.status());
    v.merges.assign(merges->begin(), merges->end());
  }

  CAIRN_RETURN_IF_ERROR(ApplyDefaults(file, &v));
  const std::pair<std::string_view, int32_t*> ids[] = {
      {"bos_token_id", &v.bos_id},     {"eos_token_id", &v.eos_id},         {"unknown_token_id", &v.unk_id},
      {"seperator_token_id", &v.sep_id}, {"padding_token_id", &v.pad_id},   {"cls_token_id", &v.cls_id},
      {"mask_token_id", &v.mask_id},   {"eot_token_id", &v.eot_id},         {"eom_token_id", &v.eom_id}};
  for (const auto& [name, id] : ids) CAIRN_RETURN_IF_ERROR(ReadId(file, name, n, id));
  // BERT's "BOS" is [CLS].
  if (v.model == TokenizerModel::kWordPiece && !file.Has(Key("bos_token_id"))) v.bos_id = v.cls_id;
  if (!file.Has(Key("eot_token_id"))) v.eot_id = FindEndOfTurn(v);
  if (!file.Has(Key("eom_token_id"))) {
    for (size_t i = 0; i < n && v.eom_id == kNoToken; ++i) {
      if (v.tokens[i] == "<|eom_id|>") v.eom_id = static_cast<int32_t>(i);
    }
  }

  const std::pair<std::string_view, bool*> flags[] = {
      {"add_bos_token", &v.add_bos},           {"add_eos_token", &v.add_eos},
      {"add_sep_token", &v.add_sep},           {"add_space_prefix", &v.add_space_prefix},
      {"normalizer.lowercase", &v.lowercase},  {"normalizer.strip_accents", &v.strip_accents}};
  const bool has_strip_accents = file.Has(Key("normalizer.strip_accents"));
  for (const auto& [name, flag] : flags) CAIRN_RETURN_IF_ERROR(ReadFlag(file, name, flag));
  // BertNormalizer strips accents exactly when it lowercases unless told otherwise.
  if (!has_strip_accents) v.strip_accents = v.lowercase;

  const std::pair<const char*, std::pair<bool, int32_t>> needed[] = {
      {"add_bos_token", {v.add_bos, v.bos_id}}, {"add_eos_token", {v.add_eos, v.eos_id}},
      {"add_sep_token", {v.add_sep, v.sep_id}}};
  for (const auto& [name, need] : needed) {
    if (need.first && need.second == kNoToken) {
      return Invalid(file, fmt::format("tokenizer.ggml.{} is true but the vocabulary has no such token", name));
    }
  }
  return v;
}

}  // namespace cairn::infer
