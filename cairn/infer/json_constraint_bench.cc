// The cost of one JSON-constraint masking step (TokenConstraint::Apply) over real
// vocabularies, at the kinds of places a JSON text goes through: the start (few
// tokens fit), a key (the schema's keys only), inside a free string (nearly every
// token fits: the worst case), inside a number.
//
//   cairn_infer_bench --benchmark_filter=JsonMask
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "cairn/infer/constraint.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/json_recognizer.h"
#include "cairn/infer/json_schema.h"
#include "cairn/infer/tokenizer.h"

namespace cairn::infer {
namespace {

const Tokenizer* LoadFixture(const std::string& name) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  std::unique_ptr<Tokenizer>& slot = (*cache)[name];
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

const char* kVocabs[] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"};
// The schema's properties come in name order: age, bio, name, tags.
const char* kPrefixes[] = {"", "{\"age\":41,\"", "{\"age\":41,\"bio\":\"She wrote", "{\"age\":4"};
const char* kPlaces[] = {"start", "key", "in_string", "in_number"};

const nlohmann::json& Schema() {
  static const auto* s = new nlohmann::json(nlohmann::json::parse(R"({"type":"object","properties":{
      "name":{"type":"string"},"age":{"type":"integer"},"bio":{"type":"string"},
      "tags":{"type":"array","items":{"type":"string"}}},
      "required":["name"]})"));
  return *s;
}

void BM_JsonMask(benchmark::State& state) {
  const Tokenizer* t = LoadFixture(kVocabs[state.range(0)]);
  if (t == nullptr) {
    state.SkipWithError("fixture missing");
    return;
  }
  auto c = MakeJsonConstraint(*t, Schema());
  if (!c.ok()) {
    state.SkipWithError(std::string(c.status().message()).c_str());
    return;
  }
  for (int32_t id : t->Encode(kPrefixes[state.range(1)], /*add_special=*/false)) {
    if (!(*c)->Accept(id).ok()) {
      state.SkipWithError("prefix rejected");
      return;
    }
  }
  std::vector<float> logits(static_cast<size_t>(t->vocab_size()));
  size_t allowed = 0;
  for (auto _ : state) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    (*c)->Apply(logits);
    benchmark::DoNotOptimize(logits.data());
  }
  for (float l : logits) allowed += l == 0.0f;
  state.counters["allowed"] = static_cast<double>(allowed);
  state.counters["vocab"] = t->vocab_size();
  state.SetLabel(std::string(kVocabs[state.range(0)]) + " " + kPlaces[state.range(1)]);
}
BENCHMARK(BM_JsonMask)->ArgsProduct({{0, 1}, {0, 1, 2, 3}})->Unit(benchmark::kMicrosecond);

// The same masks computed the naive way, each token's bytes run through the
// recognizer on their own: what the trie walk saves.
void BM_JsonMaskPerToken(benchmark::State& state) {
  const Tokenizer* t = LoadFixture(kVocabs[state.range(0)]);
  if (t == nullptr) {
    state.SkipWithError("fixture missing");
    return;
  }
  auto g = json::CompileJsonSchema(Schema());
  if (!g.ok()) {
    state.SkipWithError(std::string(g.status().message()).c_str());
    return;
  }
  const json::JsonRecognizer rec(*std::move(g));
  json::JsonState base = rec.Start(), scratch;
  std::string prefix;
  for (int32_t id : t->Encode(kPrefixes[state.range(1)], /*add_special=*/false)) prefix += t->TokenToPiece(id);
  if (!rec.Advance(&base, prefix, &scratch)) {
    state.SkipWithError("prefix rejected");
    return;
  }
  std::vector<float> logits(static_cast<size_t>(t->vocab_size()));
  json::JsonState s;
  for (auto _ : state) {
    for (int32_t id = 0; id < t->vocab_size(); ++id) {
      const std::string_view piece = t->TokenToPiece(id);
      s = base;
      const TokenType type = t->GetTokenType(id);
      const bool text = type == TokenType::kNormal || type == TokenType::kByte || type == TokenType::kUserDefined;
      logits[static_cast<size_t>(id)] = text && !piece.empty() && rec.Advance(&s, piece, &scratch) ? 0.0f : -1.0f;
    }
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetLabel(std::string(kVocabs[state.range(0)]) + " " + kPlaces[state.range(1)]);
}
BENCHMARK(BM_JsonMaskPerToken)->ArgsProduct({{0, 1}, {0, 2}})->Unit(benchmark::kMicrosecond);

// Building a constraint: compiling the schema and (first time per vocabulary) the trie.
void BM_JsonConstraintCreate(benchmark::State& state) {
  const Tokenizer* t = LoadFixture(kVocabs[state.range(0)]);
  if (t == nullptr) {
    state.SkipWithError("fixture missing");
    return;
  }
  for (auto _ : state) {
    auto c = MakeJsonConstraint(*t, nullptr);
    benchmark::DoNotOptimize(c);
  }
  state.SetLabel(kVocabs[state.range(0)]);
}
BENCHMARK(BM_JsonConstraintCreate)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace cairn::infer
