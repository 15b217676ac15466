// cairn/server — the node's HTTP API server (cpp-httplib underneath).
//
// A Server owns the node's stores (the vector collections under
// <data_dir>/collections, agent memory under <data_dir>/memory), a Router (router.h) with the routes of every API
// module, and the HTTP listener with its thread pool. Create() opens the stores
// and registers the built-in routes:
//   GET /healthz                              {"status": "ok"}
//   GET /metrics                              Prometheus text (version 0.0.4) of `metrics`
//   /v1/collections...                        collections_api.h
//   /v1/memory/{namespace}...                 memory_api.h
// Other modules add their routes through router() before Start().
//
// Every answer is JSON. Errors have one shape, {"error": {"message", "type"}}:
//   400 malformed JSON, a field of the wrong type or with a bad value (the
//       message names the field), 404 unknown route / collection / point,
//   405 a known path with the wrong method (Allow header lists the right ones),
//   409 a collection that already exists, 413 a body over max_body_bytes,
//   500 a handler that failed unexpectedly. No request can take the server
//   down: exceptions are caught at the handler boundary, logged, and answered 500.
//
// Auth (auth.h): with api_keys set, every route but GET /healthz (and GET /metrics
// when metrics_public) needs `Authorization: Bearer KEY`; others get 401.
// TLS: with tls_cert_file and tls_key_file (PEM) set the server speaks HTTPS only.
// Every request counts in cairn_http_requests_total{method,route,code} and
// cairn_http_request_seconds{method,route}, where route is the matched pattern
// ("/v1/collections/{name}"), or "none".
//
// Lifecycle: Create → (router().Add ...) → Start → ... → Stop (or destroy).
// Stop stops accepting, lets running requests finish, and joins the threads;
// the stores close (and persist) when the Server is destroyed.
//
// Thread-safety: Create/Start/Stop/router() from one controlling thread;
// requests are handled concurrently on `threads` pool threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/metrics.h"
#include "cairn/server/auth.h"
#include "cairn/server/router.h"
#include "cairn/memory/memory.h"
#include "cairn/vector/collection.h"

namespace httplib {
class Server;
}

namespace cairn::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                          // 0: any free port (port() tells which, after Start)
  // Request threads; 0: max(8, 2 × hardware threads). A connection holds one
  // while it is open (httplib keeps idle keep-alive connections up to 5 s), so
  // this also bounds the clients served at once; more wait in the accept queue.
  int threads = 0;
  size_t max_body_bytes = 64ull << 20;   // larger request bodies get 413
  std::string data_dir;                  // required: the node's stores live below it
  vector::CollectionOptions collections; // durability and snapshot policy of the collections
  std::vector<std::string> api_keys;     // empty: no auth
  bool metrics_public = false;           // GET /metrics without a key
  std::string tls_cert_file;             // PEM certificate (chain); with tls_key_file: HTTPS
  std::string tls_key_file;              // PEM private key
  MetricsRegistry* metrics = nullptr;    // nullptr: MetricsRegistry::Default(); must outlive the Server
};

class Server {
 public:
  // Checks the options and opens the stores (creating data_dir when missing).
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes; add before Start.
  Router& router() { return router_; }
  vector::CollectionStore& collections() { return *collections_; }
  memory::MemoryStore& memory() { return *memory_; }
  const ServerOptions& options() const { return options_; }

  // Binds host:port and starts serving; returns once requests are accepted.
  // Unavailable when the address cannot be bound.
  absl::Status Start();
  // Idempotent; see the file comment.
  void Stop();

  int port() const { return port_; }      // the bound port after Start, else 0
  std::string address() const;            // "host:port"
  bool tls() const { return !options_.tls_cert_file.empty(); }
  std::string url() const;                // "http://host:port" or "https://host:port"

 private:
  explicit Server(ServerOptions options);

  ServerOptions options_;
  Router router_;
  ApiKeyAuth auth_;
  std::unique_ptr<vector::CollectionStore> collections_;
  std::unique_ptr<memory::MemoryStore> memory_;  // <data_dir>/memory (memory_api.h)
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  int port_ = 0;
};

}  // namespace cairn::server
