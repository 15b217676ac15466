// A deterministic Nexmark event generator, following the rules of the Nexmark
// benchmark's generator (Beam's sdks/java/testing/nexmark and the Flink nexmark
// repository), with its own random streams.
//
// The stream is a sequence of events numbered 0, 1, 2, ...; event n is a pure
// function of (config, n):
//  * kind: n mod 50 (person_proportion + auction_proportion + bid_proportion)
//    below 1 is a person, below 1 + 3 an auction, otherwise a bid: 2 % persons,
//    6 % auctions, 92 % bids in every run of 50 events.
//  * ids come from the event number: the persons and auctions before event n
//    are counted exactly, so person ids are 1000, 1001, ... and auction ids
//    1000, 1001, ... in stream order, without gaps.
//  * bids go to a "hot" auction (the first of the latest block of 100 auction
//    ids) with probability 1 - 1/hot_auction_ratio, otherwise to a random recent
//    auction: one of the last num_in_flight_auctions ids, or up to 10 ids ahead
//    (an auction not created yet). Bidders are hot (the second person of the
//    latest block of 100) with probability 1 - 1/hot_bidders_ratio, otherwise
//    one of the last num_active_people persons or up to 10 ahead. Sellers
//    likewise with hot_sellers_ratio (the first person of the latest block).
//  * category: 10 + uniform{0..4}; prices: round(100 * 10^(6u)), u uniform in
//    [0, 1) with 24 bits, i.e. log-uniform between 1.00 and 1,000,000.00 (in
//    cents); reserve = initial bid + another such price.
//  * time: the nominal time of event n is base_time_ms + floor(n * 1000 / rate)
//    (rate events per second of event time, i.e. an inter-event delay of
//    1/rate s). With max_out_of_order_ms > 0, a fraction out_of_order_fraction of
//    the events carry a time up to max_out_of_order_ms before their nominal time,
//    so times are out of order by at most that bound: a watermark that lags the
//    largest time seen by max_out_of_order_ms never sees a late event.
//  * expiry: an auction lasts 1 + uniform{0 .. 2h-1} ms, where h is the event
//    time the stream needs to create num_in_flight_auctions more auctions, so
//    about num_in_flight_auctions auctions are open at any time.
//  * strings: names, cities and states from small fixed lists (states AZ, CA,
//    ID, OR, WA, WY; city and state drawn independently, as in Nexmark), random
//    lower-case e-mail addresses, item names (3-19 characters) and descriptions
//    (3-99, with spaces), 16-digit card numbers; bid channels are one of 4 hot
//    channels (with probability 1/2) or one of 10,000 "channel-N", each with a
//    fixed URL. `extra` pads an event to avg_*_bytes on average (Nexmark's
//    200/500/100 bytes); it is empty by default.
//  * randomness: every event draws from its own SplitMix64 stream seeded by a
//    mix of (seed, n), so event n can be generated alone, in any order.
//
// Parallel split: subtask i of p generates events i, i + p, i + 2p, ... below
// `events`; the union over subtasks is exactly the single-stream sequence, with
// the same times.
//
// Reproducibility: the stream depends only on the config. Prices multiply
// powers of ten tabulated with std::pow at startup, so on platforms whose libm
// rounds differently a rare price may differ by one cent; on one platform events
// of the same config are identical.
//
// Speed: Next() into a reused Event allocates nothing once its strings have
// grown (std::string keeps its capacity); see generator_bench.cc.
//
// Thread-safety: a Generator is used by one thread; separate generators (one
// per subtask) are independent. Generate() is const and reentrant.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/nexmark/model.h"

namespace cairn::nexmark {

inline constexpr int64_t kFirstPersonId = 1000;
inline constexpr int64_t kFirstAuctionId = 1000;
inline constexpr int64_t kFirstCategoryId = 10;
inline constexpr int kNumCategories = 5;

struct GeneratorConfig {
  uint64_t seed = 1;
  // Events in the whole stream (over all subtasks); 0 = unbounded.
  uint64_t events = 0;
  // Events per second of event time (> 0).
  uint64_t rate = 10'000;
  // Nominal time of event 0 (ms since the epoch): 2023-11-14 22:13:20 UTC, a multiple of every window size used.
  EventTime base_time_ms = 1'700'000'000'000;

  // Proportions of persons, auctions and bids (each >= 1).
  uint32_t person_proportion = 1;
  uint32_t auction_proportion = 3;
  uint32_t bid_proportion = 46;

  // 1 in `ratio` picks a random id; the rest pick the hot one (each >= 1).
  uint32_t hot_auction_ratio = 2;
  uint32_t hot_sellers_ratio = 4;
  uint32_t hot_bidders_ratio = 4;
  uint32_t num_in_flight_auctions = 100;  // >= 1
  uint32_t num_active_people = 1000;      // >= 1

  // Bounded out-of-orderness (0 = times are non-decreasing in event number).
  int64_t max_out_of_order_ms = 0;
  double out_of_order_fraction = 0.1;  // in [0, 1]

  // Average total size the `extra` field pads each kind of event to, in bytes (0 = no extra).
  uint32_t avg_person_bytes = 0;
  uint32_t avg_auction_bytes = 0;
  uint32_t avg_bid_bytes = 0;

  // Errors name the field and the allowed range.
  absl::Status Validate() const;
  uint32_t total_proportion() const { return person_proportion + auction_proportion + bid_proportion; }
};

struct GeneratorTables;  // fixed lookup tables shared by every generator (generator.cc)

// Exact quotient of 64-bit numbers by a divisor fixed at construction, with
// multiplications instead of a division instruction (Lemire, Kaser, Kurz,
// "Faster remainder by direct computation", 2019): n / d == floor(c * n / 2^128)
// for every 64-bit n, where c = ceil(2^128 / d).
class Divider {
 public:
  explicit Divider(uint64_t d) : d_(d), c_(d > 1 ? ~static_cast<unsigned __int128>(0) / d + 1 : 0) {}
  uint64_t Div(uint64_t n) const {
    if (d_ <= 1) return n;
    const unsigned __int128 low = static_cast<unsigned __int128>(static_cast<uint64_t>(c_)) * n;
    const unsigned __int128 high = static_cast<unsigned __int128>(static_cast<uint64_t>(c_ >> 64)) * n;
    return static_cast<uint64_t>((high + (low >> 64)) >> 64);
  }
  uint64_t divisor() const { return d_; }

 private:
  uint64_t d_;
  unsigned __int128 c_;
};

class Generator {
 public:
  // The events of `subtask` (0 .. parallelism-1) of `parallelism`.
  static absl::StatusOr<Generator> Create(const GeneratorConfig& config, int subtask = 0, int parallelism = 1);

  // Writes the next event of this subtask into *event (reusing its storage when
  // the kind matches) and advances; false (event untouched) when none is left.
  bool Next(Event* event) {
    if (!HasNext()) return false;
    Generate(next_, event);
    next_ += stride_;
    return true;
  }
  // Appends up to `max` next events to *out; returns how many.
  size_t NextBatch(std::vector<Event>* out, size_t max);
  bool HasNext() const { return config_.events == 0 || next_ < config_.events; }

  // The global number of the event Next() returns next.
  uint64_t next_event_number() const { return next_; }
  // Continues from global event number `n` (which must belong to this subtask:
  // n mod parallelism == subtask), e.g. after a restore.
  absl::Status Seek(uint64_t n);
  // Events this subtask has left (UINT64_MAX when unbounded).
  uint64_t remaining() const;

  // Event number n of the stream (any subtask's).
  void Generate(uint64_t n, Event* event) const;
  // Kind of event n, without generating it.
  EventKind KindOf(uint64_t n) const;
  // Time of event n before any out-of-order shift.
  EventTime NominalTime(uint64_t n) const;

  const GeneratorConfig& config() const { return config_; }
  int subtask() const { return subtask_; }
  int parallelism() const { return static_cast<int>(stride_); }

 private:
  Generator(const GeneratorConfig& config, int subtask, int parallelism);

  // For event n = epoch * total_proportion + offset: the number of the last
  // person (auction) created at or before it, from 0; -1 before the first.
  int64_t LastPersonIndex(uint64_t epoch, uint64_t offset) const;
  int64_t LastAuctionIndex(uint64_t epoch, uint64_t offset) const;
  EventKind KindAt(uint64_t offset) const;

  GeneratorConfig config_;
  const GeneratorTables* tables_;
  Divider by_total_;  // n / total_proportion
  Divider by_rate_;   // n * 1000 / rate
  uint64_t seed_key_;
  uint64_t next_;
  uint64_t stride_;
  int subtask_;
};

// All events of the (bounded) stream, in event-number order; a convenience for
// tests and the reference queries. InvalidArgument for an unbounded config.
absl::StatusOr<std::vector<Event>> GenerateAll(const GeneratorConfig& config);

}  // namespace cairn::nexmark
