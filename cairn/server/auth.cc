#include "cairn/server/auth.h"

#include <algorithm>

namespace cairn::server {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the longer length whatever the contents; a length mismatch still fails.
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  // Keep the compiler from turning the loop into an early-exit comparison.
  volatile unsigned sink = diff;
  return sink == 0;
}

bool ApiKeyAuth::Exempt(const Request& req) const {
  if (req.method != "GET" && req.method != "HEAD") return false;
  std::string_view path = req.path;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return path == "/healthz" || (metrics_public_ && path == "/metrics");
}

std::optional<std::string_view> ApiKeyAuth::BearerToken(const Request& req) {
  std::optional<std::string_view> header = req.Header("Authorization");
  if (!header) return std::nullopt;
  std::string_view h = *header;
  constexpr std::string_view kScheme = "bearer";
  if (h.size() <= kScheme.size() || h[kScheme.size()] != ' ') return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if ((h[i] | 0x20) != kScheme[i]) return std::nullopt;
  h.remove_prefix(kScheme.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  if (h.empty()) return std::nullopt;
  return h;
}

bool ApiKeyAuth::Allows(const Request& req) const {
  if (keys_.empty() || Exempt(req)) return true;
  std::optional<std::string_view> token = BearerToken(req);
  if (!token) return false;
  bool match = false;
  for (const std::string& key : keys_) match |= ConstantTimeEquals(*token, key);
  return match;
}

Response ApiKeyAuth::Reject(const Request& req) const {
  const bool has_header = req.Header("Authorization").has_value();
  const bool bearer = BearerToken(req).has_value();
  std::string_view message = !has_header ? "this server needs an API key: send the header 'Authorization: Bearer KEY'"
                             : !bearer   ? "the Authorization header is not of the form 'Bearer KEY'"
                                         : "the API key is not valid";
  Response r = Response::Error(401, kAuthentication, message);
  r.headers.emplace_back("WWW-Authenticate", bearer ? R"(Bearer realm="cairn", error="invalid_token")"
                                                    : R"(Bearer realm="cairn")");
  return r;
}

}  // namespace cairn::server
