// cairn/server/auth.h — bearer API keys for the node's HTTP API.
//
// With keys configured, every request must carry `Authorization: Bearer KEY` with
// one of them, except GET/HEAD /healthz (load balancers probe it) and, when
// metrics are public, GET/HEAD /metrics. Anything else is answered
//   401 {"error": {"message": "...", "type": "authentication_error"}}
// with `WWW-Authenticate: Bearer realm="cairn"`. Keys are compared in time that
// does not depend on where a guess first differs, and every key is compared, so
// the answer's timing does not tell which key came close.
//
// Thread-safety: immutable after construction.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/server/router.h"

namespace cairn::server {

inline constexpr std::string_view kAuthentication = "authentication_error";  // 401

// True when a and b hold the same bytes; the time depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class ApiKeyAuth {
 public:
  ApiKeyAuth() = default;
  ApiKeyAuth(std::vector<std::string> keys, bool metrics_public)
      : keys_(std::move(keys)), metrics_public_(metrics_public) {}

  bool enabled() const { return !keys_.empty(); }
  // Whether `req` may go on; a request the keys do not cover always may.
  bool Allows(const Request& req) const;
  // The 401 answer for a request Allows refused (its message says what was wrong).
  Response Reject(const Request& req) const;

 private:
  bool Exempt(const Request& req) const;
  // The token of "Bearer TOKEN" (scheme case-insensitive), or nullopt.
  static std::optional<std::string_view> BearerToken(const Request& req);

  std::vector<std::string> keys_;
  bool metrics_public_ = false;
};

}  // namespace cairn::server
