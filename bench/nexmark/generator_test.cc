#include "bench/nexmark/generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace cairn::nexmark {
namespace {

using ::testing::HasSubstr;

GeneratorConfig Config(uint64_t events, uint64_t seed = 7) {
  GeneratorConfig c;
  c.seed = seed;
  c.events = events;
  c.rate = 1000;
  return c;
}

std::vector<Event> All(const GeneratorConfig& c) {
  absl::StatusOr<std::vector<Event>> events = GenerateAll(c);
  EXPECT_TRUE(events.ok()) << events.status();
  return events.ok() ? *std::move(events) : std::vector<Event>{};
}

TEST(GeneratorConfig, ValidateNamesTheBadField) {
  auto message = [](auto mutate) {
    GeneratorConfig c;
    mutate(c);
    return std::string(c.Validate().message());
  };
  EXPECT_TRUE(GeneratorConfig{}.Validate().ok());
  EXPECT_THAT(message([](GeneratorConfig& c) { c.rate = 0; }), HasSubstr("rate"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.bid_proportion = 0; }), HasSubstr("proportions 1:3:0"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.hot_bidders_ratio = 0; }), HasSubstr("hot_bidders_ratio"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.num_in_flight_auctions = 0; }), HasSubstr("num_in_flight"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.num_active_people = 0; }), HasSubstr("num_active_people"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.max_out_of_order_ms = -1; }), HasSubstr("max_out_of_order_ms"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.out_of_order_fraction = 1.5; }), HasSubstr("out_of_order_fraction"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.avg_bid_bytes = 1u << 30; }), HasSubstr("avg_*_bytes"));
  EXPECT_THAT(message([](GeneratorConfig& c) { c.base_time_ms = int64_t{1} << 62; }), HasSubstr("base_time_ms"));

  EXPECT_THAT(Generator::Create(GeneratorConfig{}, 2, 2).status().message(), HasSubstr("subtask 2 of parallelism 2"));
  EXPECT_FALSE(Generator::Create(GeneratorConfig{}, 0, 0).ok());
  EXPECT_THAT(GenerateAll(GeneratorConfig{}).status().message(), HasSubstr("unbounded"));
}

TEST(Generator, SameConfigSameEventsOtherSeedOtherEvents) {
  const std::vector<Event> a = All(Config(5000));
  const std::vector<Event> b = All(Config(5000));
  ASSERT_EQ(a.size(), 5000u);
  EXPECT_EQ(a, b);
  const std::vector<Event> c = All(Config(5000, 8));
  int same_bids = 0;
  for (size_t i = 0; i < a.size(); ++i) same_bids += a[i].is_bid() && a[i] == c[i];
  EXPECT_LT(same_bids, 50);
}

TEST(Generator, RandomAccessMatchesSequentialOrder) {
  GeneratorConfig c = Config(3000);
  c.max_out_of_order_ms = 300;
  const std::vector<Event> events = All(c);
  Generator gen = *Generator::Create(c);
  Event e = Bid{};  // a reused event of another kind is overwritten completely
  for (uint64_t n : {2999u, 0u, 1u, 1234u, 50u, 4u}) {
    gen.Generate(n, &e);
    EXPECT_EQ(e, events[n]) << n;
  }
}

TEST(Generator, ProportionsAndKindsFollowTheEventNumber) {
  const std::vector<Event> events = All(Config(50 * 400));
  std::map<EventKind, int> counts;
  for (size_t n = 0; n < events.size(); ++n) {
    const EventKind want = n % 50 == 0 ? EventKind::kPerson : n % 50 < 4 ? EventKind::kAuction : EventKind::kBid;
    ASSERT_EQ(events[n].kind(), want) << n;
    ++counts[events[n].kind()];
  }
  EXPECT_EQ(counts[EventKind::kPerson], 400);   // 2 %
  EXPECT_EQ(counts[EventKind::kAuction], 1200);  // 6 %
  EXPECT_EQ(counts[EventKind::kBid], 18400);     // 92 %
}

TEST(Generator, OtherProportions) {
  GeneratorConfig c = Config(1000);
  c.person_proportion = 2;
  c.auction_proportion = 3;
  c.bid_proportion = 5;
  const std::vector<Event> events = All(c);
  int64_t next_person = kFirstPersonId, next_auction = kFirstAuctionId;
  int persons = 0;
  for (const Event& e : events) {
    if (e.is_person()) {
      EXPECT_EQ(e.person().id, next_person++);
      ++persons;
    }
    if (e.is_auction()) {
      EXPECT_EQ(e.auction().id, next_auction++);
    }
  }
  EXPECT_EQ(persons, 200);
  EXPECT_EQ(next_auction - kFirstAuctionId, 300);
}

TEST(Generator, IdsAreConsecutiveAndReferencesPointNearTheirRecords) {
  GeneratorConfig c = Config(50 * 600);
  c.num_active_people = 200;
  const std::vector<Event> events = All(c);
  int64_t next_person = kFirstPersonId, next_auction = kFirstAuctionId;
  for (const Event& e : events) {
    switch (e.kind()) {
      case EventKind::kPerson:
        ASSERT_EQ(e.person().id, next_person++);
        break;
      case EventKind::kAuction: {
        ASSERT_EQ(e.auction().id, next_auction++);
        // Sellers: a person created already, or up to 10 ahead; random ones among the last 200 active.
        const int64_t seller = e.auction().seller;
        EXPECT_GE(seller, kFirstPersonId);
        EXPECT_LT(seller, next_person + 10);
        const bool hot = (seller - kFirstPersonId) % 100 == 0;
        if (!hot) {
          EXPECT_GE(seller, next_person - 200);
        }
        break;
      }
      case EventKind::kBid:
        EXPECT_GE(e.bid().auction, kFirstAuctionId);
        EXPECT_LE(e.bid().auction, next_auction - 1 + 10);
        EXPECT_GE(e.bid().bidder, kFirstPersonId);
        EXPECT_LT(e.bid().bidder, next_person + 10);
        break;
    }
  }
}

TEST(Generator, HotAuctionsBiddersAndSellersTakeTheirShare) {
  const std::vector<Event> events = All(Config(50 * 2000));
  int64_t last_auction = kFirstAuctionId - 1, last_person = kFirstPersonId - 1;
  int bids = 0, hot_auction = 0, hot_bidder = 0, auctions = 0, hot_seller = 0;
  for (const Event& e : events) {
    if (e.is_person()) last_person = e.person().id;
    if (e.is_auction()) {
      last_auction = e.auction().id;
      ++auctions;
      hot_seller += e.auction().seller == kFirstPersonId + (last_person - kFirstPersonId) / 100 * 100;
    }
    if (e.is_bid()) {
      ++bids;
      hot_auction += e.bid().auction == kFirstAuctionId + (last_auction - kFirstAuctionId) / 100 * 100;
      hot_bidder += e.bid().bidder == kFirstPersonId + (last_person - kFirstPersonId) / 100 * 100 + 1;
    }
  }
  // 1 - 1/ratio are hot by rule; random picks rarely land on the hot id.
  EXPECT_NEAR(static_cast<double>(hot_auction) / bids, 0.5, 0.03);   // hot_auction_ratio 2
  EXPECT_NEAR(static_cast<double>(hot_bidder) / bids, 0.75, 0.03);   // hot_bidders_ratio 4
  EXPECT_NEAR(static_cast<double>(hot_seller) / auctions, 0.75, 0.03);  // hot_sellers_ratio 4
}

TEST(Generator, FieldsLookLikeNexmark) {
  const std::vector<Event> events = All(Config(50 * 1000));
  const std::set<std::string> states = {"AZ", "CA", "ID", "OR", "WA", "WY"};
  const std::set<std::string> hot_channels = {"Google", "Facebook", "Baidu", "Apple"};
  std::map<std::string, std::string> url_of_channel;
  int prices_below_median = 0, bids = 0, hot_channel_bids = 0;
  for (const Event& e : events) {
    if (e.is_person()) {
      const Person& p = e.person();
      EXPECT_TRUE(states.count(p.state)) << p.ToString();
      EXPECT_FALSE(p.city.empty());
      EXPECT_NE(p.name.find(' '), std::string::npos);
      ASSERT_EQ(p.credit_card.size(), 19u) << p.ToString();
      for (size_t i = 0; i < 19; ++i) EXPECT_EQ(p.credit_card[i] == ' ', i % 5 == 4) << p.credit_card;
      EXPECT_NE(p.email_address.find('@'), std::string::npos);
      EXPECT_TRUE(p.email_address.ends_with(".com"));
      EXPECT_TRUE(p.extra.empty());
    } else if (e.is_auction()) {
      const Auction& a = e.auction();
      EXPECT_GE(a.category, 10);
      EXPECT_LE(a.category, 14);
      EXPECT_GE(a.initial_bid, 100);
      EXPECT_LE(a.initial_bid, 100'000'000);
      EXPECT_GT(a.reserve, a.initial_bid);
      EXPECT_GT(a.expires, a.date_time);
      EXPECT_LE(a.item_name.size(), 19u);
      EXPECT_LE(a.description.size(), 99u);
      EXPECT_FALSE(a.item_name.starts_with(" ") || a.item_name.ends_with(" ")) << a.item_name;
    } else {
      const Bid& b = e.bid();
      ++bids;
      prices_below_median += b.price < 100'000;  // 10^3 * 100: the median of the log-uniform prices
      EXPECT_GE(b.price, 100);
      EXPECT_LE(b.price, 100'000'000);
      EXPECT_TRUE(b.url.starts_with("https://www.nexmark.com/")) << b.url;
      EXPECT_NE(b.url.find("/item.htm?query=1"), std::string::npos) << b.url;
      if (hot_channels.count(b.channel)) {
        ++hot_channel_bids;
        EXPECT_EQ(b.url.find("channel_id"), std::string::npos);
      } else {
        ASSERT_TRUE(b.channel.starts_with("channel-")) << b.channel;
        EXPECT_LT(std::stoi(b.channel.substr(8)), 10000);
      }
      auto [it, inserted] = url_of_channel.emplace(b.channel, b.url);
      EXPECT_EQ(it->second, b.url) << "a channel always has the same URL";
    }
  }
  EXPECT_NEAR(static_cast<double>(prices_below_median) / bids, 0.5, 0.02);
  EXPECT_NEAR(static_cast<double>(hot_channel_bids) / bids, 0.5, 0.02);
  int with_id = 0, cold = 0;
  for (const auto& [channel, url] : url_of_channel) {
    if (hot_channels.count(channel)) continue;
    ++cold;
    with_id += url.find("&channel_id=") != std::string::npos;
  }
  EXPECT_NEAR(static_cast<double>(with_id) / cold, 0.9, 0.03);
}

TEST(Generator, ExtraPadsToTheAverageSize) {
  GeneratorConfig c = Config(50 * 400);
  c.avg_bid_bytes = 100;
  c.avg_person_bytes = 200;
  c.avg_auction_bytes = 500;
  double bid_extra = 0, person_size = 0;
  int bids = 0, persons = 0;
  for (const Event& e : All(c)) {
    if (e.is_bid()) {
      bid_extra += static_cast<double>(e.bid().extra.size());
      ++bids;
    } else if (e.is_person()) {
      const Person& p = e.person();
      person_size += static_cast<double>(8 + p.name.size() + p.email_address.size() + p.credit_card.size() +
                                         p.city.size() + p.state.size() + p.extra.size());
      ++persons;
    } else {
      EXPECT_FALSE(e.auction().extra.empty());
    }
  }
  EXPECT_NEAR(bid_extra / bids, 100 - 32, 1.0);  // 68 +- 20 % around a bid's 32 bytes of numbers
  EXPECT_NEAR(person_size / persons, 200, 3.0);
}

TEST(Generator, TimesFollowTheRateFromTheBaseTime) {
  GeneratorConfig c = Config(5000);
  c.rate = 4000;  // 4 events per ms
  c.base_time_ms = 1'000'000;
  const std::vector<Event> events = All(c);
  EXPECT_EQ(events[0].date_time(), 1'000'000);
  EXPECT_EQ(events[3].date_time(), 1'000'000);
  EXPECT_EQ(events[4].date_time(), 1'000'001);
  EXPECT_EQ(events[4001].date_time(), 1'001'000);
  for (size_t n = 1; n < events.size(); ++n) ASSERT_GE(events[n].date_time(), events[n - 1].date_time());

  c.rate = 3;  // an inter-event delay of 333.3 ms
  Generator slow = *Generator::Create(c);
  EXPECT_EQ(slow.NominalTime(1), 1'000'333);
  EXPECT_EQ(slow.NominalTime(3), 1'001'000);
  const uint64_t far = (uint64_t{1} << 53) + 1;  // past the 64-bit fast path
  EXPECT_EQ(slow.NominalTime(far),
            1'000'000 + static_cast<int64_t>(static_cast<unsigned __int128>(far) * 1000 / 3));
}

TEST(Generator, AuctionsLastAboutTheInFlightHorizon) {
  // At 1000 events/s, 100 more auctions take 100 * 50 / 3 = 1666 events = 1.666 s.
  double total = 0;
  int auctions = 0;
  for (const Event& e : All(Config(50 * 2000))) {
    if (!e.is_auction()) continue;
    const int64_t length = e.auction().expires - e.auction().date_time;
    EXPECT_GE(length, 1);
    EXPECT_LE(length, 2 * 1666);
    total += static_cast<double>(length);
    ++auctions;
  }
  EXPECT_NEAR(total / auctions, 1666, 40);
}

TEST(Generator, OutOfOrderTimesStayWithinTheBound) {
  GeneratorConfig c = Config(20000);
  c.max_out_of_order_ms = 250;
  c.out_of_order_fraction = 0.3;
  const std::vector<Event> events = All(c);
  Generator gen = *Generator::Create(c);
  int shifted = 0, inversions = 0;
  EventTime max_seen = stream::kMinTime;
  for (size_t n = 0; n < events.size(); ++n) {
    const EventTime t = events[n].date_time();
    const EventTime nominal = gen.NominalTime(n);
    ASSERT_LE(t, nominal);
    ASSERT_GE(t, nominal - 250);
    shifted += t < nominal;
    // A watermark lagging the largest time seen by the bound never sees a late event.
    if (n > 0) {
      ASSERT_GE(t, max_seen - 250) << n;
    }
    inversions += t < max_seen;
    max_seen = std::max(max_seen, t);
  }
  EXPECT_NEAR(shifted / 20000.0, 0.3, 0.02);
  EXPECT_GT(inversions, 1000);
}

TEST(Generator, SubtasksPartitionTheStreamExactly) {
  GeneratorConfig c = Config(10007);
  c.max_out_of_order_ms = 100;
  const std::vector<Event> all = All(c);
  for (int parallelism : {1, 2, 3, 8}) {
    std::vector<Event> merged(all.size());
    std::vector<bool> seen(all.size(), false);
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      Generator gen = *Generator::Create(c, subtask, parallelism);
      EXPECT_EQ(gen.remaining(), (all.size() - subtask + parallelism - 1) / parallelism);
      Event e;
      while (true) {
        const uint64_t n = gen.next_event_number();
        if (!gen.Next(&e)) break;
        ASSERT_EQ(n % parallelism, static_cast<uint64_t>(subtask));
        ASSERT_LT(n, all.size());
        ASSERT_FALSE(seen[n]);
        seen[n] = true;
        merged[n] = e;
      }
      EXPECT_EQ(gen.remaining(), 0u);
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), static_cast<long>(all.size())) << parallelism;
    EXPECT_EQ(merged, all) << parallelism;
  }
}

TEST(Generator, NextBatchSeekAndEnd) {
  const GeneratorConfig c = Config(100);
  const std::vector<Event> all = All(c);
  Generator gen = *Generator::Create(c, 1, 3);  // events 1, 4, 7, ..., 97
  std::vector<Event> batch;
  EXPECT_EQ(gen.NextBatch(&batch, 10), 10u);
  EXPECT_EQ(batch[9], all[28]);
  EXPECT_EQ(gen.next_event_number(), 31u);
  EXPECT_THAT(gen.Seek(30).message(), HasSubstr("belongs to subtask 0 of 3"));
  ASSERT_TRUE(gen.Seek(91).ok());
  EXPECT_EQ(gen.remaining(), 3u);
  EXPECT_EQ(gen.NextBatch(&batch, 10), 3u);
  EXPECT_EQ(batch.back(), all[97]);
  Event e;
  EXPECT_FALSE(gen.Next(&e));
  EXPECT_FALSE(gen.HasNext());

  GeneratorConfig unbounded = c;
  unbounded.events = 0;
  Generator forever = *Generator::Create(unbounded);
  EXPECT_TRUE(forever.HasNext());
  EXPECT_EQ(forever.remaining(), UINT64_MAX);
  ASSERT_TRUE(forever.Seek(uint64_t{1} << 50).ok());
  ASSERT_TRUE(forever.Next(&e));
}

}  // namespace
}  // namespace cairn::nexmark
