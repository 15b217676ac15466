#include "cairn/connect/http_ingest.h"

#include <httplib.h>

#include <sys/socket.h>

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "cairn/connect/internal/bounded_queue.h"
#include "cairn/connect/internal/ingest_body.h"
#include "cairn/stream/format.h"

namespace cairn::connect {

namespace {

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

bool AcceptedContentType(std::string_view type) {
  type = Trim(type.substr(0, type.find(';')));
  std::string lower(type);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.empty() || lower == "application/json" || lower == "application/x-ndjson" ||
         lower == "application/ndjson" || lower == "application/jsonl" || lower == "application/json-lines" ||
         lower == "application/jsonlines" || lower == "application/x-jsonlines" || lower == "text/plain";
}

void Reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void ReplyError(httplib::Response& res, int status, const std::string& message) {
  Reply(res, status, nlohmann::json{{"error", message}});
}

bool ValidPipelineName(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

std::string PathOf(const std::string& pipeline) { return fmt::format("/v1/pipelines/{}/events", pipeline); }

// The route pattern (httplib matches it as a regular expression).
std::string PatternOf(const std::string& pipeline) {
  std::string escaped;
  for (char c : pipeline) {
    if (c == '.' || c == '-') escaped += '\\';
    escaped += c;
  }
  return PathOf(escaped);
}

}  // namespace

struct HttpIngestSource::Shared {
  explicit Shared(const HttpIngestOptions& o) : options(o), queue(o.queue_capacity) {
    time.field = o.time_field;
    time.format = o.time_format;
  }

  const HttpIngestOptions options;
  EventTimeField time;
  internal::BoundedQueue<internal::IngestRow> queue;
  std::string pipeline;  // set before `open` turns true
  stream::DeadLetterSink* dead_letter = nullptr;
  ConnectorCounters counters;
  std::atomic<bool> open{false};

  void Handle(const httplib::Request& req, httplib::Response& res) {
    if (!open.load(std::memory_order_acquire)) {
      ReplyError(res, 503, "this pipeline is not running; retry later");
      return;
    }
    if (req.body.size() > options.max_body_bytes) {
      ReplyError(res, 413, fmt::format("the body has {} bytes, more than the limit of {}", req.body.size(),
                                       options.max_body_bytes));
      return;
    }
    std::string content_type = req.get_header_value("Content-Type");
    if (!AcceptedContentType(content_type)) {
      ReplyError(res, 400,
                 fmt::format("Content-Type '{}' is not accepted: send JSON lines (application/x-ndjson) or a "
                             "JSON array of objects (application/json)",
                             content_type));
      return;
    }
    absl::StatusOr<internal::IngestBody> parsed = internal::ParseIngestBody(req.body, time);
    if (!parsed.ok()) {
      ReplyError(res, 400, std::string(parsed.status().message()));
      return;
    }
    std::vector<internal::IngestRow>& items = parsed->rows;
    const size_t accepted = items.size();
    if (accepted > queue.capacity()) {
      ReplyError(res, 413, fmt::format("the request holds {} rows, more than the queue holds ({}); split it",
                                       accepted, queue.capacity()));
      return;
    }
    if (accepted > 0 && !queue.TryPushAll(items)) {
      res.set_header("Retry-After", std::to_string(options.retry_after_s));
      ReplyError(res, 429, fmt::format("the pipeline's queue is full; nothing was taken, retry after {} s",
                                       options.retry_after_s));
      return;
    }
    counters.Record(accepted);
    nlohmann::json errors = nlohmann::json::array();
    for (const internal::IngestReject& b : parsed->rejects) {
      RejectRecord(dead_letter, counters, fmt::format("http:{}:{}", pipeline, b.number), b.raw,
                   absl::InvalidArgumentError(b.error));
      if (errors.size() < options.max_reported_errors)
        errors.push_back({{parsed->array ? "element" : "line", b.number}, {"error", b.error}});
    }
    Reply(res, 200, nlohmann::json{{"accepted", accepted}, {"rejected", parsed->rejects.size()}, {"errors", errors}});
  }
};

namespace {

void RegisterRoute(httplib::Server& server, std::shared_ptr<HttpIngestSource::Shared> shared,
                   const std::string& pipeline) {
  server.Post(PatternOf(pipeline), [shared](const httplib::Request& req, httplib::Response& res) {
    try {
      shared->Handle(req, res);
    } catch (const std::exception& e) {
      spdlog::error("http ingest {}: {}", shared->pipeline, e.what());
      ReplyError(res, 500, fmt::format("internal error: {}", e.what()));
    }
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpIngestSource>> HttpIngestSource::Create(HttpIngestOptions options) {
  if (!options.pipeline.empty() && !ValidPipelineName(options.pipeline))
    return absl::InvalidArgumentError(fmt::format(
        "http ingest: pipeline name '{}' may hold only letters, digits, '_', '-' and '.'", options.pipeline));
  if (!options.serve && options.pipeline.empty())
    return absl::InvalidArgumentError("http ingest: an attached source needs its pipeline name in the options");
  if (options.port < 0 || options.port > 65535)
    return absl::InvalidArgumentError(fmt::format("http ingest: port {} out of range", options.port));
  if (options.max_body_bytes == 0 || options.queue_capacity == 0 || options.server_threads <= 0)
    return absl::InvalidArgumentError("http ingest: max_body_bytes, queue_capacity and server_threads must be > 0");
  if (options.retry_after_s < 1) return absl::InvalidArgumentError("http ingest: retry_after_s must be >= 1");
  return std::unique_ptr<HttpIngestSource>(new HttpIngestSource(std::move(options)));
}

HttpIngestSource::HttpIngestSource(HttpIngestOptions options)
    : options_(std::move(options)), shared_(std::make_shared<Shared>(options_)) {
  shared_->pipeline = options_.pipeline;
}

HttpIngestSource::~HttpIngestSource() { Close(); }

std::string HttpIngestSource::path() const { return PathOf(shared_->pipeline); }

absl::Status HttpIngestSource::Open(const stream::SourceContext& ctx, std::optional<std::string> /*restored*/) {
  if (open_) return absl::FailedPreconditionError("http ingest: already open");
  if (shared_->pipeline.empty()) {
    if (!ValidPipelineName(ctx.name))
      return absl::InvalidArgumentError(
          fmt::format("http ingest: the source name '{}' cannot be a path segment; set options.pipeline", ctx.name));
    shared_->pipeline = ctx.name;
  }
  shared_->dead_letter = ctx.dead_letter;
  shared_->counters.Bind(ctx.metrics, "http", ctx.name, ctx.subtask);

  if (options_.serve) {
    auto server = std::make_unique<httplib::Server>();
    const int threads = options_.server_threads;
    server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    // httplib answers 413 itself for larger bodies, before reading them.
    server->set_payload_max_length(options_.max_body_bytes);
    // httplib's default also sets SO_REUSEPORT, which would let a second
    // process bind the same port and silently take half of the requests.
    server->set_socket_options([](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    RegisterRoute(*server, shared_, shared_->pipeline);
    int port = options_.port == 0 ? server->bind_to_any_port(options_.host)
                                  : (server->bind_to_port(options_.host, options_.port) ? options_.port : -1);
    if (port <= 0)
      return absl::UnavailableError(fmt::format("http ingest {}: cannot listen on {}:{}", shared_->pipeline,
                                                options_.host, options_.port));
    httplib::Server* raw = server.get();
    server_thread_ = std::thread([raw] { raw->listen_after_bind(); });
    // stop() only works once the accept loop runs.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!raw->is_running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    server_ = std::move(server);
    port_ = port;
    if (!raw->is_running()) {
      Close();
      return absl::InternalError(fmt::format("http ingest {}: the server did not start", shared_->pipeline));
    }
  }
  open_ = true;
  shared_->open.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<stream::PollStatus> HttpIngestSource::Poll(stream::SourceBatch<stream::Row>& out, size_t max_records,
                                                          std::chrono::milliseconds max_wait) {
  if (!open_) return absl::FailedPreconditionError("http ingest: Poll before Open (or after Close)");
  std::vector<internal::IngestRow> items;
  shared_->queue.PopUpTo(items, max_records, max_wait);
  for (internal::IngestRow& item : items) {
    out.records.push_back(std::move(item.row));
    if (shared_->time.enabled()) out.times.push_back(item.time);
  }
  return items.empty() ? stream::PollStatus::kIdle : stream::PollStatus::kRecords;
}

void HttpIngestSource::Close() {
  shared_->open.store(false, std::memory_order_release);
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
  server_.reset();
  port_ = 0;
  open_ = false;
}

absl::Status AttachHttpIngest(httplib::Server& server, HttpIngestSource& source) {
  if (source.options_.serve)
    return absl::FailedPreconditionError("http ingest: this source runs its own server (options.serve)");
  RegisterRoute(server, source.shared_, source.options_.pipeline);
  return absl::OkStatus();
}

}  // namespace cairn::connect
