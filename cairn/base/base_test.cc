// Tests for the small base pieces: hashing, clocks, config, metrics, logging.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cairn/base/clock.h"
#include "cairn/base/config.h"
#include "cairn/base/hash.h"
#include "cairn/base/log.h"
#include "cairn/base/metrics.h"
#include "cairn/base/status.h"
#include "cairn/base/temp_dir.h"

namespace cairn {
namespace {

using ::testing::HasSubstr;

TEST(Hash, IsStableAcrossReleases) {
  // Serialized sketches depend on these values; they must never change.
  EXPECT_EQ(Hash64(std::string_view("")), 0x2d06800538d394c2ULL);
  EXPECT_EQ(Hash64(uint64_t{42}), Hash64(std::string_view("\x2a\0\0\0\0\0\0\0", 8)));
  EXPECT_EQ(HashKey(std::string("abc")), Hash64(std::string_view("abc")));
  EXPECT_NE(Hash64(uint64_t{1}, 1), Hash64(uint64_t{1}, 2));
}

TEST(Clock, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(100);
  EXPECT_EQ(clock.NowNanos(), 100);
  clock.Advance(50);
  EXPECT_EQ(clock.NowNanos(), 150);
  clock.Set(7);
  EXPECT_EQ(clock.MonotonicNanos(), 7);
}

TEST(Clock, SystemClockIsPlausible) {
  const int64_t year2020 = 1577836800LL * 1000000000LL;
  EXPECT_GT(SystemClock::Get().NowNanos(), year2020);
  int64_t a = SystemClock::Get().MonotonicNanos();
  EXPECT_GE(SystemClock::Get().MonotonicNanos(), a);
}

TEST(Config, ReadsNestedTypedValues) {
  auto cfg = Config::Parse("server:\n  port: 8080\n  host: localhost\nratio: 0.5\ntags: [a, b]\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(*cfg->Get<int>("server.port"), 8080);
  EXPECT_EQ(*cfg->Get<std::string>("server.host"), "localhost");
  EXPECT_EQ(*cfg->Get<double>("ratio"), 0.5);
  EXPECT_EQ(cfg->Get<std::vector<std::string>>("tags")->size(), 2u);
  EXPECT_EQ(*cfg->GetOr<int>("missing", 3), 3);
  auto server = cfg->Child("server");
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(*server->Get<int>("port"), 8080);
}

TEST(Config, ErrorsNameTheKeyAndLine) {
  auto cfg = Config::Parse("server:\n  port: http\n", "node.yaml");
  ASSERT_TRUE(cfg.ok());
  auto port = cfg->Get<int>("server.port");
  EXPECT_THAT(port.status().message(),
              HasSubstr("node.yaml: key 'server.port' (line 2): expected an integer, got \"http\""));
  EXPECT_THAT(cfg->GetOr<int>("server.port", 1).status().message(), HasSubstr("server.port"));
  EXPECT_THAT(cfg->Get<int>("server.threads").status().message(),
              HasSubstr("missing required key 'server.threads'"));
  auto server = cfg->Child("server");
  EXPECT_THAT(server->CheckKnownKeys({"host"}).message(),
              HasSubstr("unknown key 'server.port' (line 2)"));
}

TEST(Config, SyntaxErrorsNameTheLine) {
  auto cfg = Config::Parse("a: 1\nb: [unclosed\n", "bad.yaml");
  EXPECT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("bad.yaml: line"));
  EXPECT_FALSE(Config::LoadFile("/nonexistent/cairn.yaml").ok());
}

TEST(Metrics, SerializesPrometheusText) {
  MetricsRegistry registry;
  registry.Counter("cairn_test_events_total", "Events seen", {{"source", "mqtt"}}).Increment(3);
  registry.Gauge("cairn_test_queue_depth", "Queue depth").Set(5);
  registry.Histogram("cairn_test_latency_seconds", "Latency", {0.1, 1}).Observe(0.5);
  std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("cairn_test_events_total{source=\"mqtt\"} 3"));
  EXPECT_THAT(text, HasSubstr("cairn_test_queue_depth 5"));
  EXPECT_THAT(text, HasSubstr("cairn_test_latency_seconds_bucket{le=\"1\"} 1"));
}

absl::StatusOr<int> Half(int x) {
  if (x % 2) return absl::InvalidArgumentError("odd");
  return x / 2;
}
absl::StatusOr<int> Quarter(int x) {
  CAIRN_ASSIGN_OR_RETURN(int h, Half(x));
  CAIRN_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, Macros) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_FALSE(Quarter(6).ok());
}

TEST(Log, ParsesLevels) {
  EXPECT_EQ(*ParseLogLevel("debug"), spdlog::level::debug);
  EXPECT_EQ(*ParseLogLevel("error"), spdlog::level::err);
  EXPECT_FALSE(ParseLogLevel("loud").ok());
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

TEST(TempDir, IsFreshUniqueAndRemovedWithItsContents) {
  std::string kept;
  {
    TempDir a("cairn-base-test");
    TempDir b("cairn-base-test");
    ASSERT_TRUE(a.ok()) << a.error();
    ASSERT_TRUE(b.ok()) << b.error();
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(std::filesystem::is_directory(a.path()));
    EXPECT_TRUE(std::filesystem::is_empty(a.path()));
    const std::string sub = a.Fresh("x/y");
    ASSERT_FALSE(sub.empty());
    std::ofstream(sub + "/file") << "data";
    EXPECT_TRUE(std::filesystem::exists(sub + "/file"));
    EXPECT_TRUE(std::filesystem::is_empty(a.Fresh("x/y")));  // made empty again
    TempDir moved = std::move(b);
    EXPECT_TRUE(moved.ok());
    EXPECT_FALSE(b.ok());  // NOLINT(bugprone-use-after-move): the moved-from object owns nothing
    kept = a.path();
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

TEST(TempDir, ReportsADirectoryThatCannotBeMade) {
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("TMPDIR", "/proc/cairn-no-such-dir", 1);
  TempDir t("x");
  if (old != nullptr) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  EXPECT_FALSE(t.ok());
  EXPECT_FALSE(t.error().empty());
  EXPECT_EQ(t.Fresh("a"), "");
}

}  // namespace
}  // namespace cairn
