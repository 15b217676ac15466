#include "cairn/server/loadgen.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace cairn::server {
namespace {

std::vector<std::string> ParseAll(const std::string& text, size_t piece) {
  std::vector<std::string> out;
  SseParser p;
  auto on = [&](std::string_view d) { out.emplace_back(d); };
  for (size_t i = 0; i < text.size(); i += piece) p.Feed(std::string_view(text).substr(i, piece), on);
  p.Finish(on);
  return out;
}

TEST(SseParser, EventsSplitAnywhereGiveTheSameData) {
  const std::string text = "data: {\"a\":1}\n\n: keep-alive\n\ndata:x\r\n\r\ndata: one\ndata: two\nevent: e\nid: 3\n\ndata: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "x", "one\ntwo", "[DONE]"};
  for (size_t piece = 1; piece <= text.size(); ++piece) EXPECT_EQ(ParseAll(text, piece), want) << "piece " << piece;
}

TEST(SseParser, CrOnlyLineEndsAndAnUnterminatedLastEvent) {
  EXPECT_EQ(ParseAll("data: a\r\rdata: b", 3), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ParseAll("\n\n: only a comment\n\n", 1).empty());
}

TEST(Percentile, InterpolatesBetweenRanks) {
  EXPECT_EQ(Percentile({}, 0.5), 0);
  EXPECT_EQ(Percentile({7}, 0.99), 7);
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4, 5}, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4, 5}, 1), 5);
  std::vector<double> v;
  for (int i = 1; i <= 101; ++i) v.push_back(i);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.99), 100);
}

TEST(ChatRequestBody, SharedSystemPromptDistinctUserMessagesSeeded) {
  LoadOptions o;
  o.model = "m";
  o.prompt_tokens = 40;
  o.max_tokens = 9;
  o.seed = 5;
  std::set<std::string> systems, users;
  for (int c = 0; c < 3; ++c) {
    for (int r = 0; r < 3; ++r) {
      const nlohmann::json j = nlohmann::json::parse(ChatRequestBody(o, c, r));
      EXPECT_EQ(j["model"], "m");
      EXPECT_EQ(j["max_tokens"], 9);
      EXPECT_EQ(j["stream"], true);
      EXPECT_EQ(j["stream_options"]["include_usage"], true);
      ASSERT_EQ(j["messages"].size(), 2u);
      systems.insert(j["messages"][0]["content"]);
      users.insert(j["messages"][1]["content"]);
      EXPECT_EQ(ChatRequestBody(o, c, r), j.dump());  // the same every time
    }
  }
  EXPECT_EQ(systems.size(), 1u);
  EXPECT_EQ(users.size(), 9u);
  const std::string system = *systems.begin();
  EXPECT_GT(std::count(system.begin(), system.end(), ' '), 15);  // about half of 40 words
  o.seed = 6;
  EXPECT_NE(nlohmann::json::parse(ChatRequestBody(o, 0, 0))["messages"][0]["content"], system);
}

// A stand-in for an OpenAI-compatible server that streams kTokens content chunks
// with known delays: kFirst before the first, kGap between the others.
class FakeServer {
 public:
  static constexpr int kTokens = 5;
  static constexpr auto kFirst = std::chrono::milliseconds(60);
  static constexpr auto kGap = std::chrono::milliseconds(10);

  FakeServer() {
    srv_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"m1","object":"model"},{"id":"m2","object":"model"}]})",
                      "application/json");
    });
    srv_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      {
        std::lock_guard<std::mutex> lock(mu_);
        bodies_.push_back(body);
        auth_.push_back(req.get_header_value("Authorization"));
      }
      const std::string model = body.is_object() ? body.value("model", "") : "";
      if (model == "busy") {
        res.status = 429;
        res.set_header("Retry-After", "1");
        res.set_content(R"({"error":{"message":"queue full","type":"rate_limit"}})", "application/json");
        return;
      }
      const bool truncated = model == "truncated";
      res.set_chunked_content_provider("text/event-stream", [truncated](size_t, httplib::DataSink& sink) {
        auto event = [&](const nlohmann::json& j) {
          const std::string e = "data: " + j.dump() + "\n\n";
          sink.write(e.data(), e.size());
        };
        auto chunk = [](nlohmann::json delta, nlohmann::json finish) {
          return nlohmann::json{{"object", "chat.completion.chunk"},
                                {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}};
        };
        event(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
        for (int i = 0; i < kTokens; ++i) {
          std::this_thread::sleep_for(i == 0 ? kFirst : kGap);
          std::string text = "t";  // (not "t" + to_string: GCC 12's -Wrestrict misfires on it at -O3)
          text += std::to_string(i);
          event(chunk({{"content", text}}, nullptr));
        }
        if (!truncated) {
          event(chunk(nlohmann::json::object(), "length"));
          event({{"object", "chat.completion.chunk"},
                 {"choices", nlohmann::json::array()},
                 {"usage", {{"prompt_tokens", 3}, {"completion_tokens", kTokens}, {"total_tokens", 3 + kTokens}}}});
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
        }
        sink.done();
        return true;
      });
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    while (!srv_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    srv_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<nlohmann::json> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::vector<std::string> auth() {
    std::lock_guard<std::mutex> lock(mu_);
    return auth_;
  }

 private:
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<nlohmann::json> bodies_;
  std::vector<std::string> auth_;
};

LoadOptions Options(const FakeServer& s, int clients, int requests) {
  LoadOptions o;
  o.base_url = s.url();
  o.model = "m1";
  o.clients = clients;
  o.requests_per_client = requests;
  o.max_tokens = FakeServer::kTokens;
  o.prompt_tokens = 16;
  o.timeout_s = 30;
  return o;
}

TEST(RunLoad, MeasuresTheKnownTimingOfAStreamingServer) {
  FakeServer server;
  LoadOptions o = Options(server, 3, 2);
  o.api_key = "k3y";
  std::atomic<int> progress_calls{0};
  o.progress = [&](int done, int total) {
    EXPECT_EQ(total, 6);
    EXPECT_GE(done, 1);
    ++progress_calls;
  };
  absl::StatusOr<LoadResult> r = RunLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(progress_calls.load(), 6);
  EXPECT_EQ(r->requests, 6);
  EXPECT_EQ(r->ok, 6);
  EXPECT_TRUE(r->errors_by_status.empty());
  EXPECT_EQ(r->generated_tokens, 6 * FakeServer::kTokens);
  ASSERT_EQ(r->samples.size(), 6u);
  for (const RequestSample& s : r->samples) {
    EXPECT_TRUE(s.error.empty()) << s.error;
    EXPECT_EQ(s.content_chunks, FakeServer::kTokens);
    EXPECT_EQ(s.itl_s.size(), static_cast<size_t>(FakeServer::kTokens - 1));
    EXPECT_EQ(s.finish_reason, "length");
  }
  // Sleeps only ever last longer; a loaded machine (or a sanitizer) stretches them,
  // so only the lower bounds and the order are exact.
  EXPECT_GE(r->ttft_p50_s, 0.059);
  EXPECT_GE(r->itl_p50_s, 0.0099);
  EXPECT_LT(r->itl_p50_s, r->ttft_p50_s);
  EXPECT_GE(r->itl_p99_s, r->itl_p50_s);
  EXPECT_GE(r->ttft_p99_s, r->ttft_p50_s);
  // Two requests in a row per client: at least 2 x (60 + 4 x 10) ms of wall time.
  EXPECT_GE(r->wall_s, 0.199);
  EXPECT_NEAR(r->tokens_per_s, static_cast<double>(r->generated_tokens) / r->wall_s, 1e-9);
  // The steady window lies inside the run (a client thread started late on a loaded
  // machine may leave it empty; SteadyWindow's own test checks the arithmetic), and
  // the load generator's own CPU time was measured (it parsed 6 streams).
  EXPECT_GE(r->steady_s, 0);
  EXPECT_LE(r->steady_s, r->wall_s);
  EXPECT_LT(r->steady_chunks, r->generated_tokens);
  if (r->steady_s > 0) {
    EXPECT_NEAR(r->steady_tokens_per_s, static_cast<double>(r->steady_chunks) / r->steady_s, 1e-9);
  }
  EXPECT_GT(r->client_cpu_s, 0);

  const std::vector<nlohmann::json> bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 6u);
  std::set<std::string> users;
  for (const nlohmann::json& b : bodies) {
    EXPECT_EQ(b["model"], "m1");
    EXPECT_EQ(b["stream"], true);
    EXPECT_EQ(b["messages"][0]["content"], bodies[0]["messages"][0]["content"]);
    users.insert(b["messages"][1]["content"]);
  }
  EXPECT_EQ(users.size(), 6u);
  for (const std::string& a : server.auth()) EXPECT_EQ(a, "Bearer k3y");
}

RequestSample Streamed(double start, double ttft, std::vector<double> gaps) {
  RequestSample s;
  s.start_s = start;
  s.ttft_s = ttft;
  s.itl_s = std::move(gaps);
  s.content_chunks = static_cast<int64_t>(s.itl_s.size()) + 1;
  return s;
}

TEST(SteadyWindow, FromTheLastFirstTokenToTheFirstLastToken) {
  // Client 0: chunks at 1, 2, 3, 4 (first request) and 6, 7 (second).
  // Client 1: chunks at 2.5, 3.5, 4.5, 5.5.
  std::vector<std::vector<RequestSample>> per_client = {
      {Streamed(0, 1, {1, 1, 1}), Streamed(5, 1, {1})},
      {Streamed(0.5, 2, {1, 1, 1})},
  };
  LoadResult r;
  SteadyWindow(per_client, &r);
  // Window (2.5, 5.5]: client 0's 3 and 4; client 1's 3.5, 4.5 and 5.5.
  EXPECT_DOUBLE_EQ(r.steady_s, 3.0);
  EXPECT_EQ(r.steady_chunks, 5);
  EXPECT_DOUBLE_EQ(r.steady_tokens_per_s, 5.0 / 3.0);

  // A client that never got a token: no steady state.
  per_client[1][0].ttft_s = -1;
  SteadyWindow(per_client, &r);
  EXPECT_EQ(r.steady_s, 0);
  EXPECT_EQ(r.steady_chunks, 0);
  EXPECT_EQ(r.steady_tokens_per_s, 0);
  // Clients that never overlapped: none either.
  per_client = {{Streamed(0, 1, {1})}, {Streamed(5, 1, {1})}};
  SteadyWindow(per_client, &r);
  EXPECT_EQ(r.steady_tokens_per_s, 0);
}

TEST(ParseStepTotals, SumsTheStepHistogramsByKindOverModels) {
  const std::string text =
      "# HELP cairn_llm_step_seconds One batched forward step\n"
      "# TYPE cairn_llm_step_seconds histogram\n"
      "cairn_llm_step_seconds_count{kind=\"decode\",model=\"a\"} 10\n"
      "cairn_llm_step_seconds_sum{kind=\"decode\",model=\"a\"} 1.5\n"
      "cairn_llm_step_seconds_bucket{kind=\"decode\",model=\"a\",le=\"0.1\"} 7\n"
      "cairn_llm_step_seconds_count{kind=\"decode\",model=\"b\"} 2\n"
      "cairn_llm_step_seconds_sum{kind=\"decode\",model=\"b\"} 0.5\n"
      "cairn_llm_step_seconds_count{kind=\"mixed\",model=\"a\"} 3\n"
      "cairn_llm_step_seconds_sum{kind=\"mixed\",model=\"a\"} 0.75\n"
      "cairn_llm_step_seconds_count{kind=\"prefill\",model=\"a\"} 1\n"
      "cairn_llm_step_seconds_sum{kind=\"prefill\",model=\"a\"} 0.25\n"
      "cairn_llm_inter_token_seconds_count{model=\"a\"} 99\n"
      "cairn_llm_step_seconds_sum{kind=\"mixed\",model=\"c\"} garbage\n";
  const StepTotals t = ParseStepTotals(text);
  EXPECT_EQ(t.count[0], 12);
  EXPECT_DOUBLE_EQ(t.seconds[0], 2.0);
  EXPECT_EQ(t.count[1], 3);
  EXPECT_DOUBLE_EQ(t.seconds[1], 0.75);
  EXPECT_EQ(t.count[2], 1);
  EXPECT_DOUBLE_EQ(t.seconds[2], 0.25);
  const StepTotals none = ParseStepTotals("");
  EXPECT_EQ(none.count[0] + none.count[1] + none.count[2], 0);
}

TEST(RunLoad, CountsErrorsByStatus) {
  FakeServer server;
  LoadOptions o = Options(server, 2, 2);
  o.model = "busy";
  absl::StatusOr<LoadResult> r = RunLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ok, 0);
  EXPECT_EQ(r->errors_by_status, (std::map<int, int>{{429, 4}}));
  EXPECT_EQ(r->generated_tokens, 0);
  EXPECT_EQ(r->samples[0].error, "HTTP 429: queue full");

  o.model = "truncated";  // content, then the connection closes without [DONE]
  r = RunLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors_by_status, (std::map<int, int>{{200, 4}}));
  EXPECT_EQ(r->samples[0].error, "the stream ended without data: [DONE]");
  EXPECT_EQ(r->generated_tokens, 4 * FakeServer::kTokens);  // counted from the chunks
}

TEST(RunLoad, NoServerIsStatusZero) {
  int port = 0;
  {
    FakeServer gone;  // a port that was just free, and is again
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  LoadOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.model = "m1";
  o.timeout_s = 5;
  absl::StatusOr<LoadResult> r = RunLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors_by_status, (std::map<int, int>{{0, o.requests_per_client}}));
  EXPECT_NE(r->samples[0].error.find("no response"), std::string::npos) << r->samples[0].error;
  EXPECT_FALSE(FirstModelId(o.base_url, "", 5).ok());
}

TEST(RunLoad, RejectsBadOptions) {
  LoadOptions o;
  EXPECT_FALSE(RunLoad(o).ok());  // no URL
  o.base_url = "http://127.0.0.1:1";
  o.clients = 0;
  EXPECT_FALSE(RunLoad(o).ok());
  o.clients = 1;
  o.max_tokens = 0;
  EXPECT_FALSE(RunLoad(o).ok());
  o.max_tokens = 1;
  o.base_url = "not a url";
  EXPECT_FALSE(RunLoad(o).ok());
}

TEST(FirstModelId, ReadsTheModelList) {
  FakeServer server;
  absl::StatusOr<std::string> id = FirstModelId(server.url(), "", 10);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "m1");
}

}  // namespace
}  // namespace cairn::server
