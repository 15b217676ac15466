#include "bench/nexmark/queries.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
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
