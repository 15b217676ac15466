#include "bench/nexmark/model.h"

#include "fmt/format.h"

namespace cairn::nexmark {

bool DecodeString(ByteReader& r, std::string* out) {
  std::string_view s = r.String();
  if (!r.ok()) return false;
  out->assign(s.data(), s.size());
  return true;
}

void Person::Encode(ByteWriter& w) const {
  w.I64(id);
  w.String(name);
  w.String(email_address);
  w.String(credit_card);
  w.String(city);
  w.String(state);
  w.I64(date_time);
  w.String(extra);
}

bool Person::Decode(ByteReader& r, Person* out) {
  out->id = r.I64();
  if (!DecodeString(r, &out->name) || !DecodeString(r, &out->email_address) || !DecodeString(r, &out->credit_card) ||
      !DecodeString(r, &out->city) || !DecodeString(r, &out->state)) {
    return false;
  }
  out->date_time = r.I64();
  return DecodeString(r, &out->extra);
}

std::string Person::ToString() const {
  return fmt::format("Person{{id={} name='{}' email='{}' card='{}' city='{}' state='{}' time={} extra={}B}}", id,
                     name, email_address, credit_card, city, state, date_time, extra.size());
}

void Auction::Encode(ByteWriter& w) const {
  w.I64(id);
  w.String(item_name);
  w.String(description);
  w.I64(initial_bid);
  w.I64(reserve);
  w.I64(date_time);
  w.I64(expires);
  w.I64(seller);
  w.I64(category);
  w.String(extra);
}

bool Auction::Decode(ByteReader& r, Auction* out) {
  out->id = r.I64();
  if (!DecodeString(r, &out->item_name) || !DecodeString(r, &out->description)) return false;
  out->initial_bid = r.I64();
  out->reserve = r.I64();
  out->date_time = r.I64();
  out->expires = r.I64();
  out->seller = r.I64();
  out->category = r.I64();
  return DecodeString(r, &out->extra);
}

std::string Auction::ToString() const {
  return fmt::format(
      "Auction{{id={} item='{}' desc={}B initial={} reserve={} time={} expires={} seller={} category={} "
      "extra={}B}}",
      id, item_name, description.size(), initial_bid, reserve, date_time, expires, seller, category, extra.size());
}

void Bid::Encode(ByteWriter& w) const {
  w.I64(auction);
  w.I64(bidder);
  w.I64(price);
  w.String(channel);
  w.String(url);
  w.I64(date_time);
  w.String(extra);
}

bool Bid::Decode(ByteReader& r, Bid* out) {
  out->auction = r.I64();
  out->bidder = r.I64();
  out->price = r.I64();
  if (!DecodeString(r, &out->channel) || !DecodeString(r, &out->url)) return false;
  out->date_time = r.I64();
  return DecodeString(r, &out->extra);
}

std::string Bid::ToString() const {
  return fmt::format("Bid{{auction={} bidder={} price={} channel='{}' url='{}' time={} extra={}B}}", auction, bidder,
                     price, channel, url, date_time, extra.size());
}

const char* EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kPerson:
      return "person";
    case EventKind::kAuction:
      return "auction";
    case EventKind::kBid:
      return "bid";
  }
  return "unknown";
}

EventTime Event::date_time() const {
  switch (kind()) {
    case EventKind::kPerson:
      return person().date_time;
    case EventKind::kAuction:
      return auction().date_time;
    case EventKind::kBid:
      break;
  }
  return bid().date_time;
}

void Event::Encode(ByteWriter& w) const {
  w.U8(static_cast<uint8_t>(kind()));
  switch (kind()) {
    case EventKind::kPerson:
      person().Encode(w);
      break;
    case EventKind::kAuction:
      auction().Encode(w);
      break;
    case EventKind::kBid:
      bid().Encode(w);
      break;
  }
}

bool Event::Decode(ByteReader& r, Event* out) {
  uint8_t tag = r.U8();
  if (!r.ok()) return false;
  switch (tag) {
    case static_cast<uint8_t>(EventKind::kPerson):
      return Person::Decode(r, &out->SetPerson()) && r.ok();
    case static_cast<uint8_t>(EventKind::kAuction):
      return Auction::Decode(r, &out->SetAuction()) && r.ok();
    case static_cast<uint8_t>(EventKind::kBid):
      return Bid::Decode(r, &out->SetBid()) && r.ok();
    default:
      r.Fail(fmt::format("Nexmark event kind {} is not 0 (person), 1 (auction) or 2 (bid)", tag));
      return false;
  }
}

std::string Event::ToString() const {
  switch (kind()) {
    case EventKind::kPerson:
      return person().ToString();
    case EventKind::kAuction:
      return auction().ToString();
    case EventKind::kBid:
      break;
  }
  return bid().ToString();
}

}  // namespace cairn::nexmark
