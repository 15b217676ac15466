// `cairn demo`: the predictive-maintenance scene on embedded defaults.
//
// Four real sensor series from the Numenta Anomaly Benchmark (data/nab) are
// published over MQTT to a private mosquitto broker, each sensor's months of
// readings compressed into the same few tens of seconds; a YAML pipeline
// (examples/pipelines/predictive_maintenance.yaml: mqtt source, key_by sensor,
// detect series) scores every reading against its sensor's own baseline, and
// each alarm is printed as it fires, with its reason and whether it falls in a
// window the benchmark labels as an anomaly. The end is a precision/recall
// summary against those windows. Without mosquitto the same schedule is
// replayed from the files straight into the pipeline.
//
// `cairn demo sketches` is the earlier showcase: sketches beside exact answers.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "cairn/base/config.h"
#include "cairn/cli/commands.h"
#include "cairn/cli/demo_sketches.h"
#include "cairn/cli/format.h"
#include "cairn/cli/nab_scene.h"
#include "cairn/connect/local_broker.h"
#include "cairn/connect/mqtt.h"
#include "cairn/pipeline/pipeline_file.h"

namespace cairn::cli {
namespace {

using stream::Row;
using Clock = std::chrono::steady_clock;

struct SceneOptions {
  std::string data_dir;
  std::string pipeline;
  double seconds = 40;
  bool no_broker = false;
};

struct SensorFile {
  const char* file;
  const char* name;
};
constexpr SensorFile kSensors[] = {
    {"machine_temperature_system_failure", "machine_temperature"},
    {"ambient_temperature_system_failure", "ambient_temperature"},
    {"ec2_request_latency_system_failure", "ec2_request_latency"},
    {"cpu_utilization_asg_misconfiguration", "cpu_utilization_asg"},
};
constexpr const char* kPipelineFile = "predictive_maintenance.yaml";

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What the sensors send: {"sensor": ..., "timestamp": "2013-12-02 21:15:00", "value": ...}.
Row Reading(const LabelledSeries& s, int row) {
  std::string ts = FormatUtcMinute(s.times[row]) + fmt::format(":{:02}", (s.times[row] / 1000) % 60);
  return Row{{"sensor", s.name}, {"timestamp", std::move(ts)}, {"value", s.values[row]}};
}

// Everything the engine's sink, the publisher and the progress line share.
class Scene {
 public:
  Scene(std::vector<LabelledSeries> series, std::vector<Scheduled> schedule, bool tty)
      : series_(std::move(series)), schedule_(std::move(schedule)), tty_(tty), alarm_times_(series_.size()) {
    for (size_t i = 0; i < series_.size(); ++i) index_[series_[i].name] = static_cast<int>(i);
  }

  const std::vector<LabelledSeries>& series() const { return series_; }
  const std::vector<Scheduled>& schedule() const { return schedule_; }
  std::atomic<uint64_t>& sent() { return sent_; }
  uint64_t alarms() const { return alarms_.load(); }

  // One output row of the detect step.
  void OnAlarm(const Row& r) {
    const auto* sensor = r.Get("key");
    const auto* time = r.Get("time");
    const auto* score = r.Get("score");
    const auto* reason = r.Get("reason");
    if (!sensor || !time || !std::holds_alternative<int64_t>(*time)) return;
    auto it = index_.find(stream::ValueToString(*sensor));
    if (it == index_.end()) return;
    const LabelledSeries& s = series_[it->second];
    EventMs t = std::get<int64_t>(*time);
    int w = s.WindowOf(t);
    std::string label =
        w >= 0 ? fmt::format("[labelled window {} of {}]", w + 1, s.windows.size()) : std::string("[no label]");
    std::lock_guard<std::mutex> lock(print_mu_);
    alarm_times_[it->second].push_back(t);
    alarms_.fetch_add(1);
    ClearProgressLocked();
    fmt::print("ALARM {}  {:<20} score {:.5f}  {}  {}\n", FormatUtcMinute(t), s.name,
               score ? stream::ValueToDouble(*score).value_or(0) : 0.0,
               reason ? stream::ValueToString(*reason) : std::string(), label);
    std::fflush(stdout);
  }

  // The progress line: redrawn in place on a terminal, else one line per quarter.
  void Progress(uint64_t scored, double seconds, bool final) {
    std::lock_guard<std::mutex> lock(print_mu_);
    const uint64_t total = schedule_.size();
    const uint64_t sent = sent_.load();
    const int quarter = static_cast<int>(4 * sent / std::max<uint64_t>(total, 1));
    // Off a terminal: one line at 25, 50 and 75 %, and the final one.
    if (!tty_ && !final && (quarter <= last_quarter_ || quarter >= 4)) return;
    last_quarter_ = quarter;
    std::string line = fmt::format("{:3.0f}% | sent {} | scored {} ({}/s) | alarms {}", 100.0 * sent / total,
                                   Thousands(sent), Thousands(scored),
                                   HumanCount(seconds > 0 ? static_cast<double>(scored) / seconds : 0),
                                   alarms_.load());
    if (tty_) {
      fmt::print("\r\033[K{}", line);
      if (final) fmt::print("\n");
      shown_ = !final;
    } else {
      fmt::print("{}\n", line);
    }
    std::fflush(stdout);
  }

  std::vector<std::vector<EventMs>> alarm_times() const {
    std::lock_guard<std::mutex> lock(print_mu_);
    return alarm_times_;
  }

 private:
  void ClearProgressLocked() {
    if (tty_ && shown_) fmt::print("\r\033[K");
    shown_ = false;
  }

  std::vector<LabelledSeries> series_;
  std::vector<Scheduled> schedule_;
  bool tty_;
  absl::flat_hash_map<std::string, int> index_;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> alarms_{0};
  mutable std::mutex print_mu_;
  std::vector<std::vector<EventMs>> alarm_times_;
  bool shown_ = false;
  int last_quarter_ = 0;
};

// The pipeline's sink: every row is an alarm (the detect step emits anomalies).
class AlarmSink final : public stream::Sink<Row> {
 public:
  explicit AlarmSink(std::shared_ptr<Scene> scene) : scene_(std::move(scene)) {}
  absl::Status Open(const stream::SinkContext&, std::optional<std::string>) override { return absl::OkStatus(); }
  absl::Status Write(std::span<const Row> rows, std::span<const stream::EventTime>) override {
    for (const Row& r : rows) scene_->OnAlarm(r);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t) override { return std::string(); }
  absl::Status Close() override { return absl::OkStatus(); }
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kAtLeastOnce; }

 private:
  std::shared_ptr<Scene> scene_;
};

// The file's source, reporting when it is open (for MQTT: connected and
// subscribed), so that nothing is published before anyone listens.
class AnnouncedSource final : public stream::Source<Row> {
 public:
  AnnouncedSource(std::unique_ptr<stream::Source<Row>> inner, std::shared_ptr<std::atomic<int>> opened)
      : inner_(std::move(inner)), opened_(std::move(opened)) {}
  absl::Status Open(const stream::SourceContext& ctx, std::optional<std::string> restored) override {
    absl::Status s = inner_->Open(ctx, std::move(restored));
    if (s.ok()) opened_->fetch_add(1);
    return s;
  }
  absl::StatusOr<stream::PollStatus> Poll(stream::SourceBatch<Row>& out, size_t max_records,
                                          std::chrono::milliseconds max_wait) override {
    return inner_->Poll(out, max_records, max_wait);
  }
  std::string Position() override { return inner_->Position(); }
  void NotifyCheckpointComplete(int64_t id) override { inner_->NotifyCheckpointComplete(id); }
  void Close() override { inner_->Close(); }
  stream::DeliveryGuarantee guarantee() const override { return inner_->guarantee(); }

 private:
  std::unique_ptr<stream::Source<Row>> inner_;
  std::shared_ptr<std::atomic<int>> opened_;
};

// Without a broker: the schedule replayed from the files into the pipeline.
class ReplaySource final : public stream::Source<Row> {
 public:
  explicit ReplaySource(std::shared_ptr<Scene> scene) : scene_(std::move(scene)) {}
  absl::Status Open(const stream::SourceContext&, std::optional<std::string>) override {
    start_ = Clock::now();
    return absl::OkStatus();
  }
  absl::StatusOr<stream::PollStatus> Poll(stream::SourceBatch<Row>& out, size_t max_records,
                                          std::chrono::milliseconds max_wait) override {
    const auto& schedule = scene_->schedule();
    if (next_ >= schedule.size()) return stream::PollStatus::kEndOfInput;
    double now = Since(start_);
    while (next_ < schedule.size() && schedule[next_].at <= now && out.records.size() < max_records) {
      const Scheduled& r = schedule[next_++];
      const LabelledSeries& s = scene_->series()[r.series];
      out.records.push_back(Reading(s, r.row));
      out.times.push_back(s.times[r.row]);
    }
    scene_->sent().fetch_add(out.records.size());
    if (!out.records.empty()) return stream::PollStatus::kRecords;
    double wait = std::min(schedule[next_].at - now, max_wait.count() / 1000.0);
    std::this_thread::sleep_for(std::chrono::duration<double>(std::max(wait, 0.0)));
    return stream::PollStatus::kIdle;
  }
  std::string Position() override { return std::to_string(next_); }
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kExactlyOnce; }

 private:
  std::shared_ptr<Scene> scene_;
  Clock::time_point start_;
  size_t next_ = 0;
};

// Publishes the schedule to the broker, as the sensors would.
absl::Status Publish(Scene& scene, int port, const std::string& topic, const std::atomic<int>& opened,
                     const std::atomic<bool>& pipeline_done) {
  connect::MqttSinkOptions o;
  o.port = port;
  o.topic = topic;
  o.qos = 1;
  o.client_id = "cairn-demo-sensors";
  CAIRN_ASSIGN_OR_RETURN(auto sink, connect::MqttSink::Create(o));
  CAIRN_RETURN_IF_ERROR(sink->Open(stream::SinkContext{.name = "sensors"}, std::nullopt));
  for (auto deadline = Clock::now() + std::chrono::seconds(10); opened.load() == 0;) {
    if (pipeline_done.load()) return absl::OkStatus();
    if (Clock::now() > deadline) return absl::DeadlineExceededError("the pipeline did not subscribe within 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto& schedule = scene.schedule();
  std::vector<Row> rows;
  std::vector<stream::EventTime> times;
  const auto start = Clock::now();
  for (size_t next = 0; next < schedule.size() && !pipeline_done.load();) {
    double now = Since(start);
    rows.clear();
    times.clear();
    for (; next < schedule.size() && schedule[next].at <= now; ++next) {
      const LabelledSeries& s = scene.series()[schedule[next].series];
      rows.push_back(Reading(s, schedule[next].row));
      times.push_back(s.times[schedule[next].row]);
    }
    if (!rows.empty()) {
      CAIRN_RETURN_IF_ERROR(sink->Write(rows, times));
      scene.sent().fetch_add(rows.size());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return sink->Close();
}

std::string FindPipeline(const std::string& flag) {
  if (!flag.empty()) return flag;
  for (const std::string& dir : {std::string("examples/pipelines"), std::string(CAIRN_EXAMPLES_DIR) + "/pipelines"}) {
    std::string p = dir + "/" + kPipelineFile;
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

// "detect series, false-alarm rate 0.0005" for the header, from the file.
std::string DetectSummary(const Config& root) {
  auto steps = root.Items("steps");
  if (!steps.ok()) return "";
  for (const Config& step : *steps) {
    if (!step.Has("detect")) continue;
    auto d = step.Child("detect");
    if (!d.ok()) continue;
    return fmt::format("detect {} on {}, false-alarm rate {}", d->GetOr<std::string>("type", "?").value_or("?"),
                       d->GetOr<std::string>("value", "?").value_or("?"),
                       d->GetOr<double>("false_alarm_rate", 0.001).value_or(0.001));
  }
  return "";
}

void Summary(const Scene& scene, double seconds, uint64_t scored) {
  fmt::print(
      "\nAgainst the benchmark's labelled anomaly windows (alarms inside a window detect it; others are false):\n");
  const char* row = "{:<22} {:>9} {:>8} {:>9} {:>7} {:>7} {:>10} {:>7}\n";
  fmt::print(fmt::runtime(row), "sensor", "readings", "windows", "detected", "alarms", "false", "precision", "recall");
  auto alarms = scene.alarm_times();
  auto pct = [](double x) { return std::isnan(x) ? std::string("-") : fmt::format("{:.1f}%", 100 * x); };
  SeriesScore all;
  size_t readings = 0;
  for (size_t i = 0; i < scene.series().size(); ++i) {
    const LabelledSeries& s = scene.series()[i];
    SeriesScore sc = ScoreAlarms(s, alarms[i]);
    fmt::print(fmt::runtime(row), s.name, Thousands(s.times.size()), sc.windows, sc.detected, sc.alarms,
               sc.false_alarms(), pct(sc.precision()), pct(sc.recall()));
    all.windows += sc.windows;
    all.detected += sc.detected;
    all.alarms += sc.alarms;
    all.true_alarms += sc.true_alarms;
    readings += s.times.size();
  }
  fmt::print(fmt::runtime(row), "all", Thousands(readings), all.windows, all.detected, all.alarms, all.false_alarms(),
             pct(all.precision()), pct(all.recall()));
  fmt::print("precision {} = windows detected / (windows detected + false alarms); recall {} = windows detected / "
             "windows\n",
             pct(all.precision()), pct(all.recall()));
  fmt::print("{} readings scored in {:.1f} s\n", Thousands(scored), seconds);
}

int RunScene(const SceneOptions& o) {
  const auto t0 = Clock::now();
  std::string dir = FindDataDir(o.data_dir, "nab/combined_windows.json");
  if (dir.empty()) {
    fmt::print(stderr,
               "cairn demo: cannot find the bundled data (nab/); run from the repository root or pass --data DIR\n");
    return 1;
  }
  std::vector<LabelledSeries> series;
  for (const SensorFile& f : kSensors) {
    auto s = LoadNabSeries(dir + "/nab", "realKnownCause", f.file, dir + "/nab/combined_windows.json", f.name);
    if (!s.ok()) {
      fmt::print(stderr, "cairn demo: {}\n", std::string(s.status().message()));
      return 1;
    }
    series.push_back(*std::move(s));
  }
  std::string pipeline_path = FindPipeline(o.pipeline);
  if (pipeline_path.empty()) {
    fmt::print(stderr,
               "cairn demo: cannot find examples/pipelines/{}; run from the repository root or pass --pipeline\n",
               kPipelineFile);
    return 1;
  }
  auto file = Config::LoadFile(pipeline_path);
  if (!file.ok()) {
    fmt::print(stderr, "cairn demo: {}\n", std::string(file.status().message()));
    return 1;
  }

  auto schedule = ReplaySchedule(series, o.seconds);
  auto scene = std::make_shared<Scene>(std::move(series), std::move(schedule), ::isatty(STDOUT_FILENO) == 1);
  fmt::print("cairn demo — predictive maintenance: live anomaly detection on real sensor data\n\n");
  fmt::print("Four sensors from the Numenta Anomaly Benchmark (real data; anomaly windows labelled afterwards):\n");
  for (const LabelledSeries& s : scene->series())
    fmt::print("  {:<22} {:>7} readings  {} .. {}  {} labelled window{}\n", s.name, Thousands(s.times.size()),
               FormatUtcMinute(s.times.front()).substr(0, 10), FormatUtcMinute(s.times.back()).substr(0, 10),
               s.windows.size(), s.windows.size() == 1 ? "" : "s");

  // The broker, or the files.
  std::unique_ptr<connect::LocalMosquitto> broker;
  if (!o.no_broker) {
    auto b = connect::LocalMosquitto::Start();
    if (b.ok()) {
      broker = *std::move(b);
    } else {
      fmt::print("mosquitto: {}; replaying from the files instead of over MQTT\n", std::string(b.status().message()));
    }
  }
  std::string publish_topic;
  Config root = *file;
  auto opened = std::make_shared<std::atomic<int>>(0);
  pipeline::RunOverrides overrides;
  overrides.sink = [scene](pipeline::RunOverrides::SinkFactory) -> pipeline::RunOverrides::SinkFactory {
    return [scene](int) { return std::make_unique<AlarmSink>(scene); };
  };
  if (broker) {
    auto type = root.GetOr<std::string>("source.type", "");
    auto topic = root.GetOr<std::string>("source.topic", "");
    if (!type.ok() || *type != "mqtt" || !topic.ok() || topic->empty()) {
      fmt::print(stderr, "cairn demo: {}: the demo pipeline reads an mqtt source with one `topic`\n", pipeline_path);
      return 1;
    }
    for (char c : *topic) publish_topic += (c == '+' || c == '#') ? std::string("{sensor}") : std::string(1, c);
    // Point the file's source at the private broker.
    YAML::Node edited = YAML::Clone(root.node());
    edited["source"]["host"] = "127.0.0.1";
    edited["source"]["port"] = broker->port();
    auto reparsed = Config::Parse(YAML::Dump(edited), pipeline_path);
    if (!reparsed.ok()) {
      fmt::print(stderr, "cairn demo: {}\n", std::string(reparsed.status().message()));
      return 1;
    }
    root = *reparsed;
    overrides.source = [opened](pipeline::RunOverrides::SourceFactory inner) -> pipeline::RunOverrides::SourceFactory {
      return [inner, opened](int subtask) -> std::unique_ptr<stream::Source<Row>> {
        auto s = inner(subtask);
        if (!s) return nullptr;
        return std::make_unique<AnnouncedSource>(std::move(s), opened);
      };
    };
  } else {
    overrides.source = [scene](pipeline::RunOverrides::SourceFactory) -> pipeline::RunOverrides::SourceFactory {
      return [scene](int) -> std::unique_ptr<stream::Source<Row>> { return std::make_unique<ReplaySource>(scene); };
    };
  }
  // Errors name the lines of the file as written, so check it before the edit too.
  if (auto check = pipeline::CompilePipeline(*file, overrides); !check.ok()) {
    fmt::print(stderr, "cairn demo: {}\n", std::string(check.status().message()));
    return 1;
  }
  auto compiled = pipeline::CompilePipeline(root, overrides);
  if (!compiled.ok()) {
    fmt::print(stderr, "cairn demo: {}\n", std::string(compiled.status().message()));
    return 1;
  }
  if (broker) fmt::print("broker    mosquitto on 127.0.0.1:{} (private; stopped at the end)\n", broker->port());
  fmt::print("pipeline  {}\n", pipeline_path);
  if (broker)
    fmt::print("            source mqtt 127.0.0.1:{} {}\n", broker->port(),
               root.GetOr<std::string>("source.topic", "").value_or(""));
  else
    fmt::print("            source the files, on the same schedule (in place of the file's source)\n");
  if (std::string d = DetectSummary(root); !d.empty()) fmt::print("            {}\n", d);
  fmt::print("            sink   the alarms below (in place of the file's sink)\n");
  fmt::print("replay    {} readings{}, each sensor's months compressed into {:.0f} s\n\n",
             Thousands(scene->schedule().size()), broker ? fmt::format(" published to {}", publish_topic) : "",
             o.seconds);
  std::fflush(stdout);

  stream::Pipeline& p = (*compiled)->pipeline();
  std::atomic<bool> done{false};
  absl::Status run_status;
  const auto start = Clock::now();
  std::thread runner([&] {
    run_status = p.Run();
    done.store(true);
  });
  std::atomic<bool> published{false};
  absl::Status publish_status;
  std::thread publisher;
  if (broker) {
    publisher = std::thread([&] {
      publish_status = Publish(*scene, broker->port(), publish_topic, *opened, done);
      published.store(true);
    });
  }
  auto scored_now = [&p] {
    auto st = p.Stats();
    return st.operators.size() > 1 ? st.operators[1].records_in : 0;
  };
  const uint64_t total = scene->schedule().size();
  Clock::time_point drained{}, last_progress = Clock::now();
  uint64_t last_scored = 0;
  while (!done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    uint64_t scored = scored_now();
    scene->Progress(scored, Since(start), false);
    if (!broker) continue;  // the replay source ends the pipeline itself
    if (scored != last_scored) last_progress = Clock::now();
    last_scored = scored;
    // MQTT never ends: stop once everything published was scored and has had
    // a moment to reach the sink, or when nothing moves for 5 s after the end.
    auto st = p.Stats();
    bool all_in = published.load() && st.operators.size() > 1 &&
                  st.operators[0].records_out + st.dead_letters >= scene->sent().load() &&
                  st.operators[1].records_in >= st.operators[0].records_out;
    if (all_in && drained == Clock::time_point{}) drained = Clock::now();
    if ((all_in && Since(drained) > 0.3) || (published.load() && Since(last_progress) > 5)) p.Stop();
  }
  runner.join();
  if (publisher.joinable()) publisher.join();
  const double secs = Since(start);
  const uint64_t scored = scored_now();
  scene->Progress(scored, secs, true);
  if (!run_status.ok()) {
    fmt::print(stderr, "cairn demo: pipeline: {}\n", std::string(run_status.message()));
    return 1;
  }
  if (!publish_status.ok()) {
    fmt::print(stderr, "cairn demo: publishing: {}\n", std::string(publish_status.message()));
    return 1;
  }
  if (scored < total)
    fmt::print("note: {} of {} readings were not scored (lost on the way)\n", Thousands(total - scored),
               Thousands(total));
  Summary(*scene, secs, scored);
  fmt::print("demo finished in {:.1f} s\n", Since(t0));
  return 0;
}

}  // namespace

void RegisterDemo(CLI::App& app, Runner* run) {
  auto scene = std::make_shared<SceneOptions>();
  auto sketches = std::make_shared<SketchesDemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Predictive maintenance on real sensor data: MQTT in, live anomaly detection, precision/recall");
  cmd->add_option("--data", scene->data_dir, "Directory of the bundled data (default: ./data)");
  cmd->add_option("--pipeline", scene->pipeline,
                  "Pipeline file (default: examples/pipelines/predictive_maintenance.yaml)");
  cmd->add_option("--seconds", scene->seconds, "Wall-clock length of the replay")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 3600.0));
  cmd->add_flag("--no-broker", scene->no_broker, "Replay from the files, without MQTT");

  CLI::App* sk = cmd->add_subcommand("sketches", "Sketches beside exact answers, on NAB data and a generated stream");
  sk->add_option("--data", sketches->data_dir, "Directory of the bundled data (default: ./data)");
  sk->add_option("--events", sketches->events, "Events in the generated stream")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1000}, uint64_t{1'000'000'000}));
  sk->add_option("--sensors", sketches->sensors, "Distinct sensor ids the stream draws from")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{10}, uint64_t{1'000'000'000}));
  sk->add_option("--seed", sketches->seed, "Random seed")->capture_default_str();
  cmd->callback([=] {
    if (sk->parsed())
      *run = [=] { return RunSketchesDemo(*sketches); };
    else
      *run = [=] { return RunScene(*scene); };
  });
}

}  // namespace cairn::cli
