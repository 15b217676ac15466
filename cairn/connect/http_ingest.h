// HTTP ingest: a source of Rows that clients POST to.
//
//   POST /v1/pipelines/<name>/events
//   body: JSON lines (one object per line; blank lines are skipped), or one
//         JSON array of objects. Content-Type: absent, application/json,
//         application/x-ndjson, application/jsonl (or -lines) or text/plain.
//
// Answers (always a JSON object):
//   200 {"accepted": n, "rejected": m, "errors": [{"line": 3, "error": "..."}]}
//       valid rows are queued for the pipeline; malformed ones (and rows whose
//       time field is missing or bad) go to the dead letter sink, and the
//       first `max_reported_errors` are listed ("line" for JSON lines,
//       "element" (1-based) for an array).
//   400 {"error": ...}  wrong Content-Type, an empty body, or a body that starts
//       as an array but is not valid JSON.
//   413 {"error": ...}  body over max_body_bytes, or more rows than the queue holds.
//   429 {"error": ...}  the queue has no room for the request's rows: nothing was
//       taken (no row queued, nothing dead-lettered), retry after Retry-After seconds.
//   503 {"error": ...}  the source is not open (not yet, or any more).
// A request is all or nothing for its valid rows, so a client that retries on
// 429/503 neither loses nor duplicates rows.
//
// Guarantee: at most once. A 200 means the rows are in this process's memory;
// rows accepted but not yet covered by a completed checkpoint are lost if the
// process dies, and the source cannot rewind (Position() is empty). Clients
// that need more must keep their data until the pipeline's output shows it.
//
// Hosting: with `serve` the source runs its own cpp-httplib server on
// host:port (port 0 picks a free port; port() tells which after Open).
// Otherwise the caller's server hosts it: AttachHttpIngest registers the route
// on an httplib::Server the caller owns and runs (the node's API server).
//
// Ownership: the source owns its queue and (with `serve`) its server and the
// server's thread. An attached route shares the queue, so a server may
// outlive the source: after Close the route answers 503.
// Thread-safety: Source methods are called by one engine thread at a time;
// requests are handled on the server's threads, concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cairn/base/status.h"
#include "cairn/connect/payload.h"
#include "cairn/stream/connector.h"

namespace httplib {
class Server;
}

namespace cairn::connect {

struct HttpIngestOptions {
  std::string pipeline;              // <name> in the path; empty: the source's name (ctx.name), own server only
  bool serve = true;                 // run an own server; false: see AttachHttpIngest
  std::string host = "127.0.0.1";
  int port = 0;                      // 0: any free port
  size_t max_body_bytes = 8 << 20;
  size_t queue_capacity = 100000;    // rows accepted but not yet polled
  std::string time_field;            // empty: no event times (the engine assigns them)
  std::string time_format = "auto";  // see stream::ParseEventTime
  int retry_after_s = 1;             // the Retry-After of a 429
  size_t max_reported_errors = 5;
  int server_threads = 4;            // own server only
};

class HttpIngestSource final : public stream::Source<stream::Row> {
 public:
  static absl::StatusOr<std::unique_ptr<HttpIngestSource>> Create(HttpIngestOptions options);
  ~HttpIngestSource() override;
  HttpIngestSource(const HttpIngestSource&) = delete;
  HttpIngestSource& operator=(const HttpIngestSource&) = delete;

  // With `serve`, binds and starts the server (fails when host:port is taken).
  absl::Status Open(const stream::SourceContext& ctx, std::optional<std::string> restored) override;
  absl::StatusOr<stream::PollStatus> Poll(stream::SourceBatch<stream::Row>& out, size_t max_records,
                                          std::chrono::milliseconds max_wait) override;
  std::string Position() override { return {}; }
  void Close() override;
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kAtMostOnce; }

  // The own server's port after Open (0 before, or when attached).
  int port() const { return port_; }
  // The request path, "/v1/pipelines/<name>/events" (known after Open when the
  // name comes from the context).
  std::string path() const;

  struct Shared;  // the queue and request handling, shared with the route

 private:
  friend absl::Status AttachHttpIngest(httplib::Server& server, HttpIngestSource& source);
  explicit HttpIngestSource(HttpIngestOptions options);

  HttpIngestOptions options_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<httplib::Server> server_;
  std::thread server_thread_;
  int port_ = 0;
  bool open_ = false;
};

// Registers POST /v1/pipelines/<options.pipeline>/events on `server` (which
// the caller runs; mind its payload limit too) for a source created without
// `serve`. Call it before or after Open; before Open and after Close the
// route answers 503.
absl::Status AttachHttpIngest(httplib::Server& server, HttpIngestSource& source);

}  // namespace cairn::connect
