// Arbitrary bytes through the tokenizers of llama.cpp's three vocabulary fixtures
// (testdata/tokenizers): Encode must return valid ids, Decode must invert it wherever the
// tokenizer is lossless (byte-level BPE always; SentencePiece unless the text has U+2581,
// which it reads as a space), and StreamDecoder must agree with Decode.
//
// The first input byte picks the vocabulary and the options; the rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/infer/gguf.h"
#include "cairn/infer/tokenizer.h"
#include "cairn/infer/vocab.h"

namespace {

using cairn::infer::Tokenizer;

std::unique_ptr<Tokenizer> Load(const char* name) {
  const std::string path = std::string(CAIRN_INFER_TESTDATA_DIR) + "/tokenizers/" + name;
  auto file = cairn::infer::GgufFile::Open(path);
  if (!file.ok()) {
    std::fprintf(stderr, "tokenizer_fuzz: %s\n", std::string(file.status().message()).c_str());
    __builtin_trap();
  }
  auto vocab = cairn::infer::LoadVocab(**file);
  if (!vocab.ok()) __builtin_trap();
  auto t = Tokenizer::Create(*std::move(vocab));
  if (!t.ok()) __builtin_trap();
  return std::make_unique<Tokenizer>(*std::move(t));
}

const std::vector<std::unique_ptr<Tokenizer>>& Tokenizers() {
  static const auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<Tokenizer>>();
    v->push_back(Load("ggml-vocab-llama-spm.gguf"));
    v->push_back(Load("ggml-vocab-gpt-2.gguf"));
    v->push_back(Load("ggml-vocab-bert-bge.gguf"));
    return v;
  }();
  return *all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t options = data[0];
  const Tokenizer& t = *Tokenizers()[(options & 3) % 3];
  const bool add_special = (options & 4) != 0;
  const bool parse_special = (options & 8) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::vector<int32_t> ids = t.Encode(text, add_special, parse_special);
  for (int32_t id : ids) {
    if (!t.IsValidId(id)) __builtin_trap();
  }
  const cairn::infer::DecodeOptions render{.render_special = true};
  const std::string decoded = t.Decode(ids, render);

  bool lossless = false;
  switch (t.model()) {
    case cairn::infer::TokenizerModel::kBytePair:
      lossless = true;
      break;
    case cairn::infer::TokenizerModel::kSentencePiece:
      lossless = text.find("\xE2\x96\x81") == std::string_view::npos;
      break;
    case cairn::infer::TokenizerModel::kWordPiece:
      break;
  }
  // With add_special, the added tokens render too (<s>): compare without them.
  if (lossless && !add_special && decoded != text) __builtin_trap();
  if (lossless && add_special && t.Decode(ids) != t.Decode(t.Encode(text, false, parse_special))) __builtin_trap();

  cairn::infer::StreamDecoder stream(t, render);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.Push(id);
  streamed += stream.Flush();
  if (streamed != decoded) __builtin_trap();
  return 0;
}
