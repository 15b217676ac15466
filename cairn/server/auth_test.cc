// Bearer API keys and GET /metrics on a live server.
#include "cairn/server/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/server/testing.h"

namespace cairn::server {
namespace {

using ::testing::HasSubstr;
using testing::Reply;

TEST(ConstantTimeEquals, ComparesBytesAndLengths) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("secret", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

class AuthTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    options_.api_keys = {"key-one", "key-two"};
    options_.metrics = &metrics_;
  }
  Reply GetWith(const std::string& path, const std::string& authorization) {
    return Wrap(NewClient()->Get(path, {{"Authorization", authorization}}));
  }
  MetricsRegistry metrics_;
};

TEST_F(AuthTest, EveryRouteButHealthzNeedsAKey) {
  StartServer();
  EXPECT_EQ(Get("/healthz").status, 200);

  Reply none = Get("/v1/collections");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(ErrorType(none), "authentication_error");
  EXPECT_THAT(ErrorMessage(none), HasSubstr("Authorization: Bearer"));
  ASSERT_NE(none.headers.find("WWW-Authenticate"), none.headers.end());
  EXPECT_THAT(none.headers.find("WWW-Authenticate")->second, HasSubstr("Bearer"));

  Reply wrong = GetWith("/v1/collections", "Bearer key-three");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_THAT(ErrorMessage(wrong), HasSubstr("not valid"));
  EXPECT_EQ(GetWith("/v1/collections", "Bearer key-on").status, 401);
  EXPECT_EQ(GetWith("/v1/collections", "Bearer key-one-and-more").status, 401);
  Reply basic = GetWith("/v1/collections", "Basic a2V5LW9uZQ==");
  EXPECT_EQ(basic.status, 401);
  EXPECT_THAT(ErrorMessage(basic), HasSubstr("not of the form"));

  EXPECT_EQ(GetWith("/v1/collections", "Bearer key-one").status, 200);
  EXPECT_EQ(GetWith("/v1/collections", "bearer key-two").status, 200);
  // Unknown routes are not revealed to a client without a key.
  EXPECT_EQ(Get("/v2/secret").status, 401);
  EXPECT_EQ(GetWith("/v2/secret", "Bearer key-one").status, 404);
  // Writes too.
  Reply post = Wrap(NewClient()->Post("/v1/collections", R"({"name":"d","dim":2})", "application/json"));
  EXPECT_EQ(post.status, 401);
  Reply keyed = Wrap(NewClient()->Post("/v1/collections", {{"Authorization", "Bearer key-two"}},
                                       R"({"name":"d","dim":2})", "application/json"));
  EXPECT_EQ(keyed.status, 201);
}

TEST_F(AuthTest, MetricsNeedAKeyUnlessPublic) {
  StartServer();
  EXPECT_EQ(Get("/metrics").status, 401);
  Reply m = GetWith("/metrics", "Bearer key-one");
  EXPECT_EQ(m.status, 200);
  StopServer();
  options_.metrics_public = true;
  StartServer();
  EXPECT_EQ(Get("/metrics").status, 200);
  EXPECT_EQ(Get("/v1/collections").status, 401);
}

class MetricsTest : public testing::ServerFixture {
 protected:
  void SetUp() override { options_.metrics = &metrics_; }
  MetricsRegistry metrics_;
};

TEST_F(MetricsTest, CountsRequestsByRoutePatternAndStatus) {
  StartServer();
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/v1/collections/nope").status, 404);
  EXPECT_EQ(Get("/not/a/route").status, 404);
  Reply m = Get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_THAT(m.headers.find("Content-Type")->second, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(m.raw, HasSubstr(R"(cairn_http_requests_total{code="200",method="GET",route="/healthz"} 2)"));
  // The pattern, not the path: one series however many names are asked for.
  EXPECT_THAT(m.raw,
              HasSubstr(R"(cairn_http_requests_total{code="404",method="GET",route="/v1/collections/{name}"} 1)"));
  EXPECT_THAT(m.raw, HasSubstr(R"(cairn_http_requests_total{code="404",method="GET",route="none"} 1)"));
  EXPECT_THAT(m.raw, HasSubstr(R"(cairn_http_request_seconds_count{method="GET",route="/healthz"} 2)"));
  EXPECT_THAT(m.raw, HasSubstr("# TYPE cairn_http_request_seconds histogram"));
  // Other subsystems' metrics in the same registry appear too.
  metrics_.Gauge("cairn_test_gauge", "a test gauge").Set(7);
  EXPECT_THAT(Get("/metrics").raw, HasSubstr("cairn_test_gauge 7"));
}

TEST_F(MetricsTest, BadServerOptionsAreRefused) {
  options_.data_dir = dir_.path();
  options_.api_keys = {""};
  EXPECT_FALSE(Server::Create(options_).ok());
  options_.api_keys = {};
  options_.tls_cert_file = dir_.path() + "/cert.pem";
  absl::StatusOr<std::unique_ptr<Server>> half = Server::Create(options_);
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(std::string(half.status().message()), HasSubstr("both a certificate file and a key file"));
  options_.tls_key_file = dir_.path() + "/key.pem";
  absl::StatusOr<std::unique_ptr<Server>> missing = Server::Create(options_);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("cert.pem' does not exist"));
}

}  // namespace
}  // namespace cairn::server
