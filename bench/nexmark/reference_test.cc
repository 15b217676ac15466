#include "bench/nexmark/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "bench/nexmark/generator.h"

namespace cairn::nexmark {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Event P(int64_t id, std::string name, std::string state, EventTime t) {
  return Person{id, std::move(name), "a@b.com", "", "City", std::move(state), t, ""};
}
Event A(int64_t id, int64_t seller, int64_t category, EventTime t, EventTime expires, int64_t reserve = 0) {
  return Auction{id, "item", "desc", 1, reserve, t, expires, seller, category, ""};
}
Event B(int64_t auction, int64_t price, EventTime t, int64_t bidder = 1) {
  return Bid{auction, bidder, price, "Google", "url", t, ""};
}

TEST(Reference, Q0PassesEveryEvent) {
  std::vector<Event> events = {B(1, 5, 3), P(1, "x", "OR", 1), A(1, 1, 10, 2, 9)};
  std::vector<Event> out = ReferenceQ0(events);
  EXPECT_THAT(out, ElementsAre(events[1], events[2], events[0]));
}

TEST(Reference, Q1ConvertsBidPrices) {
  std::vector<Event> events = {B(1, 1000, 3), P(1, "x", "OR", 1), B(2, 1, 4), B(3, 12345, 5)};
  std::vector<int64_t> prices;
  for (const Bid& b : ReferenceQ1(events)) prices.push_back(b.price);
  EXPECT_THAT(prices, ElementsAre(908, 0, 11209));  // sorted by auction: 1, 2, 3; 12345 * 0.908 = 11209.26
}

TEST(Reference, Q2SelectsAuctionsByModulus) {
  std::vector<Event> events = {B(123, 7, 1), B(124, 8, 2), B(246, 9, 3), B(0, 1, 4), A(123, 1, 10, 1, 2)};
  EXPECT_THAT(ReferenceQ2(events), ElementsAre(Q2Row{0, 1}, Q2Row{123, 7}, Q2Row{246, 9}));
  QueryOptions o;
  o.q2_modulus = 2;
  EXPECT_THAT(ReferenceQ2(events, o), ElementsAre(Q2Row{0, 1}, Q2Row{124, 8}, Q2Row{246, 9}));
}

TEST(Reference, Q3JoinsSellersInStatesWithCategoryAuctionsInAnyOrder) {
  std::vector<Event> events = {
      A(10, 3, 10, 1, 100),  // before its seller appears: still joined
      P(1, "Ann", "OR", 2), P(2, "Bob", "WA", 3), P(3, "Cid", "CA", 4),
      A(11, 1, 10, 5, 100),  // joined
      A(12, 2, 10, 6, 100),  // WA: no
      A(13, 3, 11, 7, 100),  // category 11: no
      A(14, 9, 10, 8, 100),  // no such person
  };
  EXPECT_THAT(ReferenceQ3(events), ElementsAre(Q3Row{1, "Ann", "City", "OR", 11}, Q3Row{3, "Cid", "City", "CA", 10}));
}

TEST(Reference, WinningBidsTakeTheHighestBidInTheAuctionsLifeAboveTheReserve) {
  std::vector<Event> events = {
      A(1, 100, 10, 1000, 2000, 50),
      B(1, 500, 999),   // before the auction opened
      B(1, 60, 1000),   // qualifies (opening instant)
      B(1, 70, 1999),   // qualifies: the winner
      B(1, 1000, 2000), // at the expiry: too late
      B(1, 40, 1500),   // below the reserve
      A(2, 100, 11, 1000, 3000, 1000),
      B(2, 999, 1500),  // below the reserve: auction 2 is not sold
      B(3, 999, 1500),  // no such auction
  };
  EXPECT_THAT(ReferenceWinningBids(events), ElementsAre(ClosedAuction{1, 100, 10, 70, 2000}));
}

TEST(Reference, Q4RunsTheCategoryAverageInCloseOrder) {
  std::vector<Event> events = {
      A(1, 100, 10, 0, 3000), A(2, 100, 10, 0, 1000), A(3, 100, 11, 0, 1000), A(4, 101, 10, 0, 3000),
      B(1, 10, 5),          B(2, 21, 5),          B(3, 7, 5),           B(4, 40, 5),
  };
  // Category 10 closes auction 2 (1000), then 1 and 4 (both 3000: by id).
  EXPECT_THAT(ReferenceQ4(events), ElementsAre(Q4Row{10, 1000, 2, 21, 1}, Q4Row{10, 3000, 1, 15, 2},
                                               Q4Row{10, 3000, 4, 23, 3}, Q4Row{11, 1000, 3, 7, 1}));
}

TEST(Reference, Q5ReportsEveryAuctionTiedForTheMostBidsPerWindow) {
  QueryOptions o;
  o.q5_window_ms = 4;
  o.q5_slide_ms = 2;
  // Windows [-2,2) [0,4) [2,6) [4,8).
  std::vector<Event> events = {B(1, 1, 0), B(1, 1, 1), B(2, 1, 1), B(2, 1, 2), B(3, 1, 3), B(3, 1, 5)};
  EXPECT_THAT(ReferenceQ5(events, o), ElementsAre(Q5Row{-2, 2, 1, 2},                     // 1:2 2:1
                                                  Q5Row{0, 4, 1, 2}, Q5Row{0, 4, 2, 2},   // 1:2 2:2 3:1
                                                  Q5Row{2, 6, 3, 2},                      // 2:1 3:2
                                                  Q5Row{4, 8, 3, 1}));
}

TEST(Reference, Q6AveragesEachSellersLastSales) {
  QueryOptions o;
  o.q6_last_n = 2;
  std::vector<Event> events = {
      A(1, 100, 10, 0, 1000), A(2, 100, 10, 0, 2000), A(3, 100, 10, 0, 3000), A(4, 200, 10, 0, 1500),
      B(1, 10, 5),            B(2, 20, 5),            B(3, 31, 5),            B(4, 7, 5),
  };
  EXPECT_THAT(ReferenceQ6(events, o), ElementsAre(Q6Row{100, 1000, 1, 10}, Q6Row{100, 2000, 2, 15},
                                                  Q6Row{100, 3000, 3, 25}, Q6Row{200, 1500, 4, 7}));
  EXPECT_EQ(ReferenceQ6(events).back(), (Q6Row{200, 1500, 4, 7}));
  EXPECT_EQ(ReferenceQ6(events)[2], (Q6Row{100, 3000, 3, 20}));  // (10 + 20 + 31) / 3
}

TEST(Reference, Q7KeepsEveryBidAtTheWindowsHighestPrice) {
  std::vector<Event> events = {B(1, 50, 100, 7), B(2, 90, 200, 8), B(3, 90, 9999, 9), B(4, 95, 10'000, 1),
                               B(5, 10, 19'999, 2)};
  EXPECT_THAT(ReferenceQ7(events), ElementsAre(Q7Row{0, 10'000, 2, 8, 90, 200}, Q7Row{0, 10'000, 3, 9, 90, 9999},
                                               Q7Row{10'000, 20'000, 4, 1, 95, 10'000}));
}

TEST(Reference, Q8FindsNewPersonsWhoSoldInTheSameWindow) {
  std::vector<Event> events = {
      P(1, "Ann", "OR", 5'000),  A(10, 1, 10, 9'999, 20'000),   // same window
      P(2, "Bob", "WA", 5'000),  A(11, 2, 10, 10'000, 20'000),  // the next window
      P(3, "Cid", "CA", 15'000), A(12, 3, 10, 12'000, 20'000), A(13, 3, 11, 19'000, 20'000),  // twice: one row
  };
  EXPECT_THAT(ReferenceQ8(events), ElementsAre(Q8Row{1, "Ann", 0}, Q8Row{3, "Cid", 10'000}));
  EXPECT_THAT(ReferenceQ8(std::vector<Event>{}), IsEmpty());
}

// The engine tests compare against the reference on generated streams: every
// query must have output there for the comparison to mean something.
TEST(Reference, GeneratedStreamsGiveEveryQueryOutput) {
  GeneratorConfig c;
  c.seed = 11;
  c.events = 30'000;
  c.rate = 1'000;
  c.max_out_of_order_ms = 200;
  const std::vector<Event> events = *GenerateAll(c);
  EXPECT_EQ(ReferenceQ0(events).size(), events.size());
  EXPECT_GT(ReferenceQ1(events).size(), 27'000u);
  EXPECT_GT(ReferenceQ2(events).size(), 0u);
  EXPECT_GT(ReferenceQ3(events).size(), 10u);
  EXPECT_GT(ReferenceWinningBids(events).size(), 50u);
  EXPECT_GT(ReferenceQ4(events).size(), 50u);
  EXPECT_GT(ReferenceQ5(events).size(), 10u);
  EXPECT_GT(ReferenceQ6(events).size(), 50u);
  EXPECT_GE(ReferenceQ7(events).size(), 3u);
  EXPECT_GT(ReferenceQ8(events).size(), 3u);
}

}  // namespace
}  // namespace cairn::nexmark
