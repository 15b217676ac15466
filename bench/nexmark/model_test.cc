#include "bench/nexmark/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/nexmark/query_types.h"
#include "cairn/stream/record.h"

namespace cairn::nexmark {
namespace {

using stream::DecodeFromString;
using stream::EncodeToString;

std::vector<Event> Samples() {
  Person p{1001, "Kate Smith", "abc@defg.com", "0123 4567 8901 2345", "Boise", "ID", 1'700'000'000'123, "xx"};
  Auction a{1002, "lamp", "a fine lamp", 500, 1500, 1'700'000'000'200, 1'700'000'009'000, 1001, 10, ""};
  Bid b{1002, 1003, 777, "Google", "https://www.nexmark.com/abc/def/ghi/item.htm?query=1", 1'700'000'000'300, ""};
  return {Event(p), Event(a), Event(b)};
}

TEST(Model, EveryKindRoundTripsThroughSerde) {
  for (const Event& e : Samples()) {
    const std::string bytes = EncodeToString(e);
    Event back = Bid{};  // decoding switches the kind
    ASSERT_TRUE(DecodeFromString(bytes, &back)) << e.ToString();
    EXPECT_EQ(back, e);
    EXPECT_EQ(back.date_time(), e.date_time());
  }
  const std::vector<Event> samples = Samples();
  const Event& p = samples[0];
  Person person;
  ASSERT_TRUE(DecodeFromString(EncodeToString(p.person()), &person));
  EXPECT_EQ(person, p.person());
}

TEST(Model, TruncatedOrForeignBytesAreRejected) {
  for (const Event& e : Samples()) {
    const std::string bytes = EncodeToString(e);
    for (size_t len = 0; len < bytes.size(); ++len) {
      Event out;
      EXPECT_FALSE(DecodeFromString(std::string_view(bytes).substr(0, len), &out)) << e.ToString() << " " << len;
    }
    Event out;
    EXPECT_FALSE(DecodeFromString(bytes + "x", &out)) << "trailing byte";
  }
  std::string bad_kind = EncodeToString(Samples()[2]);
  bad_kind[0] = 3;
  Event out;
  ByteReader r(bad_kind);
  EXPECT_FALSE(Event::Decode(r, &out));
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("event kind 3"));
  // A string length far past the end must fail without allocating it.
  ByteWriter w;
  w.U8(2);
  w.I64(1);
  w.I64(2);
  w.I64(3);
  w.Varint(uint64_t{1} << 40);
  EXPECT_FALSE(DecodeFromString(w.data(), &out));
}

TEST(Model, KindsAccessorsAndOrder) {
  std::vector<Event> events = Samples();
  EXPECT_TRUE(events[0].is_person());
  EXPECT_TRUE(events[1].is_auction());
  EXPECT_TRUE(events[2].is_bid());
  EXPECT_STREQ(EventKindName(events[1].kind()), "auction");
  EXPECT_LT(events[0], events[1]);  // persons sort before auctions before bids
  EXPECT_LT(events[1], events[2]);
  Event e = events[2];
  e.SetBid().price = 1;  // same kind: edits in place
  EXPECT_EQ(e.bid().auction, 1002);
  e.SetPerson().id = 5;  // another kind: a fresh record
  EXPECT_EQ(e.person().name, "");
  EXPECT_THAT(events[2].ToString(), ::testing::HasSubstr("price=777"));
}

TEST(QueryTypes, RowsRoundTripAndRejectTruncation) {
  auto check = [](const auto& row) {
    using T = std::decay_t<decltype(row)>;
    const std::string bytes = EncodeToString(row);
    T back{};
    ASSERT_TRUE(DecodeFromString(bytes, &back)) << row.ToString();
    EXPECT_EQ(back, row);
    for (size_t len = 0; len < bytes.size(); ++len) {
      T out{};
      EXPECT_FALSE(DecodeFromString(std::string_view(bytes).substr(0, len), &out)) << row.ToString();
    }
  };
  check(ClosedAuction{1, 2, 10, 400, 5000});
  check(Q2Row{1230, 55});
  check(Q3Row{1001, "Paul White", "Bend", "OR", 1005});
  check(Q4Row{10, 5000, 1003, 450, 2});
  check(Q5Row{0, 10000, 1007, 31});
  check(Q6Row{1001, 5000, 1003, 470});
  check(Q7Row{0, 10000, 1007, 1001, 99999, 3456});
  check(Q8Row{1001, "Paul White", 10000});
}

TEST(QueryTypes, OptionsValidateAndWindowsAlign) {
  EXPECT_TRUE(QueryOptions{}.Validate().ok());
  QueryOptions o;
  o.q5_slide_ms = 20'000;
  EXPECT_THAT(std::string(o.Validate().message()), ::testing::HasSubstr("longer than the window"));
  o = {};
  o.q2_modulus = 0;
  EXPECT_FALSE(o.Validate().ok());
  o = {};
  o.q6_last_n = 0;
  EXPECT_FALSE(o.Validate().ok());

  EXPECT_EQ(WindowStart(12'345, 10'000), 10'000);
  EXPECT_EQ(WindowStart(10'000, 10'000), 10'000);
  EXPECT_EQ(WindowStart(-1, 10'000), -10'000);
  EXPECT_EQ(SlidingWindowStarts(12'345, 10'000, 2'000),
            (std::vector<EventTime>{4'000, 6'000, 8'000, 10'000, 12'000}));
  EXPECT_EQ(SlidingWindowStarts(12'000, 10'000, 2'000),
            (std::vector<EventTime>{4'000, 6'000, 8'000, 10'000, 12'000}));
  EXPECT_EQ(SlidingWindowStarts(5, 10, 4), (std::vector<EventTime>{-4, 0, 4}));
}

}  // namespace
}  // namespace cairn::nexmark
