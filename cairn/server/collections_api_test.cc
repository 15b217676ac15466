#include "cairn/server/collections_api.h"

#include <cmath>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cairn/server/testing.h"

namespace cairn::server {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using testing::Reply;

constexpr int kDim = 8;

std::vector<float> VectorOf(int i) {
  std::vector<float> v(kDim);
  for (int j = 0; j < kDim; ++j) v[j] = static_cast<float>(std::sin(i * 0.7 + j * 1.3) + 0.1 * j);
  return v;
}

const char* const kTexts[] = {
    "pump seven bearing overheated during the night shift",
    "valve stuck closed after the pressure spike",
    "conveyor belt torn near the packing station",
    "operator replaced the pump seal and restarted the line",
    "temperature sensor drift on the cooling loop",
};

class CollectionsApiTest : public testing::ServerFixture {
 protected:
  void SetUp() override { StartServer(); }

  Reply Create(const std::string& name, const json& extra = json::object()) {
    json body = {{"name", name}, {"dim", kDim}, {"metric", "l2"}, {"index", {{"type", "flat"}}}};
    body.update(extra);
    return Post("/v1/collections", body);
  }
  // Points 0..n-1 with vectors, kind pump/valve alternating, temp = i, and text for the first five.
  Reply UpsertRange(const std::string& name, int begin, int end) {
    json points = json::array();
    for (int i = begin; i < end; ++i) {
      json p = {{"id", i}, {"vector", VectorOf(i)}, {"attributes", {{"kind", i % 2 ? "valve" : "pump"}, {"temp", i}}}};
      if (i < 5) p["text"] = kTexts[i];
      points.push_back(p);
    }
    return Post("/v1/collections/" + name + "/points", {{"points", points}});
  }
  size_t Count(const std::string& name) { return Get("/v1/collections/" + name).body.value("count", size_t{999}); }
  std::vector<uint64_t> Ids(const Reply& search) {
    std::vector<uint64_t> ids;
    for (const json& hit : search.body["results"]) ids.push_back(hit["id"].get<uint64_t>());
    return ids;
  }
};

TEST_F(CollectionsApiTest, CreateListGetDrop) {
  Reply created = Create("docs", {{"metric", "cosine"}, {"index", {{"type", "hnsw"}, {"M", 8}, {"ef_search", 40}}}});
  ASSERT_EQ(created.status, 201) << created.raw;
  EXPECT_EQ(created.body["name"], "docs");
  EXPECT_EQ(created.body["dim"], kDim);
  EXPECT_EQ(created.body["metric"], "cosine");
  EXPECT_EQ(created.body["index"]["type"], "hnsw");
  EXPECT_EQ(created.body["index"]["M"], 8);
  EXPECT_EQ(created.body["index"]["ef_search"], 40);
  EXPECT_EQ(created.body["count"], 0);
  ASSERT_EQ(Create("alpha").status, 201);

  Reply list = Get("/v1/collections");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["collections"].size(), 2u);
  EXPECT_EQ(list.body["collections"][0]["name"], "alpha");
  EXPECT_EQ(list.body["collections"][1]["name"], "docs");

  Reply got = Get("/v1/collections/docs");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body["index"]["M"], 8);

  Reply dup = Create("docs");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(ErrorType(dup), "conflict_error");
  EXPECT_THAT(ErrorMessage(dup), HasSubstr("'docs' already exists"));

  Reply dropped = Delete("/v1/collections/docs");
  EXPECT_EQ(dropped.status, 200);
  EXPECT_EQ(dropped.body["deleted"], true);
  EXPECT_EQ(Get("/v1/collections/docs").status, 404);
  EXPECT_EQ(Delete("/v1/collections/docs").status, 404);
  EXPECT_EQ(Get("/v1/collections").body["collections"].size(), 1u);
  EXPECT_EQ(Create("docs").status, 201) << "a dropped name can be used again";
}

TEST_F(CollectionsApiTest, BadCreateRequestsName400TheField) {
  struct Case {
    std::string body;
    std::string message;
  } cases[] = {
      {R"({"name": "x", "dim": "8"})", "'dim' must be an integer"},
      {R"({"name": "x", "dim": 0})", "'dim' must be an integer in [1, 65536]"},
      {R"({"name": "x"})", "'dim' is required"},
      {R"({"dim": 8})", "'name' is required"},
      {R"({"name": 5, "dim": 8})", "'name' must be a string"},
      {R"({"name": "x", "dim": 8, "metric": "manhattan"})", "'metric' must be one of"},
      {R"({"name": "x", "dim": 8, "index": {"type": "btree"}})", "index.type"},
      {R"({"name": "x", "dim": 8, "index": {"M": -1}})", "'index.M' must be an integer"},
      {R"({"name": "x", "dim": 8, "index": {"efsearch": 5}})", "unknown field 'index.efsearch'"},
      {R"({"name": "x", "dim": 8, "dims": 8})", "unknown field 'dims'"},
      {R"({"name": "x", "dim": 8,)", "not valid JSON"},
      {R"([1, 2])", "must be a JSON object"},
      {"", "empty"},
  };
  for (const Case& c : cases) {
    Reply r = PostRaw("/v1/collections", c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_EQ(ErrorType(r), "invalid_request_error") << c.body;
    EXPECT_THAT(ErrorMessage(r), HasSubstr(c.message)) << c.body;
  }
  Reply bad_name = Create("no spaces allowed");
  EXPECT_EQ(bad_name.status, 400) << bad_name.raw;
  EXPECT_EQ(Get("/v1/collections").body["collections"].size(), 0u);
}

TEST_F(CollectionsApiTest, UpsertGetAndDeletePoints) {
  ASSERT_EQ(Create("docs").status, 201);
  Reply up = UpsertRange("docs", 0, 20);
  ASSERT_EQ(up.status, 200) << up.raw;
  EXPECT_EQ(up.body["upserted"], 20);
  EXPECT_EQ(up.body["count"], 20);

  Reply p = Get("/v1/collections/docs/points/3");
  ASSERT_EQ(p.status, 200) << p.raw;
  EXPECT_EQ(p.body["id"], 3);
  EXPECT_EQ(p.body["text"], kTexts[3]);
  EXPECT_EQ(p.body["attributes"]["kind"], "valve");
  EXPECT_EQ(p.body["attributes"]["temp"], 3);
  ASSERT_EQ(p.body["vector"].size(), static_cast<size_t>(kDim));
  EXPECT_NEAR(p.body["vector"][1].get<double>(), VectorOf(3)[1], 1e-6);

  // Upsert replaces.
  ASSERT_EQ(Post("/v1/collections/docs/points", {{"points", {{{"id", 3}, {"vector", VectorOf(100)}}}}}).status, 200);
  EXPECT_EQ(Count("docs"), 20u);
  EXPECT_NEAR(Get("/v1/collections/docs/points/3").body["vector"][0].get<double>(), VectorOf(100)[0], 1e-6);

  EXPECT_EQ(Delete("/v1/collections/docs/points/3").status, 200);
  Reply gone = Get("/v1/collections/docs/points/3");
  EXPECT_EQ(gone.status, 404);
  EXPECT_THAT(ErrorMessage(gone), HasSubstr("no point 3"));
  EXPECT_EQ(Delete("/v1/collections/docs/points/3").status, 404);
  EXPECT_EQ(Count("docs"), 19u);

  Reply bad_id = Get("/v1/collections/docs/points/abc");
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_THAT(ErrorMessage(bad_id), HasSubstr("'abc'"));
  EXPECT_EQ(Get("/v1/collections/docs/points/99999999999999999999999").status, 400);
  EXPECT_EQ(Get("/v1/collections/nope/points/1").status, 404);
}

TEST_F(CollectionsApiTest, AFailedBatchWritesNothingAndNamesThePoint) {
  ASSERT_EQ(Create("docs").status, 201);
  json good = {{"id", 1}, {"vector", VectorOf(1)}};
  struct Case {
    json bad;
    std::string message;
  } cases[] = {
      {{{"id", 2}, {"vector", std::vector<float>(kDim - 1, 1.0f)}},
       "'points[1].vector' has 7 values; collection 'docs' has dimension 8"},
      {{{"id", 2}, {"vector", {1, 2, 3, 4, 5, 6, 7, "8"}}}, "'points[1].vector[7]' must be a number"},
      {{{"id", -2}, {"vector", VectorOf(2)}}, "'points[1].id' must be an unsigned"},
      {{{"vector", VectorOf(2)}}, "'points[1].id' is required"},
      {{{"id", 1}, {"vector", VectorOf(2)}}, "repeats id 1 of points[0]"},
      {{{"id", 2}}, "'points[1]' needs a 'vector'"},
      {{{"id", 2}, {"vector", VectorOf(2)}, {"attributes", {{"bad name!", 1}}}}, "points[1].attributes"},
      {{{"id", 2}, {"vector", VectorOf(2)}, {"attributes", {{"nested", {{"a", 1}}}}}}, "points[1].attributes"},
      {{{"id", 2}, {"vector", VectorOf(2)}, {"txt", "typo"}}, "unknown field 'points[1].txt'"},
      {{{"id", 2}, {"vector", VectorOf(2)}, {"text", 7}}, "'points[1].text' must be a string"},
      {json(7), "'points[1]' must be an object"},
      // Found by the collection, not by the server's own checks: still named, still nothing written.
      {{{"id", 2}, {"vector", VectorOf(2)}, {"text", std::string((1 << 20) + 1, 'a')}}, "'points[1]' (id 2): text has"},
  };
  for (const Case& c : cases) {
    Reply r = Post("/v1/collections/docs/points", {{"points", {good, c.bad, {{"id", 3}, {"vector", VectorOf(3)}}}}});
    EXPECT_EQ(r.status, 400) << c.bad.dump();
    EXPECT_THAT(ErrorMessage(r), HasSubstr(c.message)) << c.bad.dump();
    EXPECT_EQ(Count("docs"), 0u) << c.bad.dump();
    EXPECT_EQ(Get("/v1/collections/docs/points/1").status, 404) << "nothing of a failed batch is written";
  }
  EXPECT_THAT(ErrorMessage(Post("/v1/collections/docs/points", {{"points", json::array()}})), HasSubstr("empty"));
  EXPECT_THAT(ErrorMessage(Post("/v1/collections/docs/points", {{"points", "x"}})), HasSubstr("'points' must be"));
  EXPECT_THAT(ErrorMessage(Post("/v1/collections/docs/points", json::object())), HasSubstr("'points' is required"));
  EXPECT_THAT(ErrorMessage(PostRaw("/v1/collections/docs/points", "{\"points\": [")), HasSubstr("not valid JSON"));
  Reply unknown = Post("/v1/collections/nope/points", {{"points", {good}}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(ErrorMessage(unknown), HasSubstr("collection 'nope' does not exist"));
  EXPECT_EQ(Count("docs"), 0u);
}

TEST_F(CollectionsApiTest, SearchByVectorFindsTheNearestFirst) {
  ASSERT_EQ(Create("docs").status, 201);
  ASSERT_EQ(UpsertRange("docs", 0, 50).status, 200);
  Reply r = Post("/v1/collections/docs/search", {{"vector", VectorOf(17)}, {"k", 5}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["results"].size(), 5u);
  const json& first = r.body["results"][0];
  EXPECT_EQ(first["id"], 17);
  EXPECT_NEAR(first["distance"].get<double>(), 0.0, 1e-4);
  EXPECT_EQ(first["attributes"]["temp"], 17);
  EXPECT_TRUE(r.body["took_ms"].is_number());
  double last = -1;
  for (const json& hit : r.body["results"]) {
    EXPECT_GE(hit["distance"].get<double>(), last);
    last = hit["distance"].get<double>();
  }
  // The exact answer, computed here.
  std::vector<std::pair<double, int>> all;
  for (int i = 0; i < 50; ++i) {
    double d = 0;
    for (int j = 0; j < kDim; ++j) d += std::pow(VectorOf(i)[j] - VectorOf(17)[j], 2);
    all.emplace_back(d, i);
  }
  std::sort(all.begin(), all.end());
  std::vector<uint64_t> want;
  for (int i = 0; i < 5; ++i) want.push_back(static_cast<uint64_t>(all[i].second));
  EXPECT_EQ(Ids(r), want);
}

TEST_F(CollectionsApiTest, SearchFiltersByAttributes) {
  ASSERT_EQ(Create("docs").status, 201);
  ASSERT_EQ(UpsertRange("docs", 0, 50).status, 200);
  Reply valves = Post("/v1/collections/docs/search",
                      {{"vector", VectorOf(10)}, {"k", 10}, {"filter", {{"field", "kind"}, {"eq", "valve"}}}});
  ASSERT_EQ(valves.status, 200) << valves.raw;
  ASSERT_EQ(valves.body["results"].size(), 10u);
  for (const json& hit : valves.body["results"]) EXPECT_EQ(hit["id"].get<int>() % 2, 1);

  Reply range = Post("/v1/collections/docs/search",
                     {{"vector", VectorOf(0)},
                      {"k", 50},
                      {"filter", {{"and", {{{"field", "temp"}, {"gte", 10}, {"lt", 20}},
                                           {{"field", "kind"}, {"in", {"pump"}}}}}}}});
  ASSERT_EQ(range.status, 200) << range.raw;
  std::vector<uint64_t> ids = Ids(range);
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()), (std::set<uint64_t>{10, 12, 14, 16, 18}));

  Reply bad = Post("/v1/collections/docs/search", {{"vector", VectorOf(0)}, {"filter", {{"field", "temp"}, {"gte", true}}}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(ErrorMessage(bad), HasSubstr("filter"));
  EXPECT_EQ(Post("/v1/collections/docs/search", {{"vector", VectorOf(0)}, {"filter", "kind = pump"}}).status, 400);
}

TEST_F(CollectionsApiTest, SearchByTextAndHybrid) {
  ASSERT_EQ(Create("notes", {{"metric", "cosine"}, {"dim", 64}, {"embedder", "hash"}}).status, 201);
  json points = json::array();
  for (int i = 0; i < 5; ++i) points.push_back({{"id", 100 + i}, {"text", kTexts[i]}});
  Reply up = Post("/v1/collections/notes/points", {{"points", points}});
  ASSERT_EQ(up.status, 200) << up.raw;

  // Text only: BM25 plus the embedded text on the vector side, fused.
  Reply r = Post("/v1/collections/notes/search", {{"text", "pump bearing"}, {"k", 3}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_FALSE(r.body["results"].empty());
  EXPECT_EQ(r.body["results"][0]["id"], 100);
  EXPECT_EQ(r.body["results"][0]["text"], kTexts[0]);

  // BM25 only: every hit has a bm25 score and no distance.
  Reply text_only = Post("/v1/collections/notes/search",
                         {{"text", "valve pressure"}, {"k", 3}, {"hybrid", {{"vector_weight", 0}, {"text_weight", 1}}}});
  ASSERT_EQ(text_only.status, 200) << text_only.raw;
  ASSERT_FALSE(text_only.body["results"].empty());
  EXPECT_EQ(text_only.body["results"][0]["id"], 101);
  for (const json& hit : text_only.body["results"]) {
    EXPECT_TRUE(hit.contains("bm25")) << hit.dump();
    EXPECT_FALSE(hit.contains("distance")) << hit.dump();
  }
  // Vector only: distances, no bm25.
  Reply vector_only = Post("/v1/collections/notes/search",
                           {{"text", "valve pressure"}, {"k", 3}, {"hybrid", {{"vector_weight", 1}, {"text_weight", 0}}}});
  ASSERT_EQ(vector_only.status, 200) << vector_only.raw;
  ASSERT_EQ(vector_only.body["results"].size(), 3u);
  for (const json& hit : vector_only.body["results"]) {
    EXPECT_TRUE(hit.contains("distance")) << hit.dump();
    EXPECT_FALSE(hit.contains("bm25")) << hit.dump();
  }
  Reply zero = Post("/v1/collections/notes/search",
                    {{"text", "valve"}, {"hybrid", {{"vector_weight", 0}, {"text_weight", 0}}}});
  EXPECT_EQ(zero.status, 400);
  EXPECT_THAT(ErrorMessage(zero), HasSubstr("both 0"));
}

TEST_F(CollectionsApiTest, BadSearchesName400TheField) {
  ASSERT_EQ(Create("docs").status, 201);
  ASSERT_EQ(UpsertRange("docs", 0, 10).status, 200);
  struct Case {
    json body;
    std::string message;
  } cases[] = {
      {json::object(), "needs a 'vector' or a 'text'"},
      {{{"vector", {1, 2, 3}}}, "'vector' has 3 values; collection 'docs' has dimension 8"},
      {{{"vector", VectorOf(1)}, {"k", 0}}, "'k' must be an integer in [1, 10000]"},
      {{{"vector", VectorOf(1)}, {"k", "5"}}, "'k' must be an integer"},
      {{{"vector", VectorOf(1)}, {"ef", -1}}, "'ef' must be an integer"},
      {{{"vector", VectorOf(1)}, {"hybrid", {{"vector_weight", -1}}}}, "'hybrid.vector_weight' must be a number"},
      {{{"vector", VectorOf(1)}, {"topk", 5}}, "unknown field 'topk'"},
      {{{"text", 5}}, "'text' must be a string"},
  };
  for (const Case& c : cases) {
    Reply r = Post("/v1/collections/docs/search", c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump();
    EXPECT_THAT(ErrorMessage(r), HasSubstr(c.message)) << c.body.dump();
  }
  EXPECT_EQ(Post("/v1/collections/nope/search", {{"vector", VectorOf(1)}}).status, 404);
}

TEST_F(CollectionsApiTest, ConcurrentClientsUpsertAndSearch) {
  ASSERT_EQ(Create("docs", {{"index", {{"type", "hnsw"}}}}).status, 201);
  constexpr int kThreads = 4, kBatches = 10, kPerBatch = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = NewClient();
      for (int b = 0; b < kBatches; ++b) {
        json points = json::array();
        for (int i = 0; i < kPerBatch; ++i) {
          int id = (t * kBatches + b) * kPerBatch + i;
          points.push_back({{"id", id}, {"vector", VectorOf(id)}, {"attributes", {{"writer", t}}}});
        }
        auto up = client->Post("/v1/collections/docs/points", json{{"points", points}}.dump(), "application/json");
        if (!up || up->status != 200) failures++;
        auto s = client->Post("/v1/collections/docs/search", json{{"vector", VectorOf(b)}, {"k", 5}}.dump(),
                              "application/json");
        if (!s || s->status != 200) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Count("docs"), static_cast<size_t>(kThreads * kBatches * kPerBatch));
  Reply r = Post("/v1/collections/docs/search", {{"vector", VectorOf(123)}, {"k", 1}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["results"][0]["id"], 123);
}

TEST_F(CollectionsApiTest, DataSurvivesARestart) {
  ASSERT_EQ(Create("docs").status, 201);
  ASSERT_EQ(UpsertRange("docs", 0, 30).status, 200);
  ASSERT_EQ(Delete("/v1/collections/docs/points/7").status, 200);
  StopServer();
  StartServer();
  EXPECT_EQ(Count("docs"), 29u);
  EXPECT_EQ(Get("/v1/collections/docs/points/7").status, 404);
  Reply p = Get("/v1/collections/docs/points/2");
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.body["text"], kTexts[2]);
  Reply r = Post("/v1/collections/docs/search", {{"vector", VectorOf(21)}, {"k", 1}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["results"][0]["id"], 21);
}

TEST(CollectionsApiParseTest, PointIdsFromPaths) {
  EXPECT_EQ(*ParsePointId("0"), 0u);
  EXPECT_EQ(*ParsePointId("18446744073709551615"), 18446744073709551615ull);
  EXPECT_FALSE(ParsePointId("18446744073709551616").ok());
  EXPECT_FALSE(ParsePointId("").ok());
  EXPECT_FALSE(ParsePointId("-1").ok());
  EXPECT_FALSE(ParsePointId("1e3").ok());
  EXPECT_FALSE(ParsePointId(" 1").ok());
}

TEST(CollectionsApiParseTest, CreateAcceptsTheIndexAsANameOrAnObject) {
  absl::StatusOr<vector::CollectionSettings> s =
      ParseCreateCollection(json::parse(R"({"name":"a","dim":4,"metric":"ip","index":"flat","embedder":"none"})"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->index, vector::IndexKind::kFlat);
  EXPECT_EQ(s->metric, vector::Metric::kInnerProduct);
  EXPECT_EQ(s->embedder, "none");
  s = ParseCreateCollection(
      json::parse(R"({"name":"a","dim":4,"index":{"type":"hnsw_sq8","m":12,"ef_construction":100,"ef_search":30}})"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->index, vector::IndexKind::kHnswSq8);
  EXPECT_EQ(s->hnsw.m, 12u);
  EXPECT_EQ(s->hnsw.ef_construction, 100u);
  EXPECT_EQ(s->hnsw.ef_search, 30u);
  json round = CollectionToJson(*s, 0);
  EXPECT_EQ(round["index"]["type"], "hnsw_sq8");
  EXPECT_EQ(round["metric"], "cosine");
}

TEST(CollectionsApiParseTest, UpsertWithoutVectorNeedsAnEmbedder) {
  vector::CollectionSettings settings;
  settings.name = "raw";
  settings.dim = 4;
  settings.embedder = "none";
  absl::StatusOr<std::vector<vector::Point>> p =
      ParseUpsert(json::parse(R"({"points":[{"id":1,"text":"hello"}]})"), settings);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("no embedder"));
  settings.embedder = "hash";
  p = ParseUpsert(json::parse(R"({"points":[{"id":1,"text":"hello"}]})"), settings);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)[0].text.value_or(""), "hello");
  EXPECT_TRUE((*p)[0].vector.empty());
  settings.metric = vector::Metric::kCosine;
  p = ParseUpsert(json::parse(R"({"points":[{"id":1,"vector":[0,0,0,0]}]})"), settings);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("all zeros"));
}

}  // namespace
}  // namespace cairn::server
