#include "bench/nexmark/query_types.h"

#include "fmt/format.h"

namespace cairn::nexmark {

absl::Status QueryOptions::Validate() const {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError("nexmark query options: " + msg); };
  if (q1_denominator <= 0) return bad(fmt::format("q1_denominator {} must be positive", q1_denominator));
  if (q2_modulus <= 0) return bad(fmt::format("q2_modulus {} must be positive", q2_modulus));
  if (q5_window_ms <= 0 || q5_slide_ms <= 0) {
    return bad(fmt::format("q5 window {} ms and slide {} ms must be positive", q5_window_ms, q5_slide_ms));
  }
  if (q5_slide_ms > q5_window_ms) {
    return bad(fmt::format("q5 slide {} ms is longer than the window {} ms", q5_slide_ms, q5_window_ms));
  }
  if (q5_window_ms / q5_slide_ms > 1000) return bad("q5 window / slide must be at most 1000 windows per event");
  if (q6_last_n <= 0) return bad(fmt::format("q6_last_n {} must be positive", q6_last_n));
  if (q7_window_ms <= 0) return bad(fmt::format("q7_window_ms {} must be positive", q7_window_ms));
  if (q8_window_ms <= 0) return bad(fmt::format("q8_window_ms {} must be positive", q8_window_ms));
  return absl::OkStatus();
}

EventTime WindowStart(EventTime t, EventTime size) {
  EventTime r = t % size;
  if (r < 0) r += size;
  return t - r;
}

std::vector<EventTime> SlidingWindowStarts(EventTime t, EventTime size, EventTime slide) {
  std::vector<EventTime> starts;
  for (EventTime s = WindowStart(t, slide); s > t - size; s -= slide) starts.push_back(s);
  return {starts.rbegin(), starts.rend()};
}

void ClosedAuction::Encode(ByteWriter& w) const {
  w.I64(auction);
  w.I64(seller);
  w.I64(category);
  w.I64(price);
  w.I64(closed_at);
}
bool ClosedAuction::Decode(ByteReader& r, ClosedAuction* out) {
  out->auction = r.I64();
  out->seller = r.I64();
  out->category = r.I64();
  out->price = r.I64();
  out->closed_at = r.I64();
  return r.ok();
}
std::string ClosedAuction::ToString() const {
  return fmt::format("ClosedAuction{{auction={} seller={} category={} price={} closed_at={}}}", auction, seller,
                     category, price, closed_at);
}

void Q2Row::Encode(ByteWriter& w) const {
  w.I64(auction);
  w.I64(price);
}
bool Q2Row::Decode(ByteReader& r, Q2Row* out) {
  out->auction = r.I64();
  out->price = r.I64();
  return r.ok();
}
std::string Q2Row::ToString() const { return fmt::format("Q2{{auction={} price={}}}", auction, price); }

void Q3Row::Encode(ByteWriter& w) const {
  w.I64(seller);
  w.String(name);
  w.String(city);
  w.String(state);
  w.I64(auction);
}
bool Q3Row::Decode(ByteReader& r, Q3Row* out) {
  out->seller = r.I64();
  if (!DecodeString(r, &out->name) || !DecodeString(r, &out->city) || !DecodeString(r, &out->state)) return false;
  out->auction = r.I64();
  return r.ok();
}
std::string Q3Row::ToString() const {
  return fmt::format("Q3{{seller={} name='{}' city='{}' state={} auction={}}}", seller, name, city, state, auction);
}

void Q4Row::Encode(ByteWriter& w) const {
  w.I64(category);
  w.I64(closed_at);
  w.I64(auction);
  w.I64(avg_price);
  w.I64(sales);
}
bool Q4Row::Decode(ByteReader& r, Q4Row* out) {
  out->category = r.I64();
  out->closed_at = r.I64();
  out->auction = r.I64();
  out->avg_price = r.I64();
  out->sales = r.I64();
  return r.ok();
}
std::string Q4Row::ToString() const {
  return fmt::format("Q4{{category={} closed_at={} auction={} avg_price={} sales={}}}", category, closed_at, auction,
                     avg_price, sales);
}

void Q5Row::Encode(ByteWriter& w) const {
  w.I64(window_start);
  w.I64(window_end);
  w.I64(auction);
  w.I64(bids);
}
bool Q5Row::Decode(ByteReader& r, Q5Row* out) {
  out->window_start = r.I64();
  out->window_end = r.I64();
  out->auction = r.I64();
  out->bids = r.I64();
  return r.ok();
}
std::string Q5Row::ToString() const {
  return fmt::format("Q5{{window=[{}, {}) auction={} bids={}}}", window_start, window_end, auction, bids);
}

void Q6Row::Encode(ByteWriter& w) const {
  w.I64(seller);
  w.I64(closed_at);
  w.I64(auction);
  w.I64(avg_price);
}
bool Q6Row::Decode(ByteReader& r, Q6Row* out) {
  out->seller = r.I64();
  out->closed_at = r.I64();
  out->auction = r.I64();
  out->avg_price = r.I64();
  return r.ok();
}
std::string Q6Row::ToString() const {
  return fmt::format("Q6{{seller={} closed_at={} auction={} avg_price={}}}", seller, closed_at, auction, avg_price);
}

void Q7Row::Encode(ByteWriter& w) const {
  w.I64(window_start);
  w.I64(window_end);
  w.I64(auction);
  w.I64(bidder);
  w.I64(price);
  w.I64(date_time);
}
bool Q7Row::Decode(ByteReader& r, Q7Row* out) {
  out->window_start = r.I64();
  out->window_end = r.I64();
  out->auction = r.I64();
  out->bidder = r.I64();
  out->price = r.I64();
  out->date_time = r.I64();
  return r.ok();
}
std::string Q7Row::ToString() const {
  return fmt::format("Q7{{window=[{}, {}) auction={} bidder={} price={} time={}}}", window_start, window_end, auction,
                     bidder, price, date_time);
}

void Q8Row::Encode(ByteWriter& w) const {
  w.I64(person);
  w.String(name);
  w.I64(window_start);
}
bool Q8Row::Decode(ByteReader& r, Q8Row* out) {
  out->person = r.I64();
  if (!DecodeString(r, &out->name)) return false;
  out->window_start = r.I64();
  return r.ok();
}
std::string Q8Row::ToString() const {
  return fmt::format("Q8{{person={} name='{}' window_start={}}}", person, name, window_start);
}

}  // namespace cairn::nexmark
