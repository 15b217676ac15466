#include "cairn/server/server.h"

#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/server/testing.h"

namespace cairn::server {
namespace {

using ::testing::HasSubstr;
using testing::Reply;

class ServerTest : public testing::ServerFixture {};

TEST_F(ServerTest, HealthzAnswersOnThePickedPort) {
  StartServer();
  EXPECT_NE(server_->address().find(":" + std::to_string(server_->port())), std::string::npos);
  Reply r = Get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["status"], "ok");
  auto it = r.headers.find("Content-Type");
  ASSERT_NE(it, r.headers.end());
  EXPECT_THAT(it->second, HasSubstr("application/json"));
}

TEST_F(ServerTest, UnknownRoutesAndWrongMethodsGetJsonErrors) {
  StartServer();
  Reply missing = Get("/v2/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(ErrorType(missing), "not_found_error");
  EXPECT_THAT(ErrorMessage(missing), HasSubstr("/v2/nothing"));

  Reply wrong = PostRaw("/healthz", "{}");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(ErrorType(wrong), "method_not_allowed");
  EXPECT_EQ(wrong.headers.find("Allow")->second, "GET");

  auto client = NewClient();
  Reply put = Wrap(client->Put("/v1/collections", "{}", "application/json"));
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(put.headers.find("Allow")->second, "POST, GET");
}

TEST_F(ServerTest, OversizedBodiesGet413AndTheServerGoesOn) {
  options_.max_body_bytes = 1024;
  StartServer();
  Reply big = PostRaw("/v1/collections", std::string(4096, ' ') + "{}");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(ErrorType(big), "request_too_large");
  EXPECT_THAT(ErrorMessage(big), HasSubstr("1024 bytes"));
  EXPECT_EQ(Get("/healthz").status, 200);
  // A body within the limit reaches the handler (which refuses it for its own reasons).
  Reply small = PostRaw("/v1/collections", "{}");
  EXPECT_EQ(small.status, 400);
}

TEST_F(ServerTest, AThrowingHandlerBecomesA500AndTheServerSurvives) {
  options_.threads = 2;
  options_.data_dir = dir_.path();
  absl::StatusOr<std::unique_ptr<Server>> s = Server::Create(options_);
  ASSERT_TRUE(s.ok());
  server_ = std::move(*s);
  server_->router().Add("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("kaboom"); });
  server_->router().Add("GET", "/boom2", [](const Request&) -> Response { throw 42; });
  ASSERT_TRUE(server_->Start().ok());
  for (int i = 0; i < 5; ++i) {  // more than the pool's threads: none may be lost
    Reply r = Get("/boom");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(ErrorType(r), "internal_error");
    EXPECT_THAT(ErrorMessage(r), HasSubstr("kaboom"));
    EXPECT_EQ(Get("/boom2").status, 500);
  }
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(ServerTest, ATakenPortIsAClearErrorAndStopIsIdempotent) {
  StartServer();
  ServerOptions o;
  o.data_dir = dir_.path() + "/other";
  o.port = server_->port();
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Create(o);
  ASSERT_TRUE(second.ok());
  absl::Status s = (*second)->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::to_string(server_->port())));
  server_->Stop();
  server_->Stop();
  EXPECT_EQ(server_->port(), 0);
  EXPECT_EQ(Get("/healthz").status, 0) << "nothing listens after Stop";
}

TEST_F(ServerTest, OptionsAreChecked) {
  ServerOptions o;
  EXPECT_THAT(std::string(Server::Create(o).status().message()), HasSubstr("data directory"));
  o.data_dir = dir_.path();
  o.port = 70000;
  EXPECT_FALSE(Server::Create(o).ok());
  o.port = 0;
  o.max_body_bytes = 0;
  EXPECT_FALSE(Server::Create(o).ok());
}

TEST_F(ServerTest, MalformedHttpGetsAJsonError) {
  StartServer();
  // A request httplib refuses itself (its URI limit) still gets the JSON error shape.
  httplib::Client client("127.0.0.1", server_->port());
  httplib::Request req;
  req.method = "GET";
  req.path = "/v1/collections/" + std::string(20000, 'a');  // longer than httplib's URI limit
  httplib::Result res = client.send(req);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 414);
  nlohmann::json body = nlohmann::json::parse(res->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << res->body;
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("URI is too long"));
  EXPECT_EQ(Get("/healthz").status, 200);
}

}  // namespace
}  // namespace cairn::server
