#include "cairn/infer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "fmt/format.h"

namespace cairn::infer {
namespace {

// The patterns below are the ones the models ship in tokenizer.json (via llama.cpp's table
// of `tokenizer.ggml.pre` names), in PCRE2 syntax. PCRE2 supports the (?i:...) groups and
// possessive quantifiers that llama.cpp had to rewrite for std::regex.
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|)"
    R"(\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kSeedCoder =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBailingMoe =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr const char* kBloom = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
// CJK ideographs U+4E00..U+9FA5, U+0800..U+4E00 and Hangul U+AC00..U+D7FF, as DeepSeek writes them.
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
constexpr const char* kDeepseekV3Words =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|)"
    R"( ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Spec {
  std::vector<std::string_view> names;
  std::vector<const char*> patterns;
  PreTokenizerTraits traits;
};

const std::vector<Spec>& Specs() {
  static const std::vector<Spec> specs = {
      // llama.cpp's choice when a file names none: punctuation runs, GPT-2 words, digits in threes.
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"}, {}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "modern-bert", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"},
       {kGpt2},
       {}},
      {{"trillion", "granite-docling"}, {kGpt2}, {.clean_spaces = false}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
       {kLlama3},
       {.ignore_merges = true, .add_bos = true}},
      {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {kLlama3}, {}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "grok-2", "hunyuan", "solar-open"},
       {kQwen2},
       {.clean_spaces = false}},
      {{"stablelm2", "megrez"}, {kQwen2}, {}},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"}, {R"(\p{N})", kGpt2}, {}},
      {{"smollm", "command-r"}, {R"(\p{N})", kGpt2}, {.clean_spaces = false}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"}, {}},
      {{"deepseek-coder"},
       {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"},
       {.clean_spaces = false}},
      {{"deepseek-v3"},
       {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)", kDeepseekV3Words},
       {.clean_spaces = false}},
      {{"bloom", "gpt3-finnish"}, {kBloom}, {}},
      {{"poro-chat"}, {kBloom}, {.clean_spaces = false}},
      {{"viking"}, {kBloom, R"(\p{N})"}, {.clean_spaces = false}},
      {{"tekken"}, {kTekken}, {.ignore_merges = true, .add_bos = true, .clean_spaces = false}},
      {{"gpt-4o", "llama4"}, {kGpt4o}, {.clean_spaces = false}},
      {{"seed-coder"}, {kSeedCoder}, {.clean_spaces = false}},
      {{"bailingmoe", "bailingmoe2", "llada-moe"}, {kBailingMoe}, {.clean_spaces = false}},
  };
  return specs;
}

const Spec* FindSpec(std::string_view name) {
  if (name.empty()) name = "default";
  for (const Spec& spec : Specs()) {
    if (std::find(spec.names.begin(), spec.names.end(), name) != spec.names.end()) return &spec;
  }
  return nullptr;
}

absl::Status UnknownName(std::string_view name) {
  std::string known;
  for (const std::string& n : PreTokenizer::KnownNames()) known += (known.empty() ? "" : ", ") + n;
  return absl::InvalidArgumentError(
      fmt::format("tokenizer: unknown pre-tokenizer '{}' (tokenizer.ggml.pre); known: {}", name, known));
}

// Rust's regex (Hugging Face) and llama.cpp take \s as the White_Space property, which has
// NEL (U+0085); PCRE2's \s in UCP mode does not. Adds it to every \s and \S.
std::string WithNelAsSpace(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? R"(\s\x{85})" : R"([\s\x{85}])";
      } else if (e == 'S' && !in_class) {
        out += R"([^\s\x{85}])";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

struct PreTokenizer::Pattern {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  ~Pattern() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::KnownNames() {
  std::vector<std::string> names;
  for (const Spec& spec : Specs()) names.insert(names.end(), spec.names.begin(), spec.names.end());
  return names;
}

absl::StatusOr<PreTokenizerTraits> PreTokenizer::Traits(std::string_view name) {
  const Spec* spec = FindSpec(name);
  if (spec == nullptr) return UnknownName(name);
  return spec->traits;
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(std::string_view name) {
  const Spec* spec = FindSpec(name);
  if (spec == nullptr) return UnknownName(name);
  std::unique_ptr<PreTokenizer> result(new PreTokenizer());
  for (const char* source : spec->patterns) {
    const std::string pattern = WithNelAsSpace(source);
    auto p = std::make_unique<Pattern>();
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    p->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &error,
                            &error_offset, nullptr);
    if (p->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return absl::InternalError(fmt::format("tokenizer: pre-tokenizer '{}' pattern does not compile at {}: {}",
                                             name, error_offset, reinterpret_cast<const char*>(message)));
    }
    // JIT is an optimization: where it is unavailable the interpreter runs the same pattern.
    (void)pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE);
    // Bounds the work on adversarial input; a piece that hits it stays unsplit.
    p->context = pcre2_match_context_create(nullptr);
    if (p->context == nullptr) return absl::ResourceExhaustedError("tokenizer: out of memory");
    pcre2_set_match_limit(p->context, 10'000'000);
    result->patterns_.push_back(std::move(p));
  }
  return result;
}

namespace {

// Splits `piece` at the matches of `pattern`, appending matches and the text between them.
void SplitPiece(pcre2_code* code, pcre2_match_context* context, pcre2_match_data* match, std::string_view piece,
                std::vector<std::string_view>* out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t search_from = 0;
  size_t emitted_to = 0;
  uint32_t options = 0;
  while (search_from <= piece.size()) {
    int rc = pcre2_match(code, subject, piece.size(), search_from, options, match, context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code, subject, piece.size(), search_from, options | PCRE2_NO_JIT, match, context);
    }
    if (rc < 0) break;  // no (further) match, or a limit hit: the rest stays one piece
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const size_t start = ovector[0];
    const size_t end = ovector[1];
    if (start < emitted_to || end < start || end > piece.size()) break;  // \K tricks; none of ours
    if (start > emitted_to) out->push_back(piece.substr(emitted_to, start - emitted_to));
    if (end > start) out->push_back(piece.substr(start, end - start));
    emitted_to = end;
    if (end == start) {
      // An empty match is a split point; look for a non-empty match from here on.
      if (start >= piece.size()) break;
      search_from = start;
      options = PCRE2_NOTEMPTY_ATSTART;
    } else {
      search_from = end;
      options = 0;
    }
  }
  if (emitted_to < piece.size()) out->push_back(piece.substr(emitted_to));
}

}  // namespace

void PreTokenizer::Split(std::string_view text, std::vector<std::string_view>* words) const {
  if (text.empty()) return;
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (const auto& pattern : patterns_) {
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(pattern->code, nullptr);
    if (match == nullptr) break;  // out of memory: keep the pieces so far
    next.clear();
    for (std::string_view piece : pieces) SplitPiece(pattern->code, pattern->context, match, piece, &next);
    pcre2_match_data_free(match);
    pieces.swap(next);
  }
  words->insert(words->end(), pieces.begin(), pieces.end());
}

}  // namespace cairn::infer
