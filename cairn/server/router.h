// cairn/server/router.h — the routing core of the node's HTTP API.
//
// The server turns every HTTP request into a `Request`, asks the `Router` for
// the handler of its method and path, and sends the `Response` back. Nothing
// here touches sockets, so routes and handlers can be tested (and fuzzed)
// without a server.
//
// Paths are patterns of '/'-separated segments; a segment `{name}` matches any
// one non-empty segment and binds it (already percent-decoded by the server)
// as a path parameter, e.g. "/v1/collections/{name}/points/{id}". One trailing
// '/' on a request path is ignored.
//
// Dispatch answers, before any handler runs:
//   404 {"error": {"type": "not_found_error", ...}} when no pattern matches the path,
//   405 {"error": {"type": "method_not_allowed", ...}} with an Allow header when
//       patterns match the path but none for the request's method.
//
// Every error body has one shape, the one OpenAI-compatible clients expect:
//   {"error": {"message": "...", "type": "...", "param": "..."?}}
//
// Thread-safety: add every route before the server starts; afterwards Dispatch
// is const and may run on many threads at once. Handlers must be thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace cairn::server {

// The error types used in error bodies.
inline constexpr std::string_view kInvalidRequest = "invalid_request_error";  // 400
inline constexpr std::string_view kNotFound = "not_found_error";              // 404
inline constexpr std::string_view kMethodNotAllowed = "method_not_allowed";   // 405
inline constexpr std::string_view kConflict = "conflict_error";               // 409
inline constexpr std::string_view kTooLarge = "request_too_large";            // 413
inline constexpr std::string_view kUnavailable = "unavailable_error";         // 503
inline constexpr std::string_view kInternal = "internal_error";               // 500

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;     // upper case, e.g. "POST"
  std::string path;       // percent-decoded, without the query string
  std::string_view body;  // the raw body; valid while the handler runs
  Fields headers;         // as received
  Fields query;           // decoded query parameters
  Fields path_params;     // filled by the router from `{...}` segments

  // The first header / query / path parameter of that name (headers ignore case),
  // or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
  std::optional<std::string_view> Query(std::string_view name) const;
  // A path parameter the matched pattern binds (empty when the pattern has none
  // of that name, a programmer error).
  std::string_view Param(std::string_view name) const;
};

struct Response {
  int status = 200;
  nlohmann::json json;                   // the body, sent as application/json ...
  std::optional<std::string> raw_body;   // ... unless this is set (e.g. Prometheus text)
  std::string content_type;              // for raw_body and stream
  // A streamed body (server-sent events): when set, the server sends the status and
  // headers, then calls `stream` on the request's thread with a `write` function
  // that sends one piece at once (chunked transfer encoding) and returns false when
  // the client is gone; the body ends when `stream` returns. Takes precedence over
  // json and raw_body.
  using Writer = std::function<bool(std::string_view data)>;
  std::function<void(const Writer& write)> stream;
  Fields headers;                        // extra response headers

  static Response Json(nlohmann::json body, int status = 200);
  static Response Error(int status, std::string_view type, std::string_view message,
                        std::string_view param = {});
  // Maps a Status onto an error response (see StatusToHttp).
  static Response FromStatus(const absl::Status& status, std::string_view param = {});
};

// InvalidArgument/OutOfRange → 400, NotFound → 404, AlreadyExists → 409,
// FailedPrecondition/Aborted → 409, ResourceExhausted → 413 (a limit a request exceeds),
// Unavailable → 503, anything else → 500. Returns the HTTP status and the error type.
std::pair<int, std::string_view> StatusToHttp(absl::StatusCode code);

// The error type used for an HTTP status that the server itself answers.
std::string_view ErrorTypeForHttpStatus(int status);

class Router {
 public:
  using Handler = std::function<Response(const Request&)>;

  // Registers `handler` for `method` ("GET", "POST", ...) on `pattern`. Patterns
  // must start with '/'; registering the same method and pattern twice is a
  // programmer error (asserted).
  void Add(std::string_view method, std::string_view pattern, Handler handler);

  // Finds the route, binds the path parameters into req.path_params and runs
  // the handler. Answers 404/405 as described above. Exceptions from handlers
  // pass through: the server catches them at its boundary.
  Response Dispatch(Request& req) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{x}" marks a parameter
    Handler handler;
  };
  static bool Match(const Route& route, const std::vector<std::string_view>& segments, Fields* params);

  std::vector<Route> routes_;
};

}  // namespace cairn::server
