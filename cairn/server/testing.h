// Test helpers: a Server on a loopback port in a temporary data directory, and
// a JSON client for it. For tests only.
#pragma once

#include <httplib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "cairn/base/temp_dir.h"
#include "cairn/server/server.h"
#include "nlohmann/json.hpp"

namespace cairn::server::testing {

// A fresh, empty directory removed at destruction.
using TempDir = ::cairn::TempDir;

struct Reply {
  int status = 0;  // 0: no answer (connection failed)
  nlohmann::json body;
  std::string raw;
  httplib::Headers headers;
};

class ServerFixture : public ::testing::Test {
 protected:
  // Starts a server on 127.0.0.1:0 over dir_ (tweak options_ first).
  void StartServer() {
    options_.data_dir = dir_.path();
    options_.collections.fsync = vector::FsyncPolicy::kNever;  // tests need no power-loss safety
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Create(options_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }
  void StopServer() { server_.reset(); }
  void TearDown() override { StopServer(); }

  std::unique_ptr<httplib::Client> NewClient() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    c->set_read_timeout(30, 0);
    return c;
  }

  static Reply Wrap(const httplib::Result& res) {
    Reply r;
    if (!res) return r;
    r.status = res->status;
    r.raw = res->body;
    r.headers = res->headers;
    if (!res->body.empty()) r.body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    return r;
  }
  Reply Get(const std::string& path) { return Wrap(NewClient()->Get(path)); }
  Reply Delete(const std::string& path) { return Wrap(NewClient()->Delete(path)); }
  Reply PostRaw(const std::string& path, const std::string& body) {
    return Wrap(NewClient()->Post(path, body, "application/json"));
  }
  Reply Post(const std::string& path, const nlohmann::json& body) { return PostRaw(path, body.dump()); }

  static std::string ErrorMessage(const Reply& r) {
    if (!r.body.is_object() || !r.body.contains("error")) return "<no error body: " + r.raw + ">";
    return r.body["error"].value("message", "");
  }
  static std::string ErrorType(const Reply& r) {
    if (!r.body.is_object() || !r.body.contains("error")) return "<no error body>";
    return r.body["error"].value("type", "");
  }

  TempDir dir_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
};

}  // namespace cairn::server::testing
