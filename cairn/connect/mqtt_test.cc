#include <algorithm>
#include "cairn/connect/mqtt.h"

#include <mosquitto.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "cairn/connect/testing/dead_letter.h"
#include "cairn/connect/testing/mosquitto_broker.h"
#include "cairn/connect/testing/row_printer.h"
#include "cairn/stream/format.h"

namespace cairn::connect {
namespace {

using ::cairn::connect::testing::CollectingDeadLetter;
using ::cairn::connect::testing::MosquittoBroker;
using stream::PollStatus;
using stream::Row;
using stream::SourceBatch;
using namespace std::chrono_literals;

// A plain libmosquitto publisher that can wait for its QoS 1 acknowledgements.
class Publisher {
 public:
  explicit Publisher(int port) {
    mosquitto_lib_init();
    client_ = mosquitto_new(nullptr, true, this);
    mosquitto_publish_callback_set(client_, [](mosquitto*, void* obj, int) {
      auto* self = static_cast<Publisher*>(obj);
      std::lock_guard lock(self->mu_);
      ++self->acked_;
      self->cv_.notify_all();
    });
    connected_ = mosquitto_connect(client_, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS;
    mosquitto_loop_start(client_);
  }
  ~Publisher() {
    mosquitto_disconnect(client_);
    mosquitto_loop_stop(client_, false);
    mosquitto_destroy(client_);
  }
  bool connected() const { return connected_; }
  void Publish(const std::string& topic, const std::string& payload) {
    {
      std::lock_guard lock(mu_);
      ++sent_;
    }
    ASSERT_EQ(mosquitto_publish(client_, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 1,
                                false),
              MOSQ_ERR_SUCCESS);
  }
  bool WaitAcked(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return acked_ >= sent_; });
  }

 private:
  mosquitto* client_ = nullptr;
  bool connected_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  int sent_ = 0;
  int acked_ = 0;
};

stream::SourceContext Context(CollectingDeadLetter* dl, std::string name = "mqtt_in") {
  stream::SourceContext ctx;
  ctx.name = std::move(name);
  ctx.dead_letter = dl;
  return ctx;
}

MqttSourceOptions SourceOptions(int port, std::vector<std::string> topics) {
  MqttSourceOptions o;
  o.port = port;
  o.topics = std::move(topics);
  o.connect_timeout = 3000ms;
  return o;
}

// Polls until `want` records arrived in total or `timeout` passed.
void PollInto(MqttSource& source, SourceBatch<Row>& all, size_t want, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  SourceBatch<Row> batch;
  while (all.records.size() < want && std::chrono::steady_clock::now() < deadline) {
    batch.clear();
    auto st = source.Poll(batch, 64, 50ms);
    ASSERT_TRUE(st.ok()) << st.status();
    for (auto& r : batch.records) all.records.push_back(r);
    for (auto t : batch.times) all.times.push_back(t);
  }
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

class MqttTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = MosquittoBroker::Start();
    ASSERT_TRUE(b.ok()) << b.status();
    broker_ = *std::move(b);
  }
  std::unique_ptr<MosquittoBroker> broker_;
  CollectingDeadLetter dead_letter_;
};

TEST_F(MqttTest, SourceReceivesQos1MessagesWithEventTimes) {
  auto opts = SourceOptions(broker_->port(), {"plant/+/temp"});
  opts.time_field = "ts";
  opts.time_format = "epoch_ms";
  auto source = MqttSource::Create(opts);
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  EXPECT_TRUE((*source)->subscribed());
  EXPECT_EQ((*source)->connections(), 1u);
  EXPECT_EQ((*source)->guarantee(), stream::DeliveryGuarantee::kAtMostOnce);
  EXPECT_EQ((*source)->Position(), "");

  Publisher pub(broker_->port());
  ASSERT_TRUE(pub.connected());
  for (int i = 0; i < 50; ++i)
    pub.Publish(fmt::format("plant/p{}/temp", i % 3),
                fmt::format(R"({{"sensor":"s{}","v":{},"ts":{}}})", i, i, 1700000000000 + i));
  pub.Publish("plant/p1/pressure", R"({"not":"subscribed"})");
  ASSERT_TRUE(pub.WaitAcked());

  SourceBatch<Row> all;
  PollInto(**source, all, 50);
  ASSERT_EQ(all.records.size(), 50u);
  ASSERT_EQ(all.times.size(), 50u);
  for (int i = 0; i < 50; ++i) {  // one publisher, QoS 1: in order
    EXPECT_EQ(*all.records[i].Get("v"), stream::Value(int64_t{i}));
    EXPECT_EQ(all.times[i], 1700000000000 + i);
  }
  SourceBatch<Row> batch;
  auto st = (*source)->Poll(batch, 10, 100ms);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, PollStatus::kIdle);
  EXPECT_EQ(dead_letter_.rejected(), 0u);
  (*source)->Close();
}

TEST_F(MqttTest, RawPayloadNeedsNoParsing) {
  auto opts = SourceOptions(broker_->port(), {"raw/#"});
  opts.format = PayloadFormat::kRaw;
  auto source = MqttSource::Create(opts);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  Publisher pub(broker_->port());
  std::string binary("\x00\xff{not json", 11);
  pub.Publish("raw/a", binary);
  ASSERT_TRUE(pub.WaitAcked());
  SourceBatch<Row> all;
  PollInto(**source, all, 1);
  ASSERT_EQ(all.records.size(), 1u);
  EXPECT_TRUE(all.times.empty());
  EXPECT_EQ(*all.records[0].Get("topic"), stream::Value(std::string("raw/a")));
  EXPECT_EQ(*all.records[0].Get("payload"), stream::Value(binary));
  EXPECT_EQ(dead_letter_.rejected(), 0u);
}

TEST_F(MqttTest, ASourceCanBeOpenedAgainAfterClose) {
  auto source = MqttSource::Create(SourceOptions(broker_->port(), {"again"}));
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  (*source)->Close();
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  EXPECT_EQ((*source)->connections(), 1u);
  Publisher pub(broker_->port());
  pub.Publish("again", R"({"x":1})");
  ASSERT_TRUE(pub.WaitAcked());
  SourceBatch<Row> all;
  PollInto(**source, all, 1);
  EXPECT_EQ(all.records.size(), 1u);
}

TEST_F(MqttTest, MalformedPayloadsGoToTheDeadLetterAndTheSourceKeepsRunning) {
  auto opts = SourceOptions(broker_->port(), {"in"});
  opts.time_field = "ts";
  auto source = MqttSource::Create(opts);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  Publisher pub(broker_->port());
  pub.Publish("in", R"({"a":1,"ts":1700000000})");
  pub.Publish("in", R"({"a":2,"ts":)");          // truncated
  pub.Publish("in", R"([1,2,3])");               // not an object
  pub.Publish("in", R"({"a":3})");               // no time field
  pub.Publish("in", R"({"a":4,"ts":"yesterday"})");  // unparsable time
  pub.Publish("in", R"({"a":5,"ts":1700000001})");
  ASSERT_TRUE(pub.WaitAcked());
  SourceBatch<Row> all;
  PollInto(**source, all, 2);
  ASSERT_TRUE(WaitFor([&] { return dead_letter_.rejected() == 4; }, 2s));
  ASSERT_EQ(all.records.size(), 2u);
  EXPECT_EQ(*all.records[0].Get("a"), stream::Value(int64_t{1}));
  EXPECT_EQ(*all.records[1].Get("a"), stream::Value(int64_t{5}));
  EXPECT_EQ(all.times[0], 1700000000000);
  auto entries = dead_letter_.entries();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].origin, "mqtt:in");
  EXPECT_EQ(entries[0].raw, R"({"a":2,"ts":)");
  EXPECT_FALSE(entries[0].error.empty());
  EXPECT_THAT(entries[2].error, ::testing::HasSubstr("ts"));
}

TEST_F(MqttTest, SinkToBrokerToSourceRoundTrip) {
  auto sopts = SourceOptions(broker_->port(), {"out/#"});
  sopts.format = PayloadFormat::kRaw;
  auto source = MqttSource::Create(sopts);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());

  MqttSinkOptions kopts;
  kopts.port = broker_->port();
  kopts.topic = "out/{site}/readings";
  auto sink = MqttSink::Create(kopts);
  ASSERT_TRUE(sink.ok()) << sink.status();
  stream::SinkContext sctx;
  sctx.name = "mqtt_out";
  sctx.dead_letter = &dead_letter_;
  ASSERT_TRUE((*sink)->Open(sctx, std::nullopt).ok());
  EXPECT_EQ((*sink)->guarantee(), stream::DeliveryGuarantee::kAtLeastOnce);

  std::vector<Row> rows;
  for (int i = 0; i < 20; ++i)
    rows.push_back(Row{{"site", std::string(i % 2 ? "a" : "b")}, {"i", int64_t{i}}, {"x", 0.5 * i}});
  rows.push_back(Row{{"i", int64_t{99}}});  // no site: cannot be routed
  std::vector<stream::EventTime> times(rows.size(), 0);
  ASSERT_TRUE((*sink)->Write(rows, times).ok());
  auto state = (*sink)->PrepareCheckpoint(1);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*sink)->unacknowledged(), 0u);
  ASSERT_EQ(dead_letter_.rejected(), 1u);
  EXPECT_THAT(dead_letter_.entries()[0].error, ::testing::HasSubstr("site"));

  SourceBatch<Row> all;
  PollInto(**source, all, 20);
  ASSERT_EQ(all.records.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    const Row& got = all.records[i];
    EXPECT_EQ(*got.Get("topic"), stream::Value(fmt::format("out/{}/readings", i % 2 ? "a" : "b")));
    auto parsed = stream::ParseJsonRow(std::get<std::string>(*got.Get("payload")));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, rows[i]);
  }
  EXPECT_TRUE((*sink)->Close().ok());
}

TEST_F(MqttTest, SinkCheckpointWaitsForAcksAcrossABrokerRestart) {
  MqttSinkOptions kopts;
  kopts.port = broker_->port();
  kopts.topic = "later";
  kopts.reconnect_min = 2s;  // reconnects after the source below has subscribed
  kopts.reconnect_max = 2s;
  kopts.ack_timeout = 5s;
  auto sink = MqttSink::Create(kopts);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Open(stream::SinkContext{}, std::nullopt).ok());
  broker_->Stop();
  std::this_thread::sleep_for(100ms);
  std::vector<Row> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(Row{{"n", int64_t{i}}});
  std::vector<stream::EventTime> times(rows.size(), 0);
  ASSERT_TRUE((*sink)->Write(rows, times).ok());  // queued in the client while the broker is away
  EXPECT_EQ((*sink)->unacknowledged(), 5u);

  ASSERT_TRUE(broker_->Restart().ok());
  auto source = MqttSource::Create(SourceOptions(broker_->port(), {"later"}));
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  auto state = (*sink)->PrepareCheckpoint(1);
  ASSERT_TRUE(state.ok()) << state.status();
  SourceBatch<Row> all;
  PollInto(**source, all, 5, 2s);
  ASSERT_EQ(all.records.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all.records[i], rows[i]);
  EXPECT_TRUE((*sink)->Close().ok());
}

TEST_F(MqttTest, TwoSourcesInOneSharedGroupSplitTheMessages) {
  std::vector<std::unique_ptr<MqttSource>> sources;
  for (int i = 0; i < 2; ++i) {
    auto opts = SourceOptions(broker_->port(), {"shared/t"});
    opts.shared_group = "workers";
    auto s = MqttSource::Create(opts);
    ASSERT_TRUE(s.ok());
    stream::SourceContext ctx = Context(&dead_letter_);
    ctx.subtask = i;
    ctx.parallelism = 2;
    ASSERT_TRUE((*s)->Open(ctx, std::nullopt).ok());
    sources.push_back(*std::move(s));
  }
  EXPECT_NE(sources[0]->client_id(), sources[1]->client_id());
  Publisher pub(broker_->port());
  constexpr int kMessages = 200;
  for (int i = 0; i < kMessages; ++i) pub.Publish("shared/t", fmt::format(R"({{"id":{}}})", i));
  ASSERT_TRUE(pub.WaitAcked());

  // A shared group hands each message to one member. QoS 1 is at least once end to end:
  // when a client reconnects (a slow sanitizer run can miss a keepalive), the publisher or
  // the broker resends its in-flight window (up to 20 messages), so a few duplicates are
  // legitimate; a group that delivered to both members would duplicate all 200.
  std::multiset<int64_t> ids;
  std::set<int64_t> distinct;
  size_t per_source[2] = {0, 0};
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (distinct.size() < kMessages && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 2; ++i) {
      SourceBatch<Row> batch;
      ASSERT_TRUE(sources[i]->Poll(batch, 100, 10ms).ok());
      per_source[i] += batch.records.size();
      for (auto& r : batch.records) {
        ids.insert(std::get<int64_t>(*r.Get("id")));
        distinct.insert(std::get<int64_t>(*r.Get("id")));
      }
    }
  }
  ASSERT_EQ(distinct.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) EXPECT_GE(ids.count(i), 1u) << i;
  EXPECT_LE(ids.size() - distinct.size(), static_cast<size_t>(kMessages / 4)) << "duplicates";
  EXPECT_GT(per_source[0], 0u);
  EXPECT_GT(per_source[1], 0u);
}

TEST_F(MqttTest, SourceReconnectsAndResubscribesAfterABrokerRestart) {
  auto opts = SourceOptions(broker_->port(), {"r/t"});
  opts.reconnect_min = 1s;
  opts.reconnect_max = 2s;
  auto source = MqttSource::Create(opts);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  {
    Publisher pub(broker_->port());
    for (int i = 0; i < 5; ++i) pub.Publish("r/t", fmt::format(R"({{"n":{}}})", i));
    ASSERT_TRUE(pub.WaitAcked());
  }
  SourceBatch<Row> all;
  PollInto(**source, all, 5);
  ASSERT_EQ(all.records.size(), 5u);

  ASSERT_TRUE(broker_->Restart().ok());  // no persistence: the new broker knows nothing of the subscription
  ASSERT_TRUE(WaitFor([&] { return (*source)->connections() >= 2 && (*source)->subscribed(); }, 8s))
      << "connections " << (*source)->connections();
  {
    Publisher pub(broker_->port());
    ASSERT_TRUE(pub.connected());
    for (int i = 5; i < 10; ++i) pub.Publish("r/t", fmt::format(R"({{"n":{}}})", i));
    ASSERT_TRUE(pub.WaitAcked());
  }
  PollInto(**source, all, 10);
  ASSERT_EQ(all.records.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(*all.records[i].Get("n"), stream::Value(int64_t{i}));
}

TEST_F(MqttTest, CloseReturnsPromptlyWhileTheBrokerIsDown) {
  auto opts = SourceOptions(broker_->port(), {"d/t"});
  opts.reconnect_min = 2s;
  opts.reconnect_max = 4s;
  auto source = MqttSource::Create(opts);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  broker_->Stop();
  ASSERT_TRUE(WaitFor([&] { return !(*source)->subscribed(); }, 2s));
  SourceBatch<Row> batch;
  auto st = (*source)->Poll(batch, 10, 20ms);  // a lost connection is not an error
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(*st, PollStatus::kIdle);
  auto start = std::chrono::steady_clock::now();
  (*source)->Close();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(MqttTest, AFullQueueHoldsBackTheBrokerWithoutLosingMessages) {
  auto opts = SourceOptions(broker_->port(), {"bp"});
  opts.queue_capacity = 4;
  auto source = MqttSource::Create(opts);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Open(Context(&dead_letter_), std::nullopt).ok());
  Publisher pub(broker_->port());
  for (int i = 0; i < 100; ++i) pub.Publish("bp", fmt::format(R"({{"n":{}}})", i));
  ASSERT_TRUE(pub.WaitAcked());  // the broker holds what the blocked client does not read
  std::this_thread::sleep_for(100ms);
  SourceBatch<Row> all;
  PollInto(**source, all, 100);
  ASSERT_EQ(all.records.size(), 100u);
  // Every message exactly once. Not in publish order: with QoS 1 the broker keeps up to
  // 20 messages in flight to a client (mosquitto's max_inflight_messages), and only a
  // window of 1 guarantees their order; a slow sanitizer run has seen them reordered.
  std::vector<int64_t> seen;
  for (const auto& r : all.records) seen.push_back(std::get<int64_t>(*r.Get("n")));
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);

  // Close must not hang while the network thread is blocked on a full queue.
  for (int i = 0; i < 20; ++i) pub.Publish("bp", R"({"n":0})");
  ASSERT_TRUE(pub.WaitAcked());
  auto start = std::chrono::steady_clock::now();
  (*source)->Close();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(MqttNoBrokerTest, OpenFailsWhenNoBrokerAnswers) {
  auto opts = SourceOptions(testing::PickFreeLoopbackPort(), {"x"});
  opts.connect_timeout = 300ms;
  auto source = MqttSource::Create(opts);
  ASSERT_TRUE(source.ok());
  CollectingDeadLetter dl;
  auto st = (*source)->Open(Context(&dl), std::nullopt);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;

  MqttSinkOptions kopts;
  kopts.port = opts.port;
  kopts.topic = "t";
  kopts.connect_timeout = 300ms;
  auto sink = MqttSink::Create(kopts);
  ASSERT_TRUE(sink.ok());
  stream::SinkContext sctx;
  EXPECT_EQ((*sink)->Open(sctx, std::nullopt).code(), absl::StatusCode::kUnavailable);
}

TEST(MqttOptionsTest, CreateRejectsBadOptions) {
  auto bad_source = [](auto edit) {
    MqttSourceOptions o = SourceOptions(1883, {"a/b"});
    edit(o);
    return MqttSource::Create(o).status();
  };
  EXPECT_TRUE(bad_source([](MqttSourceOptions&) {}).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.topics.clear(); }).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.topics = {"a/#/b"}; }).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.topics = {"$share/g/a"}; }).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.qos = 3; }).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.shared_group = "a/b"; }).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.persistent_session = true; }).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.reconnect_max = 0s; }).ok());
  EXPECT_FALSE(bad_source([](MqttSourceOptions& o) { o.port = 70000; }).ok());

  auto bad_sink = [](std::string topic) {
    MqttSinkOptions o;
    o.topic = std::move(topic);
    return MqttSink::Create(o).status();
  };
  EXPECT_TRUE(bad_sink("a/{b}/c").ok());
  EXPECT_FALSE(bad_sink("").ok());
  EXPECT_FALSE(bad_sink("a/#").ok());
  EXPECT_FALSE(bad_sink("a/{b").ok());
  EXPECT_FALSE(bad_sink("a/{}/c").ok());
  EXPECT_FALSE(bad_sink("a/b}").ok());
}

}  // namespace
}  // namespace cairn::connect
