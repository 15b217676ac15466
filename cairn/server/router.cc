#include "cairn/server/router.h"

#include <algorithm>
#include <cassert>
#include <cctype>

#include "fmt/format.h"
#include "fmt/ranges.h"

namespace cairn::server {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t start = path.empty() || path[0] != '/' ? 0 : 1;
  if (start >= path.size()) return out;  // "/" has no segments
  while (true) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool IsParam(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

std::optional<std::string_view> Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (EqualsIgnoreCase(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::optional<std::string_view> Request::Query(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::string_view Request::Param(std::string_view name) const {
  for (const auto& [k, v] : path_params)
    if (k == name) return v;
  assert(false && "the route's pattern binds no parameter of this name");
  return {};
}

Response Response::Json(nlohmann::json body, int status) {
  Response r;
  r.status = status;
  r.json = std::move(body);
  return r;
}

Response Response::Error(int status, std::string_view type, std::string_view message, std::string_view param) {
  nlohmann::json error = {{"message", std::string(message)}, {"type", std::string(type)}};
  if (!param.empty()) error["param"] = std::string(param);
  return Json(nlohmann::json{{"error", std::move(error)}}, status);
}

Response Response::FromStatus(const absl::Status& status, std::string_view param) {
  auto [http, type] = StatusToHttp(status.code());
  return Error(http, type, std::string(status.message()), param);
}

std::pair<int, std::string_view> StatusToHttp(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return {400, kInvalidRequest};
    case absl::StatusCode::kNotFound:
      return {404, kNotFound};
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return {409, kConflict};
    case absl::StatusCode::kResourceExhausted:
      return {413, kTooLarge};
    case absl::StatusCode::kUnavailable:
      return {503, kUnavailable};
    default:
      return {500, kInternal};
  }
}

std::string_view ErrorTypeForHttpStatus(int status) {
  switch (status) {
    case 404: return kNotFound;
    case 405: return kMethodNotAllowed;
    case 409: return kConflict;
    case 413: return kTooLarge;
    case 503: return kUnavailable;
    default: return status >= 500 ? kInternal : kInvalidRequest;
  }
}

void Router::Add(std::string_view method, std::string_view pattern, Handler handler) {
  assert(!pattern.empty() && pattern[0] == '/');
  Route route{std::string(method), std::string(pattern), {}, std::move(handler)};
  for (std::string_view s : SplitPath(pattern)) route.segments.emplace_back(s);
  for (const Route& r : routes_) {
    assert(!(r.method == route.method && r.segments == route.segments) && "route registered twice");
    (void)r;
  }
  routes_.push_back(std::move(route));
}

bool Router::Match(const Route& route, const std::vector<std::string_view>& segments, Fields* params) {
  if (route.segments.size() != segments.size()) return false;
  Fields bound;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& want = route.segments[i];
    if (IsParam(want)) {
      if (segments[i].empty()) return false;
      bound.emplace_back(want.substr(1, want.size() - 2), std::string(segments[i]));
    } else if (want != segments[i]) {
      return false;
    }
  }
  if (params) *params = std::move(bound);
  return true;
}

Response Router::Dispatch(Request& req) const {
  const std::vector<std::string_view> segments = SplitPath(req.path);
  // HEAD is answered by the GET handler (the server drops the body).
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
  std::vector<std::string> allowed;
  for (const Route& route : routes_) {
    if (!Match(route, segments, nullptr)) continue;
    req.route = route.pattern;
    if (route.method == method) {
      Match(route, segments, &req.path_params);
      return route.handler(req);
    }
    if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) allowed.push_back(route.method);
  }
  if (allowed.empty())
    return Response::Error(404, kNotFound, fmt::format("no route for {} {}", req.method, req.path));
  std::string allow = fmt::format("{}", fmt::join(allowed, ", "));
  Response r = Response::Error(405, kMethodNotAllowed,
                               fmt::format("{} does not accept {}; it accepts {}", req.path, req.method, allow));
  r.headers.emplace_back("Allow", allow);
  return r;
}

}  // namespace cairn::server
