#include "cairn/pipeline/pipeline_file.h"

#include <unistd.h>

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
