#include "cairn/detect/operator.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "cairn/base/random.h"
#include "cairn/detect/series.h"
#include "cairn/stream/testing.h"
#include "gtest/gtest.h"

namespace cairn::detect {
namespace {

namespace fs = std::filesystem;
using stream::Collect;
using stream::EventTime;
using stream::Millis;
using stream::Op;
using stream::Pipeline;
using stream::PipelineOptions;
using stream::StateBackendKind;

struct Reading {
  std::string machine;
  double celsius = 0;
  void Encode(ByteWriter& w) const {
    w.String(machine);
    w.F64(celsius);
  }
  static bool Decode(ByteReader& r, Reading* out) {
    out->machine = std::string(r.String());
    out->celsius = r.F64();
    return r.ok();
  }
};

constexpr EventTime kStart = 1'700'000'000'000;
constexpr EventTime kMinute = 60'000;

// A steady signal: an hourly wave of amplitude 1 around 20, no noise, so no
// sane detector finds it surprising.
double Steady(int i, int phase) { return 20.0 + std::sin(2 * M_PI * (i + phase) / 60.0); }

// Readings of several machines, one a minute each, interleaved. `spikes` maps
// a machine to the indices where its reading jumps by +500.
std::vector<std::pair<Reading, EventTime>> Readings(int machines, int n, const std::map<int, std::set<int>>& spikes) {
  std::vector<std::pair<Reading, EventTime>> out;
  for (int i = 0; i < n; ++i)
    for (int m = 0; m < machines; ++m) {
      double v = Steady(i, 7 * m);
      auto it = spikes.find(m);
      if (it != spikes.end() && it->second.count(i)) v += 500;
      out.push_back({Reading{fmt::format("m{}", m), v}, kStart + i * kMinute});
    }
  return out;
}

auto FromVector(std::vector<std::pair<Reading, EventTime>> data, size_t per_poll = 1000,
                std::shared_ptr<std::atomic<int64_t>> gate = nullptr) {
  return [data, per_poll, gate](int) {
    return std::make_unique<stream::testing::VectorSource<Reading>>(data, per_poll, gate);
  };
}

PipelineOptions Options(int parallelism = 1) {
  PipelineOptions o;
  o.default_parallelism = parallelism;
  o.batch_size = 64;
  o.queue_batches = 4;
  return o;
}

SeriesDetector Temperature() { return *SeriesDetector::Create({.value_name = "temperature"}); }

Observation Celsius(const Reading& r) { return Observation{.value = r.celsius}; }

TEST(DetectOperator, ReportsAHugeSpikeAfterASteadyWarmupAndNothingOnSteadySeries) {
  const int n = 2000, spike = 1500;
  auto data = Readings(3, n, {{1, {spike}}});
  Pipeline p(Options(2));
  // One reader keeps each machine's readings in time order: the series
  // detector learns from records in the order they arrive.
  auto alarms = Collect(Detect(p.AddSource<Reading>(Op("readings", 1), FromVector(data))
                                   .KeyBy([](const Reading& r) { return r.machine; }),
                               "temperature", Temperature(), Celsius, {.false_alarm_rate = 1e-4}));
  ASSERT_TRUE(p.Run().ok());
  bool spike_seen = false;
  for (const Anomaly& a : alarms->records()) {
    EXPECT_EQ(a.key, "m1") << a.reason;
    EXPECT_GE(a.time, kStart + spike * kMinute) << a.reason;
    EXPECT_EQ(a.detector, "series");
    EXPECT_GE(a.score, ThresholdFor(1e-4));
    EXPECT_FALSE(a.reason.empty());
    if (a.time == kStart + spike * kMinute) {
      spike_seen = true;
      EXPECT_NEAR(a.value, Steady(spike, 7) + 500, 1e-9);
      EXPECT_NE(a.reason.find("temperature"), std::string::npos) << a.reason;
    }
  }
  EXPECT_TRUE(spike_seen);
}

TEST(DetectOperator, EmitAllGivesEveryRecordItsScoreAndReasonsOnlyToAnomalies) {
  const int n = 1000, spike = 800;
  auto data = Readings(2, n, {{0, {spike}}});
  Pipeline p(Options());
  auto out = Collect(Detect(p.AddSource<Reading>("readings", FromVector(data))
                                .KeyBy([](const Reading& r) { return r.machine; }),
                            "temperature", Temperature(), Celsius,
                            {.false_alarm_rate = 1e-4, .emit_all = true}));
  ASSERT_TRUE(p.Run().ok());
  auto records = out->records();
  ASSERT_EQ(records.size(), data.size());
  for (const Anomaly& a : records) {
    EXPECT_GE(a.score, 0.0);
    EXPECT_LE(a.score, 1.0);
    EXPECT_EQ(a.reason.empty(), a.score < ThresholdFor(1e-4)) << a.key << " " << a.time << " " << a.score;
    if (a.key == "m0" && a.time == kStart + spike * kMinute) {
      EXPECT_FALSE(a.reason.empty());
    }
  }
}

TEST(DetectOperator, ACooldownReportsAtMostOneAnomalyPerKeyPerPeriod) {
  // Spikes in bursts: the cooldown keeps the first of each burst (and any
  // anomaly an hour or more after the last one reported).
  auto data = Readings(2, 2000, {{0, {1500, 1505, 1510, 1700, 1720}}, {1, {1502, 1503}}});
  auto run = [&](int64_t cooldown_ms) {
    Pipeline p(Options(2));
    auto out = Collect(Detect(p.AddSource<Reading>("readings", FromVector(data))
                                  .KeyBy([](const Reading& r) { return r.machine; }),
                              "temperature", Temperature(), Celsius,
                              {.false_alarm_rate = 1e-4, .cooldown_ms = cooldown_ms}));
    EXPECT_TRUE(p.Run().ok());
    std::map<std::string, std::vector<EventTime>> times;
    for (const Anomaly& a : out->records()) times[a.key].push_back(a.time);
    for (auto& [k, v] : times) std::sort(v.begin(), v.end());
    return times;
  };
  auto every = run(0);
  auto cooled = run(60 * kMinute);
  ASSERT_FALSE(every["m0"].empty());
  ASSERT_FALSE(every["m1"].empty());
  for (auto& [key, times] : every) {
    std::vector<EventTime> expected;
    for (EventTime t : times)
      if (expected.empty() || t - expected.back() >= 60 * kMinute) expected.push_back(t);
    EXPECT_EQ(cooled[key], expected) << key;
  }
  EXPECT_EQ(cooled["m0"].front(), kStart + 1500 * kMinute);
  EXPECT_FALSE(ReportPolicy{.cooldown_ms = -1}.Validate().ok());
}

TEST(DetectOperator, ExtractorsMaySkipRecordsAndSeeTheKey) {
  auto data = Readings(2, 400, {});
  data[10].first.celsius = std::nan("");
  Pipeline p(Options());
  std::atomic<int> seen{0};
  auto extract = [&seen](const Reading& r, const std::string& key) -> std::optional<Observation> {
    EXPECT_EQ(r.machine, key);
    if (std::isnan(r.celsius)) return std::nullopt;
    seen.fetch_add(1);
    return Observation{.value = r.celsius};
  };
  auto out = Collect(Detect(p.AddSource<Reading>("readings", FromVector(data))
                                .KeyBy([](const Reading& r) { return r.machine; }),
                            "t", Temperature(), extract, {.emit_all = true}));
  ASSERT_TRUE(p.Run().ok());
  EXPECT_EQ(seen.load(), 799);
  EXPECT_EQ(out->size(), 799u);
}

TEST(DetectOperator, StreamWideDetectorsRunAsOneSubtaskWithOneState) {
  // One series over the whole stream, whatever the machine: a pipeline default
  // of 4 subtasks must not split it.
  std::vector<std::pair<Reading, EventTime>> data;
  for (int i = 0; i < 1200; ++i)
    data.push_back({Reading{fmt::format("m{}", i % 5), Steady(i, 0) + (i == 1000 ? 500 : 0)}, kStart + i * kMinute});
  Pipeline p(Options(4));
  auto out = Collect(DetectStreamWide(p.AddSource<Reading>(Op("readings", 1), FromVector(data)), "all", Temperature(),
                                      Celsius, {.false_alarm_rate = 1e-4}),
                     Op("collect", 1));
  ASSERT_TRUE(p.Run().ok());
  bool found = false;
  for (const Anomaly& a : out->records()) {
    EXPECT_EQ(a.key, "");
    found |= a.time == kStart + 1000 * kMinute;
  }
  EXPECT_TRUE(found);
  for (const auto& op : p.Stats().operators)
    if (op.name == "all") {
      EXPECT_EQ(op.parallelism, 1);
      EXPECT_EQ(op.records_in, data.size());
    }
}

TEST(DetectOperator, KeyTextOfRowsAndNumbers) {
  std::string scratch;
  EXPECT_EQ(KeyText(stream::Row{{"machine", std::string("m7")}}, scratch), "m7");
  EXPECT_EQ(KeyText(stream::Row{{"site", std::string("north")}, {"machine", int64_t{7}}}, scratch), "north/7");
  EXPECT_EQ(KeyText(int64_t{42}, scratch), "42");
  EXPECT_EQ(KeyText(WholeStream{}, scratch), "");
  EXPECT_TRUE(ReportPolicy{}.Validate().ok());
  EXPECT_FALSE(ReportPolicy{.false_alarm_rate = 0}.Validate().ok());
  EXPECT_FALSE(ReportPolicy{.false_alarm_rate = 1.5}.Validate().ok());
}

// ---- checkpoints -----------------------------------------------------------

// Output visible only on checkpoint commit; an interrupted commit finishes on
// restore: exactly-once output, so runs can be compared line by line.
struct CommitLog {
  std::mutex mu;
  std::vector<std::string> committed;
  std::set<int64_t> committed_ids;
  void Commit(int64_t id, const std::vector<std::string>& lines) {
    std::lock_guard<std::mutex> lock(mu);
    if (!committed_ids.insert(id).second) return;
    committed.insert(committed.end(), lines.begin(), lines.end());
  }
};

class CommitSink final : public stream::Sink<Anomaly> {
 public:
  explicit CommitSink(std::shared_ptr<CommitLog> log) : log_(std::move(log)) {}
  absl::Status Open(const stream::SinkContext&, std::optional<std::string> restored) override {
    if (restored) {
      std::pair<int64_t, std::vector<std::string>> staged;
      if (!stream::DecodeFromString(*restored, &staged)) return absl::DataLossError("bad sink state");
      log_->Commit(staged.first, staged.second);
    }
    return absl::OkStatus();
  }
  absl::Status Write(std::span<const Anomaly> as, std::span<const EventTime>) override {
    // Scores to the last bit: a state restored imperfectly would change them.
    for (const Anomaly& a : as)
      pending_.push_back(fmt::format("{},{},{:a},{},{}", a.key, a.time, a.score, a.value, a.reason));
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t id) override {
    staged_[id] = std::move(pending_);
    pending_.clear();
    return stream::EncodeToString(std::make_pair(id, staged_[id]));
  }
  absl::Status CommitCheckpoint(int64_t id) override {
    for (auto it = staged_.begin(); it != staged_.end() && it->first <= id;) {
      log_->Commit(it->first, it->second);
      it = staged_.erase(it);
    }
    return absl::OkStatus();
  }
  absl::Status Close() override {
    for (auto& [id, lines] : staged_) log_->Commit(id, lines);
    log_->Commit(-1, pending_);
    return absl::OkStatus();
  }
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kExactlyOnce; }

 private:
  std::shared_ptr<CommitLog> log_;
  std::vector<std::string> pending_;
  std::map<int64_t, std::vector<std::string>> staged_;
};

class DetectRecoveryTest : public ::testing::TestWithParam<StateBackendKind> {};

TEST_P(DetectRecoveryTest, KillAndRestoreMidStreamGivesTheUninterruptedScores) {
  // 12 machines, spikes here and there after the warm-up; every record is
  // emitted with its score, so any state lost or reset at a restore shows.
  std::map<int, std::set<int>> spikes;
  SplitMix64 rng(7);
  for (int m = 0; m < 12; m += 2)
    for (int k = 0; k < 3; ++k) spikes[m].insert(300 + static_cast<int>(rng.Next() % 400));
  auto data = Readings(12, 800, spikes);
  auto build = [&](Pipeline& p, std::shared_ptr<CommitLog> log, std::shared_ptr<std::atomic<int64_t>> gate) {
    Detect(p.AddSource<Reading>(Op("readings", 2), FromVector(data, 50, gate))
               .KeyBy([](const Reading& r) { return r.machine; }),
           Op("temperature", 2), Temperature(), Celsius,
           {.false_alarm_rate = 1e-4, .emit_all = true, .cooldown_ms = 30 * kMinute})
        .AddSink(Op("out", 1), [log](int) { return std::make_unique<CommitSink>(log); });
  };
  auto reference = std::make_shared<CommitLog>();
  {
    Pipeline p(Options(2));
    build(p, reference, nullptr);
    ASSERT_TRUE(p.Run().ok());
  }
  ASSERT_EQ(reference->committed.size(), data.size());
  int anomalies = 0;
  for (const std::string& line : reference->committed) anomalies += line.back() != ',';
  EXPECT_GE(anomalies, 6);  // at least one spike per spiky machine had a reason

  std::string dir = (fs::temp_directory_path() /
                     fmt::format("cairn-detect-recovery-{}-{}", static_cast<int>(GetParam()), ::getpid()))
                        .string();
  fs::remove_all(dir);
  auto log = std::make_shared<CommitLog>();
  int64_t restored_from = 0;
  for (int round = 1; round <= 4; ++round) {
    PipelineOptions o = Options(2);
    o.checkpoint_dir = dir + "/ckpt";
    o.checkpoint_interval = Millis(5);
    o.state.kind = GetParam();
    o.state.rocksdb_dir = dir + "/db";
    // Each round lets the sources go further (records per subtask), then stops
    // after a few checkpoints as a crash would; the next round restores.
    auto gate = std::make_shared<std::atomic<int64_t>>(round < 4 ? 1200 * round : 1'000'000);
    Pipeline p(o);
    build(p, log, gate);
    std::thread stopper;
    if (round < 4) {
      stopper = std::thread([&p] {
        int64_t seen = -1;
        for (int i = 0; i < 2000; ++i) {
          std::this_thread::sleep_for(Millis(2));
          auto st = p.Stats();
          if (seen < 0 && st.checkpoints_completed > 0) seen = st.checkpoints_completed;
          if (seen >= 0 && st.checkpoints_completed >= seen + 3) break;
        }
        p.Stop();
      });
    }
    ASSERT_TRUE(p.Run().ok());
    if (stopper.joinable()) stopper.join();
    EXPECT_GE(p.Stats().restored_checkpoint, restored_from);
    restored_from = p.Stats().restored_checkpoint;
    if (round > 1) {
      EXPECT_GT(restored_from, 0);
    }
  }
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(log->committed), sorted(reference->committed));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, DetectRecoveryTest,
                         ::testing::Values(StateBackendKind::kMemory, StateBackendKind::kRocksDb));

}  // namespace
}  // namespace cairn::detect
