// `cairn ask -c COLLECTION -m FILE.gguf "question"`: retrieval-augmented
// generation from the shell (cairn/server/rag.h).
//
//   cairn ask -c manuals --data-dir node-data -m qwen2.5-0.5b-instruct.gguf -k 4
//       --filter '{"field": "machine", "eq": "press-7"}' "How often is the press serviced?"
//
// Retrieves the k best passages for the question from the collection (hybrid
// search: BM25 over the points' text, plus the collection's embedder when it has
// one), puts them into the chat as numbered context with the model's template,
// streams the answer to stdout and then lists the sources by the same numbers.
// With --json it prints one object instead: {"answer", "citations", "usage"}.
// The collection store is opened directly: do not run it against a data
// directory a `cairn serve` is writing to.
// Exit codes: 0 answered, 1 failed (no such collection, model or template), 2 bad usage.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cairn/cli/commands.h"
#include "cairn/cli/llm_support.h"
#include "cairn/infer/chat_template.h"
#include "cairn/infer/generate.h"
#include "cairn/server/rag.h"
#include "cairn/vector/collection.h"
#include "nlohmann/json.hpp"

namespace cairn::cli {
namespace {

struct AskFlags {
  std::string question;
  std::string collection;
  std::string data_dir = "cairn-data";
  std::string model;
  int k = 5;
  std::string filter;
  double vector_weight = 1;
  double text_weight = 1;
  int max_tokens = 256;
  std::string system;
  std::string chat_template;
  int threads = DefaultThreads();
  uint32_t ctx = 0;
  bool json = false;
  SamplingFlags sampling;
};

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "cairn ask: %s\n", message.c_str());
  return code;
}

// One line of a passage for the sources list.
std::string Preview(const std::string& text, size_t max_chars) {
  std::string line;
  for (char c : text) line.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  if (line.size() <= max_chars) return line;
  size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return line.substr(0, cut) + "...";
}

int RunAsk(const AskFlags& f) {
  // The same options, and checks, as a chat request's "cairn": {"rag": ...}.
  nlohmann::json rag = {{"collection", f.collection},
                        {"k", f.k},
                        {"hybrid", {{"vector_weight", f.vector_weight}, {"text_weight", f.text_weight}}}};
  if (!f.filter.empty()) {
    nlohmann::json filter = nlohmann::json::parse(f.filter, nullptr, /*allow_exceptions=*/false);
    if (filter.is_discarded()) return Fail(2, fmt::format("--filter is not valid JSON: {}", f.filter));
    rag["filter"] = std::move(filter);
  }
  absl::StatusOr<server::RagOptions> options = server::ParseRagOptions(rag);
  if (!options.ok()) return Fail(2, std::string(options.status().message()));
  absl::StatusOr<infer::SamplerParams> params = SamplerParamsFrom(f.sampling);
  if (!params.ok()) return Fail(2, std::string(params.status().message()));

  const std::string dir = (std::filesystem::path(f.data_dir) / "collections").string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return Fail(1, fmt::format("no collections in '{}' (--data-dir is the directory `cairn serve` keeps them in)",
                               f.data_dir));
  absl::StatusOr<std::unique_ptr<vector::CollectionStore>> store = vector::CollectionStore::Open(dir);
  if (!store.ok()) return Fail(1, std::string(store.status().message()));
  absl::StatusOr<std::vector<server::Passage>> passages = server::Retrieve(**store, *options, f.question);
  if (!passages.ok()) return Fail(1, std::string(passages.status().message()));
  if (passages->empty())
    std::fprintf(stderr, "cairn ask: no passages in '%s' match; the model answers without context\n",
                 f.collection.c_str());

  absl::StatusOr<LoadedModel> loaded = LoadModelAndTokenizer(f.model);
  if (!loaded.ok()) return Fail(1, std::string(loaded.status().message()));
  const std::string jinja(loaded->model->file().GetString("tokenizer.chat_template").value_or(""));
  absl::StatusOr<infer::ChatTemplate> tmpl =
      infer::ChatTemplate::Select(f.chat_template, jinja, infer::ChatSpecialTokensOf(loaded->tokenizer));
  if (!tmpl.ok()) return Fail(1, std::string(tmpl.status().message()) + " with --template NAME");
  infer::ContextOptions co;
  co.n_ctx = f.ctx;
  co.n_threads = f.threads;
  absl::StatusOr<std::unique_ptr<infer::Session>> session = infer::Session::Create(*loaded->model, co);
  if (!session.ok()) return Fail(1, std::string(session.status().message()));

  std::vector<infer::ChatMessage> chat;
  if (!f.system.empty()) chat.push_back({"system", f.system});
  chat.push_back({"user", f.question});
  const std::vector<infer::ChatMessage> messages = server::WithPassages(chat, *passages);
  const std::vector<int32_t> prompt = loaded->tokenizer.Encode(tmpl->Apply(messages, /*add_generation_prompt=*/true),
                                                               /*add_special=*/true, /*parse_special=*/true);
  infer::GenerateOptions o;
  o.max_tokens = f.max_tokens;
  o.stop = tmpl->StopStrings();
  o.sampling = *params;
  if (!f.json) {
    o.on_text = [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  }
  absl::StatusOr<infer::GenerateResult> r = infer::Generate(**session, loaded->tokenizer, prompt, o);
  if (!r.ok()) return Fail(1, std::string(r.status().message()));

  if (f.json) {
    nlohmann::json out = {{"answer", r->text},
                          {"citations", server::CitationsJson(*passages)},
                          {"finish_reason", std::string(infer::FinishReasonName(r->finish))},
                          {"usage",
                           {{"prompt_tokens", r->usage.prompt_tokens},
                            {"completion_tokens", r->usage.completion_tokens}}}};
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return 0;
  }
  fmt::print("\n\nSources:\n");
  if (passages->empty()) fmt::print("(none)\n");
  for (size_t i = 0; i < passages->size(); ++i) {
    const server::Passage& p = (*passages)[i];
    fmt::print("[{}] {} (id {}, score {:.4f})\n", i + 1, Preview(p.text, 160), p.id, p.score);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

void RegisterAsk(CLI::App& app, Runner* run) {
  auto f = std::make_shared<AskFlags>();
  CLI::App* cmd = app.add_subcommand(
      "ask", "Answer a question from a collection's passages with a GGUF chat model, citing the sources");
  cmd->add_option("question", f->question, "The question")->required();
  cmd->add_option("-c,--collection", f->collection, "Collection to retrieve passages from")->required();
  cmd->add_option("--data-dir", f->data_dir, "The node's data directory (as for cairn serve)")->capture_default_str();
  cmd->add_option("-m,--model", f->model, "GGUF chat model")->required();
  cmd->add_option("-k", f->k, "Passages to retrieve (1..100)")->capture_default_str();
  cmd->add_option("--filter", f->filter, "Attribute filter, JSON as in the collections API, e.g. "
                                         "'{\"field\": \"kind\", \"eq\": \"pump\"}'");
  cmd->add_option("--vector-weight", f->vector_weight, "Hybrid search weight of the vector side")
      ->capture_default_str();
  cmd->add_option("--text-weight", f->text_weight, "Hybrid search weight of the BM25 side")->capture_default_str();
  cmd->add_option("-n,--max-tokens", f->max_tokens, "Tokens of the answer at most")->capture_default_str();
  cmd->add_option("--system", f->system, "System prompt (the passages are added to it)");
  cmd->add_option("--template", f->chat_template,
                  "Chat format: chatml, llama2, mistral, llama3, zephyr, phi3, gemma (default: from the model)");
  cmd->add_option("-t,--threads", f->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--ctx", f->ctx, "Context length in tokens (default: the model's)");
  cmd->add_flag("--json", f->json, "Print {\"answer\", \"citations\", \"usage\"} as one JSON object");
  AddSamplingFlags(cmd, &f->sampling);
  cmd->callback([run, f] { *run = [f] { return RunAsk(*f); }; });
}

}  // namespace cairn::cli
