// What the Nexmark queries output, and their options: shared by the reference
// implementations (reference.h) and the engine pipelines, which must produce
// exactly the same rows. The semantics of each query are written down in
// reference.h.
//
// Every row type is a plain value with Encode/Decode (for cairn::stream::Serde),
// a total order (field by field), and ToString() for test diagnostics.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/nexmark/model.h"
#include "cairn/base/codec.h"

namespace cairn::nexmark {

struct QueryOptions {
  // Q1: price * q1_numerator / q1_denominator (integer division), as Flink's 0.908 factor.
  int64_t q1_numerator = 908;
  int64_t q1_denominator = 1000;
  // Q2: bids whose auction id is a multiple of this.
  int64_t q2_modulus = 123;
  // Q3: auctions of this category by sellers living in one of these states.
  int64_t q3_category = 10;
  std::vector<std::string> q3_states = {"OR", "ID", "CA"};
  // Q5: sliding windows of this size, one starting every slide (epoch-aligned).
  EventTime q5_window_ms = 10'000;
  EventTime q5_slide_ms = 2'000;
  // Q6: the average is over each seller's last this many sales.
  int64_t q6_last_n = 10;
  // Q7, Q8: tumbling windows of this size (epoch-aligned).
  EventTime q7_window_ms = 10'000;
  EventTime q8_window_ms = 10'000;

  // Errors name the option.
  absl::Status Validate() const;
};

// A sold auction (the "winning bids" core of Q4 and Q6): an auction with at
// least one qualifying bid (see reference.h), closed at its expiry.
struct ClosedAuction {
  int64_t auction = 0;
  int64_t seller = 0;
  int64_t category = 0;
  int64_t price = 0;         // the highest qualifying bid
  EventTime closed_at = 0;   // the auction's expires

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, ClosedAuction* out);
  std::string ToString() const;
  auto operator<=>(const ClosedAuction&) const = default;
};

// Q0 outputs Events, Q1 Bids.

struct Q2Row {
  int64_t auction = 0;
  int64_t price = 0;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Q2Row* out);
  std::string ToString() const;
  auto operator<=>(const Q2Row&) const = default;
};

struct Q3Row {
  int64_t seller = 0;  // the person's id
  std::string name;
  std::string city;
  std::string state;
  int64_t auction = 0;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Q3Row* out);
  std::string ToString() const;
  auto operator<=>(const Q3Row&) const = default;
};

// The category's average after the sale of `auction`.
struct Q4Row {
  int64_t category = 0;
  EventTime closed_at = 0;
  int64_t auction = 0;
  int64_t avg_price = 0;  // floor(sum / count) over the category's sales so far
  int64_t sales = 0;      // count

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Q4Row* out);
  std::string ToString() const;
  auto operator<=>(const Q4Row&) const = default;
};

struct Q5Row {
  EventTime window_start = 0;
  EventTime window_end = 0;
  int64_t auction = 0;
  int64_t bids = 0;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Q5Row* out);
  std::string ToString() const;
  auto operator<=>(const Q5Row&) const = default;
};

// The seller's average after the sale of `auction`.
struct Q6Row {
  int64_t seller = 0;
  EventTime closed_at = 0;
  int64_t auction = 0;
  int64_t avg_price = 0;  // floor(sum / count) over the seller's last q6_last_n sales

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Q6Row* out);
  std::string ToString() const;
  auto operator<=>(const Q6Row&) const = default;
};

struct Q7Row {
  EventTime window_start = 0;
  EventTime window_end = 0;
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  EventTime date_time = 0;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Q7Row* out);
  std::string ToString() const;
  auto operator<=>(const Q7Row&) const = default;
};

struct Q8Row {
  int64_t person = 0;
  std::string name;
  EventTime window_start = 0;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Q8Row* out);
  std::string ToString() const;
  auto operator<=>(const Q8Row&) const = default;
};

// Window helpers (epoch-aligned; correct for negative times).
EventTime WindowStart(EventTime t, EventTime size_or_slide);
// Starts of the sliding windows [s, s + size) that contain t, ascending.
std::vector<EventTime> SlidingWindowStarts(EventTime t, EventTime size, EventTime slide);

}  // namespace cairn::nexmark
