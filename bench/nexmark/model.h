// Nexmark's data model: the three kinds of event of a simulated online auction
// house (a new person, a new auction, a bid), and `Event`, one of the three.
//
// Field names follow the Nexmark schema in snake_case (emailAddress ->
// email_address, creditCard -> credit_card, dateTime -> date_time, itemName ->
// item_name, initialBid -> initial_bid). Times are event times in milliseconds
// since the Unix epoch (cairn::stream::EventTime); prices are integers (cents).
//
// Every type has Encode/Decode members, so cairn::stream::Serde<T> writes it into
// keyed state and checkpoints; Decode rejects truncated or malformed bytes
// (returns false) and never reads past its input. Types are totally ordered
// (field by field, in declaration order) so query outputs can be sorted and
// compared exactly.
//
// Strings are std::string: the short ones (name, email, city, state, channel)
// fit the small-string buffer; the generator writes into existing events so a
// reused Event keeps its heap capacity for the long ones (url, description).
//
// Thread-safety: plain values.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <variant>

#include "cairn/base/codec.h"
#include "cairn/stream/record.h"

namespace cairn::nexmark {

using ::cairn::stream::EventTime;

// Reads a length-prefixed string (ByteWriter::String) into *out: false, with the
// reader failed, on truncated input. For the Decode members here and of the query rows.
bool DecodeString(ByteReader& r, std::string* out);

struct Person {
  int64_t id = 0;
  std::string name;
  std::string email_address;
  std::string credit_card;
  std::string city;
  std::string state;
  EventTime date_time = 0;
  std::string extra;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Person* out);
  std::string ToString() const;
  auto operator<=>(const Person&) const = default;
};

struct Auction {
  int64_t id = 0;
  std::string item_name;
  std::string description;
  int64_t initial_bid = 0;
  int64_t reserve = 0;
  EventTime date_time = 0;
  EventTime expires = 0;  // the auction closes at this event time (exclusive)
  int64_t seller = 0;     // a Person id
  int64_t category = 0;
  std::string extra;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Auction* out);
  std::string ToString() const;
  auto operator<=>(const Auction&) const = default;
};

struct Bid {
  int64_t auction = 0;  // an Auction id
  int64_t bidder = 0;   // a Person id
  int64_t price = 0;
  std::string channel;
  std::string url;
  EventTime date_time = 0;
  std::string extra;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Bid* out);
  std::string ToString() const;
  auto operator<=>(const Bid&) const = default;
};

enum class EventKind : uint8_t { kPerson = 0, kAuction = 1, kBid = 2 };
const char* EventKindName(EventKind kind);

// One Nexmark event: a Person, an Auction or a Bid (the variant's index is the
// EventKind). The accessors person()/auction()/bid() require the matching kind
// (programmer error otherwise); the Set* members switch the kind and return the
// member to fill, keeping the existing object (and its string capacity) when the
// kind does not change.
class Event {
 public:
  Event() = default;
  Event(Person p) : data_(std::move(p)) {}    // NOLINT(google-explicit-constructor)
  Event(Auction a) : data_(std::move(a)) {}   // NOLINT(google-explicit-constructor)
  Event(Bid b) : data_(std::move(b)) {}       // NOLINT(google-explicit-constructor)

  EventKind kind() const { return static_cast<EventKind>(data_.index()); }
  bool is_person() const { return data_.index() == 0; }
  bool is_auction() const { return data_.index() == 1; }
  bool is_bid() const { return data_.index() == 2; }

  const Person& person() const { return *std::get_if<Person>(&data_); }
  const Auction& auction() const { return *std::get_if<Auction>(&data_); }
  const Bid& bid() const { return *std::get_if<Bid>(&data_); }

  Person& SetPerson() { return is_person() ? *std::get_if<Person>(&data_) : data_.emplace<Person>(); }
  Auction& SetAuction() { return is_auction() ? *std::get_if<Auction>(&data_) : data_.emplace<Auction>(); }
  Bid& SetBid() { return is_bid() ? *std::get_if<Bid>(&data_) : data_.emplace<Bid>(); }

  // The event's time: the date_time of whichever record it holds.
  EventTime date_time() const;

  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, Event* out);
  std::string ToString() const;
  auto operator<=>(const Event&) const = default;

 private:
  std::variant<Person, Auction, Bid> data_;
};

}  // namespace cairn::nexmark
