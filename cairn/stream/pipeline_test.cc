#include "cairn/stream/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "cairn/base/random.h"
#include "cairn/base/temp_dir.h"
#include "cairn/stream/checkpoint.h"
#include "cairn/stream/testing.h"
#include "gtest/gtest.h"

namespace cairn::stream {
namespace {

namespace fs = std::filesystem;
using testing::VectorSource;
using KV = std::pair<int64_t, int64_t>;  // key, value

// A fresh directory `name` in this test process's own temporary directory,
// which goes away with the process.
std::string TempDir(const std::string& name) {
  static const cairn::TempDir root("cairn-pipeline");
  return root.Fresh(name);
}

template <class T>
std::function<std::unique_ptr<Source<T>>(int)> FromVector(std::vector<std::pair<T, EventTime>> data,
                                                           size_t per_poll = 1000,
                                                           std::shared_ptr<std::atomic<int64_t>> gate = nullptr) {
  return [data, per_poll, gate](int) { return std::make_unique<VectorSource<T>>(data, per_poll, gate); };
}

PipelineOptions Options(int parallelism = 1) {
  PipelineOptions o;
  o.default_parallelism = parallelism;
  o.batch_size = 64;
  o.queue_batches = 4;
  return o;
}

// Keyed events with increasing times (some keys, a few per millisecond).
std::vector<std::pair<KV, EventTime>> Events(int n, int keys, int64_t start = 1000) {
  std::vector<std::pair<KV, EventTime>> out;
  cairn::SplitMix64 rng(42);
  for (int i = 0; i < n; ++i)
    out.push_back({KV{static_cast<int64_t>(rng.Next() % keys), static_cast<int64_t>(rng.Next() % 100)},
                   start + i / 3});
  return out;
}

template <class T>
std::vector<T> Sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Pipeline, MapFilterAndFlatMapKeepOrderInOneChain) {
  std::vector<std::pair<int64_t, EventTime>> data;
  for (int64_t i = 0; i < 5000; ++i) data.push_back({i, i});
  Pipeline p(Options());
  auto out = Collect(p.AddSource<int64_t>("numbers", FromVector(data))
                         .Map("double", [](const int64_t& x) { return x * 2; })
                         .Filter("thirds", [](const int64_t& x) { return x % 3 == 0; })
                         .FlatMap<std::string>("twice", [](const int64_t& x, EventTime, Collector<std::string>& c) {
                           c.Emit(std::to_string(x));
                           c.Emit("again");
                         }));
  ASSERT_TRUE(p.Run().ok());
  std::vector<std::string> expected;
  for (int64_t i = 0; i < 5000; ++i)
    if ((i * 2) % 3 == 0) {
      expected.push_back(std::to_string(i * 2));
      expected.push_back("again");
    }
  EXPECT_EQ(out->records(), expected);
}

TEST(Pipeline, ParallelStagesDeliverEveryRecordOnce) {
  std::vector<std::pair<int64_t, EventTime>> data;
  for (int64_t i = 0; i < 20000; ++i) data.push_back({i, i});
  Pipeline p(Options(2));
  auto out = Collect(p.AddSource<int64_t>(Op("numbers", 2), FromVector(data))
                         .Map(Op("plus", 3), [](const int64_t& x) { return x + 1; }),
                     Op("collect", 1));
  ASSERT_TRUE(p.Run().ok());
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < 20000; ++i) expected.push_back(i + 1);
  EXPECT_EQ(Sorted(out->records()), expected);
}

TEST(Pipeline, KeyedReduceKeepsRunningTotalsPerKey) {
  auto data = Events(10000, 17);
  Pipeline p(Options(2));
  auto out = Collect(p.AddSource<KV>("events", FromVector(data))
                         .KeyBy([](const KV& e) { return e.first; })
                         .Reduce("sum", [](const KV& a, const KV& b) { return KV{a.first, a.second + b.second}; }));
  ASSERT_TRUE(p.Run().ok());
  std::map<int64_t, int64_t> expected, got;
  for (auto& [e, t] : data) expected[e.first] += e.second;
  for (auto& r : out->records()) got[r.first] = std::max(got[r.first], r.second);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(out->size(), data.size());
}

using Counts = std::vector<std::tuple<int64_t, EventTime, EventTime, int64_t>>;

Counts BruteForceWindows(const std::vector<std::pair<KV, EventTime>>& data, int64_t size, int64_t slide) {
  std::map<std::tuple<int64_t, EventTime, EventTime>, int64_t> m;
  for (auto& [e, t] : data) {
    for (int64_t start = t - ((t % slide) + slide) % slide; start > t - size; start -= slide) m[{e.first, start, start + size}]++;
  }
  Counts out;
  for (auto& [k, v] : m) out.emplace_back(std::get<0>(k), std::get<1>(k), std::get<2>(k), v);
  return out;
}

Counts ToCounts(const std::vector<WindowResult<int64_t, int64_t>>& results) {
  Counts out;
  for (auto& r : results) out.emplace_back(r.key, r.start, r.end, r.value);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Pipeline, UnionMergesStreamsAndTheirWatermarks) {
  std::vector<std::pair<KV, EventTime>> a, b;
  for (int i = 0; i < 3000; ++i) a.push_back({KV{1, 1}, i});
  for (int i = 0; i < 1000; ++i) b.push_back({KV{2, 1}, i * 3});
  Pipeline p(Options());
  auto left = p.AddSource<KV>("a", FromVector(a, 7));
  auto right = p.AddSource<KV>("b", FromVector(b, 5));
  auto w = left.Union(right)
               .KeyBy([](const KV& e) { return e.first; })
               .Window(Windows::Tumbling(Millis(1000)))
               .Aggregate("count", Count<KV>());
  auto out = Collect(w.results);
  ASSERT_TRUE(p.Run().ok());
  Counts expected = {{1, 0, 1000, 1000}, {1, 1000, 2000, 1000}, {1, 2000, 3000, 1000},
                     {2, 0, 1000, 334},  {2, 1000, 2000, 333},  {2, 2000, 3000, 333}};
  EXPECT_EQ(ToCounts(out->records()), expected);
  EXPECT_EQ(p.Stats().operators[2].late_records + p.Stats().operators[3].late_records, 0u);
}

class WindowTest : public ::testing::TestWithParam<std::tuple<int, StateBackendKind>> {};

TEST_P(WindowTest, TumblingAndSlidingCountsMatchBruteForce) {
  auto [parallelism, backend] = GetParam();
  auto data = Events(6000, 11);
  for (auto [size, slide] : {std::pair<int64_t, int64_t>{50, 50}, {60, 20}}) {
    PipelineOptions o = Options(parallelism);
    o.state.kind = backend;
    o.state.rocksdb_dir = TempDir("windows-db");
    Pipeline p(o);
    auto windows = p.AddSource<KV>("events", FromVector(data))
                       .KeyBy([](const KV& e) { return e.first; })
                       .Window(size == slide ? Windows::Tumbling(Millis(size)) : Windows::Sliding(Millis(size), Millis(slide)))
                       .Aggregate("count", Count<KV>());
    auto out = Collect(windows.results);
    ASSERT_TRUE(p.Run().ok());
    EXPECT_EQ(ToCounts(out->records()), BruteForceWindows(data, size, slide)) << size << "/" << slide;
    // Results carry the window's last millisecond as event time.
    auto recs = out->records();
    auto times = out->times();
    for (size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(times[i], recs[i].end - 1);
  }
}

INSTANTIATE_TEST_SUITE_P(ParallelismAndBackend, WindowTest,
                         ::testing::Values(std::make_tuple(1, StateBackendKind::kMemory),
                                           std::make_tuple(2, StateBackendKind::kMemory),
                                           std::make_tuple(2, StateBackendKind::kRocksDb)));

TEST(Pipeline, SessionWindowsMergeByGap) {
  // key 1: sessions [0,15) from {0,5} and [100,110) ; key 2: [7, 27) from {7, 12, 17}
  std::vector<std::pair<KV, EventTime>> data = {{{1, 1}, 0},  {{1, 1}, 5},  {{2, 1}, 7},   {{2, 1}, 12},
                                                {{2, 1}, 17}, {{1, 1}, 100}, {{2, 1}, 200}};
  Pipeline p(Options());
  auto w = p.AddSource<KV>("events", FromVector(data, 1))
               .KeyBy([](const KV& e) { return e.first; })
               .Window(Windows::Session(Millis(10)))
               .Aggregate("sessions", Count<KV>());
  auto out = Collect(w.results);
  ASSERT_TRUE(p.Run().ok());
  Counts expected = {{1, 0, 15, 2}, {1, 100, 110, 1}, {2, 7, 27, 3}, {2, 200, 210, 1}};
  EXPECT_EQ(ToCounts(out->records()), expected);
}

TEST(Pipeline, LateRecordsGoToTheSideOutputAndLatenessRefires) {
  // Watermark = max time - 1 (no out-of-orderness allowed). Windows of 10 ms.
  std::vector<std::pair<KV, EventTime>> data = {
      {{1, 1}, 1}, {{1, 1}, 12},  // watermark 11: window [0,10) fires
      {{1, 1}, 5},                // [0,10) fired, but lateness 10 keeps it until watermark 19: re-fire
      {{1, 1}, 25},               // watermark 24: [10,20) fires, [0,10) is dropped
      {{1, 1}, 40},               // watermark 39: [20,30) fires
      {{1, 1}, 8},                // [0,10) is past its lateness: late side output
  };
  Pipeline p(Options());
  auto w = p.AddSource<KV>("events", FromVector(data, 1))
               .KeyBy([](const KV& e) { return e.first; })
               .Window(Windows::Tumbling(Millis(10)))
               .AllowedLateness(Millis(10))
               .Aggregate("count", Count<KV>());
  auto out = Collect(w.results);
  auto late = Collect(w.late, Op("late"));
  ASSERT_TRUE(p.Run().ok());
  Counts got;
  for (auto& r : out->records()) got.emplace_back(r.key, r.start, r.end, r.value);
  Counts expected = {{1, 0, 10, 1}, {1, 0, 10, 2}, {1, 10, 20, 1}, {1, 20, 30, 1}, {1, 40, 50, 1}};
  EXPECT_EQ(got, expected);
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ(late->times()[0], 8);
  EXPECT_EQ(p.Stats().operators[1].late_records, 1u);
}

TEST(Pipeline, LateRecordsAreCountedWhenTheSideOutputIsNotConnected) {
  std::vector<std::pair<KV, EventTime>> data = {{{1, 1}, 100}, {{1, 1}, 5}};
  Pipeline p(Options());
  auto w = p.AddSource<KV>("events", FromVector(data, 1))
               .KeyBy([](const KV& e) { return e.first; })
               .Window(Windows::Tumbling(Millis(10)))
               .Aggregate("count", Count<KV>());
  auto out = Collect(w.results);
  ASSERT_TRUE(p.Run().ok());
  EXPECT_EQ(out->size(), 1u);
  EXPECT_EQ(p.Stats().operators[1].late_records, 1u);
}

// Emits "key:count" one event-time tick after the last record of a key burst.
class BurstEnd final : public KeyedProcessFunction<int64_t, KV, std::string> {
 public:
  void Open(KeyedContext<int64_t, std::string>& ctx) override {
    count_ = ctx.state().GetValueState<int64_t>("count");
    last_ = ctx.state().GetValueState<int64_t>("last");
  }
  void ProcessElement(const KV&, KeyedContext<int64_t, std::string>& ctx) override {
    count_->Update(count_->Value().value_or(0) + 1);
    if (auto last = last_->Value()) ctx.timers().DeleteEventTimeTimer(*last + 10);
    last_->Update(ctx.timestamp());
    ctx.timers().RegisterEventTimeTimer(ctx.timestamp() + 10);
  }
  void OnTimer(EventTime t, TimeDomain, KeyedContext<int64_t, std::string>& ctx) override {
    ctx.EmitAt(fmt::format("{}:{}@{}", ctx.key(), *count_->Value(), t), t);
    count_->Clear();
    last_->Clear();
  }

 private:
  ValueState<int64_t>* count_ = nullptr;
  ValueState<int64_t>* last_ = nullptr;
};

TEST(Pipeline, ProcessFunctionTimersFireOnWatermarks) {
  // A watermark follows each record, so a timer fires before the first record past its time.
  std::vector<std::pair<KV, EventTime>> data = {{{1, 0}, 0},  {{1, 0}, 4},  {{2, 0}, 5},
                                                {{3, 0}, 20}, {{1, 0}, 30}, {{2, 0}, 60}};
  Pipeline p(Options());
  auto out = Collect(p.AddSource<KV>("events", FromVector(data, 1))
                         .KeyBy([](const KV& e) { return e.first; })
                         .Process<std::string>("bursts", [] { return std::make_unique<BurstEnd>(); }));
  ASSERT_TRUE(p.Run().ok());
  EXPECT_EQ(out->records(), (std::vector<std::string>{"1:2@14", "2:1@15", "3:1@30", "1:1@40", "2:1@70"}));
}

// A sink that makes output visible only on checkpoint commit, and finishes an
// interrupted commit on restore: exactly-once output for the tests.
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

class CommitSink final : public Sink<WindowResult<int64_t, int64_t>> {
 public:
  explicit CommitSink(std::shared_ptr<CommitLog> log) : log_(std::move(log)) {}
  absl::Status Open(const SinkContext&, std::optional<std::string> restored) override {
    if (restored) {
      std::pair<int64_t, std::vector<std::string>> staged;
      if (!DecodeFromString(*restored, &staged)) return absl::DataLossError("bad sink state");
      log_->Commit(staged.first, staged.second);
    }
    return absl::OkStatus();
  }
  absl::Status Write(std::span<const WindowResult<int64_t, int64_t>> rs, std::span<const EventTime>) override {
    for (auto& r : rs) pending_.push_back(fmt::format("{},{},{},{}", r.key, r.start, r.end, r.value));
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t id) override {
    staged_[id] = std::move(pending_);
    pending_.clear();
    return EncodeToString(std::make_pair(id, staged_[id]));
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
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kExactlyOnce; }

 private:
  std::shared_ptr<CommitLog> log_;
  std::vector<std::string> pending_;
  std::map<int64_t, std::vector<std::string>> staged_;
};

class RecoveryTest : public ::testing::TestWithParam<StateBackendKind> {};

TEST_P(RecoveryTest, StopAndRestoreGivesExactlyTheUninterruptedOutput) {
  auto data = Events(30000, 23);
  auto build = [&](Pipeline& p, std::shared_ptr<CommitLog> log, std::shared_ptr<std::atomic<int64_t>> gate) {
    auto w = p.AddSource<KV>(Op("events", 2), FromVector(data, 50, gate))
                 .KeyBy([](const KV& e) { return e.first; })
                 .Window(Windows::Sliding(Millis(40), Millis(20)))
                 .Aggregate(Op("count", 2), Count<KV>());
    w.results.AddSink(Op("out", 1), [log](int) { return std::make_unique<CommitSink>(log); });
  };
  // The uninterrupted run.
  auto reference = std::make_shared<CommitLog>();
  {
    Pipeline p(Options(2));
    build(p, reference, nullptr);
    ASSERT_TRUE(p.Run().ok());
  }
  // Interrupted runs: each lets the sources go a little further, stops after a
  // checkpoint or two, and the next run restores from the newest one.
  auto log = std::make_shared<CommitLog>();
  std::string dir = TempDir(fmt::format("recovery{}", static_cast<int>(GetParam())));
  int64_t restored_from = 0;
  for (int round = 1; round <= 4; ++round) {
    PipelineOptions o = Options(2);
    o.checkpoint_dir = dir + "/ckpt";
    o.checkpoint_interval = Millis(5);
    o.state.kind = GetParam();
    o.state.rocksdb_dir = dir + "/db";
    auto gate = std::make_shared<std::atomic<int64_t>>(round < 4 ? 3000 * round : 1'000'000);
    Pipeline p(o);
    build(p, log, gate);
    std::thread stopper;
    if (round < 4) {
      stopper = std::thread([&p] {
        // Wait for two checkpoints after the sources paused, then stop as a crash would.
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
  EXPECT_EQ(Sorted(log->committed), Sorted(reference->committed));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, RecoveryTest,
                         ::testing::Values(StateBackendKind::kMemory, StateBackendKind::kRocksDb));

TEST(Pipeline, ACorruptNewestCheckpointFallsBackToThePreviousOne) {
  auto data = Events(4000, 5);
  std::string dir = TempDir("corrupt-ckpt");
  auto run = [&](std::shared_ptr<std::atomic<int64_t>> gate, bool stop_after_checkpoints) {
    PipelineOptions o = Options();
    o.checkpoint_dir = dir;
    o.checkpoint_interval = Millis(5);
    o.checkpoints_to_keep = 3;
    Pipeline p(o);
    auto w = p.AddSource<KV>("events", FromVector(data, 50, gate))
                 .KeyBy([](const KV& e) { return e.first; })
                 .Window(Windows::Tumbling(Millis(100)))
                 .Aggregate("count", Count<KV>());
    auto out = Collect(w.results);
    std::thread stopper;
    if (stop_after_checkpoints) {
      stopper = std::thread([&p] {
        for (int i = 0; i < 2000 && p.Stats().checkpoints_completed < 3; ++i) std::this_thread::sleep_for(Millis(2));
        p.Stop();
      });
    }
    EXPECT_TRUE(p.Run().ok());
    if (stopper.joinable()) stopper.join();
    return p.Stats().restored_checkpoint;
  };
  run(std::make_shared<std::atomic<int64_t>>(2000), true);
  auto store = CheckpointStore::Open(dir, 3);
  ASSERT_TRUE(store.ok()) << store.status();
  auto ids = store->CompleteIds();
  ASSERT_GE(ids.size(), 2u);
  // Truncate a state file of the newest checkpoint.
  for (auto& e : fs::recursive_directory_iterator(fmt::format("{}/chk-{}", dir, ids.back())))
    if (e.path().filename() == "state.bin") fs::resize_file(e.path(), 10);
  EXPECT_EQ(run(std::make_shared<std::atomic<int64_t>>(1'000'000), false), ids[ids.size() - 2]);
}

// Resident memory of this process in bytes (Linux), 0 when unknown.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * ::sysconf(_SC_PAGESIZE);
}

TEST(Pipeline, SlowSinkSlowsTheSourceAndBoundsMemory) {
  // 200 k records of 1 KiB would be 200 MiB if buffered; the queues hold a few MiB.
  const int64_t total = 200'000;
  auto produced = std::make_shared<std::atomic<int64_t>>(0);
  class BigSource final : public Source<std::string> {
   public:
    BigSource(int64_t total, std::shared_ptr<std::atomic<int64_t>> produced) : total_(total), produced_(produced) {}
    absl::Status Open(const SourceContext&, std::optional<std::string>) override { return absl::OkStatus(); }
    absl::StatusOr<PollStatus> Poll(SourceBatch<std::string>& out, size_t max, Millis) override {
      for (size_t i = 0; i < max && next_ < total_; ++i, ++next_) {
        out.records.push_back(std::string(1024, static_cast<char>('a' + next_ % 26)));
        out.times.push_back(next_);
      }
      produced_->store(next_);
      return next_ < total_ ? PollStatus::kRecords : PollStatus::kEndOfInput;
    }
    std::string Position() override { return std::to_string(next_); }
    DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kExactlyOnce; }

   private:
    int64_t total_;
    int64_t next_ = 0;
    std::shared_ptr<std::atomic<int64_t>> produced_;
  };
  class SlowSink final : public Sink<std::string> {
   public:
    explicit SlowSink(std::shared_ptr<std::atomic<int64_t>> consumed) : consumed_(consumed) {}
    absl::Status Open(const SinkContext&, std::optional<std::string>) override { return absl::OkStatus(); }
    absl::Status Write(std::span<const std::string> r, std::span<const EventTime>) override {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      consumed_->fetch_add(static_cast<int64_t>(r.size()));
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> PrepareCheckpoint(int64_t) override { return std::string(); }
    absl::Status Close() override { return absl::OkStatus(); }
    DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kAtLeastOnce; }

   private:
    std::shared_ptr<std::atomic<int64_t>> consumed_;
  };
  auto consumed = std::make_shared<std::atomic<int64_t>>(0);
  PipelineOptions o = Options();
  o.batch_size = 64;
  o.queue_batches = 4;
  Pipeline p(o);
  p.AddSource<std::string>("big", [&](int) { return std::make_unique<BigSource>(total, produced); })
      .KeyBy([](const std::string& s) { return s[0]; })  // a network edge: records cross a bounded queue
      .Reduce("last", [](const std::string&, const std::string& b) { return b; })
      .AddSink("slow", [&](int) { return std::make_unique<SlowSink>(consumed); });
  std::atomic<int64_t> max_in_flight{0};
  std::atomic<int64_t> max_rss{0};
  [[maybe_unused]] const int64_t rss_before = ResidentBytes();
  std::thread watcher([&] {
    for (int i = 0; i < 300; ++i) {
      std::this_thread::sleep_for(Millis(2));
      max_in_flight = std::max<int64_t>(max_in_flight, produced->load() - consumed->load());
      max_rss = std::max<int64_t>(max_rss, ResidentBytes());
    }
    p.Stop();
  });
  ASSERT_TRUE(p.Run().ok());
  watcher.join();
  EXPECT_GT(consumed->load(), 0);
  EXPECT_LT(produced->load(), total);  // the source was held back
  // In flight: the queue (4 batches of 64), a batch being partitioned, one in the sink, one polled.
  EXPECT_LE(max_in_flight.load(), 8 * 64 + 1024) << "records buffered between the source and the sink";
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine keeps freed memory resident
  // Unbounded buffering would hold up to 200 MiB here; the queues hold ~1.5 MiB.
  if (rss_before > 0) {
    EXPECT_LT(max_rss.load() - rss_before, int64_t{48} << 20) << "resident memory grew";
  }
#endif
}

// Two source subtasks; subtask 1 never produces and goes idle. Its first poll takes
// `first_poll` (a thread the scheduler runs late), so with a long one subtask 0 has sent all
// its data and gone idle before subtask 1 does. Returns the number of windows that fired.
size_t WindowsFiredWithOneIdleSubtask(Millis first_poll) {
  std::vector<std::pair<KV, EventTime>> data;
  for (int i = 0; i < 200; ++i) data.push_back({KV{1, 1}, i * 10});
  class PartlyIdle final : public Source<KV> {
   public:
    PartlyIdle(std::vector<std::pair<KV, EventTime>> d, int sub, Millis first_poll)
        : data_(std::move(d)), sub_(sub), first_poll_(first_poll) {}
    absl::Status Open(const SourceContext&, std::optional<std::string>) override { return absl::OkStatus(); }
    absl::StatusOr<PollStatus> Poll(SourceBatch<KV>& out, size_t, Millis wait) override {
      if (sub_ == 1) {
        std::this_thread::sleep_for(polls_++ == 0 ? first_poll_ : wait);
        return PollStatus::kIdle;  // never ends, never produces
      }
      if (next_ >= data_.size()) {
        std::this_thread::sleep_for(wait);
        return PollStatus::kIdle;
      }
      out.records.push_back(data_[next_].first);
      out.times.push_back(data_[next_].second);
      ++next_;
      return PollStatus::kRecords;
    }
    std::string Position() override { return ""; }
    DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kAtMostOnce; }

   private:
    std::vector<std::pair<KV, EventTime>> data_;
    int sub_;
    Millis first_poll_;
    int polls_ = 0;
    size_t next_ = 0;
  };
  Pipeline p(Options());
  auto w = p.AddSource<KV>(Op("events", 2),
                           [&](int sub) { return std::make_unique<PartlyIdle>(data, sub, first_poll); },
                           WatermarkStrategy<KV>{}.WithIdleTimeout(Millis(20)))
               .KeyBy([](const KV& e) { return e.first; })
               .Window(Windows::Tumbling(Millis(100)))
               .Aggregate(Op("count", 1), Count<KV>());
  auto out = Collect(w.results);
  std::thread stopper([&] {
    for (int i = 0; i < 2500 && out->size() < 19; ++i) std::this_thread::sleep_for(Millis(2));
    p.Stop();
  });
  EXPECT_TRUE(p.Run().ok());
  stopper.join();
  return out->size();
}

TEST(Pipeline, IdleSourcesDoNotHoldBackTheWatermark) {
  EXPECT_GE(WindowsFiredWithOneIdleSubtask(Millis(2)), 19u) << "windows must fire although one source subtask is idle";
}

TEST(Pipeline, WindowsFireWhicheverSourceSubtaskGoesIdleFirst) {
  // Subtask 0 sends everything and goes idle while subtask 1 has not yet: once both are idle,
  // the watermark subtask 0 reached must still close its windows.
  EXPECT_GE(WindowsFiredWithOneIdleSubtask(Millis(300)), 19u)
      << "the windows of the last active subtask must fire when every subtask is idle";
}

TEST(Pipeline, OperatorAndCheckpointFiguresReachTheMetricsRegistry) {
  MetricsRegistry metrics;
  std::vector<std::pair<int64_t, EventTime>> data;
  for (int64_t i = 0; i < 3000; ++i) data.push_back({i, i});
  PipelineOptions o = Options();
  o.name = "metered";
  o.metrics = &metrics;
  o.checkpoint_dir = TempDir("metrics");
  o.checkpoint_interval = Millis(2);
  Pipeline p(o);
  auto out = Collect(p.AddSource<int64_t>("numbers", FromVector(data, 10))
                         .KeyBy([](const int64_t& x) { return x % 7; })
                         .Reduce("sum", [](const int64_t& a, const int64_t& b) { return a + b; }));
  ASSERT_TRUE(p.Run().ok());
  std::string text = metrics.Serialize();
  EXPECT_NE(text.find("cairn_stream_records_in_total{operator=\"sum\",pipeline=\"metered\"} 3000"), std::string::npos)
      << text;
  EXPECT_NE(text.find("cairn_stream_state_bytes{operator=\"sum\""), std::string::npos);
  EXPECT_NE(text.find("cairn_stream_queue_fill_ratio"), std::string::npos);
  if (p.Stats().checkpoints_completed > 0) {
    EXPECT_NE(text.find("cairn_stream_checkpoint_duration_ms{pipeline=\"metered\"}"), std::string::npos);
    EXPECT_NE(text.find("cairn_stream_checkpoint_bytes"), std::string::npos);
  }
}

TEST(Pipeline, BadGraphsAndOptionsAreRejected) {
  {
    Pipeline p(Options());
    EXPECT_EQ(p.Run().code(), absl::StatusCode::kInvalidArgument);  // empty
  }
  {
    PipelineOptions o = Options();
    o.state.kind = StateBackendKind::kRocksDb;  // no directory
    Pipeline p(o);
    Collect(p.AddSource<int64_t>("n", FromVector(std::vector<std::pair<int64_t, EventTime>>{{1, 1}})));
    EXPECT_EQ(p.Run().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace cairn::stream
