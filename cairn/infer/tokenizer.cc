#include "cairn/infer/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "cairn/infer/tokenizer_impl.h"
#include "cairn/infer/unicode.h"
#include "fmt/format.h"

namespace cairn::infer {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581

bool IsSpecialType(TokenType type) { return type != TokenType::kNormal && type != TokenType::kByte; }
// Types whose text is shown only when asked (user-defined tokens are ordinary text).
bool IsHiddenType(TokenType type) { return IsSpecialType(type) && type != TokenType::kUserDefined; }

std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(text.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(text.substr(pos));
  return out;
}

// "<0x0A>" -> 0x0A; -1 if `text` is not of that form.
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value |= c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return value;
}

std::string MakePiece(TokenizerModel model, TokenType type, const std::string& text) {
  if (IsSpecialType(type)) return text;
  if (type == TokenType::kByte) {
    const int byte = ParseByteToken(text);
    return byte < 0 ? text : std::string(1, static_cast<char>(byte));
  }
  if (model == TokenizerModel::kBytePair) {
    // GPT-2 characters back to the bytes they stand for; any other character stays.
    std::string out;
    for (size_t pos = 0; pos < text.size();) {
      const size_t start = pos;
      const int byte = unicode::UnicodeToByte(unicode::DecodeUtf8(text, &pos));
      if (byte >= 0) {
        out.push_back(static_cast<char>(byte));
      } else {
        out.append(text, start, pos - start);
      }
    }
    return out;
  }
  return ReplaceAll(text, kSpaceMark, " ");
}

absl::Status CheckId(const char* name, int32_t id, size_t n) {
  if (id == kNoToken || (id >= 0 && static_cast<size_t>(id) < n)) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format("tokenizer: {} {} is outside the vocabulary (size {})", name, id, n));
}

absl::Status CheckVocab(const Vocab& v) {
  const size_t n = v.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer: the vocabulary has no tokens");
  if (n >= static_cast<size_t>(INT32_MAX)) return absl::InvalidArgumentError("tokenizer: too many tokens");
  if (!v.scores.empty() && v.scores.size() != n) {
    return absl::InvalidArgumentError(fmt::format("tokenizer: {} scores for {} tokens", v.scores.size(), n));
  }
  if (!v.types.empty() && v.types.size() != n) {
    return absl::InvalidArgumentError(fmt::format("tokenizer: {} token types for {} tokens", v.types.size(), n));
  }
  for (size_t i = 0; i < v.types.size(); ++i) {
    const auto t = static_cast<int32_t>(v.types[i]);
    if (t < 0 || t > static_cast<int32_t>(TokenType::kByte)) {
      return absl::InvalidArgumentError(fmt::format("tokenizer: token {} has unknown type {}", i, t));
    }
  }
  const std::pair<const char*, int32_t> specials[] = {
      {"bos_id", v.bos_id}, {"eos_id", v.eos_id},   {"unk_id", v.unk_id},   {"sep_id", v.sep_id}, {"pad_id", v.pad_id},
      {"cls_id", v.cls_id}, {"mask_id", v.mask_id}, {"eot_id", v.eot_id}, {"eom_id", v.eom_id}};
  for (const auto& [name, id] : specials) {
    if (absl::Status s = CheckId(name, id, n); !s.ok()) return s;
  }
  if (v.add_bos && v.bos_id == kNoToken) return absl::InvalidArgumentError("tokenizer: add_bos without a bos_id");
  if (v.add_eos && v.eos_id == kNoToken) return absl::InvalidArgumentError("tokenizer: add_eos without an eos_id");
  if (v.add_sep && v.sep_id == kNoToken) return absl::InvalidArgumentError("tokenizer: add_sep without a sep_id");
  return absl::OkStatus();
}

absl::Status BuildMerges(Tokenizer::Impl* impl) {
  const std::vector<std::string>& merges = impl->vocab.merges;
  impl->merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    // The separator is the first space after the first character: a left part can itself
    // be a space in vocabularies without byte mapping.
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(fmt::format("tokenizer: merge {} '{}' is not 'left right'", rank, merge));
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right = std::string_view(merge).substr(space + 1);
    const int32_t left_id = impl->Find(left);
    const int32_t right_id = impl->Find(right);
    const int32_t result = impl->Find(std::string(left) + std::string(right));
    if (left_id == kNoToken || right_id == kNoToken || result == kNoToken) {
      std::string missing = std::string(left) + std::string(right);
      if (left_id == kNoToken) missing = std::string(left);
      if (left_id != kNoToken && right_id == kNoToken) missing = std::string(right);
      return absl::InvalidArgumentError(
          fmt::format("tokenizer: merge {} '{}' refers to a string that is not a token ('{}')", rank, merge, missing));
    }
    const uint64_t key = (static_cast<uint64_t>(left_id) << 32) | static_cast<uint32_t>(right_id);
    // A repeated pair keeps its first (highest-priority) rank.
    impl->merges.try_emplace(key, Tokenizer::Impl::Merge{static_cast<int32_t>(rank), result});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tokenizer> Tokenizer::Create(Vocab vocab) {
  if (absl::Status s = CheckVocab(vocab); !s.ok()) return s;
  auto impl = std::make_shared<Impl>();
  impl->vocab = std::move(vocab);
  const Vocab& v = impl->vocab;
  const size_t n = v.tokens.size();

  impl->types = v.types.empty() ? std::vector<TokenType>(n, TokenType::kNormal) : v.types;
  impl->ids.reserve(n);
  impl->pieces.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = v.tokens[i];
    impl->pieces.push_back(MakePiece(v.model, impl->types[i], text));
    impl->max_token_bytes = std::max(impl->max_token_bytes, text.size());
    if (text.empty()) continue;  // never matches anything
    auto [it, inserted] = impl->ids.try_emplace(text, static_cast<int32_t>(i));
    if (!inserted) {
      return absl::InvalidArgumentError(
          fmt::format("tokenizer: tokens {} and {} are both '{}'", it->second, i, text));
    }
    if (impl->types[i] == TokenType::kControl || impl->types[i] == TokenType::kUnknown ||
        impl->types[i] == TokenType::kUserDefined) {
      impl->special_tokens.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(impl->special_tokens.begin(), impl->special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[a].size() > v.tokens[b].size();
  });

  impl->byte_tokens.fill(kNoToken);
  switch (v.model) {
    case TokenizerModel::kSentencePiece:
      impl->spm_word_chunks = true;
      for (const std::string& token : v.tokens) {
        // A U+2581 (E2 96 81) at byte i > 0 whose preceding byte does not end another U+2581.
        for (size_t i = token.find(kSpaceMark, 1); i != std::string::npos; i = token.find(kSpaceMark, i + 1)) {
          if (i < kSpaceMark.size() || token.compare(i - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) != 0) {
            impl->spm_word_chunks = false;
          }
        }
      }
      for (int b = 0; b < 256; ++b) {
        int32_t id = impl->Find(fmt::format("<0x{:02X}>", b));
        if (id == kNoToken) id = impl->Find(std::string(1, static_cast<char>(b)));
        impl->byte_tokens[b] = id;
      }
      break;
    case TokenizerModel::kBytePair: {
      for (int b = 0; b < 256; ++b) impl->byte_tokens[b] = impl->Find(unicode::ByteToUnicode(static_cast<uint8_t>(b)));
      auto pre = PreTokenizer::Create(v.pre);
      if (!pre.ok()) return pre.status();
      impl->pre_tokenizer = *std::move(pre);
      if (absl::Status s = BuildMerges(impl.get()); !s.ok()) return s;
      break;
    }
    case TokenizerModel::kWordPiece:
      break;
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& impl = *impl_;
  const Vocab& v = impl.vocab;

  // Cut the text at special tokens' strings, longest token first.
  struct Fragment {
    int32_t token;  // kNoToken: the text [offset, offset + length)
    size_t offset;
    size_t length;
  };
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : impl.special_tokens) {
    if (!parse_special && impl.types[id] != TokenType::kUserDefined) continue;
    const std::string& special = v.tokens[id];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      const std::string_view part = text.substr(f.offset, f.length);
      size_t pos = 0;
      for (size_t hit; (hit = part.find(special, pos)) != std::string_view::npos; pos = hit + special.size()) {
        if (hit > pos) next.push_back({kNoToken, f.offset + pos, hit - pos});
        next.push_back({id, 0, 0});
      }
      if (pos < part.size()) next.push_back({kNoToken, f.offset + pos, part.size() - pos});
    }
    fragments.swap(next);
  }

  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && v.add_bos) out.push_back(v.bos_id);
  bool after_special = true;
  for (const Fragment& f : fragments) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    const std::string_view part = text.substr(f.offset, f.length);
    switch (v.model) {
      case TokenizerModel::kSentencePiece:
        impl.EncodeSentencePiece(part, v.add_space_prefix && after_special, &out);
        break;
      case TokenizerModel::kBytePair:
        impl.EncodeBytePair(part, &out);
        break;
      case TokenizerModel::kWordPiece:
        impl.EncodeWordPiece(part, &out);
        break;
    }
    after_special = false;
  }
  if (add_special && v.add_eos) out.push_back(v.eos_id);
  if (add_special && v.add_sep) out.push_back(v.sep_id);
  return out;
}

namespace {
// Whether Decode drops the space the encoder put in front of a text (SentencePiece's
// prefix, WordPiece's word marker on the first word).
bool StripsPrefixSpace(const Vocab& v, const DecodeOptions& options) {
  if (!options.strip_prefix_space) return false;
  return (v.model == TokenizerModel::kSentencePiece && v.add_space_prefix) || v.model == TokenizerModel::kWordPiece;
}

std::string CleanSpaces(std::string text) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},    {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) text = ReplaceAll(text, from, to);
  return text;
}
}  // namespace

std::string Tokenizer::Decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  const Impl& impl = *impl_;
  const bool strips = StripsPrefixSpace(impl.vocab, options);
  bool strip_next = strips;
  std::string out;
  for (int32_t id : ids) {
    if (!IsValidId(id)) continue;
    const TokenType type = impl.types[id];
    std::string_view piece = impl.pieces[id];
    if (IsSpecialType(type)) {
      if (!IsHiddenType(type) || options.render_special) out.append(piece);
      strip_next = strips;
      continue;
    }
    if (strip_next && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    strip_next = false;
    out.append(piece);
  }
  return options.clean_spaces ? CleanSpaces(std::move(out)) : out;
}

std::string_view Tokenizer::TokenToPiece(int32_t id, bool render_special) const {
  if (!IsValidId(id)) return {};
  if (IsHiddenType(impl_->types[id]) && !render_special) return {};
  return impl_->pieces[id];
}

std::string_view Tokenizer::TokenText(int32_t id) const {
  return IsValidId(id) ? std::string_view(impl_->vocab.tokens[id]) : std::string_view();
}

TokenType Tokenizer::GetTokenType(int32_t id) const {
  return IsValidId(id) ? impl_->types[id] : TokenType::kUndefined;
}

int32_t Tokenizer::TokenId(std::string_view text) const { return impl_->Find(text); }

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  const Vocab& v = impl_->vocab;
  return id != kNoToken && (id == v.eos_id || id == v.eot_id || id == v.eom_id);
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->vocab.tokens.size()); }

const Vocab& Tokenizer::vocab() const { return impl_->vocab; }

StreamDecoder::StreamDecoder(Tokenizer tokenizer, DecodeOptions options)
    : tokenizer_(std::move(tokenizer)), options_(options) {}

std::string StreamDecoder::Push(int32_t id) {
  if (!tokenizer_.IsValidId(id)) return {};
  std::string_view piece = tokenizer_.TokenToPiece(id, options_.render_special);
  if (IsSpecialType(tokenizer_.GetTokenType(id))) {
    at_text_start_ = true;
  } else {
    if (at_text_start_ && StripsPrefixSpace(tokenizer_.vocab(), options_) && !piece.empty() && piece.front() == ' ') {
      piece.remove_prefix(1);
    }
    at_text_start_ = false;
  }
  pending_.append(piece);
  const size_t ready = unicode::Utf8CompletePrefixLength(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace cairn::infer
