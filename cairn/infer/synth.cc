#include "cairn/infer/synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "cairn/base/hash.h"
#include "cairn/base/random.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/gguf_writer.h"

namespace cairn::infer {
namespace {

struct Preset {
  const char* name;
  SynthShape shape;
};

// Shapes of the public models (their config.json), and a tiny one for tests whose
// matrices still have rows of 256 so that the k-quants apply.
const Preset kPresets[] = {
    {"tiny", {Arch::kLlama, 512, 256, 256, 512, 2, 4, 2, 10000.0f, 1e-5f, false, Pooling::kNone}},
    {"smollm2-135m", {Arch::kLlama, 49152, 8192, 576, 1536, 30, 9, 3, 100000.0f, 1e-5f, true, Pooling::kNone}},
    {"qwen2.5-0.5b", {Arch::kQwen2, 151936, 32768, 896, 4864, 24, 14, 2, 1000000.0f, 1e-6f, true, Pooling::kNone}},
    {"tinyllama-1.1b", {Arch::kLlama, 32000, 2048, 2048, 5632, 22, 32, 4, 10000.0f, 1e-5f, false, Pooling::kNone}},
    {"bge-small", {Arch::kBert, 30522, 512, 384, 1536, 12, 12, 12, 10000.0f, 1e-12f, false, Pooling::kCls}},
};

constexpr uint32_t kBertTokenTypes = 2;

struct WeightType {
  std::string name;
  std::optional<TensorType> pure;  // every matrix in this type; nullopt for q4_k_m
  uint32_t file_type;              // llama.cpp's llama_ftype
};

absl::StatusOr<WeightType> ParseWeightType(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "f32") return WeightType{lower, TensorType::kF32, 0};
  if (lower == "f16") return WeightType{lower, TensorType::kF16, 1};
  if (lower == "q4_0") return WeightType{lower, TensorType::kQ4_0, 2};
  if (lower == "q8_0") return WeightType{lower, TensorType::kQ8_0, 7};
  if (lower == "q4_k") return WeightType{lower, TensorType::kQ4_K, 14};  // closest ftype: Q4_K_S
  if (lower == "q4_k_m") return WeightType{lower, std::nullopt, 15};
  if (lower == "bf16") return WeightType{lower, TensorType::kBF16, 32};
  return absl::InvalidArgumentError(
      fmt::format("unknown weight type '{}' (one of f32, f16, bf16, q8_0, q4_0, q4_k, q4_k_m)", name));
}

bool IsQuantized(TensorType t) { return BlockSize(t) > 1; }

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third
// layer in between.
bool UseMoreBits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// A row length the type cannot hold falls back to a type that can (see synth.h).
TensorType Fallback(TensorType t, int64_t ncols) {
  if (ncols % BlockSize(t) == 0) return t;
  TensorType f = t == TensorType::kQ4_K ? TensorType::kQ4_0 : t == TensorType::kQ6_K ? TensorType::kQ8_0 : t;
  if (ncols % BlockSize(f) != 0) f = TensorType::kF16;
  return f;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

int LayerOf(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int layer = 0;
  for (size_t i = 4; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    layer = layer * 10 + (name[i] - '0');
  }
  return layer;
}

// An approximately standard normal value from one 64-bit draw: the sum of four 16-bit
// uniforms (Irwin-Hall), rescaled. Cheap enough for a billion weights.
//
// SplitMix64 advances its state by a fixed constant per draw, so the stream of a
// tensor can be entered at any element: the values do not depend on how the tensor is
// cut into chunks or threads.
constexpr uint64_t kSplitMixGamma = 0x9e3779b97f4a7c15ULL;

void FillWeights(uint64_t tensor_seed, uint64_t first_element, float mean, float sigma, float* out, size_t n) {
  SplitMix64 rng(tensor_seed + first_element * kSplitMixGamma);
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(3) / 2^16
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = rng.Next();
    const int64_t v = static_cast<int64_t>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48));
    out[i] = mean + sigma * (static_cast<float>(v - 131070) * kScale);
  }
}

// ---- generated vocabularies ----

enum TokenKind : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  void Add(std::string t, float score, TokenKind kind) {
    tokens.push_back(std::move(t));
    scores.push_back(score);
    types.push_back(kind);
  }
};

// Filler words over a frequency-ordered alphabet, shortest first: "e", "t", ..., "ee", "et", ...
std::string Word(uint64_t i) {
  static constexpr char kAlphabet[] = "etaoinshrdlcumwfgypbvkjxqz";
  constexpr uint64_t k = 26;
  uint64_t len = 1, span = k;
  while (i >= span) {
    i -= span;
    ++len;
    span *= k;
  }
  std::string w(len, 'a');
  for (uint64_t p = len; p-- > 0;) {
    w[p] = kAlphabet[i % k];
    i /= k;
  }
  return w;
}

const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's word-start mark

absl::StatusOr<Vocab> SpmVocab(uint32_t n) {
  Vocab v;
  v.Add("<unk>", 0, kUnknown);
  v.Add("<s>", 0, kControl);
  v.Add("</s>", 0, kControl);
  for (int b = 0; b < 256; ++b) v.Add(fmt::format("<0x{:02X}>", b), 0, kByte);
  // Single characters first, then filler words with and without the word-start mark;
  // scores fall with the index so shorter pieces merge first.
  std::vector<std::string> pieces = {kSpace};
  for (char c = '!'; c <= '~'; ++c) pieces.emplace_back(1, c);
  for (uint64_t i = 0; v.tokens.size() + pieces.size() < n; ++i) {
    pieces.push_back(kSpace + Word(i));
    if (Word(i).size() > 1) pieces.push_back(Word(i));
  }
  const size_t min_size = v.tokens.size() + 1 + 94;
  if (n < min_size) {
    return absl::InvalidArgumentError(fmt::format(
        "a vocabulary of {} tokens is too small for the generated tokenizer (at least {}); use --vocab-from", n,
        min_size));
  }
  for (size_t i = 0; v.tokens.size() < n; ++i) v.Add(pieces[i], -static_cast<float>(i), kNormal);
  return v;
}

absl::StatusOr<Vocab> WordPieceVocab(uint32_t n) {
  Vocab v;
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v.Add(special, 0, kControl);
  // Word-initial pieces carry the word-start mark, continuations do not (llama.cpp's
  // rendering of WordPiece's "##" convention).
  std::vector<std::string> pieces;
  for (char c = '!'; c <= '~'; ++c) {
    pieces.push_back(kSpace + std::string(1, c));
    if (std::isalnum(static_cast<unsigned char>(c))) pieces.emplace_back(1, c);
  }
  for (uint64_t i = 26; v.tokens.size() + pieces.size() < n; ++i) {
    pieces.push_back(kSpace + Word(i));
    pieces.push_back(Word(i));
  }
  const size_t min_size = v.tokens.size() + 94 + 62;
  if (n < min_size) {
    return absl::InvalidArgumentError(fmt::format(
        "a vocabulary of {} tokens is too small for the generated tokenizer (at least {}); use --vocab-from", n,
        min_size));
  }
  for (size_t i = 0; v.tokens.size() < n; ++i) v.Add(pieces[i], 0, kNormal);
  return v;
}

// Writes the tokenizer metadata, returning the vocabulary size and bert's token type count.
absl::Status WriteVocab(const SynthOptions& o, GgufWriter& w, uint32_t* n_vocab, uint32_t* n_token_types) {
  *n_token_types = kBertTokenTypes;
  if (!o.vocab_from.empty()) {
    absl::StatusOr<std::unique_ptr<GgufFile>> src = GgufFile::Open(o.vocab_from);
    if (!src.ok()) return src.status();
    absl::StatusOr<uint64_t> n = (*src)->GetArraySize("tokenizer.ggml.tokens");
    if (!n.ok()) {
      return absl::InvalidArgumentError(fmt::format("--vocab-from {}: no vocabulary: {}", o.vocab_from,
                                                    std::string(n.status().message())));
    }
    if (*n == 0 || *n > (1u << 24)) {
      return absl::InvalidArgumentError(fmt::format("--vocab-from {}: {} tokens", o.vocab_from, *n));
    }
    *n_vocab = static_cast<uint32_t>(*n);
    bool has_type_count = false;
    for (const GgufKeyValue& kv : (*src)->metadata()) {
      if (kv.key.rfind("tokenizer.", 0) != 0) continue;
      w.SetValue(kv.key, kv.value);
      has_type_count |= kv.key == "tokenizer.ggml.token_type_count";
    }
    if (has_type_count) {
      absl::StatusOr<uint32_t> c = (*src)->GetU32("tokenizer.ggml.token_type_count");
      if (!c.ok()) return c.status();
      if (*c > 0) *n_token_types = *c;
    } else if (o.arch == Arch::kBert) {
      w.SetU32("tokenizer.ggml.token_type_count", kBertTokenTypes);
    }
    return absl::OkStatus();
  }
  *n_vocab = o.shape.n_vocab;
  if (o.arch == Arch::kBert) {
    absl::StatusOr<Vocab> v = WordPieceVocab(o.shape.n_vocab);
    if (!v.ok()) return v.status();
    w.SetString("tokenizer.ggml.model", "bert");
    w.SetString("tokenizer.ggml.pre", "default");
    w.SetStringArray("tokenizer.ggml.tokens", v->tokens);
    w.SetI32Array("tokenizer.ggml.token_type", v->types);
    w.SetU32("tokenizer.ggml.token_type_count", kBertTokenTypes);
    w.SetU32("tokenizer.ggml.padding_token_id", 0);
    w.SetU32("tokenizer.ggml.unknown_token_id", 1);
    w.SetU32("tokenizer.ggml.cls_token_id", 2);
    w.SetU32("tokenizer.ggml.bos_token_id", 2);
    w.SetU32("tokenizer.ggml.seperator_token_id", 3);  // sic: llama.cpp's key
    w.SetU32("tokenizer.ggml.mask_token_id", 4);
    return absl::OkStatus();
  }
  absl::StatusOr<Vocab> v = SpmVocab(o.shape.n_vocab);
  if (!v.ok()) return v.status();
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetString("tokenizer.ggml.pre", "default");
  w.SetStringArray("tokenizer.ggml.tokens", v->tokens);
  w.SetF32Array("tokenizer.ggml.scores", v->scores);
  w.SetI32Array("tokenizer.ggml.token_type", v->types);
  w.SetU32("tokenizer.ggml.unknown_token_id", 0);
  w.SetU32("tokenizer.ggml.bos_token_id", 1);
  w.SetU32("tokenizer.ggml.eos_token_id", 2);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetBool("tokenizer.ggml.add_eos_token", false);
  return absl::OkStatus();
}

absl::Status CheckShape(const SynthOptions& o) {
  const SynthShape& s = o.shape;
  if (s.n_embd == 0 || s.n_ff == 0 || s.n_layer == 0 || s.n_head == 0 || s.n_ctx == 0 ||
      (s.n_vocab == 0 && o.vocab_from.empty())) {
    return absl::InvalidArgumentError("synth: every dimension must be positive");
  }
  if (s.n_embd % s.n_head != 0) {
    return absl::InvalidArgumentError(
        fmt::format("synth: n_embd {} is not a multiple of n_head {}", s.n_embd, s.n_head));
  }
  if (s.n_head_kv == 0 || s.n_head % s.n_head_kv != 0) {
    return absl::InvalidArgumentError(
        fmt::format("synth: n_head {} is not a multiple of n_head_kv {}", s.n_head, s.n_head_kv));
  }
  if ((s.n_embd / s.n_head) % 2 != 0) {
    return absl::InvalidArgumentError(fmt::format("synth: the head size {} must be even", s.n_embd / s.n_head));
  }
  if (s.n_layer > 1024 || s.n_embd > 65536 || s.n_ff > 262144 || s.n_head > 1024 || s.n_ctx > (1u << 22)) {
    return absl::InvalidArgumentError("synth: a dimension is implausibly large");
  }
  return absl::OkStatus();
}

absl::Status Synthesize(const SynthOptions& o, GgufWriter& w, const std::function<absl::Status(GgufWriter&)>& begin) {
  if (absl::Status s = CheckShape(o); !s.ok()) return s;
  absl::StatusOr<WeightType> wt = ParseWeightType(o.weight_type);
  if (!wt.ok()) return wt.status();
  const char* arch = ArchName(o.arch);
  const SynthShape& s = o.shape;

  ModelConfig c;
  c.arch = o.arch;
  c.n_ctx_train = s.n_ctx;
  c.n_embd = s.n_embd;
  c.n_ff = s.n_ff;
  c.n_layer = s.n_layer;
  c.n_head = s.n_head;
  c.n_head_kv = s.n_head_kv;
  c.head_dim = s.n_embd / s.n_head;
  c.qkv_bias = o.arch != Arch::kLlama;
  c.tied_embeddings = o.arch == Arch::kBert || s.tied_embeddings;

  w.SetString("general.architecture", arch);
  w.SetString("general.name", o.name.empty() ? fmt::format("cairn-synth {} {}", arch, wt->name) : o.name);
  w.SetU32("general.file_type", wt->file_type);
  w.SetU64("cairn.synth.seed", o.seed);
  const std::string a = arch;
  w.SetU32(a + ".context_length", s.n_ctx);
  w.SetU32(a + ".embedding_length", s.n_embd);
  w.SetU32(a + ".block_count", s.n_layer);
  w.SetU32(a + ".feed_forward_length", s.n_ff);
  w.SetU32(a + ".attention.head_count", s.n_head);
  w.SetU32(a + ".attention.head_count_kv", s.n_head_kv);
  if (o.arch == Arch::kBert) {
    w.SetF32(a + ".attention.layer_norm_epsilon", s.norm_eps);
    w.SetBool(a + ".attention.causal", false);
    w.SetU32(a + ".pooling_type", static_cast<uint32_t>(s.pooling));
  } else {
    w.SetF32(a + ".rope.freq_base", s.rope_freq_base);
    w.SetF32(a + ".attention.layer_norm_rms_epsilon", s.norm_eps);
    w.SetU32(a + ".rope.dimension_count", c.head_dim);
  }
  if (absl::Status st = WriteVocab(o, w, &c.n_vocab, &c.n_token_types); !st.ok()) return st;
  w.SetU32(a + ".vocab_size", c.n_vocab);

  struct Planned {
    ExpectedTensor t;
    TensorType type;
  };
  std::vector<Planned> plan;
  bool any_quantized = false;
  const bool has_output = !c.tied_embeddings;
  for (ExpectedTensor& t : ExpectedTensors(c)) {
    if (t.name == "output.weight" && !has_output) continue;
    absl::StatusOr<TensorType> type = SynthTensorType(wt->name, t.name, t.ne, LayerOf(t.name), s.n_layer, has_output);
    if (!type.ok()) return type.status();
    any_quantized |= IsQuantized(*type);
    plan.push_back({std::move(t), *type});
  }
  if (any_quantized) w.SetU32("general.quantization_version", 2);
  for (const Planned& p : plan) w.AddTensor(p.t.name, p.type, p.t.ne);

  if (absl::Status st = begin(w); !st.ok()) return st;
  const uint64_t total = w.total_data_bytes();
  uint64_t done = 0;
  std::vector<float> values;
  std::vector<uint8_t> encoded;
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  for (const Planned& p : plan) {
    const int64_t cols = p.t.ne[0];
    int64_t rows = 1;
    for (size_t d = 1; d < p.t.ne.size(); ++d) rows *= p.t.ne[d];
    const bool norm = EndsWith(p.t.name, "norm.weight");
    // Matrices: sigma 1/sqrt(row length), so every product keeps its inputs' scale
    // (0.02 at 2048 wide, like common initializations); attention scores are then of
    // order 1 and the model's output depends on its context even at the tiny sizes.
    const float mean = norm ? 1.0f : 0.0f;
    const float sigma = norm ? 0.05f : p.t.ne.size() >= 2 ? 1.0f / std::sqrt(static_cast<float>(cols)) : 0.02f;
    const uint64_t tensor_seed = Hash64(p.t.name, o.seed);
    const int64_t chunk_rows = std::max<int64_t>(1, (int64_t{1} << 22) / cols);
    const uint64_t row_bytes = *RowBytes(p.type, cols);
    for (int64_t r = 0; r < rows; r += chunk_rows) {
      const int64_t n_rows = std::min(chunk_rows, rows - r);
      values.resize(static_cast<size_t>(n_rows * cols));
      encoded.resize(static_cast<size_t>(n_rows * row_bytes));
      // Rows of the chunk in parallel: generating and quantizing are the whole cost.
      const int64_t parts = n_rows * cols >= (1 << 16) ? std::min<int64_t>(n_threads, n_rows) : 1;
      std::vector<absl::Status> results(static_cast<size_t>(parts));
      auto work = [&](int64_t part) {
        const int64_t r0 = n_rows * part / parts, r1 = n_rows * (part + 1) / parts;
        float* x = values.data() + r0 * cols;
        FillWeights(tensor_seed, static_cast<uint64_t>((r + r0) * cols), mean, sigma, x,
                    static_cast<size_t>((r1 - r0) * cols));
        results[static_cast<size_t>(part)] =
            Quantize(p.type, x, encoded.data() + static_cast<uint64_t>(r0) * row_bytes, (r1 - r0) * cols);
      };
      std::vector<std::thread> threads;
      for (int64_t part = 1; part < parts; ++part) threads.emplace_back(work, part);
      work(0);
      for (std::thread& t : threads) t.join();
      for (const absl::Status& st : results) {
        if (!st.ok()) return st;
      }
      if (absl::Status st = w.Append(encoded.data(), encoded.size()); !st.ok()) return st;
      done += encoded.size();
      if (o.progress) o.progress(done, total);
    }
  }
  return w.Finish();
}

}  // namespace

std::vector<std::string> SynthPresetNames() {
  std::vector<std::string> out;
  for (const Preset& p : kPresets) out.emplace_back(p.name);
  return out;
}

absl::StatusOr<SynthShape> SynthPreset(std::string_view preset) {
  for (const Preset& p : kPresets) {
    if (preset == p.name) return p.shape;
  }
  std::string names;
  for (const Preset& p : kPresets) names += fmt::format("{}{}", names.empty() ? "" : ", ", p.name);
  return absl::InvalidArgumentError(fmt::format("unknown preset '{}' (one of {})", preset, names));
}

SynthShape SynthShapeForArch(SynthShape shape, Arch arch) {
  const bool was_bert = shape.arch == Arch::kBert;
  const bool is_bert = arch == Arch::kBert;
  if (is_bert && !was_bert) {
    shape.n_head_kv = shape.n_head;
    shape.tied_embeddings = false;
    shape.pooling = Pooling::kCls;
    shape.norm_eps = 1e-12f;
  } else if (!is_bert && was_bert) {
    shape.pooling = Pooling::kNone;
    shape.norm_eps = 1e-5f;
  }
  shape.arch = arch;
  return shape;
}

std::vector<std::string> SynthWeightTypeNames() { return {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q4_k_m"}; }

absl::StatusOr<TensorType> SynthTensorType(std::string_view weight_type, const std::string& name,
                                           const std::vector<int64_t>& ne, int layer, uint32_t n_layer,
                                           bool has_output_tensor) {
  absl::StatusOr<WeightType> wt = ParseWeightType(weight_type);
  if (!wt.ok()) return wt.status();
  if (ne.size() < 2) return TensorType::kF32;  // norms and biases
  const int64_t cols = ne[0];
  if (name == "position_embd.weight" || name == "token_types.weight") {
    // Added to f32 activations, which llama.cpp's CPU backend does only for f32 (and
    // llama-quantize leaves them alone).
    return TensorType::kF32;
  }
  if (wt->pure) return Fallback(*wt->pure, cols);
  // Q4_K_M.
  if (name == "output.weight" || (!has_output_tensor && name == "token_embd.weight")) {
    return cols % kQK_K == 0 ? TensorType::kQ6_K : TensorType::kQ8_0;
  }
  const int n = static_cast<int>(n_layer);
  if ((EndsWith(name, ".attn_v.weight") || EndsWith(name, ".ffn_down.weight")) && layer >= 0 &&
      UseMoreBits(layer, n)) {
    return Fallback(TensorType::kQ6_K, cols);
  }
  return Fallback(TensorType::kQ4_K, cols);
}

absl::Status CheckSynthOptions(const SynthOptions& options) {
  if (absl::Status s = CheckShape(options); !s.ok()) return s;
  return ParseWeightType(options.weight_type).status();
}

absl::Status SynthesizeModel(const SynthOptions& options, const std::string& path) {
  GgufWriter w;
  return Synthesize(options, w, [&path](GgufWriter& writer) { return writer.Begin(path); });
}

absl::StatusOr<std::string> SynthesizeModelToBuffer(const SynthOptions& options) {
  GgufWriter w;
  std::string out;
  if (absl::Status s = Synthesize(options, w, [&out](GgufWriter& writer) { return writer.Begin(&out); }); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace cairn::infer
