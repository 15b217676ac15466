#include "cairn/pipeline/pipeline_file.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace cairn::pipeline {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  std::string d = (fs::temp_directory_path() / fmt::format("cairn-pf-{}-{}", name, ::getpid())).string();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status CompileText(const std::string& yaml) {
  auto root = Config::Parse(yaml, "pipe.yaml");
  if (!root.ok()) return root.status();
  return CompilePipeline(*root).status();
}

TEST(PipelineFile, DurationsParse) {
  EXPECT_EQ(*ParseDurationMs("250ms"), 250);
  EXPECT_EQ(*ParseDurationMs("10s"), 10000);
  EXPECT_EQ(*ParseDurationMs("1.5m"), 90000);
  EXPECT_EQ(*ParseDurationMs("2h"), 7200000);
  EXPECT_EQ(*ParseDurationMs("1d"), 86400000);
  EXPECT_EQ(*ParseDurationMs("42"), 42);
  EXPECT_FALSE(ParseDurationMs("ten").ok());
  EXPECT_FALSE(ParseDurationMs("5 parsecs").ok());
}

TEST(PipelineFile, RunsFilterSetWindowAndRollingAggregate) {
  std::string dir = TempDir("run");
  {
    std::ofstream in(dir + "/in.csv");
    in << "ts,machine,temp\n";
    for (int i = 0; i < 1000; ++i) in << 1000 * i << ",m" << i % 3 << "," << (i % 10) * 10 << "\n";
  }
  std::string yaml = fmt::format(R"(
name: test
source: {{type: file, path: {0}/in.csv, time_field: ts, time_format: epoch_ms}}
steps:
  - filter: temp >= 50
  - set: {{hot: temp >= 80, label: upper(machine)}}
  - drop: [ts]
  - key_by: [machine]
    parallelism: 2
    window: {{type: tumbling, size: 100s}}
    aggregate: {{n: count(), hot: sum(hot), hi: max(temp)}}
sink: {{type: file, path: {0}/out.jsonl}}
)",
                                 dir);
  auto compiled = CompilePipeline(*Config::Parse(yaml, "pipe.yaml"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  ASSERT_TRUE((*compiled)->pipeline().Run().ok());
  std::string out = ReadFile(dir + "/out.jsonl");
  // 1000 s of data in 100 s windows, 3 machines: 30 windows; each has 100/3 rows
  // of which half have temp >= 50, and 2 in 10 are hot.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 30) << out;
  EXPECT_NE(out.find(R"({"machine":"m0","window_start":0,"window_end":100000,"n":17,"hot":7.0,"hi":90.0})"),
            std::string::npos)
      << out;
  fs::remove_all(dir);
}

// Three machines, one reading a minute, a steady wave; m1 jumps by +500 at row 800.
std::string WriteReadings(const std::string& dir) {
  std::ofstream in(dir + "/in.csv");
  in << "ts,machine,temp\n";
  for (int i = 0; i < 1000; ++i)
    for (int m = 0; m < 3; ++m)
      in << 60000 * i << ",m" << m << "," << 20 + std::sin(2 * M_PI * (i + 7 * m) / 48.0) + (m == 1 && i == 800 ? 500 : 0)
         << "\n";
  return dir + "/in.csv";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

TEST(PipelineFile, DetectStepAfterAKeyByStepReportsTheSpikeWithItsReason) {
  std::string dir = TempDir("detect");
  std::string yaml = fmt::format(R"(
name: detect
source: {{type: file, path: {0}, time_field: ts, time_format: epoch_ms}}
steps:
  - key_by: machine
  - detect: {{type: series, value: temp, value_name: temperature, false_alarm_rate: 0.0001}}
    parallelism: 2
sink: {{type: file, path: {1}/out.jsonl}}
)",
                                 WriteReadings(dir), dir);
  auto compiled = CompilePipeline(*Config::Parse(yaml, "pipe.yaml"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  ASSERT_TRUE((*compiled)->pipeline().Run().ok());
  auto lines = Lines(ReadFile(dir + "/out.jsonl"));
  ASSERT_FALSE(lines.empty());
  bool spike = false;
  for (const std::string& line : lines) {
    EXPECT_EQ(line.rfind(R"({"machine":"m1","key":"m1","time":)", 0), 0u) << line;
    EXPECT_NE(line.find(R"("detector":"series")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("reason":"temperature )"), std::string::npos) << line;
    spike |= line.find(R"("time":48000000,)") != std::string::npos;
  }
  EXPECT_TRUE(spike) << ReadFile(dir + "/out.jsonl");
  fs::remove_all(dir);
}

TEST(PipelineFile, DetectStepWithEmitAllScoresEveryRow) {
  std::string dir = TempDir("detect-all");
  std::string yaml = fmt::format(R"(
source: {{type: file, path: {0}, time_field: ts, time_format: epoch_ms}}
steps:
  - filter: machine != "m2"
  - key_by: [machine]
    detect: {{type: series, value: temp * 2, emit: all, false_alarm_rate: 0.0001, cooldown: 1h, state_ttl: 1h}}
sink: {{type: file, path: {1}/out.csv}}
)",
                                 WriteReadings(dir), dir);
  auto compiled = CompilePipeline(*Config::Parse(yaml, "pipe.yaml"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  ASSERT_TRUE((*compiled)->pipeline().Run().ok());
  auto lines = Lines(ReadFile(dir + "/out.csv"));
  ASSERT_EQ(lines.size(), 2001u);
  EXPECT_EQ(lines[0], "machine,key,time,score,detector,value,reason,anomaly");
  int anomalies = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    bool anomaly = lines[i].ends_with(",true");
    anomalies += anomaly;
    if (lines[i].starts_with("m1,m1,48000000,")) {
      EXPECT_TRUE(anomaly) << lines[i];
    }
  }
  EXPECT_GE(anomalies, 1);
  fs::remove_all(dir);
}

TEST(PipelineFile, CardinalityAndNoveltyStepsReportTheScanAndTheNewcomer) {
  std::string dir = TempDir("detect-sketches");
  // Host h1 talks to 3 peers a minute for an hour, then to 400 in one minute;
  // device names repeat from a small set until "intruder" appears.
  std::string csv = "ts,host,peer,device\n";
  int64_t t = 0;
  for (int minute = 0; minute < 60; ++minute)
    for (int i = 0; i < 3; ++i, t += 20'000)
      csv += fmt::format("{},h1,p{},d{}\n", t, (minute + i) % 5, i % 4);
  for (int i = 0; i < 400; ++i) csv += fmt::format("{},h1,scan{},d{}\n", t + i * 100, i, i % 4);
  csv += fmt::format("{},h1,p1,intruder\n", t + 50'000);
  std::ofstream(dir + "/in.csv") << csv;
  auto run = [&](const std::string& step) {
    std::string yaml = fmt::format(R"(
source: {{type: file, path: {0}/in.csv, time_field: ts, time_format: epoch_ms}}
steps:
{1}
sink: {{type: file, path: {0}/out.jsonl}}
)",
                                   dir, step);
    auto compiled = CompilePipeline(*Config::Parse(yaml, "pipe.yaml"));
    EXPECT_TRUE(compiled.ok()) << compiled.status();
    if (!compiled.ok()) return std::string();
    EXPECT_TRUE((*compiled)->pipeline().Run().ok());
    std::string out = ReadFile(dir + "/out.jsonl");
    fs::remove(dir + "/out.jsonl");
    return out;
  };
  std::string scan = run(
      "  - key_by: host\n  - detect: {type: cardinality, item: peer, window: 1m, warmup: 8, verb: contacted, "
      "item_name: peers, false_alarm_rate: 0.001}");
  EXPECT_NE(scan.find(R"("detector":"cardinality")"), std::string::npos) << scan;
  EXPECT_NE(scan.find("h1 contacted"), std::string::npos) << scan;
  std::string newcomer = run("  - detect: {type: novelty, item: device, warmup: 50, false_alarm_rate: 0.01}");
  EXPECT_NE(newcomer.find(R"("detector":"novelty")"), std::string::npos) << newcomer;
  EXPECT_NE(newcomer.find("intruder"), std::string::npos) << newcomer;
  EXPECT_EQ(newcomer.find("\"d1\""), std::string::npos) << newcomer;
  fs::remove_all(dir);
}

TEST(PipelineFile, EdgesStepReportsABurstOfOneEdge) {
  std::string dir = TempDir("detect-edges");
  // Ten machines message each other steadily (5 a second) for 20 minutes;
  // then press-7 floods plc-2 with 300 messages in one second.
  std::string csv = "ts,from,to\n";
  int64_t t = 0;
  for (int i = 0; i < 6000; ++i, t += 200) csv += fmt::format("{},m{},m{}\n", t, i % 10, (i * 7 + 3) % 10);
  for (int i = 0; i < 300; ++i) csv += fmt::format("{},press-7,plc-2\n", t + i * 3);
  std::ofstream(dir + "/in.csv") << csv;
  std::string yaml = fmt::format(R"(
source: {{type: file, path: {0}/in.csv, time_field: ts, time_format: epoch_ms}}
steps:
  - detect: {{type: edges, src: from, dst: to, record_noun: messages, false_alarm_rate: 0.001}}
sink: {{type: file, path: {0}/out.jsonl}}
)",
                                 dir);
  auto compiled = CompilePipeline(*Config::Parse(yaml, "pipe.yaml"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  ASSERT_TRUE((*compiled)->pipeline().Run().ok());
  std::string out = ReadFile(dir + "/out.jsonl");
  EXPECT_NE(out.find(R"("detector":"edges")"), std::string::npos) << out;
  EXPECT_NE(out.find("press-7"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(PipelineFile, DetectErrorsNameTheKeyAndLine) {
  const std::string head = "source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n";
  struct Case {
    std::string steps, needle;
  };
  std::vector<Case> cases = {
      {"  - key_by: m\n  - detect: {type: tarot, value: t}\n", "key 'steps[1].detect.type' (line 5)"},
      {"  - detect: {type: series}\n", "steps[0].detect.value"},
      {"  - detect: {type: series, value: t +}\n", "steps[0].detect.value"},
      {"  - detect: {type: series, value: t, false_alarm_rate: 2}\n", "steps[0].detect.false_alarm_rate"},
      {"  - detect: {type: series, value: t, emit: some}\n", "steps[0].detect.emit"},
      {"  - detect: {type: series, value: t, threshold: 3}\n", "threshold"},
      {"  - detect: {type: series, value: t, state_ttl: soon}\n", "steps[0].detect.state_ttl"},
      {"  - detect: {type: series, value: t, cooldown: 0s}\n", "steps[0].detect.cooldown"},
      {"  - detect: {type: series, value: t}\n    parallelism: 2\n", "steps[0].parallelism"},
      {"  - key_by: m\n    detect: {type: series, value: t}\n    aggregate: {n: count()}\n", "steps[0].detect"},
      {"  - key_by: m\n  - filter: t > 1\n", "steps[0].key_by"},
      {"  - key_by: m\n  - key_by: n\n    detect: {type: series, value: t}\n", "steps[0].key_by"},
      {"  - key_by: m\n    parallelism: 2\n  - detect: {type: series, value: t}\n", "steps[0]"},
      {"  - key_by: m\n  - detect: {type: novelty, item: d}\n", "remove key_by"},
      {"  - key_by: m\n  - detect: {type: cardinality}\n", "steps[1].detect.item"},
      {"  - key_by: m\n  - detect: {type: cardinality, item: d, window: 1m, buckets: 7}\n", "steps[1].detect"},
      {"  - detect: {type: heavy_hitters, item: d, top_k: 0}\n", "steps[0].detect"},
      {"  - key_by: m\n  - detect: {type: drift, value: t, window: never}\n", "steps[1].detect.window"},
      {"  - detect: {type: edges, src: a}\n", "steps[0].detect.dst"},
      {"  - key_by: m\n  - detect: {type: edges, src: a, dst: b}\n", "remove key_by"},
  };
  for (auto& c : cases) {
    absl::Status s = CompileText(head + c.steps);
    ASSERT_FALSE(s.ok()) << c.steps;
    std::string msg(s.message());
    EXPECT_NE(msg.find(c.needle), std::string::npos) << c.needle << " not in: " << msg;
    EXPECT_NE(msg.find("pipe.yaml"), std::string::npos) << msg;
  }
  EXPECT_TRUE(CompileText(head + "  - key_by: m\n  - detect: {type: series, value: t}\n").ok());
  EXPECT_TRUE(CompileText(head + "  - detect: {type: series, value: t}\n").ok());
}

TEST(PipelineFile, ErrorsNameTheKeyAndLine) {
  struct Case {
    std::string yaml, needle;
  };
  std::vector<Case> cases = {
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - filter: temp >\n", "steps[0].filter"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - frobnicate: 1\n", "frobnicate"},
      {"source: {type: carrier-pigeon}\nsink: {type: stdout}\n", "source.type"},
      {"source: {type: file, path: x.csv}\nsink: {type: file}\n", "sink.path"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - key_by: m\n    window: {type: "
       "tumbling, size: 10 parsecs}\n    aggregate: {n: count()}\n",
       "steps[0].window.size"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - key_by: m\n    window: {type: "
       "sliding, size: 10s}\n    aggregate: {n: count()}\n",
       "slide"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - key_by: m\n", "aggregate"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - key_by: m\n    aggregate: {n: "
       "avg()}\n",
       "steps[0].aggregate.n"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nlate: {type: stdout}\n", "late"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nparallelism: 0\n", "parallelism"},
      {"source: {type: file, path: x.csv}\nsink: {type: stdout}\nstate: {backend: floppy}\n", "state.backend"},
      {"source: {type: file, path: x.csv, rate: fast}\nsink: {type: stdout}\n", "source.rate"},
      {"sink: {type: stdout}\n", "source"},
  };
  for (auto& c : cases) {
    absl::Status s = CompileText(c.yaml);
    ASSERT_FALSE(s.ok()) << c.yaml;
    std::string msg(s.message());
    EXPECT_NE(msg.find(c.needle), std::string::npos) << c.needle << " not in: " << msg;
    EXPECT_NE(msg.find("pipe.yaml"), std::string::npos) << msg;
  }
  // The line is named too.
  absl::Status s = CompileText("source: {type: file, path: x.csv}\nsink: {type: stdout}\nsteps:\n  - filter: 1 +\n");
  EXPECT_NE(std::string(s.message()).find("line 4"), std::string::npos) << s;
}

}  // namespace
}  // namespace cairn::pipeline
