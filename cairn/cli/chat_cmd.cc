// `cairn chat -m FILE`: an interactive conversation with a chat model.
//
//   cairn chat -m qwen2.5-0.5b-instruct.gguf --system "You are terse."
//   printf 'Hello\nAnd then?\n' | cairn chat -m model.gguf --template chatml
//
// Each line read from stdin is a user turn; the reply streams to stdout, followed by
// a newline. The conversation is rendered with the model's chat template (from the
// GGUF's tokenizer.chat_template, or --template) every turn, and the session keeps
// its KV cache between turns: only what differs from the previous turn's tokens (the
// reply as re-encoded, and the new user turn) is evaluated. `/clear` starts over.
// With --timings each turn's numbers go to stderr.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cairn/cli/commands.h"
#include "cairn/cli/llm_support.h"
#include "cairn/infer/chat_template.h"
#include "cairn/infer/generate.h"

namespace cairn::cli {
namespace {

struct ChatFlags {
  std::string model;
  std::string system;
  std::string chat_template;
  SamplingFlags sampling;
  int n_predict = 512;
  int threads = DefaultThreads();
  uint32_t ctx = 0;
  bool timings = false;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "cairn chat: %s\n", message.c_str());
  return 1;
}

bool ReadLine(std::FILE* in, std::string* line) {
  line->clear();
  int c;
  while ((c = std::fgetc(in)) != EOF && c != '\n') line->push_back(static_cast<char>(c));
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return c != EOF || !line->empty();
}

int RunChat(const ChatFlags& f) {
  absl::StatusOr<infer::SamplerParams> params = SamplerParamsFrom(f.sampling);
  if (!params.ok()) return Fail(std::string(params.status().message()));
  absl::StatusOr<LoadedModel> loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
  const infer::Tokenizer& tokenizer = loaded->tokenizer;
  const std::string jinja(loaded->model->file().GetString("tokenizer.chat_template").value_or(""));
  absl::StatusOr<infer::ChatTemplate> tmpl =
      infer::ChatTemplate::Select(f.chat_template, jinja, infer::ChatSpecialTokensOf(tokenizer));
  if (!tmpl.ok()) return Fail(std::string(tmpl.status().message()) + " with --template NAME");

  infer::ContextOptions co;
  co.n_ctx = f.ctx;
  co.n_threads = f.threads;
  absl::StatusOr<std::unique_ptr<infer::Session>> session = infer::Session::Create(*loaded->model, co);
  if (!session.ok()) return Fail(std::string(session.status().message()));

  std::vector<infer::ChatMessage> messages;
  auto reset = [&] {
    messages.clear();
    if (!f.system.empty()) messages.push_back({"system", f.system});
  };
  reset();
  std::vector<int32_t> held;  // the tokens the session holds
  infer::GenerateOptions o;
  o.max_tokens = f.n_predict;
  o.stop = tmpl->StopStrings();
  o.sampling = *params;
  o.session_tokens = &held;
  o.on_text = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  const bool interactive = isatty(STDIN_FILENO) != 0;
  if (interactive) {
    fmt::print(stderr, "cairn chat: {} template, {} tokens of context; /clear starts over, Ctrl-D ends\n", tmpl->name(),
               (*session)->context().n_ctx());
  }
  int turn = 0;
  bool failed = false;
  std::string line;
  for (;;) {
    if (interactive) fmt::print(stderr, "> ");
    if (!ReadLine(stdin, &line)) break;
    if (line.empty()) continue;
    if (line == "/clear") {
      reset();
      continue;
    }
    messages.push_back({"user", line});
    const std::vector<int32_t> prompt =
        tokenizer.Encode(tmpl->Apply(messages, /*add_generation_prompt=*/true), /*add_special=*/true,
                         /*parse_special=*/true);
    // Each turn samples on from the same seed plus the turn number: a replayed
    // conversation gives the same replies.
    o.sampling.seed = params->seed + static_cast<uint64_t>(turn++);
    absl::StatusOr<infer::GenerateResult> r = infer::Generate(**session, tokenizer, prompt, o);
    if (!r.ok()) {
      messages.pop_back();
      std::fprintf(stderr, "cairn chat: %s\n", std::string(r.status().message()).c_str());
      failed = true;
      continue;
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    messages.push_back({"assistant", r->text});
    if (f.timings) fmt::print(stderr, "cairn chat: turn {}: {}\n", turn, TimingLine(*r));
  }
  return failed ? 1 : 0;
}

}  // namespace

void RegisterChat(CLI::App& app, Runner* run) {
  auto f = std::make_shared<ChatFlags>();
  CLI::App* cmd = app.add_subcommand("chat", "Chat with a GGUF model: stdin lines are user turns, replies stream out");
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("--system", f->system, "System prompt");
  cmd->add_option("--template", f->chat_template,
                  "Chat format: chatml, llama2, mistral, llama3, zephyr, phi3, gemma (default: from the model)");
  cmd->add_option("-n,--n-predict", f->n_predict, "Tokens per reply at most; -1: until the context is full")
      ->capture_default_str();
  cmd->add_option("-t,--threads", f->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx", f->ctx, "Context length in tokens (default: the model's)");
  cmd->add_flag("--timings", f->timings, "Print each turn's token counts and speeds to stderr");
  AddSamplingFlags(cmd, &f->sampling);
  cmd->callback([run, f] { *run = [f] { return RunChat(*f); }; });
}

}  // namespace cairn::cli
