// Encode and decode throughput of the three tokenizer kinds on llama.cpp's vocabulary
// fixtures (testdata/tokenizers), over ~5 KB of mixed text: English prose, code, numbers,
// and some accented, Cyrillic, CJK and emoji text.
//
//   ./build/release/cairn/infer/cairn_infer_bench --benchmark_filter=Tokenizer
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/tokenizer.h"
#include "cairn/infer/vocab.h"

namespace cairn::infer {
namespace {

const Tokenizer* Load(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto file = GgufFile::Open(std::string(CAIRN_INFER_TESTDATA_DIR) + "/tokenizers/" + name);
    if (!file.ok()) return nullptr;
    auto vocab = LoadVocab(**file);
    if (!vocab.ok()) return nullptr;
    auto t = Tokenizer::Create(*std::move(vocab));
    if (!t.ok()) return nullptr;
    slot = std::make_unique<Tokenizer>(*std::move(t));
  }
  return slot.get();
}

const std::string& MixedText() {
  static const std::string text = [] {
    const char* parts[] = {
        "The quick brown fox jumps over the lazy dog. In 2024, sensors on press 7 reported "
        "a vibration of 12.75 mm/s at 03:14:15, well above the 4.5 mm/s threshold; the "
        "operator's note said: \"bearing wear, replace before Friday\". ",
        "def moving_average(values, window=16):\n    total = sum(values[:window])\n"
        "    for i in range(window, len(values)):\n        yield total / window\n"
        "        total += values[i] - values[i - window]\n\n",
        "Caf\xC3\xA9 cr\xC3\xA8" "me br\xC3\xBBl\xC3\xA9" "e, na\xC3\xAFve fa\xC3\xA7" "ade. "
        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80! "
        "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82 "
        "\xF0\x9F\x9A\x80 \xF0\x9F\x98\x80 ",
        "{\"id\": 48213, \"temp_c\": -3.25, \"tags\": [\"line-2\", \"hydraulic\"], \"ok\": true}\n",
    };
    std::string s;
    while (s.size() < 5000) {
      for (const char* p : parts) s += p;
    }
    return s;
  }();
  return text;
}

void BM_TokenizerEncode(benchmark::State& state, const char* name) {
  const Tokenizer* t = Load(name);
  if (t == nullptr) {
    state.SkipWithError("cannot load the vocabulary fixture");
    return;
  }
  const std::string& text = MixedText();
  size_t tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids = t->Encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(tokens);
}

void BM_TokenizerDecode(benchmark::State& state, const char* name) {
  const Tokenizer* t = Load(name);
  if (t == nullptr) {
    state.SkipWithError("cannot load the vocabulary fixture");
    return;
  }
  const std::vector<int32_t> ids = t->Encode(MixedText());
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = t->Decode(ids);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}

void BM_TokenizerLoad(benchmark::State& state, const char* name) {
  const std::string path = std::string(CAIRN_INFER_TESTDATA_DIR) + "/tokenizers/" + name;
  for (auto _ : state) {
    auto file = GgufFile::Open(path);
    auto vocab = file.ok() ? LoadVocab(**file) : absl::StatusOr<Vocab>(file.status());
    auto t = vocab.ok() ? Tokenizer::Create(*std::move(vocab)) : absl::StatusOr<Tokenizer>(vocab.status());
    if (!t.ok()) {
      state.SkipWithError("cannot load the vocabulary fixture");
      return;
    }
  }
}

BENCHMARK_CAPTURE(BM_TokenizerEncode, spm_llama, "ggml-vocab-llama-spm.gguf");
BENCHMARK_CAPTURE(BM_TokenizerEncode, bpe_gpt2, "ggml-vocab-gpt-2.gguf");
BENCHMARK_CAPTURE(BM_TokenizerEncode, wpm_bert, "ggml-vocab-bert-bge.gguf");
BENCHMARK_CAPTURE(BM_TokenizerDecode, spm_llama, "ggml-vocab-llama-spm.gguf");
BENCHMARK_CAPTURE(BM_TokenizerDecode, bpe_gpt2, "ggml-vocab-gpt-2.gguf");
BENCHMARK_CAPTURE(BM_TokenizerDecode, wpm_bert, "ggml-vocab-bert-bge.gguf");
BENCHMARK_CAPTURE(BM_TokenizerLoad, spm_llama, "ggml-vocab-llama-spm.gguf")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizerLoad, bpe_gpt2, "ggml-vocab-gpt-2.gguf")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizerLoad, wpm_bert, "ggml-vocab-bert-bge.gguf")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn::infer
