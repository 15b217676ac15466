// `cairn embed -m FILE`: embedding vectors of texts.
//
//   cairn embed -m bge-small.gguf -p "pump seven is overheating"
//   cat sentences.txt | cairn embed -m bge-small.gguf --json
//
// Each text (-p, repeatable, or else each line of stdin) is tokenized, evaluated and
// pooled (the model's pooling, or --pooling) into an L2-normalized vector
// (cairn/server/model_embedder.h). Plain output is one line per text, the values
// separated by spaces; --json prints {"model", "dim", "pooling", "embeddings": [[...]]}.
// An empty text is an error naming it: skipping it would misalign the output.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cairn/cli/commands.h"
#include "cairn/cli/llm_support.h"
#include "cairn/server/model_embedder.h"

namespace cairn::cli {
namespace {

struct EmbedFlags {
  std::string model;
  std::vector<std::string> prompts;
  std::string pooling;
  bool json = false;
  int threads = DefaultThreads();
  uint32_t ctx = 0;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "cairn embed: %s\n", message.c_str());
  return 1;
}

std::vector<std::string> StdinLines() {
  std::vector<std::string> lines;
  std::string line;
  int c;
  while ((c = std::fgetc(stdin)) != EOF) {
    if (c == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(std::move(line));
      line.clear();
    } else {
      line.push_back(static_cast<char>(c));
    }
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

int RunEmbed(const EmbedFlags& f) {
  server::ModelEmbedderOptions o;
  o.n_threads = f.threads;
  o.n_ctx = f.ctx;
  o.max_sessions = 1;
  if (!f.pooling.empty()) {
    if (f.pooling == "mean") {
      o.pooling = infer::Pooling::kMean;
    } else if (f.pooling == "cls") {
      o.pooling = infer::Pooling::kCls;
    } else if (f.pooling == "last") {
      o.pooling = infer::Pooling::kLast;
    } else {
      std::fprintf(stderr, "cairn embed: unknown pooling '%s' (mean, cls or last)\n", f.pooling.c_str());
      return 2;
    }
  }
  absl::StatusOr<std::unique_ptr<server::ModelEmbedder>> embedder = server::ModelEmbedder::Load(f.model, o);
  if (!embedder.ok()) return Fail(std::string(embedder.status().message()));
  const std::vector<std::string> texts = f.prompts.empty() ? StdinLines() : f.prompts;
  if (texts.empty()) return Fail("no text to embed (give -p TEXT or lines on stdin)");

  const size_t dim = (*embedder)->dim();
  nlohmann::json all = nlohmann::json::array();
  std::vector<float> v(dim);
  std::string out;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (absl::Status st = (*embedder)->Embed(texts[i], v); !st.ok()) {
      return Fail(fmt::format("{} {}: {}", f.prompts.empty() ? "line" : "text", i + 1, std::string(st.message())));
    }
    if (f.json) {
      all.push_back(v);
    } else {
      for (size_t j = 0; j < dim; ++j) {
        if (j > 0) out += ' ';
        out += fmt::format("{:.6f}", v[j]);
      }
      out += '\n';
    }
  }
  if (f.json) {
    const infer::Pooling pooling = o.pooling.value_or((*embedder)->model().default_pooling());
    nlohmann::json j = {{"model", std::string((*embedder)->name())},
                        {"dim", dim},
                        {"pooling", infer::PoolingName(pooling)},
                        {"embeddings", std::move(all)}};
    out = j.dump() + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

void RegisterEmbed(CLI::App& app, Runner* run) {
  auto f = std::make_shared<EmbedFlags>();
  CLI::App* cmd = app.add_subcommand("embed", "Embedding vectors of texts (-p or stdin lines) with a GGUF model");
  cmd->add_option("-m,--model", f->model, "GGUF model file (an embedder such as bge, or a decoder)")->required();
  cmd->add_option("-p,--prompt", f->prompts, "Text to embed (repeatable; default: each line of stdin)");
  cmd->add_option("--pooling", f->pooling, "mean, cls or last (default: the model's, else mean)");
  cmd->add_flag("--json", f->json, "Print one JSON document");
  cmd->add_option("-t,--threads", f->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx", f->ctx, "Tokens per text at most (longer texts are cut; default: the model's context)");
  cmd->callback([run, f] { *run = [f] { return RunEmbed(*f); }; });
}

}  // namespace cairn::cli
