#include "cairn/cli/nab_scene.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "gtest/gtest.h"

namespace cairn::cli {
namespace {

TEST(NabScene, TimesParseAndFormatInUtc) {
  EXPECT_EQ(*ParseUtc("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(*ParseUtc("2013-12-02 21:15:00"), 1386018900000);
  EXPECT_EQ(*ParseUtc("2013-12-10 06:25:00.000000"), *ParseUtc("2013-12-10T06:25:00"));
  EXPECT_EQ(FormatUtcMinute(1386018900000), "2013-12-02 21:15");
  EXPECT_EQ(FormatUtcMinute(*ParseUtc("2016-02-29 23:59:59")), "2016-02-29 23:59");
  EXPECT_FALSE(ParseUtc("yesterday").ok());
  EXPECT_FALSE(ParseUtc("2014-02-30 00:00:00").ok());
  EXPECT_FALSE(ParseUtc("2014-01-01 25:00:00").ok());
}

TEST(NabScene, LoadsASeriesWithItsWindowsAndScoresAlarms) {
  std::string dir = (std::filesystem::temp_directory_path() / fmt::format("cairn-nab-scene-{}", ::getpid())).string();
  std::filesystem::create_directories(dir);
  {
    std::ofstream csv(dir + "/press.csv");
    csv << "timestamp,value\n";
    for (int h = 0; h < 24; ++h) csv << fmt::format("2014-01-01 {:02}:00:00,{}\n", h, h);
    std::ofstream w(dir + "/windows.json");
    w << R"({"cat/press.csv": [["2014-01-01 10:00:00.000000", "2014-01-01 12:00:00.000000"],
                               ["2014-01-01 02:00:00.000000", "2014-01-01 03:00:00.000000"]],
             "cat/other.csv": []})";
  }
  auto s = LoadNabSeries(dir, "cat", "press", dir + "/windows.json", "press");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->times.size(), 24u);
  EXPECT_EQ(s->values[5], 5.0);
  ASSERT_EQ(s->windows.size(), 2u);
  const EventMs hour = 3'600'000, t0 = s->times.front();
  EXPECT_EQ(s->WindowOf(t0 + 2 * hour), 0);  // windows are sorted
  EXPECT_EQ(s->WindowOf(t0 + 12 * hour), 1);  // ends are inclusive
  EXPECT_EQ(s->WindowOf(t0 + 13 * hour), -1);

  // Two alarms in the second window (one true positive), one outside (a false
  // positive): precision 1/2, recall 1/2.
  SeriesScore sc = ScoreAlarms(*s, {t0 + 10 * hour, t0 + 11 * hour, t0 + 20 * hour});
  EXPECT_EQ(sc.windows, 2);
  EXPECT_EQ(sc.detected, 1);
  EXPECT_EQ(sc.alarms, 3);
  EXPECT_EQ(sc.true_alarms, 2);
  EXPECT_EQ(sc.false_alarms(), 1);
  EXPECT_DOUBLE_EQ(sc.precision(), 0.5);
  EXPECT_DOUBLE_EQ(sc.recall(), 0.5);
  EXPECT_TRUE(std::isnan(ScoreAlarms(*s, {}).precision()));
  EXPECT_DOUBLE_EQ(ScoreAlarms(*s, {}).recall(), 0.0);

  EXPECT_FALSE(LoadNabSeries(dir, "cat", "missing", dir + "/windows.json", "x").ok());
  EXPECT_FALSE(LoadNabSeries(dir, "nope", "press", dir + "/windows.json", "x").ok());
  std::filesystem::remove_all(dir);
}

TEST(NabScene, TheReplayPlaysEverySeriesOverTheWholeDuration) {
  LabelledSeries a, b;
  for (int i = 0; i <= 10; ++i) a.times.push_back(1000 * i);          // 10 s of data
  for (int i = 0; i <= 4; ++i) b.times.push_back(5'000'000 + 60'000 * i);  // 4 minutes
  auto sched = ReplaySchedule({a, b}, 2.0);
  ASSERT_EQ(sched.size(), 16u);
  for (size_t i = 1; i < sched.size(); ++i) EXPECT_LE(sched[i - 1].at, sched[i].at);
  EXPECT_DOUBLE_EQ(sched.front().at, 0.0);
  EXPECT_DOUBLE_EQ(sched.back().at, 2.0);
  int last_a = -1, last_b = -1;
  for (const Scheduled& s : sched) {
    int& last = s.series == 0 ? last_a : last_b;
    EXPECT_EQ(s.row, last + 1);  // each series in its own order
    last = s.row;
  }
}

}  // namespace
}  // namespace cairn::cli
