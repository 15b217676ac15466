// Generate on small synthesized models: greedy and seeded runs, the ways generation
// ends, streaming without leaking stop strings, KV cache reuse, and the errors.
#include "cairn/infer/generate.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/infer/gguf.h"
#include "cairn/infer/synth.h"
#include "cairn/infer/unicode.h"
#include "cairn/infer/vocab.h"

namespace cairn::infer {
namespace {

using ::testing::HasSubstr;

struct Loaded {
  std::unique_ptr<Model> model;
  Tokenizer tokenizer;
};

Loaded Tiny(Arch arch = Arch::kLlama) {
  SynthOptions o;
  o.arch = arch;
  o.shape = SynthShapeForArch(*SynthPreset("tiny"), arch);
  o.shape.n_ff = 256;
  o.shape.n_vocab = 512;
  o.shape.n_ctx = 96;
  o.weight_type = "q8_0";
  o.seed = 5;
  absl::StatusOr<std::string> bytes = SynthesizeModelToBuffer(o);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<std::unique_ptr<Model>> m = Model::FromFile(*GgufFile::FromBuffer(*bytes, "tiny.gguf"));
  EXPECT_TRUE(m.ok()) << m.status();
  absl::StatusOr<Vocab> v = LoadVocab((*m)->file());
  EXPECT_TRUE(v.ok()) << v.status();
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(*std::move(v));
  EXPECT_TRUE(t.ok()) << t.status();
  return {std::move(*m), *std::move(t)};
}

const Loaded& Llama() {
  static const Loaded* l = new Loaded(Tiny());
  return *l;
}

std::unique_ptr<Session> NewSession(const Model& m, int threads = 1) {
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(m, {.n_threads = threads});
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

GenerateResult GenerateOk(Session& s, std::span<const int32_t> prompt, const GenerateOptions& o) {
  absl::StatusOr<GenerateResult> r = Generate(s, Llama().tokenizer, prompt, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : GenerateResult{};
}

GenerateOptions Greedy(int32_t max_tokens) {
  GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampling = SamplerParams::Greedy();
  return o;
}

std::vector<int32_t> Prompt() { return Llama().tokenizer.Encode("the cat sat on a mat and then"); }

bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

// What the stream shows for raw decoded bytes: invalid bytes as U+FFFD.
std::string Shown(std::string_view raw) {
  std::string out;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t n = unicode::Utf8CharLength(raw, pos);
    if (n == 1 && static_cast<unsigned char>(raw[pos]) >= 0x80) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(raw.substr(pos, n));
    }
    pos += n;
  }
  return out;
}

TEST(StopStringMatcherTest, HoldsBackWhatCouldBeAStopString) {
  StopStringMatcher m({"STOP", "", "xyz"});
  EXPECT_FALSE(m.Append("abc S"));
  EXPECT_EQ(m.TakeFinal(), "abc ");  // "S" might begin "STOP"
  EXPECT_FALSE(m.Append("T"));
  EXPECT_EQ(m.TakeFinal(), "");
  EXPECT_FALSE(m.Append("x"));  // "STx" cannot; "x" might begin "xyz"
  EXPECT_EQ(m.TakeFinal(), "ST");
  EXPECT_FALSE(m.Append("yq"));
  EXPECT_EQ(m.TakeFinal(), "xyq");
  EXPECT_FALSE(m.Append("STO"));
  EXPECT_EQ(m.TakeFinal(), "");
  EXPECT_TRUE(m.Append("P!"));
  EXPECT_EQ(m.text(), "abc STxyq");
  EXPECT_EQ(m.TakeFinal(), "");
}

TEST(StopStringMatcherTest, CutsAtTheEarliestStopString) {
  StopStringMatcher m({"world", "lo w"});
  EXPECT_FALSE(m.Append("hel"));
  EXPECT_EQ(m.TakeFinal(), "he");  // "l" might begin "lo w"
  EXPECT_TRUE(m.Append("lo world!"));
  EXPECT_EQ(m.text(), "hel");
  EXPECT_EQ(m.TakeFinal(), "l");
  // A stop string spread over many pieces.
  StopStringMatcher n({"<|im_end|>"});
  std::string streamed;
  bool stopped = false;
  for (std::string_view piece : {"Hi", " there", "<|", "im", "_", "end", "|>", "more"}) {
    stopped = n.Append(piece);
    streamed += n.TakeFinal();
    if (stopped) break;
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(streamed, "Hi there");
  EXPECT_EQ(n.text(), "Hi there");
}

TEST(StopStringMatcherTest, FinishReleasesTheHeldTail) {
  StopStringMatcher m({"</s>"});
  EXPECT_FALSE(m.Append("end </"));
  EXPECT_EQ(m.TakeFinal(), "end ");
  m.Finish();
  EXPECT_EQ(m.TakeFinal(), "</");
}

TEST(GenerateTest, GreedyIsTheArgmaxOfEachStep) {
  const Model& model = *Llama().model;
  std::unique_ptr<Session> s = NewSession(model);
  const std::vector<int32_t> prompt = Prompt();
  GenerateResult r = GenerateOk(*s, prompt, Greedy(12));
  EXPECT_EQ(r.finish, FinishReason::kLength);
  ASSERT_EQ(r.tokens.size(), 12u);
  EXPECT_EQ(r.usage.prompt_tokens, static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(r.usage.completion_tokens, 12);
  EXPECT_EQ(r.timings.prompt_eval_tokens, static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(r.timings.decode_tokens, 11);  // the last token is never fed back
  EXPECT_GT(r.timings.prompt_tokens_per_second(), 0);

  // The same by hand.
  std::unique_ptr<Session> ref = NewSession(model);
  std::vector<int32_t> feed = prompt;
  std::vector<int32_t> want;
  for (int i = 0; i < 12; ++i) {
    absl::StatusOr<std::span<const float>> l = ref->Decode(feed);
    ASSERT_TRUE(l.ok());
    const int32_t best = static_cast<int32_t>(std::max_element(l->begin(), l->end()) - l->begin());
    want.push_back(best);
    feed = {best};
  }
  EXPECT_EQ(r.tokens, want);
  EXPECT_EQ(r.text, Shown(Llama().tokenizer.Decode(want, {.strip_prefix_space = false})));
  // A second run in the same session starts over.
  EXPECT_EQ(GenerateOk(*s, prompt, Greedy(12)).tokens, want);
}

TEST(GenerateTest, SeededRunsRepeatAcrossRunsAndThreadCounts) {
  GenerateOptions o;
  o.max_tokens = 24;
  o.sampling.temperature = 1.2f;
  o.sampling.seed = 42;
  const std::vector<int32_t> prompt = Prompt();
  std::unique_ptr<Session> one = NewSession(*Llama().model, 1);
  std::unique_ptr<Session> three = NewSession(*Llama().model, 3);
  const GenerateResult a = GenerateOk(*one, prompt, o);
  EXPECT_EQ(GenerateOk(*one, prompt, o).tokens, a.tokens);
  EXPECT_EQ(GenerateOk(*three, prompt, o).tokens, a.tokens);
  o.sampling.seed = 43;
  EXPECT_NE(GenerateOk(*one, prompt, o).tokens, a.tokens);
}

TEST(GenerateTest, EndOfGenerationTokenStops) {
  // Make a token of the greedy run (the first that did not come before) the
  // end-of-generation token.
  std::unique_ptr<Session> s = NewSession(*Llama().model);
  const std::vector<int32_t> prompt = Prompt();
  const GenerateResult free_run = GenerateOk(*s, prompt, Greedy(10));
  size_t i = 1;
  while (i < free_run.tokens.size() &&
         std::find(free_run.tokens.begin(), free_run.tokens.begin() + i, free_run.tokens[i]) !=
             free_run.tokens.begin() + i) {
    ++i;
  }
  ASSERT_LT(i, free_run.tokens.size());
  Vocab v = Llama().tokenizer.vocab();
  v.eot_id = free_run.tokens[i];
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(v);
  ASSERT_TRUE(t.ok());
  std::string streamed;
  GenerateOptions o = Greedy(10);
  o.on_text = [&](std::string_view p) {
    streamed += p;
    return true;
  };
  absl::StatusOr<GenerateResult> r = Generate(*s, *t, prompt, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->finish, FinishReason::kStop);
  EXPECT_EQ(r->tokens, std::vector<int32_t>(free_run.tokens.begin(), free_run.tokens.begin() + i));
  EXPECT_EQ(r->text, Shown(t->Decode(r->tokens, {.strip_prefix_space = false})));
  EXPECT_EQ(streamed, r->text);
  // ignore_eos goes on.
  o.ignore_eos = true;
  r = Generate(*s, *t, prompt, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kLength);
  EXPECT_EQ(r->tokens.size(), 10u);
}

TEST(GenerateTest, StopStringsEndTheTextAndNeverLeak) {
  std::unique_ptr<Session> s = NewSession(*Llama().model);
  const std::vector<int32_t> prompt = Prompt();
  const GenerateResult free_run = GenerateOk(*s, prompt, Greedy(40));
  const std::string& text = free_run.text;
  ASSERT_GT(text.size(), 20u);
  // A stop string from the middle of the free run's text.
  const std::string stop = text.substr(text.size() / 2, 4);
  const size_t at = text.find(stop);
  GenerateOptions o = Greedy(40);
  o.stop = {"never appears \x01", stop};
  std::string streamed;
  std::vector<std::string> pieces;
  o.on_text = [&](std::string_view p) {
    EXPECT_FALSE(p.empty());
    pieces.emplace_back(p);
    streamed += p;
    return true;
  };
  GenerateResult r = GenerateOk(*s, prompt, o);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.text, text.substr(0, at));
  EXPECT_EQ(streamed, r.text);
  EXPECT_LT(r.tokens.size(), free_run.tokens.size());
  EXPECT_GT(pieces.size(), 1u);
}

TEST(GenerateTest, StreamedPiecesAreCompleteUtf8) {
  // Hot sampling over a vocabulary with byte tokens produces split characters.
  const std::vector<int32_t> prompt = Prompt();
  std::unique_ptr<Session> s = NewSession(*Llama().model);
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    GenerateOptions o;
    o.max_tokens = 40;
    o.sampling = {.temperature = 3.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = seed};
    std::string streamed;
    o.on_text = [&](std::string_view p) {
      EXPECT_TRUE(ValidUtf8(p)) << "seed " << seed;
      streamed += p;
      return true;
    };
    GenerateResult r = GenerateOk(*s, prompt, o);
    EXPECT_EQ(streamed, r.text);
    EXPECT_TRUE(ValidUtf8(r.text));
  }
}

TEST(GenerateTest, CallbackCancels) {
  std::unique_ptr<Session> s = NewSession(*Llama().model);
  GenerateOptions o = Greedy(30);
  int calls = 0;
  o.on_text = [&](std::string_view) { return ++calls < 3; };
  GenerateResult r = GenerateOk(*s, Prompt(), o);
  EXPECT_EQ(r.finish, FinishReason::kCancelled);
  EXPECT_EQ(calls, 3);
  EXPECT_LT(r.tokens.size(), 30u);
}

TEST(GenerateTest, StopsWhenTheContextIsFull) {
  std::unique_ptr<Session> s = NewSession(*Llama().model);
  const std::vector<int32_t> prompt = Prompt();
  GenerateResult r = GenerateOk(*s, prompt, Greedy(-1));
  EXPECT_EQ(r.finish, FinishReason::kLength);
  // 96 cells: the prompt, then one cell per token fed back, and one more sampled.
  EXPECT_EQ(r.tokens.size() + prompt.size(), 97u);
  EXPECT_EQ(s->pos(), 96);
}

TEST(GenerateTest, ReusesTheCachedPrefix) {
  const Model& model = *Llama().model;
  std::unique_ptr<Session> s = NewSession(model);
  std::vector<int32_t> held;
  GenerateOptions o = Greedy(8);
  o.session_tokens = &held;
  const std::vector<int32_t> prompt = Prompt();
  GenerateResult first = GenerateOk(*s, prompt, o);
  EXPECT_EQ(first.usage.cached_tokens, 0);
  // The session holds the prompt and the fed-back tokens (all but the last).
  ASSERT_EQ(held.size(), prompt.size() + 7);
  EXPECT_EQ(s->pos(), static_cast<int32_t>(held.size()));

  // A follow-up that extends the conversation evaluates only what is new...
  std::vector<int32_t> next = prompt;
  next.insert(next.end(), first.tokens.begin(), first.tokens.end());
  const std::vector<int32_t> more = Llama().tokenizer.Encode(" and a dog", false);
  next.insert(next.end(), more.begin(), more.end());
  GenerateResult second = GenerateOk(*s, next, o);
  EXPECT_EQ(second.usage.cached_tokens, static_cast<int32_t>(prompt.size() + 7));
  EXPECT_EQ(second.timings.prompt_eval_tokens, static_cast<int32_t>(next.size() - prompt.size() - 7));
  // ...and gives what a fresh session gives.
  std::unique_ptr<Session> fresh = NewSession(model);
  EXPECT_EQ(GenerateOk(*fresh, next, Greedy(8)).tokens, second.tokens);

  // A prompt that diverges early drops the rest of the cache; the same prompt again
  // re-evaluates only its last token.
  GenerateResult third = GenerateOk(*s, prompt, o);
  EXPECT_EQ(third.usage.cached_tokens, static_cast<int32_t>(prompt.size() - 1));
  EXPECT_EQ(third.tokens, first.tokens);
  // Tokens that do not match the session are not trusted.
  std::vector<int32_t> wrong = {1, 2, 3};
  o.session_tokens = &wrong;
  EXPECT_EQ(GenerateOk(*s, prompt, o).usage.cached_tokens, 0);
}

TEST(GenerateTest, Errors) {
  std::unique_ptr<Session> s = NewSession(*Llama().model);
  const Tokenizer& t = Llama().tokenizer;
  EXPECT_THAT(std::string(Generate(*s, t, {}, {}).status().message()), HasSubstr("no tokens"));
  std::vector<int32_t> bad = {1, 600};
  EXPECT_THAT(std::string(Generate(*s, t, bad, {}).status().message()),
              HasSubstr("prompt token 1 is 600, outside the vocabulary (0..511)"));
  GenerateOptions o;
  o.sampling.top_p = -1.0f;
  EXPECT_THAT(std::string(Generate(*s, t, Prompt(), o).status().message()), HasSubstr("top_p"));
  std::vector<int32_t> too_long(200, 5);
  EXPECT_FALSE(Generate(*s, t, too_long, {}).ok());

  Loaded bert = Tiny(Arch::kBert);
  std::unique_ptr<Session> bs = NewSession(*bert.model);
  absl::StatusOr<GenerateResult> r = Generate(*bs, bert.tokenizer, bert.tokenizer.Encode("hello"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("bert model has no language-model head"));
}

}  // namespace
}  // namespace cairn::infer
