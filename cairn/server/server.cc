#include "cairn/server/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>

#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "cairn/server/collections_api.h"
#include "cairn/server/memory_api.h"

namespace cairn::server {

namespace {

void Send(const Request& req, const Response& r, httplib::Response& res) {
  res.status = r.status;
  for (const auto& [k, v] : r.headers) res.set_header(k, v);
  if (r.stream && req.method != "HEAD") {
    // Runs once: the whole stream is written from inside the provider, so a failed
    // write (the client went away) is seen by the producer at once.
    auto stream = r.stream;
    res.set_chunked_content_provider(
        r.content_type.empty() ? "text/event-stream" : r.content_type.c_str(),
        [stream](size_t /*offset*/, httplib::DataSink& sink) {
          bool ok = true;
          Response::Writer write = [&](std::string_view data) {
            if (!ok) return false;
            if (data.empty()) return true;
            ok = sink.write(data.data(), data.size());
            return ok;
          };
          try {
            stream(write);
          } catch (const std::exception& e) {
            spdlog::error("server: a streamed response failed: {}", e.what());
            return false;
          }
          if (!ok) return false;
          sink.done();
          return true;
        });
    return;
  }
  if (r.raw_body) {
    res.set_content(*r.raw_body, r.content_type.empty() ? "text/plain" : r.content_type.c_str());
  } else if (!r.json.is_null()) {
    // Strings in bodies come from clients (validated UTF-8) or from our own
    // messages, which may quote client bytes: replace rather than throw.
    res.set_content(r.json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                    "application/json");
  }
  if (req.method == "HEAD") res.body.clear();
}

// The boundary between httplib and the router: everything a handler throws
// ends here, is logged and becomes a 500, so one bad request cannot take the
// process down.
struct HttpContext {
  const Router* router;
  const ApiKeyAuth* auth;
  MetricsRegistry* metrics;
};

void CountRequest(MetricsRegistry& metrics, const Request& req, int status, double seconds) {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1,      2.5,   5,    10,    30,   60,  300};
  // Methods outside the routed set collapse into one label value: clients choose them.
  std::string method = req.method;
  if (method != "GET" && method != "HEAD" && method != "POST" && method != "PUT" && method != "PATCH" &&
      method != "DELETE" && method != "OPTIONS")
    method = "other";
  const std::string route = req.route.empty() ? std::string("none") : std::string(req.route);
  metrics
      .Counter("cairn_http_requests_total", "HTTP requests answered, by method, route pattern and status code",
               {{"method", method}, {"route", route}, {"code", std::to_string(status)}})
      .Increment();
  metrics
      .Histogram("cairn_http_request_seconds", "Time to handle an HTTP request, by method and route pattern",
                 kBuckets, {{"method", method}, {"route", route}})
      .Observe(seconds);
}

void HandleHttp(const HttpContext& ctx, const httplib::Request& http, httplib::Response& res) {
  const Router& router = *ctx.router;
  const auto start = std::chrono::steady_clock::now();
  Request req;
  req.method = http.method;
  req.path = http.path;
  req.body = http.body;
  req.headers.assign(http.headers.begin(), http.headers.end());
  req.query.assign(http.params.begin(), http.params.end());
  Response response;
  try {
    if (!ctx.auth->Allows(req))
      response = ctx.auth->Reject(req);
    else
      response = router.Dispatch(req);
  } catch (const std::exception& e) {
    spdlog::error("server: {} {} failed: {}", req.method, req.path, e.what());
    response = Response::Error(500, kInternal, fmt::format("internal error: {}", e.what()));
  } catch (...) {
    spdlog::error("server: {} {} failed with an unknown exception", req.method, req.path);
    response = Response::Error(500, kInternal, "internal error");
  }
  try {
    Send(req, response, res);
  } catch (const std::exception& e) {
    spdlog::error("server: {} {}: cannot encode the response: {}", req.method, req.path, e.what());
    res.status = 500;
    res.set_content(R"({"error":{"message":"internal error: cannot encode the response","type":"internal_error"}})",
                    "application/json");
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  try {
    CountRequest(*ctx.metrics, req, response.status, ms / 1000);
  } catch (const std::exception& e) {
    spdlog::error("server: cannot count a request in the metrics: {}", e.what());
  }
  if (response.status >= 500)
    spdlog::warn("server: {} {} -> {} ({:.1f} ms)", req.method, req.path, response.status, ms);
  else
    spdlog::debug("server: {} {} -> {} ({:.1f} ms)", req.method, req.path, response.status, ms);
}

// Statuses httplib answers on its own (413 over the payload limit, 400 for a
// malformed request line, 414 for a huge URI...) get the same JSON error shape.
httplib::Server::HandlerResponse FillHttplibError(size_t max_body_bytes, const httplib::Request& req,
                                                  httplib::Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours already
  std::string message;
  switch (res.status) {
    case 413:
      message = fmt::format("the request body is larger than the server's limit of {} bytes", max_body_bytes);
      break;
    case 414: message = "the request URI is too long"; break;
    case 400: message = "malformed HTTP request"; break;
    case 404: message = fmt::format("no route for {} {}", req.method, req.path); break;
    default: message = fmt::format("HTTP status {}", res.status); break;
  }
  nlohmann::json body = {{"error", {{"message", message}, {"type", ErrorTypeForHttpStatus(res.status)}}}};
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (options.port < 0 || options.port > 65535)
    return absl::InvalidArgumentError(fmt::format("server: port {} is out of range (0..65535)", options.port));
  if (options.threads < 0)
    return absl::InvalidArgumentError(fmt::format("server: threads must be >= 0, got {}", options.threads));
  if (options.max_body_bytes == 0) return absl::InvalidArgumentError("server: max_body_bytes must be > 0");
  if (options.host.empty()) return absl::InvalidArgumentError("server: host is empty");
  if (options.data_dir.empty())
    return absl::InvalidArgumentError("server: a data directory is required (where collections are stored)");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty())
    return absl::InvalidArgumentError("server: TLS needs both a certificate file and a key file");
  for (const std::string* f : {&options.tls_cert_file, &options.tls_key_file}) {
    std::error_code ec;
    if (!f->empty() && !std::filesystem::is_regular_file(*f, ec))
      return absl::NotFoundError(fmt::format("server: TLS {} file '{}' does not exist",
                                             f == &options.tls_cert_file ? "certificate" : "key", *f));
  }
  for (const std::string& key : options.api_keys)
    if (key.empty()) return absl::InvalidArgumentError("server: an API key is empty");
  if (options.metrics == nullptr) options.metrics = &MetricsRegistry::Default();
  if (options.threads == 0)
    options.threads = static_cast<int>(std::max(8u, 2 * std::max(1u, std::thread::hardware_concurrency())));

  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec)
    return absl::FailedPreconditionError(
        fmt::format("server: cannot create the data directory '{}': {}", options.data_dir, ec.message()));

  std::unique_ptr<Server> server(new Server(std::move(options)));
  const std::string collections_dir = (std::filesystem::path(server->options_.data_dir) / "collections").string();
  absl::StatusOr<std::unique_ptr<vector::CollectionStore>> store =
      vector::CollectionStore::Open(collections_dir, server->options_.collections);
  if (!store.ok())
    return absl::Status(store.status().code(),
                        fmt::format("server: cannot open the collections in '{}': {}", collections_dir,
                                    std::string(store.status().message())));
  server->collections_ = std::move(*store);

  server->auth_ = ApiKeyAuth(server->options_.api_keys, server->options_.metrics_public);
  server->router_.Add("GET", "/healthz", [](const Request&) { return Response::Json({{"status", "ok"}}); });
  MetricsRegistry* metrics = server->options_.metrics;
  server->router_.Add("GET", "/metrics", [metrics](const Request&) {
    Response r;
    r.raw_body = metrics->Serialize();
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
  AddCollectionRoutes(server->router_, *server->collections_);
  const std::string memory_dir = (std::filesystem::path(server->options_.data_dir) / "memory").string();
  absl::StatusOr<std::unique_ptr<memory::MemoryStore>> mem = memory::MemoryStore::Open(memory_dir);
  if (!mem.ok())
    return absl::Status(mem.status().code(), fmt::format("server: cannot open the memory store in '{}': {}",
                                                         memory_dir, std::string(mem.status().message())));
  server->memory_ = std::move(*mem);
  AddMemoryRoutes(server->router_, *server->memory_);
  return server;
}

Server::Server(ServerOptions options) : options_(std::move(options)) {}

Server::~Server() { Stop(); }

std::string Server::url() const { return fmt::format("{}://{}", tls() ? "https" : "http", address()); }

std::string Server::address() const {
  bool v6 = options_.host.find(':') != std::string::npos;
  return v6 ? fmt::format("[{}]:{}", options_.host, port_) : fmt::format("{}:{}", options_.host, port_);
}

absl::Status Server::Start() {
  if (http_) return absl::FailedPreconditionError("server: already started");
  std::unique_ptr<httplib::Server> http;
  if (tls()) {
    auto ssl = std::make_unique<httplib::SSLServer>(options_.tls_cert_file.c_str(), options_.tls_key_file.c_str());
    if (!ssl->is_valid())
      return absl::InvalidArgumentError(fmt::format(
          "server: cannot use the TLS certificate '{}' with the key '{}' (not PEM, unreadable, or they do not match)",
          options_.tls_cert_file, options_.tls_key_file));
    http = std::move(ssl);
  } else {
    http = std::make_unique<httplib::Server>();
  }
  const size_t threads = static_cast<size_t>(options_.threads);
  http->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // A streamed answer is many small writes (one server-sent event per token): with
  // Nagle's algorithm each waits for the ACK of the one before, which the client may
  // delay by up to 40 ms, so events would arrive late and in bunches.
  http->set_tcp_nodelay(true);
  // httplib answers 413 itself, before reading the body.
  http->set_payload_max_length(options_.max_body_bytes);
  // httplib's default also sets SO_REUSEPORT, which would let a second process
  // bind the same port and silently take half of the requests.
  http->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  const size_t max_body = options_.max_body_bytes;
  http->set_error_handler(httplib::Server::HandlerWithResponse(
      [max_body](const httplib::Request& req, httplib::Response& res) { return FillHttplibError(max_body, req, res); }));
  // Every method on every path goes to the router, which answers 404/405 itself.
  const HttpContext ctx{&router_, &auth_, options_.metrics};
  auto handler = [ctx](const httplib::Request& req, httplib::Response& res) { HandleHttp(ctx, req, res); };
  http->Get(".*", handler);
  http->Post(".*", handler);
  http->Put(".*", handler);
  http->Patch(".*", handler);
  http->Delete(".*", handler);
  http->Options(".*", handler);

  int port = options_.port == 0 ? http->bind_to_any_port(options_.host)
                                : (http->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port <= 0)
    return absl::UnavailableError(fmt::format("server: cannot listen on {}:{} (address in use, or not local?)",
                                              options_.host, options_.port));
  httplib::Server* raw = http.get();
  listener_ = std::thread([raw] { raw->listen_after_bind(); });
  // stop() only works once the accept loop runs.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!raw->is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_ = std::move(http);
  port_ = port;
  if (!raw->is_running()) {
    Stop();
    return absl::InternalError("server: the listener did not start");
  }
  return absl::OkStatus();
}

void Server::Stop() {
  if (http_) http_->stop();
  if (listener_.joinable()) listener_.join();
  http_.reset();
  port_ = 0;
}

}  // namespace cairn::server
