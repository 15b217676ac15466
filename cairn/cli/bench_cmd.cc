// `cairn bench …`: named workloads, a readable table, and the same figures as JSON.
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "bench/sketch_workload.h"
#include "cairn/cli/commands.h"

namespace cairn::cli {
namespace {

struct BenchFlags {
  bench::SketchBenchOptions sketch;
  bool json = false;
  std::string json_out;
};

int RunSketchBenchCommand(const BenchFlags& f) {
  fmt::print(stderr, "cairn bench sketch: {} updates per measurement, median of {} runs, one thread\n",
             f.sketch.n, f.sketch.repeats);
  auto rows = bench::RunSketchBench(f.sketch);
  auto j = bench::SketchBenchToJson(f.sketch, rows);
  if (f.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{}", bench::FormatSketchBench(rows));
  }
  if (!f.json_out.empty()) {
    std::ofstream out(f.json_out);
    out << j.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "cairn bench: cannot write '{}'\n", f.json_out);
      return 1;
    }
  }
  return 0;
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
  sk->add_flag("--json", f->json, "Print one JSON object instead of the table");
  sk->add_option("--json-out", f->json_out, "Also write the JSON object to this file");
  sk->callback([=] { *run = [=] { return RunSketchBenchCommand(*f); }; });
}

}  // namespace cairn::cli
