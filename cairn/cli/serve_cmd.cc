// `cairn serve`: runs the node's HTTP API (cairn/server) until SIGINT/SIGTERM,
// then stops accepting, finishes running requests and closes the stores. With
// --model it also serves the OpenAI-compatible API (cairn/server/llm_service.h).
//
// `--config node.yaml` (cairn/server/node_config.h) sets everything a node has:
// listen address, data directory, API keys, TLS, models, collections (created
// when missing) and pipelines (checked, then run alongside the server until it
// stops). Flags given on the command line win over the file.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>
#include <memory>
#include <optional>
#include <string>

#include "cairn/cli/commands.h"
#include "cairn/base/metrics.h"
#include "cairn/pipeline/pipeline_file.h"
#include "cairn/server/llm_service.h"
#include "cairn/server/node_config.h"
#include "cairn/server/server.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "spdlog/spdlog.h"

namespace cairn::cli {
namespace {

struct ModelArgs {
  std::vector<std::string> models;
  std::vector<std::string> names;
  int slots = 4;
  int ctx = 0;
  int queue = 64;
  int threads = 0;
  int prefill_chunk = 32;
  double timeout_s = 600;
  std::string chat_template;
  std::vector<std::string> api_keys;  // checked by the auth layer (auth.h)
};

struct ServeArgs {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "cairn-data";
  int http_threads = 0;
  size_t max_body_mb = 64;
  ModelArgs model;
  // --config and the TLS/metrics flags; see AddNodeConfigFlags.
  std::string config;
  bool metrics_public = false;
  std::string tls_cert;
  std::string tls_key;
  std::optional<server::NodeConfig> node;  // the loaded --config file
};

// The --config file under the flags: a value the command line gave stays.
// Returns false (after printing why) when the file cannot be used.
bool LoadNodeConfigFlag(const CLI::App& cmd, ServeArgs* args) {
  if (args->config.empty()) return true;
  absl::StatusOr<server::NodeConfig> node = server::LoadNodeConfig(args->config);
  if (!node.ok()) {
    fmt::print(stderr, "cairn serve: {}\n", std::string(node.status().message()));
    return false;
  }
  auto unset = [&cmd](const char* flag) { return cmd.count(flag) == 0; };
  if (node->listen && unset("--listen")) args->listen = *node->listen;
  if (node->data_dir && unset("--data-dir")) args->data_dir = *node->data_dir;
  if (node->threads && unset("--http-threads")) args->http_threads = *node->threads;
  if (node->max_body_mb && unset("--max-body-mb")) args->max_body_mb = *node->max_body_mb;
  if (unset("--api-key")) args->model.api_keys = node->api_keys;
  if (unset("--metrics-public")) args->metrics_public = node->metrics_public;
  if (unset("--tls-cert") && unset("--tls-key")) {
    args->tls_cert = node->tls_cert_file;
    args->tls_key = node->tls_key_file;
  }
  args->node = std::move(*node);
  return true;
}

void ApplyAuthAndTls(const ServeArgs& args, server::ServerOptions* options) {
  options->api_keys = args.model.api_keys;
  options->metrics_public = args.metrics_public;
  options->tls_cert_file = args.tls_cert;
  options->tls_key_file = args.tls_key;
}

// The config file's models as the language-model service's options.
std::vector<server::LlmModelOptions> ModelsFromConfig(const ServeArgs& args) {
  return args.node ? args.node->models : std::vector<server::LlmModelOptions>{};
}

// The pipelines of the config file, each run on its own thread until the server stops.
class NodePipelines {
 public:
  ~NodePipelines() { Stop(); }
  // Compiles every file first, so that a bad one stops the node before it serves.
  absl::Status Load(const std::vector<std::string>& paths) {
    for (const std::string& path : paths) {
      absl::StatusOr<std::unique_ptr<pipeline::CompiledPipeline>> p = pipeline::LoadPipelineFile(path);
      if (!p.ok())
        return absl::Status(p.status().code(),
                            fmt::format("pipeline '{}': {}", path, std::string(p.status().message())));
      pipelines_.push_back(std::move(*p));
    }
    return absl::OkStatus();
  }
  void Start() {
    for (auto& p : pipelines_) {
      stream::Pipeline* pipeline = &p->pipeline();
      threads_.emplace_back([pipeline] {
        const std::string name = pipeline->options().name;
        spdlog::info("cairn serve: pipeline '{}' started", name);
        absl::Status s = pipeline->Run();
        if (s.ok())
          spdlog::info("cairn serve: pipeline '{}' finished", name);
        else
          spdlog::error("cairn serve: pipeline '{}' failed: {}", name, std::string(s.message()));
      });
    }
  }
  void Stop() {
    for (auto& p : pipelines_) p->pipeline().Stop();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::unique_ptr<pipeline::CompiledPipeline>> pipelines_;
  std::vector<std::thread> threads_;
};

// What the config file adds once the server's stores are open: its collections
// (created when missing) and its pipelines (compiled here, started by the caller).
bool PrepareNode(const ServeArgs& args, server::Server& srv, NodePipelines* pipelines) {
  if (!args.node) return true;
  std::vector<std::string> created;
  if (absl::Status s = server::EnsureCollections(srv.collections(), args.node->collections, &created); !s.ok()) {
    fmt::print(stderr, "cairn serve: {}: {}\n", args.node->source, std::string(s.message()));
    return false;
  }
  for (const std::string& name : created) spdlog::info("cairn serve: created collection '{}'", name);
  if (absl::Status s = pipelines->Load(args.node->pipelines); !s.ok()) {
    fmt::print(stderr, "cairn serve: {}: {}\n", args.node->source, std::string(s.message()));
    return false;
  }
  return true;
}

// The --model flags: one LlmModelOptions per file, with the shared slot/queue settings.
void AddModelFlags(CLI::App* cmd, ModelArgs* m) {
  cmd->add_option("--model", m->models, "GGUF model to serve through the OpenAI-compatible API (repeatable)");
  cmd->add_option("--model-name", m->names, "The API's id for each --model, in order (default: the file name)");
  cmd->add_option("--slots", m->slots, "Sequences decoding together per model (continuous batching)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--ctx", m->ctx, "Tokens of context per slot (default: the model's context / slots)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--queue", m->queue, "Requests waiting beyond the slots before 429")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--threads", m->threads, "Forward-pass threads per model (0 = the hardware's, at most 8)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", m->prefill_chunk,
                  "Prompt tokens per step while other requests decode (bounds their inter-token gap)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  cmd->add_option("--timeout", m->timeout_s, "Seconds a generation request may take, waiting included")
      ->check(CLI::Range(0.001, 1e7))
      ->capture_default_str();
  cmd->add_option("--template", m->chat_template,
                  "Chat format: chatml, llama2, mistral, llama3, zephyr, phi3, gemma (default: from the model)");
  cmd->add_option("--api-key", m->api_keys, "Bearer API key clients must send (repeatable)");
}

absl::StatusOr<std::vector<server::LlmModelOptions>> ModelOptions(const ModelArgs& m) {
  if (m.names.size() > m.models.size())
    return absl::InvalidArgumentError(
        fmt::format("{} --model-name for {} --model", m.names.size(), m.models.size()));
  std::vector<server::LlmModelOptions> out;
  for (size_t i = 0; i < m.models.size(); ++i) {
    server::LlmModelOptions o;
    o.path = m.models[i];
    if (i < m.names.size()) o.name = m.names[i];
    o.slots = m.slots;
    o.ctx = m.ctx;
    o.queue = m.queue;
    o.threads = m.threads;
    o.prefill_chunk = m.prefill_chunk;
    o.timeout_s = m.timeout_s;
    o.chat_template = m.chat_template;
    out.push_back(std::move(o));
  }
  return out;
}

// "host:port", "[v6]:port", ":port" or "port" (host 127.0.0.1).
bool ParseListen(const std::string& text, std::string* host, int* port) {
  std::string port_text = text;
  *host = "127.0.0.1";
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    *host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else if (size_t colon = text.rfind(':'); colon != std::string::npos) {
    if (colon > 0) *host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 || host->empty()) return false;
  int p = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + (c - '0');
  }
  if (p > 65535) return false;
  *port = p;
  return true;
}

int Serve(const ServeArgs& args) {
  server::ServerOptions options;
  if (!ParseListen(args.listen, &options.host, &options.port)) {
    fmt::print(stderr, "cairn serve: --listen '{}' is not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, :0)\n",
               args.listen);
    return 2;
  }
  options.data_dir = args.data_dir;
  options.threads = args.http_threads;
  // Models: the --model flags, else the config file's.
  absl::StatusOr<std::vector<server::LlmModelOptions>> models =
      args.model.models.empty() ? ModelsFromConfig(args) : ModelOptions(args.model);
  if (!models.ok()) {
    fmt::print(stderr, "cairn serve: {}\n", std::string(models.status().message()));
    return 2;
  }
  // A streaming request holds a request thread while it runs: leave room for every
  // slot and queued request, or clients would wait in the accept queue instead.
  if (options.threads == 0 && !models->empty()) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    int room = 8;
    for (const server::LlmModelOptions& m : *models) room += m.slots + m.queue;
    options.threads = std::max({8, 2 * hw, room});
  }
  options.max_body_bytes = args.max_body_mb << 20;
  ApplyAuthAndTls(args, &options);

  // SIGINT/SIGTERM are blocked before any server thread exists (threads inherit
  // the mask), so only this thread receives them, in sigwait, where it may take
  // locks and stop the server normally.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::unique_ptr<server::Server>> created = server::Server::Create(options);
  if (!created.ok()) {
    fmt::print(stderr, "cairn serve: {}\n", std::string(created.status().message()));
    return 1;
  }
  server::Server& srv = **created;
  NodePipelines pipelines;
  if (!PrepareNode(args, srv, &pipelines)) return 1;
  std::unique_ptr<server::LlmService> llm;
  if (!models->empty()) {
    absl::StatusOr<std::unique_ptr<server::LlmService>> service =
        server::LlmService::Create(*std::move(models), &MetricsRegistry::Default());
    if (!service.ok()) {
      fmt::print(stderr, "cairn serve: {}\n", std::string(service.status().message()));
      return 1;
    }
    llm = std::move(*service);
    llm->SetCollections(&srv.collections());
    llm->RegisterRoutes(srv.router());
  }
  if (absl::Status s = srv.Start(); !s.ok()) {
    fmt::print(stderr, "cairn serve: {}\n", std::string(s.message()));
    return 1;
  }
  const size_t collections = srv.collections().List().size();
  // Scripts read the port from this line.
  fmt::print("cairn serve: listening on {}\n", srv.url());
  std::fflush(stdout);
  pipelines.Start();
  spdlog::info("cairn serve: data in {}, {} collection{}, {} request threads{}", options.data_dir, collections,
               collections == 1 ? "" : "s", srv.options().threads,
               llm ? fmt::format(", models: {}", fmt::join(llm->model_names(), ", ")) : std::string());

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("cairn serve: {} received, stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  // Streams in flight end first (cancelled), then the listener drains.
  if (llm) llm->Stop();
  srv.Stop();
  pipelines.Stop();
  llm.reset();
  created->reset();  // closes the stores
  spdlog::info("cairn serve: stopped");
  return 0;
}

// --config, --metrics-public, --tls-cert, --tls-key (--api-key is with the model flags).
void AddNodeConfigFlags(CLI::App* cmd, ServeArgs* args) {
  cmd->add_option("--config", args->config,
                  "Node configuration file (YAML: listen, data_dir, api_keys, tls, models, collections, pipelines); "
                  "flags given here win over it")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--metrics-public", args->metrics_public, "Serve GET /metrics without an API key");
  cmd->add_option("--tls-cert", args->tls_cert, "PEM certificate file: serve HTTPS (with --tls-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", args->tls_key, "PEM private key file of --tls-cert")->check(CLI::ExistingFile);
}

}  // namespace

void RegisterServe(CLI::App& app, Runner* run) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Run the node's HTTP API (collections, /healthz, OpenAI-compatible LLM API with --model) until Ctrl-C");
  cmd->add_option("--listen", args->listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  cmd->add_option("--data-dir", args->data_dir, "Directory of the node's stores (created when missing)")
      ->capture_default_str();
  cmd->add_option("--http-threads", args->http_threads,
                  "Request threads (0 = max(8, 2 x cores), and with --model at least slots + queue + 8)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--max-body-mb", args->max_body_mb, "Largest request body accepted, in MiB")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  AddModelFlags(cmd, &args->model);
  AddNodeConfigFlags(cmd, args.get());
  cmd->callback([run, args, cmd] {
    *run = [args, cmd] { return LoadNodeConfigFlag(*cmd, args.get()) ? Serve(*args) : 1; };
  });
}

}  // namespace cairn::cli
