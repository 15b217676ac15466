// `cairn serve`: runs the node's HTTP API (cairn/server) until SIGINT/SIGTERM,
// then stops accepting, finishes running requests and closes the stores.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cairn/cli/commands.h"
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
};

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
  if (absl::Status s = srv.Start(); !s.ok()) {
    fmt::print(stderr, "cairn serve: {}\n", std::string(s.message()));
    return 1;
  }
  const size_t collections = srv.collections().List().size();
  spdlog::info("cairn serve: listening on http://{} (data in {}, {} collection{}, {} threads)", srv.address(),
               options.data_dir, collections, collections == 1 ? "" : "s", srv.options().threads);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("cairn serve: {} received, stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  srv.Stop();
  created->reset();  // closes the stores
  spdlog::info("cairn serve: stopped");
  return 0;
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
  cmd->callback([run, args] { *run = [args] { return Serve(*args); }; });
}

}  // namespace cairn::cli
