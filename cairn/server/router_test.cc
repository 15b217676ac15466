#include "cairn/server/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/server/json_body.h"

namespace cairn::server {
namespace {

using ::testing::HasSubstr;

Request Make(std::string method, std::string path, std::string_view body = {}) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = body;
  return r;
}

std::string ErrorType(const Response& r) { return r.json["error"]["type"].get<std::string>(); }
std::string ErrorMessage(const Response& r) { return r.json["error"]["message"].get<std::string>(); }

class ServerRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/v1/things", [](const Request&) { return Response::Json({{"list", true}}); });
    router_.Add("POST", "/v1/things", [](const Request&) { return Response::Json({{"created", true}}, 201); });
    router_.Add("GET", "/v1/things/{name}/parts/{id}", [](const Request& r) {
      return Response::Json({{"name", std::string(r.Param("name"))}, {"id", std::string(r.Param("id"))}});
    });
    router_.Add("DELETE", "/v1/things/{name}", [](const Request& r) {
      return Response::Json({{"deleted", std::string(r.Param("name"))}});
    });
  }
  Router router_;
};

TEST_F(ServerRouterTest, DispatchesByMethodAndBindsParameters) {
  Request get = Make("GET", "/v1/things/pumps/parts/42");
  Response r = router_.Dispatch(get);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json["name"], "pumps");
  EXPECT_EQ(r.json["id"], "42");
  Request post = Make("POST", "/v1/things");
  EXPECT_EQ(router_.Dispatch(post).status, 201);
  Request del = Make("DELETE", "/v1/things/x");
  EXPECT_EQ(router_.Dispatch(del).json["deleted"], "x");
}

TEST_F(ServerRouterTest, IgnoresOneTrailingSlashAndAnswersHeadWithGet) {
  Request r = Make("GET", "/v1/things/");
  EXPECT_EQ(router_.Dispatch(r).json["list"], true);
  Request head = Make("HEAD", "/v1/things");
  EXPECT_EQ(router_.Dispatch(head).status, 200);
}

TEST_F(ServerRouterTest, UnknownPathIs404WithTheUniformErrorShape) {
  for (const char* path : {"/", "/v1", "/v1/things/a/parts", "/v1/things/a/parts/1/extra", "/v1/thingsx",
                           "/v1/things//parts/1", ""}) {
    Request r = Make("GET", path);
    Response res = router_.Dispatch(r);
    EXPECT_EQ(res.status, 404) << path;
    EXPECT_EQ(ErrorType(res), "not_found_error") << path;
    EXPECT_THAT(ErrorMessage(res), HasSubstr("no route for GET")) << path;
  }
}

TEST_F(ServerRouterTest, KnownPathWithWrongMethodIs405ListingTheAllowedOnes) {
  Request r = Make("PUT", "/v1/things");
  Response res = router_.Dispatch(r);
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(ErrorType(res), "method_not_allowed");
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].first, "Allow");
  EXPECT_EQ(res.headers[0].second, "GET, POST");
  Request d = Make("DELETE", "/v1/things/a/parts/1");
  EXPECT_EQ(router_.Dispatch(d).status, 405);
}

TEST(ServerResponseTest, StatusesMapOntoHttpErrors) {
  EXPECT_EQ(Response::FromStatus(absl::InvalidArgumentError("bad")).status, 400);
  EXPECT_EQ(Response::FromStatus(absl::NotFoundError("x")).status, 404);
  EXPECT_EQ(Response::FromStatus(absl::AlreadyExistsError("x")).status, 409);
  EXPECT_EQ(Response::FromStatus(absl::ResourceExhaustedError("x")).status, 413);
  EXPECT_EQ(Response::FromStatus(absl::UnavailableError("x")).status, 503);
  EXPECT_EQ(Response::FromStatus(absl::InternalError("x")).status, 500);
  Response r = Response::Error(400, kInvalidRequest, "'k' must be an integer", "k");
  EXPECT_EQ(r.json, nlohmann::json::parse(
                        R"({"error":{"message":"'k' must be an integer","type":"invalid_request_error","param":"k"}})"));
}

TEST(ServerRequestTest, HeadersIgnoreCaseQueriesDoNot) {
  Request r;
  r.headers = {{"Content-Type", "application/json"}};
  r.query = {{"limit", "5"}};
  EXPECT_EQ(r.Header("content-type").value_or(""), "application/json");
  EXPECT_FALSE(r.Header("accept").has_value());
  EXPECT_EQ(r.Query("limit").value_or(""), "5");
  EXPECT_FALSE(r.Query("LIMIT").has_value());
}

TEST(ServerJsonBodyTest, ParsesObjectsAndRefusesEverythingElseWithAReason) {
  EXPECT_TRUE(ParseJsonObject(R"({"a": 1})").ok());
  EXPECT_THAT(std::string(ParseJsonObject("").status().message()), HasSubstr("empty"));
  EXPECT_THAT(std::string(ParseJsonObject("  \n").status().message()), HasSubstr("empty"));
  absl::Status malformed = ParseJsonObject(R"({"a": 1,,})").status();
  EXPECT_EQ(malformed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(malformed.message()), HasSubstr("not valid JSON"));
  EXPECT_THAT(std::string(malformed.message()), HasSubstr("column"));
  EXPECT_THAT(std::string(ParseJsonObject("[1, 2]").status().message()), HasSubstr("got an array"));
  EXPECT_FALSE(ParseJsonObject("{\"a\": \"\xff\"}").ok());  // invalid UTF-8
  EXPECT_FALSE(ParseJsonObject("{} {}").ok());               // trailing garbage
}

TEST(ServerJsonBodyTest, RefusesDeepNestingBeforeParsing) {
  std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  absl::Status s = ParseJson(deep).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("deeper than"));
  EXPECT_EQ(JsonNestingDepth(R"({"a": "[[[[[[", "b": [[1]]})", 100), 3);
  EXPECT_EQ(JsonNestingDepth(R"(["\"[[["])", 100), 1);
  std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
}

TEST(ServerJsonBodyTest, TypedReadersNameTheField) {
  using nlohmann::json;
  EXPECT_EQ(*AsInt(json(128), "dim", 1, 1000), 128);
  EXPECT_EQ(*AsInt(json(128.0), "dim", 1, 1000), 128);
  EXPECT_THAT(std::string(AsInt(json(1.5), "dim", 1, 1000).status().message()),
              HasSubstr("'dim' must be an integer in [1, 1000], got the number 1.5"));
  EXPECT_THAT(std::string(AsInt(json("128"), "dim", 1, 1000).status().message()),
              HasSubstr("'dim' must be an integer in [1, 1000], got a string"));
  EXPECT_FALSE(AsInt(json(0), "dim", 1, 1000).ok());
  EXPECT_FALSE(AsInt(json(18446744073709551615ull), "dim", 1, 1000).ok());
  EXPECT_EQ(*AsUint64(json(18446744073709551615ull), "id"), 18446744073709551615ull);
  EXPECT_FALSE(AsUint64(json(-1), "id").ok());
  EXPECT_FALSE(AsUint64(json(1e30), "id").ok());
  absl::StatusOr<std::vector<float>> v = AsFloatVector(json::parse("[1, 2.5, -3]"), "vector");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<float>{1, 2.5f, -3}));
  EXPECT_THAT(std::string(AsFloatVector(json::parse(R"([1, "x"])"), "points[2].vector").status().message()),
              HasSubstr("'points[2].vector[1]' must be a number, got a string"));
  EXPECT_THAT(std::string(AsFloatVector(json::parse("[1, 1e300]"), "vector").status().message()),
              HasSubstr("'vector[1]' must be a finite float32"));
  EXPECT_FALSE(AsDouble(json(-0.5), "w", 0, 1).ok());
  EXPECT_THAT(std::string(RequiredString(json::object(), "", "name").status().message()),
              HasSubstr("'name' is required"));
  EXPECT_THAT(std::string(RejectUnknownFields(json{{"vectors", 1}}, "", {"vector", "k"}).message()),
              HasSubstr("unknown field 'vectors'"));
  EXPECT_EQ(Child("points[3]", "vector"), "points[3].vector");
  EXPECT_EQ(Element("points", 3), "points[3]");
}

}  // namespace
}  // namespace cairn::server
