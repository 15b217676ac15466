#include "bench/nexmark/source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::nexmark {
namespace {

using ::testing::HasSubstr;
using stream::PollStatus;
using stream::SourceBatch;
using stream::SourceContext;

GeneratorConfig Config(uint64_t events) {
  GeneratorConfig c;
  c.seed = 3;
  c.events = events;
  c.rate = 1000;
  c.max_out_of_order_ms = 50;
  return c;
}

SourceContext Context(int subtask = 0, int parallelism = 1) {
  SourceContext ctx;
  ctx.name = "nexmark";
  ctx.subtask = subtask;
  ctx.parallelism = parallelism;
  return ctx;
}

// Polls until the end (or `limit` records), appending records and their times.
void Drain(NexmarkSource& source, std::vector<Event>* events, std::vector<EventTime>* times, size_t per_poll,
           size_t limit = SIZE_MAX) {
  SourceBatch<Event> batch;
  while (events->size() < limit) {
    batch.clear();
    absl::StatusOr<PollStatus> st = source.Poll(batch, std::min(per_poll, limit - events->size()),
                                                std::chrono::milliseconds(1));
    ASSERT_TRUE(st.ok()) << st.status();
    if (*st == PollStatus::kEndOfInput) {
      EXPECT_TRUE(batch.records.empty());
      return;
    }
    ASSERT_EQ(*st, PollStatus::kRecords);
    ASSERT_EQ(batch.times.size(), batch.records.size());
    events->insert(events->end(), batch.records.begin(), batch.records.end());
    times->insert(times->end(), batch.times.begin(), batch.times.end());
  }
}

TEST(NexmarkSource, EmitsTheStreamWithEventTimesThenEnds) {
  const GeneratorConfig c = Config(2500);
  NexmarkSource source(c);
  EXPECT_EQ(source.guarantee(), stream::DeliveryGuarantee::kExactlyOnce);
  ASSERT_TRUE(source.Open(Context(), std::nullopt).ok());
  std::vector<Event> events;
  std::vector<EventTime> times;
  Drain(source, &events, &times, 1000);
  EXPECT_EQ(events, *GenerateAll(c));
  for (size_t i = 0; i < events.size(); ++i) ASSERT_EQ(times[i], events[i].date_time());
  EXPECT_EQ(source.emitted(), 2500u);
  SourceBatch<Event> batch;
  EXPECT_EQ(*source.Poll(batch, 10, std::chrono::milliseconds(0)), PollStatus::kEndOfInput);
}

TEST(NexmarkSource, ParallelSubtasksTogetherEmitTheStreamOnce) {
  const GeneratorConfig c = Config(3001);
  const std::vector<Event> all = *GenerateAll(c);
  std::vector<Event> merged;
  for (int subtask = 0; subtask < 3; ++subtask) {
    NexmarkSource source(c);
    ASSERT_TRUE(source.Open(Context(subtask, 3), std::nullopt).ok());
    std::vector<Event> events;
    std::vector<EventTime> times;
    Drain(source, &events, &times, 128);
    for (size_t i = 0; i < events.size(); ++i) ASSERT_EQ(events[i], all[subtask + 3 * i]);
    merged.insert(merged.end(), events.begin(), events.end());
  }
  EXPECT_EQ(merged.size(), all.size());
}

TEST(NexmarkSource, RestoringAPositionContinuesExactlyThere) {
  const GeneratorConfig c = Config(5000);
  const std::vector<Event> all = *GenerateAll(c);
  for (int subtask = 0; subtask < 2; ++subtask) {
    NexmarkSource first(c);
    ASSERT_TRUE(first.Open(Context(subtask, 2), std::nullopt).ok());
    std::vector<Event> events;
    std::vector<EventTime> times;
    Drain(first, &events, &times, 100, 777);
    const std::string position = first.Position();
    // Records polled after the checkpoint are lost with the crash and replayed.
    Drain(first, &events, &times, 100, 900);
    events.resize(777);
    times.resize(777);

    NexmarkSource second(c);
    ASSERT_TRUE(second.Open(Context(subtask, 2), position).ok());
    Drain(second, &events, &times, 100);
    ASSERT_EQ(events.size(), 2500u);
    for (size_t i = 0; i < events.size(); ++i) ASSERT_EQ(events[i], all[subtask + 2 * i]) << i;
  }
}

TEST(NexmarkSource, BadPositionsAndConfigsAreRefused) {
  const GeneratorConfig c = Config(100);
  NexmarkSource first(c);
  ASSERT_TRUE(first.Open(Context(1, 2), std::nullopt).ok());
  const std::string position = first.Position();

  NexmarkSource other_parallelism(c);
  absl::Status s = other_parallelism.Open(Context(1, 3), position);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("subtask 1 of 2"));

  NexmarkSource truncated(c);
  EXPECT_THAT(std::string(truncated.Open(Context(1, 2), position.substr(0, 5)).message()), HasSubstr("nexmark"));
  NexmarkSource garbage(c);
  EXPECT_FALSE(garbage.Open(Context(1, 2), position + "x").ok());

  GeneratorConfig bad = c;
  bad.rate = 0;
  NexmarkSource invalid(bad);
  EXPECT_THAT(std::string(invalid.Open(Context(), std::nullopt).message()), HasSubstr("rate"));

  NexmarkSource unopened(c);
  SourceBatch<Event> batch;
  EXPECT_FALSE(unopened.Poll(batch, 10, std::chrono::milliseconds(0)).ok());
}

}  // namespace
}  // namespace cairn::nexmark
