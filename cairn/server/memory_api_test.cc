#include "cairn/server/memory_api.h"

#include <gtest/gtest.h>

#include "cairn/server/testing.h"

namespace cairn::server {
namespace {

using nlohmann::json;
using testing::Reply;

class MemoryApiTest : public testing::ServerFixture {
 protected:
  void SetUp() override { StartServer(); }
};

TEST_F(MemoryApiTest, RememberRecallFactsEntitiesForget) {
  Reply r = Post("/v1/memory/ops/episodes",
                 {{"agent", "a1"}, {"content", "Alice works at Initech."}, {"time", 1700000000000}});
  ASSERT_EQ(r.status, 201) << r.raw;
  const uint64_t first = r.body["episodes"][0]["id"].get<uint64_t>();
  r = Post("/v1/memory/ops/episodes",
           {{"agent", "a1"},
            {"episodes", {{{"content", "Alice works at Globex now."}, {"time", 1700864000000}},
                          {{"content", "The Globex badge office is on floor 3."}, {"time", 1700864001000}}}}});
  ASSERT_EQ(r.status, 201) << r.raw;
  EXPECT_EQ(r.body["episodes"].size(), 2u);
  EXPECT_EQ(r.body["episodes"][0]["closed_facts"].size(), 1u);

  r = Post("/v1/memory/ops/recall", {{"agent", "a1"}, {"query", "Where does Alice work?"}, {"k", 5}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_FALSE(r.body["results"].empty());
  bool saw_fact = false;
  for (const json& x : r.body["results"]) {
    EXPECT_TRUE(x.contains("why"));
    EXPECT_TRUE(x.contains("score"));
    if (x["kind"] == "fact") {
      saw_fact = true;
      EXPECT_EQ(x["fact"]["object"], "Globex");  // only the current one
    }
  }
  EXPECT_TRUE(saw_fact);
  r = Post("/v1/memory/ops/recall",
           {{"agent", "a1"}, {"query", "Where does Alice work?"}, {"as_of", 1700000500000}, {"episodes", false}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_FALSE(r.body["results"].empty());
  EXPECT_EQ(r.body["results"][0]["fact"]["object"], "Initech");

  r = Get("/v1/memory/ops/facts?agent=a1&subject=alice&predicate=works_at&history=true");
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["facts"].size(), 2u);
  r = Get("/v1/memory/ops/facts?agent=a1&subject=alice&as_of=1700000500000");
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["facts"].size(), 1u);
  EXPECT_EQ(r.body["facts"][0]["object"], "Initech");

  r = Get("/v1/memory/ops/entities?agent=a1&prefix=glob");
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["entities"].size(), 1u);
  EXPECT_EQ(r.body["entities"][0]["name"], "Globex");

  r = Post("/v1/memory/ops/forget", {{"agent", "intruder"}, {"episode", first}});
  EXPECT_EQ(r.status, 403) << r.raw;
  r = Post("/v1/memory/ops/forget", {{"agent", "a1"}, {"episode", first}});
  ASSERT_EQ(r.status, 200) << r.raw;
  r = Post("/v1/memory/ops/forget", {{"agent", "a1"}, {"episode", first}});
  EXPECT_EQ(r.status, 404) << r.raw;
}

TEST_F(MemoryApiTest, SharedNamespacesAndBadRequests) {
  Reply r = Post("/v1/memory/swarm", {{"owner", "lead"},
                                      {"shared", true},
                                      {"grants", {{"scout", {{"read", true}, {"write", true}}},
                                                  {"viewer", {{"read", true}, {"write", false}}}}}});
  ASSERT_EQ(r.status, 201) << r.raw;
  EXPECT_EQ(r.body["grants"]["viewer"]["write"], false);
  EXPECT_EQ(Post("/v1/memory/swarm", {{"owner", "x"}}).status, 409);
  r = Post("/v1/memory/swarm/episodes", {{"agent", "scout"}, {"content", "Bridge 4 is closed for repairs."}});
  ASSERT_EQ(r.status, 201) << r.raw;
  r = Post("/v1/memory/swarm/episodes", {{"agent", "viewer"}, {"content", "x"}});
  EXPECT_EQ(r.status, 403) << r.raw;
  EXPECT_EQ(ErrorType(r), "permission_error");
  r = Post("/v1/memory/swarm/recall", {{"agent", "viewer"}, {"query", "bridge closed"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_FALSE(r.body["results"].empty());
  EXPECT_EQ(r.body["results"][0]["author"], "scout");
  EXPECT_EQ(Post("/v1/memory/swarm/recall", {{"agent", "stranger"}, {"query", "bridge"}}).status, 403);
  EXPECT_EQ(Post("/v1/memory/swarm/recall", {{"agent", "viewer"}, {"query", "bridge"}, {"k", "ten"}}).status, 400);
  EXPECT_EQ(Post("/v1/memory/swarm/episodes", {{"agent", "scout"}}).status, 400);
  EXPECT_EQ(PostRaw("/v1/memory/swarm/episodes", "{not json").status, 400);
  EXPECT_EQ(Get("/v1/memory/nowhere/facts?agent=a").status, 404);
  r = Post("/v1/memory/swarm/facts",
           {{"agent", "scout"}, {"subject", "Bridge 4"}, {"predicate", "status"}, {"object", "closed"},
            {"object_is_entity", false}});
  ASSERT_EQ(r.status, 201) << r.raw;
  EXPECT_EQ(r.body["object"], "closed");
}

}  // namespace
}  // namespace cairn::server
