// `cairn serve`: runs the node's HTTP API (cairn/server) until SIGINT/SIGTERM,
// then stops accepting, finishes running requests and closes the stores.
//
// `--config node.yaml` (cairn/server/node_config.h) sets everything a node has:
// listen address, data directory, API keys, TLS, models, collections (created
// when missing) and pipelines (checked, then run alongside the server until it
// stops). Flags given on the command line win over the file.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cairn/cli/commands.h"
#include "cairn/pipeline/pipeline_file.h"
#include "cairn/server/node_config.h"
#include "cairn/server/server.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace cairn::cli {
namespace {

struct ServeArgs {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "cairn-data";
  int threads = 0;
  size_t max_body_mb = 64;
  // --config and the auth/TLS flags; see AddNodeConfigFlags.
  std::string config;
  std::vector<std::string> api_keys;
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
  if (node->threads && unset("--threads")) args->threads = *node->threads;
  if (node->max_body_mb && unset("--max-body-mb")) args->max_body_mb = *node->max_body_mb;
  if (unset("--api-key")) args->api_keys = node->api_keys;
  if (unset("--metrics-public")) args->metrics_public = node->metrics_public;
  if (unset("--tls-cert") && unset("--tls-key")) {
    args->tls_cert = node->tls_cert_file;
    args->tls_key = node->tls_key_file;
  }
  args->node = std::move(*node);
  return true;
}

void ApplyAuthAndTls(const ServeArgs& args, server::ServerOptions* options) {
  options->api_keys = args.api_keys;
  options->metrics_public = args.metrics_public;
  options->tls_cert_file = args.tls_cert;
  options->tls_key_file = args.tls_key;
}

// The config file's models as the language-model service's options (a struct
// with the fields of server::NodeModelConfig, i.e. LlmModelOptions).
template <typename ModelOptions>
std::vector<ModelOptions> ModelsFromConfig(const ServeArgs& args) {
  std::vector<ModelOptions> out;
  if (!args.node) return out;
  for (const server::NodeModelConfig& m : args.node->models) {
    ModelOptions o;
    o.name = m.name;
    o.path = m.path;
    o.slots = m.slots;
    o.ctx = m.ctx;
    o.queue = m.queue;
    o.threads = m.threads;
    o.timeout_s = m.timeout_s;
    o.chat_template = m.chat_template;
    out.push_back(std::move(o));
  }
  return out;
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
  size_t size() const { return pipelines_.size(); }

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
  options.threads = args.threads;
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
  if (absl::Status s = srv.Start(); !s.ok()) {
    fmt::print(stderr, "cairn serve: {}\n", std::string(s.message()));
    return 1;
  }
  const size_t collections = srv.collections().List().size();
  pipelines.Start();
  spdlog::info("cairn serve: listening on {} (data in {}, {} collection{}, {} threads)", srv.url(),
               options.data_dir, collections, collections == 1 ? "" : "s", srv.options().threads);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("cairn serve: {} received, stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  srv.Stop();
  pipelines.Stop();
  created->reset();  // closes the stores
  spdlog::info("cairn serve: stopped");
  return 0;
}

// --config, --api-key, --metrics-public, --tls-cert, --tls-key.
void AddNodeConfigFlags(CLI::App* cmd, ServeArgs* args) {
  cmd->add_option("--config", args->config,
                  "Node configuration file (YAML: listen, data_dir, api_keys, tls, models, collections, pipelines); "
                  "flags given here win over it")
      ->check(CLI::ExistingFile);
  cmd->add_option("--api-key", args->api_keys,
                  "API key clients must send as 'Authorization: Bearer KEY' (repeatable; none: no auth)");
  cmd->add_flag("--metrics-public", args->metrics_public, "Serve GET /metrics without an API key");
  cmd->add_option("--tls-cert", args->tls_cert, "PEM certificate file: serve HTTPS (with --tls-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", args->tls_key, "PEM private key file of --tls-cert")->check(CLI::ExistingFile);
}

}  // namespace

void RegisterServe(CLI::App& app, Runner* run) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the node's HTTP API (collections, /healthz) until Ctrl-C");
  cmd->add_option("--listen", args->listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  cmd->add_option("--data-dir", args->data_dir, "Directory of the node's stores (created when missing)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Request threads (0 = max(8, 2 x cores))")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--max-body-mb", args->max_body_mb, "Largest request body accepted, in MiB")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  AddNodeConfigFlags(cmd, args.get());
  cmd->callback([run, args, cmd] {
    *run = [args, cmd] { return LoadNodeConfigFlag(*cmd, args.get()) ? Serve(*args) : 1; };
  });
}

}  // namespace cairn::cli
