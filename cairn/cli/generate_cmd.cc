// `cairn generate -m FILE -p TEXT`: complete a prompt with a language model.
//
//   cairn generate -m smollm2.gguf -p "The capital of France is" --temp 0 --n-predict 16
//
// The completion streams to stdout as it is generated (the prompt is not repeated),
// followed by a newline; the timings and the seed go to stderr. The prompt is
// encoded with the model's BOS and with control-token strings ("<|im_start|>")
// turned into their tokens, as llama.cpp does. Without -p the prompt is read from
// stdin.
//
// --json makes the completion a JSON object, --json-schema FILE a JSON value matching
// the schema in FILE (constrained decoding: see cairn/infer/constraint.h); the
// generation then ends as soon as the value is complete.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cairn/cli/commands.h"
#include "cairn/cli/llm_support.h"
#include "cairn/infer/constraint.h"
#include "cairn/infer/generate.h"

namespace cairn::cli {
namespace {

struct GenerateFlags {
  std::string model;
  std::string prompt;
  bool has_prompt = false;
  SamplingFlags sampling;
  int n_predict = 256;
  int threads = DefaultThreads();
  uint32_t ctx = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool json = false;
  std::string json_schema;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "cairn generate: %s\n", message.c_str());
  return 1;
}

std::string ReadAll(std::FILE* in) {
  std::string text;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), in)) > 0;) text.append(buf, n);
  return text;
}

// The schema --json-schema names, or null for --json.
absl::StatusOr<nlohmann::json> ReadSchema(const std::string& path) {
  if (path.empty()) return nlohmann::json();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot read the schema file {}", path));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json schema = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return absl::InvalidArgumentError(fmt::format("{} is not valid JSON", path));
  return schema;
}

int RunGenerate(const GenerateFlags& f) {
  absl::StatusOr<infer::SamplerParams> params = SamplerParamsFrom(f.sampling);
  if (!params.ok()) return Fail(std::string(params.status().message()));
  const bool constrained = f.json || !f.json_schema.empty();
  absl::StatusOr<nlohmann::json> schema = ReadSchema(f.json_schema);
  if (!schema.ok()) return Fail(std::string(schema.status().message()));
  absl::StatusOr<LoadedModel> loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
  std::unique_ptr<infer::TokenConstraint> constraint;
  if (constrained) {
    absl::StatusOr<std::unique_ptr<infer::TokenConstraint>> c = infer::MakeJsonConstraint(loaded->tokenizer, *schema);
    if (!c.ok()) return Fail(std::string(c.status().message()));
    constraint = *std::move(c);
  }
  const std::string prompt = f.has_prompt ? f.prompt : ReadAll(stdin);
  const std::vector<int32_t> tokens =
      loaded->tokenizer.Encode(prompt, /*add_special=*/true, /*parse_special=*/true);

  infer::ContextOptions co;
  co.n_ctx = f.ctx;
  co.n_threads = f.threads;
  absl::StatusOr<std::unique_ptr<infer::Session>> session = infer::Session::Create(*loaded->model, co);
  if (!session.ok()) return Fail(std::string(session.status().message()));

  infer::GenerateOptions o;
  o.max_tokens = f.n_predict;
  o.stop = f.stop;
  o.sampling = *params;
  o.ignore_eos = f.ignore_eos;
  o.constraint = constraint.get();
  o.on_text = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  absl::StatusOr<infer::GenerateResult> r = infer::Generate(**session, loaded->tokenizer, tokens, o);
  if (!r.ok()) return Fail(std::string(r.status().message()));
  std::fputc('\n', stdout);
  std::fflush(stdout);
  fmt::print(stderr, "cairn generate: {} | seed {} | threads {}\n", TimingLine(*r), params->seed, f.threads);
  return 0;
}

}  // namespace

void RegisterGenerate(CLI::App& app, Runner* run) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "Complete a prompt with a GGUF language model (streams to stdout)");
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", f->prompt, "Prompt text (default: read stdin)")
      ->each([f](const std::string&) { f->has_prompt = true; });
  cmd->add_option("-n,--n-predict", f->n_predict, "Tokens to generate at most; -1: until the context is full")
      ->capture_default_str();
  cmd->add_option("-t,--threads", f->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx", f->ctx, "Context length in tokens (default: the model's)");
  cmd->add_option("--stop", f->stop, "Stop when the text contains this string (repeatable; not printed)");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "Keep generating past end-of-text tokens");
  cmd->add_flag("--json", f->json, "Constrain the completion to a JSON object");
  cmd->add_option("--json-schema", f->json_schema, "Constrain the completion to JSON matching this JSON Schema file")
      ->excludes("--json");
  AddSamplingFlags(cmd, &f->sampling);
  cmd->callback([run, f] { *run = [f] { return RunGenerate(*f); }; });
}

}  // namespace cairn::cli
