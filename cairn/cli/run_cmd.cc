// `cairn run pipeline.yaml`: runs a stream pipeline defined in YAML until its
// sources end (or Ctrl-C / SIGTERM), restoring from its newest checkpoint, with
// a status line every few seconds.
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "cairn/cli/commands.h"
#include "cairn/cli/format.h"
#include "cairn/pipeline/pipeline_file.h"
#include "fmt/format.h"

namespace cairn::cli {
namespace {

// Set by SIGINT/SIGTERM; the status thread turns it into Pipeline::Stop()
// (which takes locks, so it may not run inside the signal handler).
std::atomic<bool> g_stop_requested{false};

void OnSignal(int) { g_stop_requested.store(true); }

struct RunArgs {
  std::string file;
  std::string checkpoint_dir;
  std::string checkpoint_interval;
  bool fresh = false;
  int parallelism = 0;
  double status_every = 5;
  bool quiet = false;
};

std::string Lag(stream::EventTime wm) {
  if (wm == stream::kMinTime) return "-";
  if (wm == stream::kMaxTime) return "done";
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  double lag = static_cast<double>(now - wm) / 1000.0;
  if (lag > 86400 * 365) return "-";  // event times far in the past (replayed history)
  return fmt::format("{:.1f}s", lag);
}

std::string StatusLine(const stream::PipelineStats& st, const stream::PipelineStats& prev, double seconds) {
  std::string line;
  uint64_t in = 0, prev_in = 0;
  if (!st.operators.empty()) {
    in = st.operators.front().records_out;
    prev_in = prev.operators.empty() ? 0 : prev.operators.front().records_out;
  }
  double rate = seconds > 0 ? static_cast<double>(in - prev_in) / seconds : 0;
  uint64_t state = 0, late = 0;
  double fill = 0;
  stream::EventTime wm = stream::kMaxTime;
  for (size_t i = 1; i < st.operators.size(); ++i) {
    state += st.operators[i].state_bytes;
    late += st.operators[i].late_records;
    fill = std::max(fill, st.operators[i].queue_fill);
    wm = std::min(wm, st.operators[i].watermark);
  }
  uint64_t out = st.operators.empty() ? 0 : st.operators.back().records_in;
  for (const auto& o : st.operators)
    if (o.name == "sink") out = o.records_in;  // the main sink, not the late output
  std::string rate_text = seconds > 0 ? fmt::format(" ({}/s)", HumanCount(static_cast<uint64_t>(rate))) : "";
  line = fmt::format("in {}{} | out {} | queues {:.0f}% | watermark lag {} | state {}", HumanCount(in), rate_text,
                     HumanCount(out), fill * 100, Lag(wm), HumanBytes(state));
  if (st.checkpoints_completed > 0)
    line += fmt::format(" | checkpoint #{} {:.0f} ms {}", st.last_checkpoint_id, st.last_checkpoint_ms,
                        HumanBytes(st.last_checkpoint_bytes));
  if (late > 0) line += fmt::format(" | late {}", HumanCount(late));
  if (st.dead_letters > 0) line += fmt::format(" | rejected {}", HumanCount(st.dead_letters));
  return line;
}

int Run(const RunArgs& args) {
  pipeline::RunOverrides overrides;
  if (!args.checkpoint_dir.empty()) overrides.checkpoint_dir = args.checkpoint_dir;
  if (!args.checkpoint_interval.empty()) {
    auto ms = pipeline::ParseDurationMs(args.checkpoint_interval);
    if (!ms.ok() || *ms <= 0) {
      fmt::print(stderr, "cairn run: --checkpoint-interval: {}\n",
                 ms.ok() ? "must be positive" : std::string(ms.status().message()));
      return 2;
    }
    overrides.checkpoint_interval_ms = *ms;
  }
  overrides.restore = !args.fresh;
  if (args.parallelism > 0) overrides.parallelism = args.parallelism;
  auto compiled = pipeline::LoadPipelineFile(args.file, overrides);
  if (!compiled.ok()) {
    fmt::print(stderr, "cairn run: {}\n", std::string(compiled.status().message()));
    return 1;
  }
  stream::Pipeline& p = (*compiled)->pipeline();
  if (!args.quiet) {
    const auto& o = p.options();
    fmt::print(stderr, "cairn run: pipeline '{}'\n", o.name);
    for (const std::string& line : (*compiled)->summary()) fmt::print(stderr, "  {}\n", line);
    if (o.checkpoint_interval.count() > 0 && !o.checkpoint_dir.empty())
      fmt::print(stderr, "  checkpoints every {} ms in {} (newest {} kept)\n", o.checkpoint_interval.count(),
                 o.checkpoint_dir, o.checkpoints_to_keep);
    else
      fmt::print(stderr, "  no checkpoints: a restart begins from scratch (set checkpoint.dir to recover)\n");
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::atomic<bool> done{false};
  std::thread status([&] {
    auto last = std::chrono::steady_clock::now();
    stream::PipelineStats prev;
    bool announced = false;
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (g_stop_requested.exchange(false)) {
        if (!args.quiet) fmt::print(stderr, "cairn run: stopping (the newest checkpoint is where a restart resumes)\n");
        p.Stop();
      }
      if (args.quiet) continue;
      auto st = p.Stats();
      if (!announced && st.restored_checkpoint > 0) {
        fmt::print(stderr, "cairn run: restored checkpoint {}\n", st.restored_checkpoint);
        announced = true;
      }
      if (args.status_every <= 0) continue;
      auto now = std::chrono::steady_clock::now();
      double secs = std::chrono::duration<double>(now - last).count();
      if (secs < args.status_every) continue;
      fmt::print(stderr, "{}\n", StatusLine(st, prev, secs));
      prev = st;
      last = now;
    }
  });
  absl::Status s = p.Run();
  done.store(true);
  status.join();
  auto st = p.Stats();
  if (!s.ok()) {
    fmt::print(stderr, "cairn run: {}\n", std::string(s.message()));
    return 1;
  }
  if (!args.quiet) fmt::print(stderr, "cairn run: finished — {}\n", StatusLine(st, stream::PipelineStats{}, 0));
  return 0;
}

}  // namespace

void RegisterRun(CLI::App& app, Runner* run) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a stream pipeline defined in a YAML file");
  cmd->add_option("pipeline", args->file, "Pipeline file (see docs/pipelines.md)")->required();
  cmd->add_option("--checkpoint-dir", args->checkpoint_dir, "Checkpoint directory (overrides checkpoint.dir)");
  cmd->add_option("--checkpoint-interval", args->checkpoint_interval, "Checkpoint interval, e.g. 1s (overrides the file)");
  cmd->add_flag("--fresh", args->fresh, "Ignore existing checkpoints and start from the beginning");
  cmd->add_option("--parallelism", args->parallelism, "Default parallelism (overrides the file)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--status-every", args->status_every, "Seconds between status lines (0 = none)")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", args->quiet, "No summary or status lines");
  cmd->callback([run, args] { *run = [args] { return Run(*args); }; });
}

}  // namespace cairn::cli
