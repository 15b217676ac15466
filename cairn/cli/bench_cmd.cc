// `cairn bench …`: named workloads, a readable table, and the same figures as JSON.
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "bench/detect_workload.h"
#include "bench/edge_workload.h"
#include "bench/nexmark_workload.h"
#include "bench/sketch_workload.h"
#include "cairn/pipeline/pipeline_file.h"
#include "cairn/cli/commands.h"

namespace cairn::cli {

int EmitBenchResults(bool json, const std::string& json_out, const nlohmann::json& j, const std::string& table) {
  if (json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{}", table);
  }
  if (!json_out.empty()) {
    std::ofstream out(json_out);
    out << j.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "cairn bench: cannot write '{}'\n", json_out);
      return 1;
    }
  }
  return 0;
}

void AddJsonFlags(CLI::App* cmd, bool* json, std::string* json_out) {
  cmd->add_flag("--json", *json, "Print one JSON object instead of the table");
  cmd->add_option("--json-out", *json_out, "Also write the JSON object to this file");
}

namespace {

struct BenchFlags {
  bench::SketchBenchOptions sketch;
  bench::NexmarkOptions nexmark;
  bench::DetectBenchOptions detect;
  bench::EdgeBenchOptions edges;
  std::string checkpoint_interval = "1s";
  bool json = false;
  std::string json_out;
};

int EmitResults(const BenchFlags& f, const nlohmann::json& j, const std::string& table) {
  return EmitBenchResults(f.json, f.json_out, j, table);
}

int RunSketchBenchCommand(const BenchFlags& f) {
  fmt::print(stderr, "cairn bench sketch: {} updates per measurement, median of {} runs, one thread\n",
             f.sketch.n, f.sketch.repeats);
  auto rows = bench::RunSketchBench(f.sketch);
  auto j = bench::SketchBenchToJson(f.sketch, rows);
  return EmitResults(f, j, bench::FormatSketchBench(rows));
}

int RunDetectBenchCommand(const BenchFlags& f) {
  fmt::print(stderr, "cairn bench detect: {} records over {} keys, median of {} runs, one thread\n", f.detect.records,
             f.detect.keys, f.detect.repeats);
  auto rows = bench::RunDetectBench(f.detect);
  auto j = bench::DetectBenchToJson(f.detect, rows);
  return EmitResults(f, j, bench::FormatDetectBench(f.detect, rows));
}

int RunNexmarkBenchCommand(BenchFlags& f) {
  if (f.checkpoint_interval == "off" || f.checkpoint_interval == "0") {
    f.nexmark.checkpoint_interval_ms = 0;
  } else {
    auto ms = pipeline::ParseDurationMs(f.checkpoint_interval);
    if (!ms.ok()) {
      fmt::print(stderr, "cairn bench nexmark: --checkpoint-interval: {}\n", std::string(ms.status().message()));
      return 2;
    }
    f.nexmark.checkpoint_interval_ms = *ms;
  }
  std::vector<std::string> queries;
  for (const std::string& q : f.nexmark.queries) {
    if (q == "all") {
      for (int i = 0; i <= 8; ++i) queries.push_back(fmt::format("q{}", i));
    } else {
      queries.push_back(q);
    }
  }
  f.nexmark.queries = queries;
  auto results = bench::RunNexmarkBench(f.nexmark);
  if (!results.ok()) {
    fmt::print(stderr, "cairn bench nexmark: {}\n", std::string(results.status().message()));
    return 1;
  }
  auto j = bench::NexmarkBenchToJson(f.nexmark, *results);
  return EmitResults(f, j, bench::FormatNexmarkBench(f.nexmark, *results));
}

int RunEdgeBenchCommand(const BenchFlags& f) {
  fmt::print(stderr, "cairn bench edges: {} records, seed {}, median of {} runs, one thread\n", f.edges.stream.edges,
             f.edges.stream.seed, f.edges.repeats);
  auto report = bench::RunEdgeBench(f.edges);
  if (!report.ok()) {
    fmt::print(stderr, "cairn bench edges: {}\n", std::string(report.status().message()));
    return 1;
  }
  return EmitResults(f, bench::EdgeBenchToJson(f.edges, *report), bench::FormatEdgeBench(*report));
}

}  // namespace

void RegisterBench(CLI::App& app, Runner* run) {
  CLI::App* bench = app.add_subcommand("bench", "Named benchmark workloads with exact baselines");
  bench->require_subcommand(1);
  auto f = std::make_shared<BenchFlags>();
  CLI::App* sk = bench->add_subcommand(
      "sketch", "Every sketch vs an exact baseline: updates/s, queries/s, bytes, accuracy");
  sk->add_option("-n,--n", f->sketch.n, "Updates per measurement")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1000}, uint64_t{1'000'000'000}));
  sk->add_option("--repeats", f->sketch.repeats, "Runs per measurement (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  sk->add_option("--seed", f->sketch.seed, "Random seed")->capture_default_str();
  sk->add_option("--only", f->sketch.only, "Only these: bloom, cuckoo, hll, count-min, top-k, kll")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember({"bloom", "cuckoo", "hll", "count-min", "top-k", "kll"}));
  AddJsonFlags(sk, &f->json, &f->json_out);
  sk->callback([=] { *run = [=] { return RunSketchBenchCommand(*f); }; });

  CLI::App* dt = bench->add_subcommand(
      "detect", "Anomaly detectors in memory: records/s per core, memory per key, share of alarms");
  dt->add_option("--records", f->detect.records, "Records per measurement")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1000}, uint64_t{1'000'000'000}));
  dt->add_option("--keys", f->detect.keys, "Keys of the per-key detectors (series, cardinality, drift)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}));
  dt->add_option("--repeats", f->detect.repeats, "Runs per measurement (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  dt->add_option("--seed", f->detect.seed, "Random seed")->capture_default_str();
  dt->add_option("--only", f->detect.only, "Only these: series, cardinality, drift, novelty, heavy_hitters")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember({"series", "cardinality", "drift", "novelty", "heavy_hitters"}));
  AddJsonFlags(dt, &f->json, &f->json_out);
  dt->callback([=] { *run = [=] { return RunDetectBenchCommand(*f); }; });

  CLI::App* nx = bench->add_subcommand(
      "nexmark", "Nexmark queries on the stream engine: events/s, events/s per core, p50/p99 latency");
  nx->add_option("--query", f->nexmark.queries, "q0..q8, several, or all")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "all"}));
  nx->add_option("--events", f->nexmark.events, "Events per throughput run")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1000}, uint64_t{10'000'000'000}));
  nx->add_option("--parallelism", f->nexmark.parallelism, "Parallelism of every operator")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  nx->add_option("--checkpoint-interval", f->checkpoint_interval, "Checkpoint interval (e.g. 1s), or off")
      ->capture_default_str();
  nx->add_option("--event-rate", f->nexmark.event_rate, "Events per second of event time")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000'000}));
  nx->add_flag("--latency", f->nexmark.latency, "Also measure latency at half the measured throughput");
  nx->add_option("--latency-rate", f->nexmark.latency_rate, "Events/s of the latency run (default: half the maximum)")
      ->check(CLI::Range(0.0, 1e9));
  nx->add_option("--latency-seconds", f->nexmark.latency_seconds, "Length of the latency run")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  nx->add_option("--seed", f->nexmark.seed, "Generator seed")->capture_default_str();
  AddJsonFlags(nx, &f->json, &f->json_out);
  nx->callback([=] { *run = [=] { return RunNexmarkBenchCommand(*f); }; });

  CLI::App* ed = bench->add_subcommand(
      "edges", "Edge-stream burst detector on a generated labelled stream: ROC-AUC, records/s per core, memory");
  ed->add_option("--edges", f->edges.stream.edges, "Records in the generated stream")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1000}, uint64_t{1'000'000'000}));
  ed->add_option("--seed", f->edges.stream.seed, "Generator seed")->capture_default_str();
  ed->add_option("--nodes", f->edges.stream.nodes, "Nodes in the generated network")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t{2}, uint32_t{100'000'000}));
  ed->add_option("--rate", f->edges.stream.rate, "Normal records per second of event time")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t{1}, uint32_t{100'000'000}));
  ed->add_option("--repeats", f->edges.repeats, "Runs per throughput measurement (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  ed->add_option("--rows", f->edges.config.rows, "Detector: Count-Min rows")->capture_default_str();
  ed->add_option("--edge-width", f->edges.config.edge_width, "Detector: cells per row, edge sketch")
      ->capture_default_str();
  ed->add_option("--node-width", f->edges.config.node_width, "Detector: cells per row, node sketches")
      ->capture_default_str();
  ed->add_option("--decay", f->edges.config.decay, "Detector: recent-count decay per tick")->capture_default_str();
  ed->add_option("--history-half-life", f->edges.config.history_half_life_ticks,
                 "Detector: half-life of the usual rate, ticks (0 = never fades)")
      ->capture_default_str();
  ed->add_option("--min-expected", f->edges.config.min_expected, "Detector: floor of the expected count")
      ->capture_default_str();
  ed->add_option("--filter", f->edges.config.filter_threshold,
                 "Detector: statistic from which records are not learned (0 = learn all)")
      ->capture_default_str();
  ed->add_flag("!--no-speed", f->edges.speed, "Accuracy only: skip the throughput runs");
  ed->add_flag("!--no-baselines", f->edges.baselines, "Skip the MIDAS-R / MIDAS-F reference runs");
  ed->add_option("--write", f->edges.write_path, "Also write the stream as CSV: src,dst,time,label (time in ms)");
  AddJsonFlags(ed, &f->json, &f->json_out);
  ed->callback([=] { *run = [=] { return RunEdgeBenchCommand(*f); }; });

  AddVectorBench(bench, "vector", run);  // the same as `cairn vector bench`
  AddInferBench(bench, run);
  AddServeBench(bench, run);
  AddMemoryBench(bench, run);
}

}  // namespace cairn::cli
