#include "bench/nexmark/queries.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "bench/nexmark/source.h"

namespace cairn::nexmark {
namespace {

using stream::Collector;
using stream::KeyedContext;
using stream::KeyedProcessFunction;
using stream::ListState;
using stream::Millis;
using stream::Op;
using stream::Stream;
using stream::TimeDomain;
using stream::ValueState;
using stream::WindowResult;

// ---- Q3 ---------------------------------------------------------------------

// Keyed by person id (persons) / seller (auctions).
class Q3Join final : public KeyedProcessFunction<int64_t, Event, Q3Row> {
 public:
  void Open(KeyedContext<int64_t, Q3Row>& ctx) override {
    person_ = ctx.state().GetValueState<std::tuple<std::string, std::string, std::string>>("q3-person");
    waiting_ = ctx.state().GetListState<int64_t>("q3-auctions-before-seller");
  }
  void ProcessElement(const Event& e, KeyedContext<int64_t, Q3Row>& ctx) override {
    if (e.is_person()) {
      const Person& p = e.person();
      person_->Update({p.name, p.city, p.state});
      for (int64_t auction : waiting_->Get()) ctx.Emit(Q3Row{p.id, p.name, p.city, p.state, auction});
      waiting_->Clear();
      return;
    }
    if (std::optional<std::tuple<std::string, std::string, std::string>> p = person_->Value()) {
      auto& [name, city, state] = *p;
      ctx.Emit(Q3Row{ctx.key(), std::move(name), std::move(city), std::move(state), e.auction().id});
    } else {
      waiting_->Add(e.auction().id);
    }
  }

 private:
  ValueState<std::tuple<std::string, std::string, std::string>>* person_ = nullptr;
  ListState<int64_t>* waiting_ = nullptr;
};

// ---- winning bids -----------------------------------------------------------

// (date_time, expires, reserve, seller, category) of an auction.
using AuctionTerms = std::tuple<EventTime, EventTime, int64_t, int64_t, int64_t>;

bool Qualifies(const AuctionTerms& a, EventTime bid_time, int64_t price) {
  const auto& [opened, expires, reserve, seller, category] = a;
  return bid_time >= opened && bid_time < expires && price >= reserve;
}

// Keyed by auction id (auctions) / bid.auction (bids).
class WinningBidsFn final : public KeyedProcessFunction<int64_t, Event, ClosedAuction> {
 public:
  void Open(KeyedContext<int64_t, ClosedAuction>& ctx) override {
    terms_ = ctx.state().GetValueState<AuctionTerms>("winning-terms");
    best_ = ctx.state().GetValueState<int64_t>("winning-price");
    early_ = ctx.state().GetListState<std::pair<EventTime, int64_t>>("winning-early-bids");
  }

  void ProcessElement(const Event& e, KeyedContext<int64_t, ClosedAuction>& ctx) override {
    if (e.is_auction()) {
      const Auction& a = e.auction();
      const AuctionTerms terms{a.date_time, a.expires, a.reserve, a.seller, a.category};
      terms_->Update(terms);
      std::optional<int64_t> best;
      for (const auto& [time, price] : early_->Get()) {
        if (Qualifies(terms, time, price) && (!best || price > *best)) best = price;
      }
      early_->Clear();
      if (best) best_->Update(*best);
      ctx.timers().RegisterEventTimeTimer(a.expires - 1);
      return;
    }
    const Bid& b = e.bid();
    if (std::optional<AuctionTerms> terms = terms_->Value()) {
      if (!Qualifies(*terms, b.date_time, b.price)) return;
      std::optional<int64_t> best = best_->Value();
      if (!best || b.price > *best) best_->Update(b.price);
      return;
    }
    // The auction has not come yet (or is closed). Until the watermark passes the
    // bid's time an auction that opened no later than the bid may still arrive.
    early_->Add({b.date_time, b.price});
    ctx.timers().RegisterEventTimeTimer(b.date_time);
  }

  void OnTimer(EventTime time, TimeDomain, KeyedContext<int64_t, ClosedAuction>& ctx) override {
    if (std::optional<AuctionTerms> terms = terms_->Value()) {
      const auto& [opened, expires, reserve, seller, category] = *terms;
      if (time < expires - 1) return;  // an early bid's timer; the auction is still open
      if (std::optional<int64_t> best = best_->Value()) {
        ctx.EmitAt(ClosedAuction{ctx.key(), seller, category, *best, expires}, expires - 1);
      }
      terms_->Clear();
      best_->Clear();
      early_->Clear();
      return;
    }
    // No auction: bids up to `time` can no longer be claimed by one.
    std::vector<std::pair<EventTime, int64_t>> bids = early_->Get();
    std::erase_if(bids, [time](const auto& b) { return b.first <= time; });
    if (bids.empty()) {
      early_->Clear();
    } else {
      early_->Update(std::move(bids));
    }
  }

 private:
  ValueState<AuctionTerms>* terms_ = nullptr;
  ValueState<int64_t>* best_ = nullptr;
  ListState<std::pair<EventTime, int64_t>>* early_ = nullptr;
};

// ---- Q4, Q6: closes in order ------------------------------------------------

// Applies each key's closes in (closed_at, auction) order: `step(acc, close)`
// updates the accumulator and returns the row to emit. Closes arrive before the
// watermark passes closed_at - 1 (the winning-bids operator emits them from
// that timer), so when this operator's timer at closed_at - 1 fires, every
// close due by then is here.
template <class ACC, class OUT, class Step>
class OrderedCloses final : public KeyedProcessFunction<int64_t, ClosedAuction, OUT> {
 public:
  OrderedCloses(std::string name, Step step) : name_(std::move(name)), step_(std::move(step)) {}

  void Open(KeyedContext<int64_t, OUT>& ctx) override {
    pending_ = ctx.state().template GetListState<ClosedAuction>(name_ + "-pending");
    acc_ = ctx.state().template GetValueState<ACC>(name_ + "-acc");
  }
  void ProcessElement(const ClosedAuction& c, KeyedContext<int64_t, OUT>& ctx) override {
    pending_->Add(c);
    ctx.timers().RegisterEventTimeTimer(c.closed_at - 1);
  }
  void OnTimer(EventTime time, TimeDomain, KeyedContext<int64_t, OUT>& ctx) override {
    std::vector<ClosedAuction> pending = pending_->Get();
    auto rest = std::partition(pending.begin(), pending.end(),
                               [time](const ClosedAuction& c) { return c.closed_at - 1 <= time; });
    std::sort(pending.begin(), rest, [](const ClosedAuction& x, const ClosedAuction& y) {
      return std::tie(x.closed_at, x.auction) < std::tie(y.closed_at, y.auction);
    });
    ACC acc = acc_->Value().value_or(ACC{});
    for (auto it = pending.begin(); it != rest; ++it) ctx.EmitAt(step_(acc, *it), it->closed_at - 1);
    acc_->Update(std::move(acc));
    pending.erase(pending.begin(), rest);
    if (pending.empty()) {
      pending_->Clear();
    } else {
      pending_->Update(std::move(pending));
    }
  }

 private:
  std::string name_;
  Step step_;
  ListState<ClosedAuction>* pending_ = nullptr;
  ValueState<ACC>* acc_ = nullptr;
};

template <class ACC, class OUT, class Step>
Stream<OUT> AddOrderedCloses(Stream<ClosedAuction> closes, const std::string& name,
                             int64_t (*key)(const ClosedAuction&), Step step) {
  return closes.KeyBy(key).template Process<OUT>(Op(name), [name, step]() {
    return std::make_unique<OrderedCloses<ACC, OUT, Step>>(name, step);
  });
}

// ---- Q5 ---------------------------------------------------------------------

// Q5, first phase, per subtask (records keyed by auction, so each auction's
// bids all reach one subtask): for every window, each auction's bid count and the
// running maximum with the auctions that reach it. Counts only grow, so when the
// window closes its running maximum is final: the subtask emits one partial
// (window end, maximum, leaders) at once instead of one count per auction.
// Per-subtask state is kept under a reserved key (kSubtaskKey, which no auction
// id takes) with the window end as its namespace, so it is checkpointed like any
// keyed state; one timer per window, not per auction and window.
constexpr int64_t kSubtaskKey = std::numeric_limits<int64_t>::min();

struct Q5Window {
  absl::flat_hash_map<int64_t, int64_t> counts;
  int64_t most = 0;
  std::vector<int64_t> leaders;
  void Count(int64_t auction) {
    int64_t c = ++counts[auction];
    if (c > most) {
      most = c;
      leaders.assign(1, auction);
    } else if (c == most) {
      leaders.push_back(auction);
    }
  }
  void Encode(ByteWriter& w) const {
    w.Varint(counts.size());
    for (const auto& [auction, n] : counts) {
      w.I64(auction);
      w.I64(n);
    }
    w.I64(most);
    stream::Serde<std::vector<int64_t>>::Write(w, leaders);
  }
  static bool Decode(ByteReader& r, Q5Window* out) {
    uint64_t n = r.Varint();
    if (!r.ok() || n > r.remaining() / 16) return false;
    out->counts.clear();
    out->counts.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      int64_t auction = r.I64();
      out->counts[auction] = r.I64();
    }
    out->most = r.I64();
    return r.ok() && stream::Serde<std::vector<int64_t>>::Read(r, &out->leaders);
  }
};

struct Q5Partial {
  EventTime end = 0;
  int64_t most = 0;
  std::vector<int64_t> leaders;
  void Encode(ByteWriter& w) const {
    w.I64(end);
    w.I64(most);
    stream::Serde<std::vector<int64_t>>::Write(w, leaders);
  }
  static bool Decode(ByteReader& r, Q5Partial* out) {
    out->end = r.I64();
    out->most = r.I64();
    return stream::Serde<std::vector<int64_t>>::Read(r, &out->leaders);
  }
};

class LocalHotItems final : public KeyedProcessFunction<int64_t, int64_t, Q5Partial> {
 public:
  LocalHotItems(EventTime size, EventTime slide) : size_(size), slide_(slide) {}
  void Open(KeyedContext<int64_t, Q5Partial>& ctx) override {
    window_ = ctx.state().GetValueState<Q5Window>("q5-window");
    counts_ = ctx.state().GetMapState<int64_t, int64_t>("q5-counts");
    leaders_ = ctx.state().GetValueState<std::pair<int64_t, std::vector<int64_t>>>("q5-leaders");
    subtask_key_ = stream::EncodeToString(kSubtaskKey);
  }
  void ProcessElement(const int64_t& auction, KeyedContext<int64_t, Q5Partial>& ctx) override {
    if (!retired_.empty()) retired_.clear();
    stream::KeyedStateStore& st = ctx.state();
    const std::string key = st.current().key;
    st.SetCurrentKey(subtask_key_);
    const EventTime t = ctx.timestamp();
    EventTime last_start = t - (((t % slide_) + slide_) % slide_);
    for (EventTime start = last_start; start > t - size_; start -= slide_) {
      const EventTime end = start + size_;
      if (end - 1 <= ctx.timers().CurrentWatermark()) continue;  // closed (the source's watermark makes this rare)
      st.SetCurrentNamespace(end);
      bool inserted = false;
      if (Q5Window* w = window_->MutableOrInsert(&inserted)) {  // in-memory state
        if (inserted) {
          ctx.timers().RegisterEventTimeTimer(end - 1);
          // Sized like the last closed window: growing a big map stalls the stream while it rehashes.
          w->counts.reserve(last_size_ + last_size_ / 8);
        }
        w->Count(auction);
        continue;
      }
      // State outside memory (RocksDB): one entry per auction and window.
      int64_t c = counts_->Get(auction).value_or(0) + 1;
      counts_->Put(auction, c);
      auto lead = leaders_->Value();
      if (!lead) ctx.timers().RegisterEventTimeTimer(end - 1);
      std::pair<int64_t, std::vector<int64_t>> l = lead.value_or(std::pair<int64_t, std::vector<int64_t>>{0, {}});
      if (c > l.first) {
        l = {c, {auction}};
      } else if (c == l.first) {
        l.second.push_back(auction);
      }
      leaders_->Update(std::move(l));
    }
    st.SetCurrentKey(key);
    st.SetCurrentNamespace(0);
  }
  void OnTimer(EventTime time, TimeDomain, KeyedContext<int64_t, Q5Partial>& ctx) override {
    const EventTime end = time + 1;  // the store is at (kSubtaskKey, end) already
    if (Q5Window* w = window_->Mutable()) {
      ctx.EmitAt(Q5Partial{end, w->most, std::move(w->leaders)}, time);
      last_size_ = w->counts.size();
      // Freeing a window of a million counts takes a while: keep it until the
      // next record, so the watermark (and the result) move on first.
      retired_.push_back(std::move(*w));
      window_->Clear();
      return;
    }
    if (auto lead = leaders_->Value()) ctx.EmitAt(Q5Partial{end, lead->first, std::move(lead->second)}, time);
    leaders_->Clear();
    counts_->Clear();
  }

 private:
  EventTime size_, slide_;
  std::string subtask_key_;
  std::vector<Q5Window> retired_;
  size_t last_size_ = 0;
  ValueState<Q5Window>* window_ = nullptr;
  stream::MapState<int64_t, int64_t>* counts_ = nullptr;
  ValueState<std::pair<int64_t, std::vector<int64_t>>>* leaders_ = nullptr;
};

// Q5, second phase, keyed by window end: merges the subtasks' partials; the
// window's timer fires once every subtask's watermark (hence its partial) passed.
class MergeHotItems final : public KeyedProcessFunction<int64_t, Q5Partial, Q5Row> {
 public:
  explicit MergeHotItems(EventTime size) : size_(size) {}
  void Open(KeyedContext<int64_t, Q5Row>& ctx) override {
    best_ = ctx.state().GetValueState<std::pair<int64_t, std::vector<int64_t>>>("q5-best");
  }
  void ProcessElement(const Q5Partial& p, KeyedContext<int64_t, Q5Row>& ctx) override {
    auto cur = best_->Value();
    if (!cur) ctx.timers().RegisterEventTimeTimer(p.end - 1);
    std::pair<int64_t, std::vector<int64_t>> b = cur.value_or(std::pair<int64_t, std::vector<int64_t>>{0, {}});
    if (p.most > b.first) {
      b = {p.most, p.leaders};
    } else if (p.most == b.first) {
      b.second.insert(b.second.end(), p.leaders.begin(), p.leaders.end());
    }
    best_->Update(std::move(b));
  }
  void OnTimer(EventTime time, TimeDomain, KeyedContext<int64_t, Q5Row>& ctx) override {
    auto b = best_->Value();
    if (!b) return;
    std::sort(b->second.begin(), b->second.end());
    const EventTime end = ctx.key();
    for (int64_t auction : b->second) ctx.EmitAt(Q5Row{end - size_, end, auction, b->first}, time);
    best_->Clear();
  }

 private:
  EventTime size_;
  ValueState<std::pair<int64_t, std::vector<int64_t>>>* best_ = nullptr;
};

// Q8, per subtask (records keyed by person id / seller): for every tumbling
// window, what is known of each person: created in it (and the name), sold in
// it, reported. A row goes out as soon as both halves are seen, rather than when
// the window closes; one timer per window then drops the window's state. Kept
// under the reserved key like Q5's state.
using Q8Entry = std::tuple<bool, std::string, bool, bool>;  // created, name, sold, reported

struct Q8Window {
  absl::flat_hash_map<int64_t, Q8Entry> people;
  void Encode(ByteWriter& w) const {
    w.Varint(people.size());
    for (const auto& [id, e] : people) {
      w.I64(id);
      stream::Serde<Q8Entry>::Write(w, e);
    }
  }
  static bool Decode(ByteReader& r, Q8Window* out) {
    uint64_t n = r.Varint();
    if (!r.ok() || n > r.remaining() / 12) return false;
    out->people.clear();
    for (uint64_t i = 0; i < n; ++i) {
      int64_t id = r.I64();
      Q8Entry e;
      if (!stream::Serde<Q8Entry>::Read(r, &e)) return false;
      out->people.emplace(id, std::move(e));
    }
    return r.ok();
  }
};

class NewUsers final : public KeyedProcessFunction<int64_t, Event, Q8Row> {
 public:
  explicit NewUsers(EventTime size) : size_(size) {}
  void Open(KeyedContext<int64_t, Q8Row>& ctx) override {
    window_ = ctx.state().GetValueState<Q8Window>("q8-window");
    people_ = ctx.state().GetMapState<int64_t, Q8Entry>("q8-people");
    open_ = ctx.state().GetValueState<bool>("q8-open");
    subtask_key_ = stream::EncodeToString(kSubtaskKey);
  }
  void ProcessElement(const Event& e, KeyedContext<int64_t, Q8Row>& ctx) override {
    if (!retired_.empty()) retired_.clear();
    const EventTime t = ctx.timestamp();
    const EventTime start = t - (((t % size_) + size_) % size_);
    const EventTime end = start + size_;
    if (end - 1 <= ctx.timers().CurrentWatermark()) return;  // the window has closed
    const int64_t id = ctx.key();
    stream::KeyedStateStore& st = ctx.state();
    const std::string key = st.current().key;
    st.SetCurrentKey(subtask_key_);
    st.SetCurrentNamespace(end);
    bool inserted = false;
    if (Q8Window* w = window_->MutableOrInsert(&inserted)) {  // in-memory state
      if (inserted) {
        ctx.timers().RegisterEventTimeTimer(end - 1);
        // Sized like the last closed window: growing a big map stalls the stream while it rehashes.
        w->people.reserve(last_size_ + last_size_ / 8);
      }
      Update(w->people[id], e, id, start, ctx);
    } else {  // RocksDB: one entry per person and window
      if (!open_->Value()) {
        open_->Update(true);
        ctx.timers().RegisterEventTimeTimer(end - 1);
      }
      Q8Entry entry = people_->Get(id).value_or(Q8Entry{});
      Update(entry, e, id, start, ctx);
      people_->Put(id, std::move(entry));
    }
    st.SetCurrentKey(key);
    st.SetCurrentNamespace(0);
  }
  void OnTimer(EventTime, TimeDomain, KeyedContext<int64_t, Q8Row>&) override {
    // The store is at (kSubtaskKey, end). Freeing the window waits for the next
    // record, so the watermark moves on first.
    if (Q8Window* w = window_->Mutable()) {
      last_size_ = w->people.size();
      retired_.push_back(std::move(*w));
    }
    window_->Clear();
    people_->Clear();
    open_->Clear();
  }

 private:
  static void Update(Q8Entry& entry, const Event& e, int64_t id, EventTime start, KeyedContext<int64_t, Q8Row>& ctx) {
    auto& [created, name, sold, reported] = entry;
    if (e.is_person()) {
      created = true;
      name = e.person().name;
    } else {
      sold = true;
    }
    if (created && sold && !reported) {
      reported = true;
      ctx.Emit(Q8Row{id, name, start});
    }
  }

  EventTime size_;
  std::string subtask_key_;
  std::vector<Q8Window> retired_;
  size_t last_size_ = 0;
  ValueState<Q8Window>* window_ = nullptr;
  stream::MapState<int64_t, Q8Entry>* people_ = nullptr;
  ValueState<bool>* open_ = nullptr;
};


}  // namespace

Stream<Event> AddNexmarkSource(stream::Pipeline& pipeline, const GeneratorConfig& config, Op op,
                               double max_events_per_second) {
  auto watermarks = stream::WatermarkStrategy<Event>::BoundedOutOfOrder(Millis(config.max_out_of_order_ms));
  watermarks.max_records_per_second = max_events_per_second;
  return pipeline.AddSource<Event>(
      std::move(op),
      [config](int) -> std::unique_ptr<stream::Source<Event>> { return std::make_unique<NexmarkSource>(config); },
      std::move(watermarks));
}

Stream<Event> AddQ0(Stream<Event> events) {
  return events.Filter("q0-pass", [](const Event&) { return true; });
}

absl::StatusOr<Stream<Bid>> AddQ1(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  const int64_t num = options.q1_numerator, den = options.q1_denominator;
  // The event is moved from (FlatMap hands each operator its own batch): no string copies.
  return events.FlatMap<Bid>("q1-convert", [num, den](Event& e, EventTime, Collector<Bid>& out) {
    if (!e.is_bid()) return;
    Bid& b = e.SetBid();
    b.price = b.price * num / den;
    out.Emit(std::move(b));
  });
}

absl::StatusOr<Stream<Q2Row>> AddQ2(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  const int64_t modulus = options.q2_modulus;
  return events.FlatMap<Q2Row>("q2-select", [modulus](const Event& e, EventTime, Collector<Q2Row>& out) {
    if (e.is_bid() && e.bid().auction % modulus == 0) out.Emit(Q2Row{e.bid().auction, e.bid().price});
  });
}

absl::StatusOr<Stream<Q3Row>> AddQ3(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  const std::vector<std::string> states = options.q3_states;
  const int64_t category = options.q3_category;
  return events
      .Filter("q3-filter",
              [states, category](const Event& e) {
                if (e.is_person()) return std::find(states.begin(), states.end(), e.person().state) != states.end();
                return e.is_auction() && e.auction().category == category;
              })
      .KeyBy([](const Event& e) { return e.is_person() ? e.person().id : e.auction().seller; })
      .Process<Q3Row>("q3-join", [] { return std::make_unique<Q3Join>(); });
}

Stream<ClosedAuction> AddWinningBids(Stream<Event> events) {
  return events.Filter("winning-bids-filter", [](const Event& e) { return e.is_auction() || e.is_bid(); })
      .KeyBy([](const Event& e) { return e.is_auction() ? e.auction().id : e.bid().auction; })
      .Process<ClosedAuction>("winning-bids", [] { return std::make_unique<WinningBidsFn>(); });
}

absl::StatusOr<Stream<Q4Row>> AddQ4(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto step = [](std::pair<int64_t, int64_t>& acc, const ClosedAuction& c) {
    auto& [sum, count] = acc;
    sum += c.price;
    ++count;
    return Q4Row{c.category, c.closed_at, c.auction, sum / count, count};
  };
  return AddOrderedCloses<std::pair<int64_t, int64_t>, Q4Row>(
      AddWinningBids(events), "q4-average", [](const ClosedAuction& c) { return c.category; }, step);
}

absl::StatusOr<Stream<Q5Row>> AddQ5(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status st = options.Validate(); !st.ok()) return st;
  const EventTime size = options.q5_window_ms, slide = options.q5_slide_ms;
  return events
      .FlatMap<int64_t>("q5-bids",
                        [](const Event& e, EventTime, Collector<int64_t>& out) {
                          if (e.is_bid()) out.Emit(e.bid().auction);
                        })
      .KeyBy([](const int64_t& auction) { return auction; })
      .Process<Q5Partial>("q5-count", [size, slide] { return std::make_unique<LocalHotItems>(size, slide); })
      .KeyBy([](const Q5Partial& p) { return p.end; })
      .Process<Q5Row>("q5-hot-items", [size] { return std::make_unique<MergeHotItems>(size); });
}

absl::StatusOr<Stream<Q6Row>> AddQ6(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  const auto last_n = static_cast<size_t>(options.q6_last_n);
  auto step = [last_n](std::vector<int64_t>& prices, const ClosedAuction& c) {
    prices.push_back(c.price);
    if (prices.size() > last_n) prices.erase(prices.begin());
    int64_t sum = 0;
    for (int64_t p : prices) sum += p;
    return Q6Row{c.seller, c.closed_at, c.auction, sum / static_cast<int64_t>(prices.size())};
  };
  return AddOrderedCloses<std::vector<int64_t>, Q6Row>(
      AddWinningBids(events), "q6-average", [](const ClosedAuction& c) { return c.seller; }, step);
}

absl::StatusOr<Stream<Q7Row>> AddQ7(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  using Rows = std::vector<Q7Row>;
  stream::AggregateFunction<Q7Row, Rows, Rows> highest;
  highest.create = [] { return Rows{}; };
  highest.add = [](Rows& acc, const Q7Row& bid) {
    if (acc.empty() || bid.price > acc.front().price) {
      acc.assign(1, bid);
    } else if (bid.price == acc.front().price) {
      acc.push_back(bid);
    }
  };
  highest.result = [](const Rows& acc) { return acc; };
  auto windows = events
                     .FlatMap<Q7Row>("q7-bids",
                                     [](const Event& e, EventTime, Collector<Q7Row>& out) {
                                       if (!e.is_bid()) return;
                                       const Bid& b = e.bid();
                                       out.Emit(Q7Row{0, 0, b.auction, b.bidder, b.price, b.date_time});
                                     })
                     .KeyBy([](const Q7Row&) { return int64_t{0}; })
                     .Window(stream::Windows::Tumbling(Millis(options.q7_window_ms)))
                     .Aggregate(Op("q7-highest"), highest);
  return windows.results.FlatMap<Q7Row>(
      "q7-rows", [](const WindowResult<int64_t, Rows>& r, EventTime, Collector<Q7Row>& out) {
        for (Q7Row row : r.value) {
          row.window_start = r.start;
          row.window_end = r.end;
          out.Emit(std::move(row));
        }
      });
}

absl::StatusOr<Stream<Q8Row>> AddQ8(Stream<Event> events, const QueryOptions& options) {
  if (absl::Status st = options.Validate(); !st.ok()) return st;
  const EventTime size = options.q8_window_ms;
  return events.Filter("q8-filter", [](const Event& e) { return e.is_person() || e.is_auction(); })
      .KeyBy([](const Event& e) { return e.is_person() ? e.person().id : e.auction().seller; })
      .Process<Q8Row>("q8-new-users", [size] { return std::make_unique<NewUsers>(size); });
}

}  // namespace cairn::nexmark
