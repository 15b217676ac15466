#include "cairn/connect/kafka.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "cairn/base/codec.h"
#include "cairn/connect/testing/dead_letter.h"
#include "cairn/connect/testing/kafka_mock_cluster.h"
#include "cairn/connect/testing/row_printer.h"
#include "cairn/stream/format.h"

namespace cairn::connect {
namespace {

using ::cairn::connect::testing::CollectingDeadLetter;
using ::cairn::connect::testing::KafkaMockCluster;
using stream::PollStatus;
using stream::Row;
using stream::SourceBatch;
using namespace std::chrono_literals;

stream::SourceContext Context(CollectingDeadLetter* dl, int subtask = 0, int parallelism = 1) {
  stream::SourceContext ctx;
  ctx.name = "kafka_in";
  ctx.subtask = subtask;
  ctx.parallelism = parallelism;
  ctx.dead_letter = dl;
  return ctx;
}

// Polls until `want` records arrived in total, or nothing came for `quiet`.
std::vector<Row> Drain(KafkaSource& source, size_t want, size_t per_poll = 100,
                       std::chrono::milliseconds quiet = 1500ms, std::vector<stream::EventTime>* times = nullptr) {
  std::vector<Row> rows;
  auto last = std::chrono::steady_clock::now();
  SourceBatch<Row> batch;
  while (rows.size() < want && std::chrono::steady_clock::now() - last < quiet) {
    batch.clear();
    auto st = source.Poll(batch, std::min(per_poll, want - rows.size()), 50ms);
    EXPECT_TRUE(st.ok()) << st.status();
    if (!st.ok()) break;
    EXPECT_LE(batch.records.size(), per_poll);
    if (*st == PollStatus::kRecords) last = std::chrono::steady_clock::now();
    for (auto& r : batch.records) rows.push_back(r);
    if (times) times->insert(times->end(), batch.times.begin(), batch.times.end());
  }
  return rows;
}

std::set<int64_t> Ids(const std::vector<Row>& rows) {
  std::set<int64_t> ids;
  for (const Row& r : rows) ids.insert(std::get<int64_t>(*r.Get("id")));
  return ids;
}

class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = KafkaMockCluster::Start();
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *std::move(c);
    ASSERT_TRUE(cluster_->CreateTopic("events", 3).ok());
  }
  // Messages {"id": i, "ts": ...} for i in [from, to), spread over the 3 partitions.
  void ProduceEvents(int from, int to) {
    std::vector<KafkaMockCluster::Message> msgs;
    for (int i = from; i < to; ++i)
      msgs.push_back({fmt::format(R"({{"id":{},"ts":{}}})", i, 1700000000000 + i), fmt::format("k{}", i), i % 3});
    ASSERT_TRUE(cluster_->Produce("events", msgs).ok());
  }
  KafkaSourceOptions StaticOptions(std::string group = "") {
    KafkaSourceOptions o;
    o.brokers = cluster_->bootstraps();
    o.topic = "events";
    o.group_id = std::move(group);
    o.group_assignment = false;
    o.config["fetch.wait.max.ms"] = "10";  // the mock broker holds empty fetches this long
    return o;
  }
  std::unique_ptr<KafkaMockCluster> cluster_;
  CollectingDeadLetter dead_letter_;
};

TEST(KafkaPositionTest, RoundTripsAndRejectsCorruptBytes) {
  KafkaOffsets offsets{{0, 10}, {2, 7}, {5, 0}};
  std::string bytes = EncodeKafkaPosition("events", offsets);
  std::string topic;
  KafkaOffsets back;
  ASSERT_TRUE(DecodeKafkaPosition(bytes, &topic, &back).ok());
  EXPECT_EQ(topic, "events");
  EXPECT_EQ(back, offsets);

  for (size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_FALSE(DecodeKafkaPosition(bytes.substr(0, cut), &topic, &back).ok()) << cut;
  for (size_t i = 0; i < bytes.size() * 8; ++i) {
    std::string flipped = bytes;
    flipped[i / 8] = static_cast<char>(flipped[i / 8] ^ (1 << (i % 8)));
    EXPECT_FALSE(DecodeKafkaPosition(flipped, &topic, &back).ok()) << i;
  }
  // A well-sealed payload with a duplicate partition is rejected too.
  ByteWriter w;
  w.String("t");
  w.Varint(2);
  for (int i = 0; i < 2; ++i) {
    w.U32(1);
    w.I64(3);
  }
  auto st = DecodeKafkaPosition(SealEnvelope(MakeMagic("CKFP"), 1, w.data()), &topic, &back);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("twice"));
}

TEST_F(KafkaTest, StaticAssignmentReadsEveryPartitionWithEventTimes) {
  ProduceEvents(0, 30);
  auto opts = StaticOptions();
  opts.time_field = "ts";
  auto source = KafkaSource::Create(opts);
  ASSERT_TRUE(source.ok()) << source.status();
  { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
  EXPECT_EQ((*source)->guarantee(), stream::DeliveryGuarantee::kExactlyOnce);
  std::vector<stream::EventTime> times;
  auto rows = Drain(**source, 30, 100, 1500ms, &times);
  ASSERT_EQ(rows.size(), 30u);
  ASSERT_EQ(times.size(), 30u);
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(times[i], 1700000000000 + std::get<int64_t>(*rows[i].Get("id")));
  EXPECT_EQ(Ids(rows).size(), 30u);

  std::string topic;
  KafkaOffsets offsets;
  ASSERT_TRUE(DecodeKafkaPosition((*source)->Position(), &topic, &offsets).ok());
  EXPECT_EQ(offsets, (KafkaOffsets{{0, 10}, {1, 10}, {2, 10}}));
}

TEST_F(KafkaTest, ParallelSubtasksSplitThePartitionsStatically) {
  ProduceEvents(0, 30);
  std::set<int64_t> all;
  for (int subtask = 0; subtask < 2; ++subtask) {
    auto source = KafkaSource::Create(StaticOptions());
    ASSERT_TRUE(source.ok());
    ASSERT_TRUE((*source)->Open(Context(&dead_letter_, subtask, 2), std::nullopt).ok());
    auto rows = Drain(**source, subtask == 0 ? 20 : 10);
    EXPECT_EQ(rows.size(), subtask == 0 ? 20u : 10u);
    for (const Row& r : rows) {
      int64_t id = std::get<int64_t>(*r.Get("id"));
      EXPECT_EQ(id % 3 == 1 ? 1 : 0, subtask) << id;  // partitions {0, 2} and {1}
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), 30u);
}

TEST_F(KafkaTest, RestoreFromAPositionMidStreamGivesExactlyTheRest) {
  ProduceEvents(0, 30);
  std::string position;
  std::set<int64_t> first;
  {
    auto source = KafkaSource::Create(StaticOptions());
    ASSERT_TRUE(source.ok());
    { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
    // Two small polls: librdkafka has fetched more than it returned.
    auto rows = Drain(**source, 14, 7);
    ASSERT_EQ(rows.size(), 14u);
    first = Ids(rows);
    position = (*source)->Position();
    (*source)->Close();
  }
  ProduceEvents(30, 40);  // more arrives after the checkpoint
  auto source = KafkaSource::Create(StaticOptions());
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), position).ok());
  auto rest = Drain(**source, 26);
  EXPECT_EQ(rest.size(), 26u);
  std::set<int64_t> second = Ids(rest);
  EXPECT_EQ(second.size(), rest.size()) << "duplicates after the restore";
  for (int64_t id : second) EXPECT_EQ(first.count(id), 0u) << id;
  EXPECT_EQ(first.size() + second.size(), 40u);
}

TEST_F(KafkaTest, GroupAssignmentAppliesTheRestoredOffsetsOnAssign) {
  ProduceEvents(0, 30);
  std::string position;
  std::set<int64_t> first;
  {
    auto source = KafkaSource::Create(StaticOptions());
    ASSERT_TRUE(source.ok());
    { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
    first = Ids(Drain(**source, 11, 11));
    position = (*source)->Position();
  }
  ASSERT_EQ(first.size(), 11u);
  KafkaSourceOptions opts = StaticOptions("cairn-test");
  opts.group_assignment = true;
  opts.config["session.timeout.ms"] = "6000";
  auto source = KafkaSource::Create(opts);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), position).ok());
  auto rest = Drain(**source, 19, 100, 6000ms);  // the first group join takes a few seconds
  std::set<int64_t> second = Ids(rest);
  EXPECT_EQ(rest.size(), 19u);
  EXPECT_EQ(second.size(), rest.size());
  for (int64_t id : second) EXPECT_EQ(first.count(id), 0u) << id;
  EXPECT_EQ((*source)->owned(), (KafkaOffsets{{0, 10}, {1, 10}, {2, 10}}));
  (*source)->Position();
  (*source)->NotifyCheckpointComplete(1);
  (*source)->Close();
}

TEST_F(KafkaTest, CommittedOffsetsAreTheFallbackWithoutARestoredPosition) {
  ProduceEvents(0, 30);
  {
    auto source = KafkaSource::Create(StaticOptions("g1"));
    ASSERT_TRUE(source.ok());
    { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
    ASSERT_EQ(Drain(**source, 12, 12).size(), 12u);
    (*source)->Position();
    (*source)->NotifyCheckpointComplete(1);  // commits asynchronously; Close waits for it
    (*source)->Close();
  }
  auto source = KafkaSource::Create(StaticOptions("g1"));
  ASSERT_TRUE(source.ok());
  { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
  EXPECT_EQ(Drain(**source, 18).size(), 18u);
}

TEST_F(KafkaTest, MalformedPayloadsGoToTheDeadLetterAndArePassed) {
  ASSERT_TRUE(cluster_->Produce("events", {{R"({"id":1})", std::nullopt, 0},
                                           {R"({"id":)", std::nullopt, 0},
                                           {R"("just a string")", std::nullopt, 0},
                                           {R"({"id":2})", std::nullopt, 0}})
                  .ok());
  auto source = KafkaSource::Create(StaticOptions());
  ASSERT_TRUE(source.ok());
  { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
  auto rows = Drain(**source, 2);
  ASSERT_EQ(rows.size(), 2u);
  auto entries = dead_letter_.entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].origin, "kafka:events/0@1");
  EXPECT_EQ(entries[0].raw, R"({"id":)");
  EXPECT_EQ(entries[1].origin, "kafka:events/0@2");
  std::string topic;
  KafkaOffsets offsets;
  ASSERT_TRUE(DecodeKafkaPosition((*source)->Position(), &topic, &offsets).ok());
  EXPECT_EQ(offsets[0], 4);  // past the rejected messages: a restore does not see them again
}

TEST_F(KafkaTest, RawPayloadCarriesKeyPartitionOffsetAndTimestamp) {
  ASSERT_TRUE(cluster_->Produce("events", {{"not json at all", "key-1", 2}}).ok());
  auto opts = StaticOptions();
  opts.format = PayloadFormat::kRaw;
  auto source = KafkaSource::Create(opts);
  ASSERT_TRUE(source.ok());
  { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
  auto rows = Drain(**source, 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(*rows[0].Get("topic"), stream::Value(std::string("events")));
  EXPECT_EQ(*rows[0].Get("payload"), stream::Value(std::string("not json at all")));
  EXPECT_EQ(*rows[0].Get("key"), stream::Value(std::string("key-1")));
  EXPECT_EQ(*rows[0].Get("partition"), stream::Value(int64_t{2}));
  EXPECT_EQ(*rows[0].Get("offset"), stream::Value(int64_t{0}));
  ASSERT_NE(rows[0].Get("timestamp"), nullptr);
  EXPECT_GT(std::get<int64_t>(*rows[0].Get("timestamp")), 1600000000000);
}

TEST_F(KafkaTest, SinkRoundTripsThroughTheCluster) {
  ASSERT_TRUE(cluster_->CreateTopic("out", 2).ok());
  KafkaSinkOptions kopts;
  kopts.brokers = cluster_->bootstraps();
  kopts.topic = "out";
  kopts.key_field = "device";
  auto sink = KafkaSink::Create(kopts);
  ASSERT_TRUE(sink.ok()) << sink.status();
  stream::SinkContext sctx;
  sctx.name = "kafka_out";
  sctx.dead_letter = &dead_letter_;
  ASSERT_TRUE((*sink)->Open(sctx, std::nullopt).ok());
  EXPECT_EQ((*sink)->guarantee(), stream::DeliveryGuarantee::kAtLeastOnce);
  std::vector<Row> rows;
  for (int i = 0; i < 25; ++i)
    rows.push_back(Row{{"device", fmt::format("d{}", i % 4)}, {"id", int64_t{i}}, {"v", 1.5 * i}});
  std::vector<stream::EventTime> times(rows.size(), 0);
  ASSERT_TRUE((*sink)->Write(rows, times).ok());
  auto state = (*sink)->PrepareCheckpoint(1);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*sink)->delivered(), 25u);
  ASSERT_TRUE((*sink)->Close().ok());

  KafkaSourceOptions sopts = StaticOptions();
  sopts.topic = "out";
  sopts.format = PayloadFormat::kRaw;
  auto source = KafkaSource::Create(sopts);
  ASSERT_TRUE(source.ok());
  { auto open_st = (*source)->Open(Context(&dead_letter_), std::nullopt); ASSERT_TRUE(open_st.ok()) << open_st; }
  auto got = Drain(**source, 25);
  ASSERT_EQ(got.size(), 25u);
  std::map<int64_t, Row> by_id;
  std::map<std::string, std::set<int64_t>> partitions_of_key;
  for (const Row& r : got) {
    auto parsed = stream::ParseJsonRow(std::get<std::string>(*r.Get("payload")));
    ASSERT_TRUE(parsed.ok());
    std::string key = std::get<std::string>(*r.Get("key"));
    EXPECT_EQ(*parsed->Get("device"), stream::Value(key));
    partitions_of_key[key].insert(std::get<int64_t>(*r.Get("partition")));
    by_id[std::get<int64_t>(*parsed->Get("id"))] = *parsed;
  }
  ASSERT_EQ(by_id.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(by_id[i], rows[i]);
  for (auto& [key, parts] : partitions_of_key) EXPECT_EQ(parts.size(), 1u) << key;  // one key, one partition
  EXPECT_EQ(dead_letter_.rejected(), 0u);
}

TEST_F(KafkaTest, SinkCheckpointFailsWhenMessagesAreNotDelivered) {
  KafkaSinkOptions kopts;
  kopts.brokers = cluster_->bootstraps();
  kopts.topic = "events";
  kopts.idempotent = false;
  kopts.config["retries"] = "0";
  auto sink = KafkaSink::Create(kopts);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Open(stream::SinkContext{}, std::nullopt).ok());
  cluster_->FailNextProduceRequests(5, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  std::vector<Row> rows{Row{{"id", int64_t{1}}}};
  std::vector<stream::EventTime> times{0};
  ASSERT_TRUE((*sink)->Write(rows, times).ok());
  auto state = (*sink)->PrepareCheckpoint(1);
  ASSERT_FALSE(state.ok());
  EXPECT_THAT(std::string(state.status().message()), ::testing::HasSubstr("not delivered"));
  EXPECT_FALSE((*sink)->Close().ok());
}

TEST_F(KafkaTest, OpenRejectsForeignOrCorruptPositionsAndBadOptions) {
  auto source = KafkaSource::Create(StaticOptions());
  ASSERT_TRUE(source.ok());
  auto st = (*source)->Open(Context(&dead_letter_), EncodeKafkaPosition("other", {{0, 1}}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("other"));
  EXPECT_FALSE((*source)->Open(Context(&dead_letter_), std::string("garbage")).ok());

  EXPECT_FALSE(KafkaSource::Create(KafkaSourceOptions{}).ok());
  KafkaSourceOptions no_group = StaticOptions();
  no_group.group_assignment = true;
  EXPECT_FALSE(KafkaSource::Create(no_group).ok());
  KafkaSourceOptions bad_conf = StaticOptions();
  bad_conf.config["no.such.property"] = "1";
  auto bad = KafkaSource::Create(bad_conf);
  ASSERT_TRUE(bad.ok());
  EXPECT_THAT(std::string((*bad)->Open(Context(&dead_letter_), std::nullopt).message()),
              ::testing::HasSubstr("no.such.property"));
}

}  // namespace
}  // namespace cairn::connect
