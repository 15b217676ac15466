#include "bench/nexmark/queries.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench/nexmark/reference.h"
#include "fmt/format.h"

namespace cairn::nexmark {
namespace {

namespace fs = std::filesystem;

GeneratorConfig StreamConfig() {
  GeneratorConfig c;
  c.seed = 2024;
  c.events = 30'000;
  c.rate = 1'000;  // 30 s of event time: 3 tumbling and 19 sliding windows
  c.max_out_of_order_ms = 200;
  c.out_of_order_fraction = 0.2;
  return c;
}

const std::vector<Event>& Events() {
  static const std::vector<Event>* const events = new std::vector<Event>(*GenerateAll(StreamConfig()));
  return *events;
}

struct Setup {
  int parallelism = 1;
  stream::StateBackendKind backend = stream::StateBackendKind::kMemory;
};

std::string Describe(const Setup& s) {
  return fmt::format("parallelism {}, {} state", s.parallelism,
                     s.backend == stream::StateBackendKind::kMemory ? "memory" : "RocksDB");
}

template <class T>
std::string Show(const T& row) {
  if constexpr (requires { row.ToString(); }) {
    return row.ToString();
  } else {
    return "?";
  }
}

// Runs `add_query` on the generated stream in a pipeline set up by `setup` and
// expects exactly `expected` (sorted) as output.
template <class T>
void ExpectEngineMatches(const Setup& setup, const std::vector<T>& expected,
                         const std::function<absl::StatusOr<stream::Stream<T>>(stream::Stream<Event>)>& add_query) {
  SCOPED_TRACE(Describe(setup));
  ASSERT_FALSE(expected.empty()) << "the reference has no rows: the comparison would prove nothing";
  stream::PipelineOptions options;
  options.name = "nexmark-test";
  options.default_parallelism = setup.parallelism;
  options.batch_size = 256;
  // Declared before the pipeline, so the directory goes after the pipeline (which
  // holds its state stores open until it is destroyed).
  struct TempDir {
    std::string path;
    ~TempDir() {
      if (!path.empty()) fs::remove_all(path);
    }
  } rocksdb_dir;
  if (setup.backend == stream::StateBackendKind::kRocksDb) {
    rocksdb_dir.path = (fs::temp_directory_path() / fmt::format("cairn-nexmark-test-{}", ::getpid())).string();
    fs::remove_all(rocksdb_dir.path);
    options.state.kind = stream::StateBackendKind::kRocksDb;
    options.state.rocksdb_dir = rocksdb_dir.path;
  }
  stream::Pipeline p(options);
  absl::StatusOr<stream::Stream<T>> out = add_query(AddNexmarkSource(p, StreamConfig()));
  ASSERT_TRUE(out.ok()) << out.status();
  auto collected = stream::Collect(*out);
  absl::Status run = p.Run();
  ASSERT_TRUE(run.ok()) << run;

  std::vector<T> got = collected->records();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got.size(), expected.size());
  if (got == expected) return;
  // Show the first few differences both ways.
  std::vector<T> missing, extra;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(), std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(), std::back_inserter(extra));
  for (size_t i = 0; i < std::min<size_t>(missing.size(), 5); ++i) ADD_FAILURE() << "missing " << Show(missing[i]);
  for (size_t i = 0; i < std::min<size_t>(extra.size(), 5); ++i) ADD_FAILURE() << "unexpected " << Show(extra[i]);
  FAIL() << missing.size() << " rows missing, " << extra.size() << " unexpected";
}

class QueriesTest : public ::testing::TestWithParam<Setup> {};

TEST_P(QueriesTest, Q0PassesEveryEvent) {
  ExpectEngineMatches<Event>(GetParam(), ReferenceQ0(Events()),
                             [](stream::Stream<Event> events) { return AddQ0(events); });
}

TEST_P(QueriesTest, Q1ConvertsPrices) {
  ExpectEngineMatches<Bid>(GetParam(), ReferenceQ1(Events()),
                           [](stream::Stream<Event> events) { return AddQ1(events); });
}

TEST_P(QueriesTest, Q2Selects) {
  // A smaller modulus than 123 so the short stream has a few hundred rows.
  QueryOptions o;
  o.q2_modulus = 7;
  ExpectEngineMatches<Q2Row>(GetParam(), ReferenceQ2(Events(), o),
                             [o](stream::Stream<Event> events) { return AddQ2(events, o); });
}

TEST_P(QueriesTest, Q3JoinsLocalSellers) {
  ExpectEngineMatches<Q3Row>(GetParam(), ReferenceQ3(Events()),
                             [](stream::Stream<Event> events) { return AddQ3(events); });
}

TEST_P(QueriesTest, WinningBids) {
  ExpectEngineMatches<ClosedAuction>(
      GetParam(), [] {
        std::vector<ClosedAuction> rows = ReferenceWinningBids(Events());
        std::sort(rows.begin(), rows.end());
        return rows;
      }(),
      [](stream::Stream<Event> events) -> absl::StatusOr<stream::Stream<ClosedAuction>> {
        return AddWinningBids(events);
      });
}

TEST_P(QueriesTest, Q4AveragesPerCategory) {
  ExpectEngineMatches<Q4Row>(GetParam(), ReferenceQ4(Events()),
                             [](stream::Stream<Event> events) { return AddQ4(events); });
}

TEST_P(QueriesTest, Q5FindsHotItems) {
  ExpectEngineMatches<Q5Row>(GetParam(), ReferenceQ5(Events()),
                             [](stream::Stream<Event> events) { return AddQ5(events); });
}

TEST_P(QueriesTest, Q6AveragesPerSeller) {
  ExpectEngineMatches<Q6Row>(GetParam(), ReferenceQ6(Events()),
                             [](stream::Stream<Event> events) { return AddQ6(events); });
}

TEST_P(QueriesTest, Q7FindsTheHighestBids) {
  ExpectEngineMatches<Q7Row>(GetParam(), ReferenceQ7(Events()),
                             [](stream::Stream<Event> events) { return AddQ7(events); });
}

TEST_P(QueriesTest, Q8MonitorsNewUsers) {
  ExpectEngineMatches<Q8Row>(GetParam(), ReferenceQ8(Events()),
                             [](stream::Stream<Event> events) { return AddQ8(events); });
}

INSTANTIATE_TEST_SUITE_P(Setups, QueriesTest,
                         ::testing::Values(Setup{1, stream::StateBackendKind::kMemory},
                                           Setup{2, stream::StateBackendKind::kMemory},
                                           Setup{2, stream::StateBackendKind::kRocksDb}),
                         [](const ::testing::TestParamInfo<Setup>& info) {
                           return fmt::format("P{}{}", info.param.parallelism,
                                              info.param.backend == stream::StateBackendKind::kMemory ? "Memory"
                                                                                                       : "RocksDb");
                         });

// An exactly-once sink: rows become visible (in Shared::committed) only when
// their checkpoint completes, or at the end of the input. One sink subtask.
template <class T>
class CommitSink final : public stream::Sink<T> {
 public:
  // Outlives the runs: what every run committed, and which checkpoints it came from.
  struct Shared {
    std::mutex mu;
    std::vector<T> committed;
    std::set<int64_t> committed_ids;
    int closes = 0;  // runs that reached the end of their input
    void Commit(int64_t id, std::vector<T> rows) {
      std::lock_guard<std::mutex> lock(mu);
      if (id >= 0 && !committed_ids.insert(id).second) return;  // already visible
      committed.insert(committed.end(), rows.begin(), rows.end());
    }
  };
  explicit CommitSink(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  absl::Status Open(const stream::SinkContext&, std::optional<std::string> restored) override {
    // The restored checkpoint's rows were staged, and maybe not committed before the stop.
    if (restored) {
      std::pair<int64_t, std::vector<T>> staged;
      if (!stream::DecodeFromString(*restored, &staged)) return absl::DataLossError("bad commit sink state");
      shared_->Commit(staged.first, std::move(staged.second));
    }
    return absl::OkStatus();
  }
  absl::Status Write(std::span<const T> rows, std::span<const EventTime>) override {
    pending_.insert(pending_.end(), rows.begin(), rows.end());
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> PrepareCheckpoint(int64_t id) override {
    staged_[id] = std::move(pending_);
    pending_.clear();
    return stream::EncodeToString(std::make_pair(id, staged_[id]));
  }
  absl::Status CommitCheckpoint(int64_t id) override {
    for (auto it = staged_.begin(); it != staged_.end() && it->first <= id; it = staged_.erase(it)) {
      shared_->Commit(it->first, std::move(it->second));
    }
    return absl::OkStatus();
  }
  absl::Status Close() override {
    for (auto& [id, rows] : staged_) shared_->Commit(id, std::move(rows));
    staged_.clear();
    shared_->Commit(-1, std::move(pending_));
    std::lock_guard<std::mutex> lock(shared_->mu);
    ++shared_->closes;
    return absl::OkStatus();
  }
  stream::DeliveryGuarantee guarantee() const override { return stream::DeliveryGuarantee::kExactlyOnce; }

 private:
  std::shared_ptr<Shared> shared_;
  std::vector<T> pending_;
  std::map<int64_t, std::vector<T>> staged_;
};

// Stops a throttled run after a few checkpoints (as a crash would), restores
// from the newest checkpoint, and expects the committed output to be exactly the
// reference: the source rewinds to its checkpointed position and the keyed
// state, timers and watermarks come back with it.
template <class T>
void ExpectRecoveryIsExact(stream::StateBackendKind backend, std::vector<T> expected,
                           const std::function<absl::StatusOr<stream::Stream<T>>(stream::Stream<Event>)>& add_query) {
  const std::string dir =
      (fs::temp_directory_path() / fmt::format("cairn-nexmark-recovery-{}", ::getpid())).string();
  fs::remove_all(dir);
  auto shared = std::make_shared<typename CommitSink<T>::Shared>();
  int64_t restored = 0;
  for (int round = 1; round <= 2; ++round) {
    stream::PipelineOptions o;
    o.default_parallelism = 2;
    o.batch_size = 256;
    o.checkpoint_dir = dir + "/checkpoints";
    o.checkpoint_interval = stream::Millis(10);
    o.state.kind = backend;
    o.state.rocksdb_dir = dir + "/state";
    stream::Pipeline p(o);
    // Round 1 is throttled (30,000 events over 2 subtasks in 1.5 s) so it is stopped midway.
    absl::StatusOr<stream::Stream<T>> out =
        add_query(AddNexmarkSource(p, StreamConfig(), stream::Op("nexmark"), round == 1 ? 10'000 : 0));
    ASSERT_TRUE(out.ok()) << out.status();
    out->AddSink(stream::Op("commit", 1), [shared](int) { return std::make_unique<CommitSink<T>>(shared); });
    std::thread stopper;
    if (round == 1) {
      // Stop after two checkpoints, or (when checkpoints are slow) after one once most events are out, so the
      // run never reaches the end of its input.
      stopper = std::thread([&p] {
        for (int i = 0; i < 2000; ++i) {
          const stream::PipelineStats st = p.Stats();
          const uint64_t emitted = st.operators.empty() ? 0 : st.operators[0].records_out;
          if (st.checkpoints_completed >= 2 || (st.checkpoints_completed >= 1 && emitted >= 20'000)) break;
          std::this_thread::sleep_for(stream::Millis(2));
        }
        p.Stop();
      });
    }
    absl::Status run = p.Run();
    if (stopper.joinable()) stopper.join();
    ASSERT_TRUE(run.ok()) << run;
    if (round == 1) {
      ASSERT_EQ(shared->closes, 0) << "the first run reached the end of its input before it was stopped";
    } else {
      restored = p.Stats().restored_checkpoint;
    }
  }
  fs::remove_all(dir);
  EXPECT_GT(restored, 0) << "the second run did not restore a checkpoint";
  std::vector<T> got = shared->committed;
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got.size(), expected.size());
  if (got == expected) return;
  std::vector<T> missing, extra;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(), std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(), std::back_inserter(extra));
  for (size_t i = 0; i < std::min<size_t>(missing.size(), 5); ++i) ADD_FAILURE() << "missing " << Show(missing[i]);
  for (size_t i = 0; i < std::min<size_t>(extra.size(), 5); ++i) ADD_FAILURE() << "unexpected " << Show(extra[i]);
  FAIL() << missing.size() << " rows missing, " << extra.size() << " unexpected (restored checkpoint " << restored
         << ")";
}

TEST(QueriesRecovery, Q4IsExactAfterARestoreWithMemoryState) {
  ExpectRecoveryIsExact<Q4Row>(stream::StateBackendKind::kMemory, ReferenceQ4(Events()),
                               [](stream::Stream<Event> events) { return AddQ4(events); });
}

TEST(QueriesRecovery, Q5IsExactAfterARestoreWithRocksDbState) {
  ExpectRecoveryIsExact<Q5Row>(stream::StateBackendKind::kRocksDb, ReferenceQ5(Events()),
                               [](stream::Stream<Event> events) { return AddQ5(events); });
}

TEST(Queries, BadOptionsAreRejectedBeforeAnythingIsAdded) {
  stream::Pipeline p;
  stream::Stream<Event> events = AddNexmarkSource(p, StreamConfig());
  QueryOptions o;
  o.q2_modulus = 0;
  EXPECT_FALSE(AddQ2(events, o).ok());
  o = {};
  o.q5_slide_ms = 0;
  EXPECT_FALSE(AddQ5(events, o).ok());
  EXPECT_EQ(p.graph().nodes.size(), 1u);
}

}  // namespace
}  // namespace cairn::nexmark
