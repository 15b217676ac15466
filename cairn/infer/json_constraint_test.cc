// The JSON constraint: the recognizer on valid and invalid texts, schema compilation
// and rejection, the vocabulary mask against a token-by-token check, random walks
// over real vocabularies that must always end in text that parses and matches the
// schema, and Generate on a small synthesized model.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "cairn/infer/constraint.h"
#include "cairn/infer/generate.h"
#include "cairn/infer/gguf.h"
#include "cairn/infer/json_recognizer.h"
#include "cairn/infer/json_schema.h"
#include "cairn/infer/synth.h"
#include "cairn/infer/tokenizer.h"

namespace cairn::infer {
namespace {

using ::testing::HasSubstr;

// ------------------------------------------------------------------ the recognizer

json::JsonRecognizer Recognizer(const nlohmann::json& schema) {
  absl::StatusOr<json::JsonGrammar> g = json::CompileJsonSchema(schema);
  EXPECT_TRUE(g.ok()) << g.status();
  return json::JsonRecognizer(g.ok() ? *std::move(g) : json::AnyObjectGrammar());
}

// 1: a whole value; 0: a valid prefix; -1: rejected.
int Read(const json::JsonRecognizer& r, std::string_view text) {
  json::JsonState s = r.Start(), scratch;
  if (!r.Advance(&s, text, &scratch)) return -1;
  return r.CanEnd(s) ? 1 : 0;
}

TEST(JsonRecognizerTest, AcceptsValidJson) {
  const json::JsonRecognizer any = Recognizer(true);
  for (std::string_view text :
       {"{}", "[]", "0", "-0", "-0.0e+12", "12.5E-3", "true", "false", "null", "\"\"",
        R"({"a":[1,-2.5e+3,true,false,null]})",
        R"( { "a" : { "b" : [ ] } , "c":"d" })", R"("esc \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00")",
        "\"h\xC3\xA9llo \xF0\x9F\x98\x80 \xE2\x82\xAC\"", "[\n  1,\n  2\n]"}) {
    EXPECT_EQ(Read(any, text), 1) << text;
    EXPECT_TRUE(nlohmann::json::accept(text)) << text;
  }
}

TEST(JsonRecognizerTest, RejectsInvalidJson) {
  const json::JsonRecognizer any = Recognizer(true);
  for (std::string_view text :
       {"{,}", "[1,]", "01", "1.e", ".5", "+1", "1e+x", "{\"a\"}", "{\"a\":}", "\"\x01\"", R"("\ud800")", R"("\udc00")",
        R"("\ud800\u0041")", R"("\x")", "tru ", "nulx", "{\"a\":1}}", "{} ", "\"\xC0\x80\"", "\"\xED\xA0\x80\"",
        "\"\xF4\x90\x80\x80\"", "\"\x80\"", "[1 2]", "{\"a\" 1}", "         1", "[         1]", "'a'"}) {
    EXPECT_EQ(Read(any, text), -1) << text;
  }
  // Prefixes are not whole values.
  for (std::string_view text : {"{", "[1,", "\"ab", "-", "1.", "1e", "nul", "tr", R"("\u12)", " "}) {
    EXPECT_EQ(Read(any, text), 0) << text;
  }
}

TEST(JsonRecognizerTest, AnyObjectRootIsAnObject) {
  const json::JsonRecognizer obj(json::AnyObjectGrammar());
  EXPECT_EQ(Read(obj, R"({"k":[{"x":null}],"k":"dup"})"), 1);
  EXPECT_EQ(Read(obj, "[]"), -1);
  EXPECT_EQ(Read(obj, "1"), -1);
  EXPECT_EQ(Read(obj, "\"s\""), -1);
}

TEST(JsonRecognizerTest, NestingIsBounded) {
  const json::JsonRecognizer any = Recognizer(true);
  std::string deep(200, '[');
  EXPECT_EQ(Read(any, deep), -1);
  // What cannot be opened deeper can still be closed.
  std::string ok(json::kMaxFrames - 1, '[');
  EXPECT_EQ(Read(any, ok), 0);
  EXPECT_EQ(Read(any, ok + std::string(json::kMaxFrames - 1, ']')), 1);
}

// ------------------------------------------------------------------ schemas

const nlohmann::json& PersonSchema() {
  static const auto* s = new nlohmann::json(nlohmann::json::parse(R"({
    "type": "object",
    "properties": {
      "age": {"type": "integer"},
      "name": {"type": "string", "minLength": 1, "maxLength": 6},
      "nick": {"type": ["string", "null"]},
      "role": {"enum": ["admin", "user", 3]},
      "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "minItems": 1, "maxItems": 2},
      "where": {"$ref": "#/$defs/place"}
    },
    "required": ["name", "role", "where"],
    "additionalProperties": false,
    "$defs": {"place": {"anyOf": [{"type": "number"}, {"type": "object", "properties": {"city": {"const": "Oslo"}},
                                                   "required": ["city"]}]}}
  })"));
  return *s;
}

TEST(JsonSchemaTest, ObjectsFollowTheSchema) {
  const json::JsonRecognizer r = Recognizer(PersonSchema());
  EXPECT_EQ(Read(r, R"({"name":"Ann","role":"admin","where":1.5})"), 1);
  EXPECT_EQ(Read(r, R"({"age":41,"name":"Bo","nick":null,"role":3,"tags":["a","bc"],"where":{"city":"Oslo"}})"), 1);
  EXPECT_EQ(Read(r, R"({ "name" : "Bo" , "role" : "user" , "where" : -2 })"), 1);
  // Required missing, out of order, unknown key, wrong types, lengths and counts.
  EXPECT_EQ(Read(r, R"({"name":"Ann","where":1})"), -1);
  EXPECT_EQ(Read(r, R"({"role":"user","name":"Ann")"), -1);
  EXPECT_EQ(Read(r, R"({"zzz":1)"), -1);
  EXPECT_EQ(Read(r, R"({"age":4.5)"), -1);
  EXPECT_EQ(Read(r, R"({"age":1e3)"), -1);
  EXPECT_EQ(Read(r, R"({"name":"")"), -1);
  EXPECT_EQ(Read(r, R"({"name":"1234567")"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"root")"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"user","tags":[])"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"user","tags":["a","b",)"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"user","tags":["abcd")"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"user","where":{"city":"Rome"})"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"user","where":{}})"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"user"})"), -1);
  EXPECT_EQ(Read(r, R"({"name":"a","role":"user","where":1,})"), -1);
}

TEST(JsonSchemaTest, ScalarsAndTypeArrays) {
  EXPECT_EQ(Read(Recognizer({{"type", "integer"}}), "-12"), 1);
  EXPECT_EQ(Read(Recognizer({{"type", "integer"}}), "1.0"), -1);
  EXPECT_EQ(Read(Recognizer({{"type", "integer"}}), "1234567890123456"), -1);  // 16 digits
  EXPECT_EQ(Read(Recognizer({{"type", "number"}}), "1e100"), -1);
  EXPECT_EQ(Read(Recognizer({{"type", {"boolean", "null"}}}), "null"), 1);
  EXPECT_EQ(Read(Recognizer({{"type", {"boolean", "null"}}}), "0"), -1);
  EXPECT_EQ(Read(Recognizer({{"type", "string"}, {"nullable", true}}), "null"), 1);
  EXPECT_EQ(Read(Recognizer({{"const", {{"a", {1, 2}}}}}), R"({"a":[1,2]})"), 1);
  EXPECT_EQ(Read(Recognizer({{"const", {{"a", {1, 2}}}}}), R"({"a": [1,2]})"), -1);
  EXPECT_EQ(Read(Recognizer({{"enum", {"a", "ab"}}}), R"("ab")"), 1);
  // maxLength counts code points: an escape pair and a 4-byte character are one each.
  const json::JsonRecognizer two = Recognizer({{"type", "string"}, {"maxLength", 2}});
  EXPECT_EQ(Read(two, "\"\\uD83D\\uDE00\xF0\x9F\x98\x80\""), 1);
  EXPECT_EQ(Read(two, "\"ab\\n"), -1);
}

TEST(JsonSchemaTest, RejectsWhatItCannotEnforce) {
  std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"string","pattern":"^a"})", "'pattern'"},
      {R"({"type":"string","format":"date"})", "'format'"},
      {R"({"type":"integer","minimum":0})", "'minimum'"},
      {R"({"allOf":[{"type":"string"}]})", "'allOf'"},
      {R"({"type":"object","properties":{"a":{"not":{}}}})", "/properties/a"},
      {R"({"type":"array","items":[{"type":"string"}]})", "tuple"},
      {R"({"type":"array","minItems":3,"maxItems":2})", "minItems > maxItems"},
      {R"({"type":"strings"})", "unknown type"},
      {R"({"enum":[]})", "no enum/const value"},
      {R"({"$ref":"#/$defs/missing"})", "does not resolve"},
      {R"({"$ref":"http://x/y"})", "not supported"},
      {R"({"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"})", "recursive"},
      {R"({"type":"object","properties":{"a":{"$ref":"#"}}})", "recursive"},
      {R"({"type":"object","required":["x"],"additionalProperties":false})", "'x'"},
      {"false", "admits nothing"},
  };
  std::vector<int> many(65);
  for (int i = 0; i < 65; ++i) many[static_cast<size_t>(i)] = i;
  cases.emplace_back(nlohmann::json{{"enum", many}}.dump(), "enum has 65 values");
  for (const auto& [text, what] : cases) {
    absl::StatusOr<json::JsonGrammar> g = json::CompileJsonSchema(nlohmann::json::parse(text));
    ASSERT_FALSE(g.ok()) << text;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(g.status().message()), HasSubstr(what)) << text;
  }
}

// ------------------------------------------------------------------ a validator for the supported subset

bool Validate(const nlohmann::json& root, const nlohmann::json& s, const nlohmann::json& v);

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool HasType(const std::string& t, const nlohmann::json& v) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer();
  if (t == "boolean") return v.is_boolean();
  return t == "null" && v.is_null();
}

bool Validate(const nlohmann::json& root, const nlohmann::json& s, const nlohmann::json& v) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    if (ref == "#") return Validate(root, root, v);
    return Validate(root, root.at(nlohmann::json::json_pointer(ref.substr(1))), v);
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key)) continue;
    bool any = false;
    for (const auto& alt : s[key]) any = any || Validate(root, alt, v);
    if (!any) return false;
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_array()) {
      for (const auto& t : s["type"]) types.push_back(t);
    } else {
      types.push_back(s["type"]);
    }
    if (s.value("nullable", false)) types.push_back("null");
    if (std::none_of(types.begin(), types.end(), [&](const std::string& t) { return HasType(t, v); })) return false;
  }
  if (s.contains("const") && v != s["const"]) return false;
  if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) return false;
  if (v.is_object()) {
    for (const auto& name : s.value("required", nlohmann::json::array())) {
      if (!v.contains(name.get<std::string>())) return false;
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (s.contains("properties") && s["properties"].contains(it.key())) {
        if (!Validate(root, s["properties"][it.key()], it.value())) return false;
      } else if (s.contains("additionalProperties") && !Validate(root, s["additionalProperties"], it.value())) {
        return false;
      }
    }
  }
  if (v.is_array()) {
    if (v.size() < s.value("minItems", size_t{0}) || v.size() > s.value("maxItems", SIZE_MAX)) return false;
    if (s.contains("items")) {
      for (const auto& item : v) {
        if (!Validate(root, s["items"], item)) return false;
      }
    }
  }
  if (v.is_string()) {
    const size_t n = CodePoints(v.get<std::string>());
    if (n < s.value("minLength", size_t{0}) || n > s.value("maxLength", SIZE_MAX)) return false;
  }
  return true;
}

TEST(JsonValidatorTest, ChecksTheSubset) {
  const nlohmann::json& s = PersonSchema();
  EXPECT_TRUE(Validate(s, s, nlohmann::json::parse(R"({"name":"A","role":3,"where":{"city":"Oslo"}})")));
  EXPECT_FALSE(Validate(s, s, nlohmann::json::parse(R"({"name":"A","role":3,"where":{"city":"X"}})")));
  EXPECT_FALSE(Validate(PersonSchema(), PersonSchema(), nlohmann::json::parse(R"({"name":"A","role":3})")));
}

// ------------------------------------------------------------------ masking over real vocabularies

const Tokenizer& Fixture(const std::string& name) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  std::unique_ptr<Tokenizer>& slot = (*cache)[name];
  if (!slot) {
    absl::StatusOr<std::unique_ptr<GgufFile>> file =
        GgufFile::Open(std::string(CAIRN_INFER_TESTDATA_DIR) + "/tokenizers/" + name);
    EXPECT_TRUE(file.ok()) << file.status();
    absl::StatusOr<Vocab> vocab = LoadVocab(**file);
    EXPECT_TRUE(vocab.ok()) << vocab.status();
    absl::StatusOr<Tokenizer> t = Tokenizer::Create(*std::move(vocab));
    EXPECT_TRUE(t.ok()) << t.status();
    slot = std::make_unique<Tokenizer>(*std::move(t));
  }
  return *slot;
}

std::unique_ptr<TokenConstraint> Constraint(const Tokenizer& t, const nlohmann::json& schema) {
  absl::StatusOr<std::unique_ptr<TokenConstraint>> c = MakeJsonConstraint(t, schema);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

const nlohmann::json& SmallSchema() {
  static const auto* s = new nlohmann::json(nlohmann::json::parse(R"({
    "type": "object",
    "properties": {"id": {"type": "integer"}, "ok": {"type": "boolean"},
                   "tags": {"type": "array", "items": {"enum": ["x", "yz"]}, "maxItems": 3},
                   "text": {"type": "string", "maxLength": 12}},
    "required": ["id", "ok", "text"]
  })"));
  return *s;
}

// The trie walk allows exactly the tokens that a token-by-token check allows.
TEST(JsonConstraintTest, MaskMatchesTokenByTokenCheck) {
  for (const char* vocab : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
    const Tokenizer& t = Fixture(vocab);
    const std::vector<std::pair<nlohmann::json, std::string>> cases = {
        {SmallSchema(), ""},
        {SmallSchema(), " {"},
        {SmallSchema(), "{\"id\":"},
        {SmallSchema(), "{\"id\":12"},
        {SmallSchema(), "{\"id\":1,\"ok\":true,\"tags\":[\"x\""},
        {SmallSchema(), "{\"id\":1,\"ok\":t"},
        {SmallSchema(), "{\"id\":1,\"ok\":true,\"text\":\"ab"},
        {nullptr, "{\"k\":\"ab c"},  // a free string: whole subtrees of plain text at once
        {nullptr, "{\"k\":\"ab c\\u00"},
        {nullptr, "{\"k\":[1,{\"z\":\"\xC3\xA9"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
      // Each case on one of the two vocabularies, so that the test stays quick.
      if (i % 2 != (vocab == std::string("ggml-vocab-gpt-2.gguf") ? 1u : 0u)) continue;
      const auto& [schema, prefix] = cases[i];
      const json::JsonRecognizer rec =
          schema.is_null() ? json::JsonRecognizer(json::AnyObjectGrammar()) : Recognizer(schema);
      std::unique_ptr<TokenConstraint> c = Constraint(t, schema);
      ASSERT_NE(c, nullptr);
      for (int32_t id : t.Encode(prefix, /*add_special=*/false)) ASSERT_TRUE(c->Accept(id).ok()) << prefix;
      std::vector<float> logits(static_cast<size_t>(t.vocab_size()) + 3, 0.0f);
      c->Apply(logits);
      json::JsonState base = rec.Start(), scratch;
      std::string pieces;
      for (int32_t id : t.Encode(prefix, false)) pieces += t.TokenToPiece(id);
      ASSERT_TRUE(rec.Advance(&base, pieces, &scratch));
      int allowed = 0;
      for (int32_t id = 0; id < t.vocab_size(); ++id) {
        json::JsonState s = base;
        const std::string_view piece = t.TokenToPiece(id);
        const bool text = t.GetTokenType(id) == TokenType::kNormal || t.GetTokenType(id) == TokenType::kByte ||
                          t.GetTokenType(id) == TokenType::kUserDefined;
        bool expect = text && !piece.empty() && rec.Advance(&s, piece, &scratch);
        if (t.IsEndOfGeneration(id)) expect = rec.CanEnd(base);
        ASSERT_EQ(logits[static_cast<size_t>(id)] == 0.0f, expect) << vocab << " after '" << prefix << "' token " << id;
        allowed += expect;
      }
      EXPECT_GT(allowed, 0);
      for (size_t i = static_cast<size_t>(t.vocab_size()); i < logits.size(); ++i) EXPECT_EQ(logits[i], -INFINITY);
    }
  }
}

// Pick among the allowed tokens: random for a while, then favouring tokens that close
// things, so the value must end; it must parse and match the schema.
std::string RandomWalk(const Tokenizer& t, TokenConstraint& c, uint64_t seed, int random_steps, int max_steps,
                       bool* complete) {
  SplitMix64 rng(seed);
  std::string text;
  std::vector<float> logits(static_cast<size_t>(t.vocab_size()));
  *complete = false;
  for (int step = 0; step < max_steps && !c.Complete(); ++step) {
    for (size_t i = 0; i < logits.size(); ++i) {
      float l = static_cast<float>(rng.NextDouble());
      if (step >= random_steps) {
        const std::string_view p = t.TokenToPiece(static_cast<int32_t>(i));
        l = -static_cast<float>(p.size());
        if (!p.empty() && (p[0] == '"' || p[0] == '}' || p[0] == ']')) l += 4;
        if (!p.empty() && (p[0] == '0' || p[0] == 'n' || p[0] == 'f')) l += 2;
        if (t.IsEndOfGeneration(static_cast<int32_t>(i))) l += 10;
      }
      logits[i] = l;
    }
    c.Apply(logits);
    const int32_t token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_NE(logits[static_cast<size_t>(token)], -INFINITY) << "no token allowed after " << text;
    absl::Status st = c.Accept(token);
    EXPECT_TRUE(st.ok()) << st << " after " << text;
    if (!st.ok()) break;
    if (!t.IsEndOfGeneration(token)) text += t.TokenToPiece(token);
  }
  *complete = c.Complete();
  return text;
}

void CheckWalks(const std::string& vocab, const nlohmann::json& schema, int seeds) {
  const Tokenizer& t = Fixture(vocab);
  for (int seed = 1; seed <= seeds; ++seed) {
    std::unique_ptr<TokenConstraint> c = Constraint(t, schema);
    ASSERT_NE(c, nullptr);
    bool complete = false;
    const std::string text = RandomWalk(t, *c, static_cast<uint64_t>(seed) * 7919, 12, 160, &complete);
    ASSERT_TRUE(complete) << vocab << " seed " << seed << ": " << text;
    nlohmann::json v;
    ASSERT_NO_THROW(v = nlohmann::json::parse(text)) << text;
    const nlohmann::json& root = schema.is_null() ? nlohmann::json::object() : schema;
    if (schema.is_null()) {
      EXPECT_TRUE(v.is_object()) << text;
    } else {
      EXPECT_TRUE(Validate(root, root, v)) << vocab << " seed " << seed << ": " << text;
    }
  }
}

TEST(JsonConstraintTest, RandomWalksParseAndMatchLlamaSpm) {
  CheckWalks("ggml-vocab-llama-spm.gguf", SmallSchema(), 4);
  CheckWalks("ggml-vocab-llama-spm.gguf", PersonSchema(), 4);
  CheckWalks("ggml-vocab-llama-spm.gguf", nullptr, 4);
}

TEST(JsonConstraintTest, RandomWalksParseAndMatchGpt2) {
  CheckWalks("ggml-vocab-gpt-2.gguf", SmallSchema(), 4);
  CheckWalks("ggml-vocab-gpt-2.gguf", PersonSchema(), 4);
  CheckWalks("ggml-vocab-gpt-2.gguf", nullptr, 4);
}

TEST(JsonConstraintTest, AcceptRejectsWhatApplyMasks) {
  const Tokenizer& t = Fixture("ggml-vocab-llama-spm.gguf");
  std::unique_ptr<TokenConstraint> c = Constraint(t, SmallSchema());
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->Accept(t.eos_id()).ok());  // nothing written yet
  EXPECT_FALSE(c->Accept(t.bos_id()).ok());  // control
  EXPECT_FALSE(c->Accept(t.Encode("[", false).back()).ok());
  EXPECT_FALSE(c->Accept(-1).ok());
  for (int32_t id : t.Encode(R"({"id":1,"ok":false,"text":""})", false)) ASSERT_TRUE(c->Accept(id).ok());
  EXPECT_TRUE(c->Complete());
  EXPECT_FALSE(c->Accept(t.Encode(" ", false).back()).ok());
}

TEST(JsonConstraintTest, TopLevelNumberEndsWithEndOfGeneration) {
  const Tokenizer& t = Fixture("ggml-vocab-gpt-2.gguf");
  std::unique_ptr<TokenConstraint> c = Constraint(t, {{"type", "integer"}});
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Accept(t.Encode("42", false).front()).ok());
  EXPECT_FALSE(c->Complete());
  std::vector<float> logits(static_cast<size_t>(t.vocab_size()), 0.0f);
  c->Apply(logits);
  EXPECT_EQ(logits[static_cast<size_t>(t.eos_id())], 0.0f);
  ASSERT_TRUE(c->Accept(t.eos_id()).ok());
  EXPECT_TRUE(c->Complete());
}

// ------------------------------------------------------------------ Generate

TEST(JsonConstraintTest, GenerateProducesMatchingJson) {
  SynthOptions o;
  o.arch = Arch::kLlama;
  o.shape = SynthShapeForArch(*SynthPreset("tiny"), o.arch);
  o.shape.n_ff = 256;
  o.shape.n_vocab = 512;
  o.shape.n_ctx = 320;
  o.weight_type = "q8_0";
  o.seed = 11;
  absl::StatusOr<std::string> bytes = SynthesizeModelToBuffer(o);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<std::unique_ptr<Model>> m = Model::FromFile(*GgufFile::FromBuffer(*bytes, "tiny.gguf"));
  ASSERT_TRUE(m.ok()) << m.status();
  absl::StatusOr<Vocab> v = LoadVocab((*m)->file());
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(*std::move(v));
  ASSERT_TRUE(t.ok()) << t.status();
  const std::vector<int32_t> prompt = t->Encode("the answer as json:");

  for (uint64_t seed : {1, 2, 3}) {
    absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(**m, {.n_threads = 1});
    ASSERT_TRUE(s.ok()) << s.status();
    std::unique_ptr<TokenConstraint> c = Constraint(*t, SmallSchema());
    ASSERT_NE(c, nullptr);
    GenerateOptions g;
    g.max_tokens = 280;
    g.sampling.seed = seed;
    g.sampling.temperature = seed == 1 ? 0.0f : 0.9f;
    g.constraint = c.get();
    std::string streamed;
    g.on_text = [&](std::string_view piece) {
      streamed += piece;
      return true;
    };
    absl::StatusOr<GenerateResult> r = Generate(**s, *t, prompt, g);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->finish, FinishReason::kStop) << r->text;
    EXPECT_TRUE(c->Complete());
    EXPECT_EQ(streamed, r->text);
    nlohmann::json value;
    ASSERT_NO_THROW(value = nlohmann::json::parse(r->text)) << r->text;
    EXPECT_TRUE(Validate(SmallSchema(), SmallSchema(), value)) << r->text;
  }
}

}  // namespace
}  // namespace cairn::infer
