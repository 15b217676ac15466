#include "cairn/connect/http_ingest.h"

#include <httplib.h>

#include <thread>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "cairn/connect/testing/dead_letter.h"
#include "cairn/connect/testing/row_printer.h"

namespace cairn::connect {
namespace {

using ::cairn::connect::testing::CollectingDeadLetter;
using ::testing::HasSubstr;
using stream::PollStatus;
using stream::Row;
using stream::SourceBatch;
using namespace std::chrono_literals;

class HttpIngestTest : public ::testing::Test {
 protected:
  void Start(HttpIngestOptions options) {
    auto s = HttpIngestSource::Create(std::move(options));
    ASSERT_TRUE(s.ok()) << s.status();
    source_ = *std::move(s);
    stream::SourceContext ctx;
    ctx.name = "sensors";
    ctx.dead_letter = &dead_letter_;
    ctx.metrics = &metrics_;
    auto st = source_->Open(ctx, std::nullopt);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_GT(source_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", source_->port());
  }
  httplib::Result Post(const std::string& body, const std::string& type = "application/x-ndjson") {
    return client_->Post(source_->path().c_str(), body, type.c_str());
  }
  std::vector<Row> PollAll(std::vector<stream::EventTime>* times = nullptr) {
    std::vector<Row> rows;
    SourceBatch<Row> batch;
    while (true) {
      batch.clear();
      auto st = source_->Poll(batch, 1000, 10ms);
      EXPECT_TRUE(st.ok());
      if (!st.ok() || *st == PollStatus::kIdle) break;
      for (auto& r : batch.records) rows.push_back(r);
      if (times) times->insert(times->end(), batch.times.begin(), batch.times.end());
    }
    return rows;
  }
  static nlohmann::json Json(const httplib::Result& res) { return nlohmann::json::parse(res->body); }

  MetricsRegistry metrics_;
  std::unique_ptr<HttpIngestSource> source_;
  std::unique_ptr<httplib::Client> client_;
  CollectingDeadLetter dead_letter_;
};

TEST_F(HttpIngestTest, JsonLinesAreQueuedAndMalformedLinesDeadLettered) {
  Start({});
  EXPECT_EQ(source_->path(), "/v1/pipelines/sensors/events");
  EXPECT_EQ(source_->guarantee(), stream::DeliveryGuarantee::kAtMostOnce);
  auto res = Post("{\"id\":1,\"t\":20.5}\n{\"id\":2}\r\n{\"id\":\n\n[1,2]\n{\"id\":3,\"s\":\"x\"}");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  auto body = Json(res);
  EXPECT_EQ(body["accepted"], 3);
  EXPECT_EQ(body["rejected"], 2);
  ASSERT_EQ(body["errors"].size(), 2u);
  EXPECT_EQ(body["errors"][0]["line"], 3);
  EXPECT_EQ(body["errors"][1]["line"], 5);
  EXPECT_FALSE(body["errors"][0]["error"].get<std::string>().empty());

  auto rows = PollAll();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (Row{{"id", int64_t{1}}, {"t", 20.5}}));
  EXPECT_EQ(rows[2], (Row{{"id", int64_t{3}}, {"s", std::string("x")}}));
  auto dl = dead_letter_.entries();
  ASSERT_EQ(dl.size(), 2u);
  EXPECT_EQ(dl[0].origin, "http:sensors:3");
  EXPECT_EQ(dl[0].raw, "{\"id\":");
  EXPECT_EQ(dl[1].origin, "http:sensors:5");
  std::string exposition = metrics_.Serialize();
  EXPECT_THAT(exposition, HasSubstr(R"(cairn_connect_records_total{connector="http",name="sensors",subtask="0"} 3)"));
  EXPECT_THAT(exposition, HasSubstr(R"(cairn_connect_rejected_total{connector="http",name="sensors",subtask="0"} 2)"));
}

TEST_F(HttpIngestTest, AJsonArrayOfObjectsIsAcceptedToo) {
  Start({});
  auto res = Post(R"( [{"id":1}, {"id":2,"nested":{"a":[1,2]}}, 5, "x"] )", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  auto body = Json(res);
  EXPECT_EQ(body["accepted"], 2);
  EXPECT_EQ(body["rejected"], 2);
  EXPECT_EQ(body["errors"][0]["element"], 3);
  EXPECT_THAT(body["errors"][0]["error"].get<std::string>(), HasSubstr("not a JSON object"));
  auto rows = PollAll();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(*rows[1].Get("id"), stream::Value(int64_t{2}));
  EXPECT_EQ(dead_letter_.rejected(), 2u);
}

TEST_F(HttpIngestTest, EventTimesComeFromTheTimeField) {
  HttpIngestOptions o;
  o.time_field = "ts";
  o.time_format = "epoch_ms";
  Start(o);
  auto res = Post("{\"ts\":1700000000123}\n{\"v\":1}\n{\"ts\":1700000000456}\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(Json(res)["accepted"], 2);
  EXPECT_THAT(Json(res)["errors"][0]["error"].get<std::string>(), HasSubstr("ts"));
  std::vector<stream::EventTime> times;
  auto rows = PollAll(&times);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(times, (std::vector<stream::EventTime>{1700000000123, 1700000000456}));
}

TEST_F(HttpIngestTest, AFullQueueAnswers429AndTakesNothing) {
  HttpIngestOptions o;
  o.queue_capacity = 3;
  o.retry_after_s = 2;
  Start(o);
  auto ok = Post("{\"a\":1}\n{\"a\":2}");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto full = Post("{\"a\":3}\n{\"a\":4}\n{bad");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 429) << full->body;
  EXPECT_EQ(full->get_header_value("Retry-After"), "2");
  EXPECT_THAT(Json(full)["error"].get<std::string>(), HasSubstr("full"));
  EXPECT_EQ(dead_letter_.rejected(), 0u);  // the client will send the bad line again

  EXPECT_EQ(PollAll().size(), 2u);  // the engine drains the queue: room again
  auto retry = Post("{\"a\":3}\n{\"a\":4}\n{bad");
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 200);
  EXPECT_EQ(dead_letter_.rejected(), 1u);
  auto rows = PollAll();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(*rows[0].Get("a"), stream::Value(int64_t{3}));

  auto too_many = Post("{}\n{}\n{}\n{}");
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->status, 413);
  EXPECT_THAT(Json(too_many)["error"].get<std::string>(), HasSubstr("split"));
}

TEST_F(HttpIngestTest, OversizedBodiesAnswer413) {
  HttpIngestOptions o;
  o.max_body_bytes = 64;
  Start(o);
  auto res = Post(std::string(200, ' ') + "{}");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  auto small = Post("{\"ok\":true}");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200);
}

TEST_F(HttpIngestTest, WrongContentAnswers400WithAMessage) {
  Start({});
  auto csv = Post("a,b\n1,2\n", "text/csv");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->status, 400);
  EXPECT_THAT(Json(csv)["error"].get<std::string>(), HasSubstr("Content-Type"));
  auto empty = Post(" \n ", "application/json");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);
  EXPECT_THAT(Json(empty)["error"].get<std::string>(), HasSubstr("empty"));
  auto broken = Post("[{\"a\":1}, {", "application/json");
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->status, 400);
  EXPECT_THAT(Json(broken)["error"].get<std::string>(), HasSubstr("not a JSON array"));
  auto charset = Post("{\"a\":1}", "application/json; charset=utf-8");
  ASSERT_TRUE(charset);
  EXPECT_EQ(charset->status, 200);

  auto other = client_->Post("/v1/pipelines/other/events", "{}", "application/json");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  EXPECT_EQ(dead_letter_.rejected(), 0u);
}

TEST_F(HttpIngestTest, ConcurrentClientsLoseNothing) {
  Start({});
  constexpr int kClients = 4, kRequests = 25, kRows = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", source_->port());
      for (int r = 0; r < kRequests; ++r) {
        std::string body;
        for (int i = 0; i < kRows; ++i) body += fmt::format("{{\"c\":{},\"r\":{},\"i\":{}}}\n", c, r, i);
        auto res = client.Post(source_->path().c_str(), body, "application/x-ndjson");
        if (!res || res->status != 200) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(PollAll().size(), static_cast<size_t>(kClients * kRequests * kRows));
}

TEST_F(HttpIngestTest, CloseStopsTheServer) {
  Start({});
  int port = source_->port();
  source_->Close();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  auto res = client.Post("/v1/pipelines/sensors/events", "{}", "application/json");
  EXPECT_FALSE(res);
}

TEST(HttpIngestAttachTest, TheRouteCanLiveOnTheCallersServer) {
  HttpIngestOptions o;
  o.serve = false;
  o.pipeline = "plant.7";
  auto source = HttpIngestSource::Create(o);
  ASSERT_TRUE(source.ok());
  httplib::Server server;
  ASSERT_TRUE(AttachHttpIngest(server, **source).ok());
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread thread([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(1ms);

  httplib::Client client("127.0.0.1", port);
  auto before = client.Post("/v1/pipelines/plant.7/events", "{\"a\":1}", "application/json");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 503);

  CollectingDeadLetter dl;
  stream::SourceContext ctx;
  ctx.name = "ingest";
  ctx.dead_letter = &dl;
  ASSERT_TRUE((*source)->Open(ctx, std::nullopt).ok());
  EXPECT_EQ((*source)->port(), 0);
  auto res = client.Post("/v1/pipelines/plant.7/events", "{\"a\":1}\n{\"a\":2}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(client.Post("/v1/pipelines/plantx7/events", "{}", "application/json")->status, 404);
  EXPECT_EQ(client.Get("/healthz")->body, "ok");
  SourceBatch<Row> batch;
  auto st = (*source)->Poll(batch, 10, 100ms);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(batch.records.size(), 2u);

  (*source)->Close();
  auto after = client.Post("/v1/pipelines/plant.7/events", "{\"a\":1}", "application/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 503);
  source->reset();  // the server outlives the source
  auto gone = client.Post("/v1/pipelines/plant.7/events", "{\"a\":1}", "application/json");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 503);
  server.stop();
  thread.join();
}

TEST(HttpIngestOptionsTest, CreateRejectsBadOptions) {
  auto make = [](auto edit) {
    HttpIngestOptions o;
    edit(o);
    return HttpIngestSource::Create(o).status();
  };
  EXPECT_TRUE(make([](HttpIngestOptions&) {}).ok());
  EXPECT_FALSE(make([](HttpIngestOptions& o) { o.pipeline = "a/b"; }).ok());
  EXPECT_FALSE(make([](HttpIngestOptions& o) { o.serve = false; }).ok());
  EXPECT_FALSE(make([](HttpIngestOptions& o) { o.port = -1; }).ok());
  EXPECT_FALSE(make([](HttpIngestOptions& o) { o.queue_capacity = 0; }).ok());

  // A taken port fails Open with a message naming it.
  HttpIngestOptions first;
  auto a = HttpIngestSource::Create(first);
  ASSERT_TRUE(a.ok());
  stream::SourceContext ctx;
  ctx.name = "p";
  ASSERT_TRUE((*a)->Open(ctx, std::nullopt).ok());
  HttpIngestOptions second;
  second.port = (*a)->port();
  auto b = HttpIngestSource::Create(second);
  ASSERT_TRUE(b.ok());
  auto st = (*b)->Open(ctx, std::nullopt);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(st.message()), HasSubstr(std::to_string(second.port)));
}

}  // namespace
}  // namespace cairn::connect
