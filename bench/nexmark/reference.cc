#include "bench/nexmark/reference.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace cairn::nexmark {
namespace {

template <class T>
std::vector<T> Sorted(std::vector<T> rows) {
  std::sort(rows.begin(), rows.end());
  return rows;
}

}  // namespace

std::vector<Event> ReferenceQ0(std::span<const Event> events) {
  return Sorted(std::vector<Event>(events.begin(), events.end()));
}

std::vector<Bid> ReferenceQ1(std::span<const Event> events, const QueryOptions& options) {
  std::vector<Bid> rows;
  for (const Event& e : events) {
    if (!e.is_bid()) continue;
    Bid b = e.bid();
    b.price = b.price * options.q1_numerator / options.q1_denominator;
    rows.push_back(std::move(b));
  }
  return Sorted(std::move(rows));
}

std::vector<Q2Row> ReferenceQ2(std::span<const Event> events, const QueryOptions& options) {
  std::vector<Q2Row> rows;
  for (const Event& e : events) {
    if (e.is_bid() && e.bid().auction % options.q2_modulus == 0) rows.push_back({e.bid().auction, e.bid().price});
  }
  return Sorted(std::move(rows));
}

std::vector<Q3Row> ReferenceQ3(std::span<const Event> events, const QueryOptions& options) {
  std::multimap<int64_t, const Person*> persons;  // id -> person in a wanted state
  for (const Event& e : events) {
    if (!e.is_person()) continue;
    const Person& p = e.person();
    if (std::find(options.q3_states.begin(), options.q3_states.end(), p.state) != options.q3_states.end()) {
      persons.emplace(p.id, &p);
    }
  }
  std::vector<Q3Row> rows;
  for (const Event& e : events) {
    if (!e.is_auction() || e.auction().category != options.q3_category) continue;
    const Auction& a = e.auction();
    auto [begin, end] = persons.equal_range(a.seller);
    for (auto it = begin; it != end; ++it) {
      const Person& p = *it->second;
      rows.push_back({p.id, p.name, p.city, p.state, a.id});
    }
  }
  return Sorted(std::move(rows));
}

std::vector<ClosedAuction> ReferenceWinningBids(std::span<const Event> events) {
  std::multimap<int64_t, const Bid*> bids;  // auction id -> bid
  for (const Event& e : events) {
    if (e.is_bid()) bids.emplace(e.bid().auction, &e.bid());
  }
  std::vector<ClosedAuction> closed;
  for (const Event& e : events) {
    if (!e.is_auction()) continue;
    const Auction& a = e.auction();
    bool sold = false;
    int64_t best = 0;
    auto [begin, end] = bids.equal_range(a.id);
    for (auto it = begin; it != end; ++it) {
      const Bid& b = *it->second;
      if (b.date_time < a.date_time || b.date_time >= a.expires || b.price < a.reserve) continue;
      if (!sold || b.price > best) best = b.price;
      sold = true;
    }
    if (sold) closed.push_back({a.id, a.seller, a.category, best, a.expires});
  }
  std::sort(closed.begin(), closed.end(), [](const ClosedAuction& x, const ClosedAuction& y) {
    return std::tie(x.closed_at, x.auction) < std::tie(y.closed_at, y.auction);
  });
  return closed;
}

std::vector<Q4Row> ReferenceQ4(std::span<const Event> events, const QueryOptions& /*options*/) {
  std::map<int64_t, std::pair<int64_t, int64_t>> totals;  // category -> (sum, count)
  std::vector<Q4Row> rows;
  for (const ClosedAuction& c : ReferenceWinningBids(events)) {  // in (closed_at, auction) order
    auto& [sum, count] = totals[c.category];
    sum += c.price;
    ++count;
    rows.push_back({c.category, c.closed_at, c.auction, sum / count, count});
  }
  return Sorted(std::move(rows));
}

std::vector<Q5Row> ReferenceQ5(std::span<const Event> events, const QueryOptions& options) {
  std::map<EventTime, std::map<int64_t, int64_t>> counts;  // window start -> auction -> bids
  for (const Event& e : events) {
    if (!e.is_bid()) continue;
    for (EventTime start : SlidingWindowStarts(e.bid().date_time, options.q5_window_ms, options.q5_slide_ms)) {
      ++counts[start][e.bid().auction];
    }
  }
  std::vector<Q5Row> rows;
  for (const auto& [start, per_auction] : counts) {
    int64_t max_count = 0;
    for (const auto& [auction, n] : per_auction) max_count = std::max(max_count, n);
    for (const auto& [auction, n] : per_auction) {
      if (n == max_count) rows.push_back({start, start + options.q5_window_ms, auction, n});
    }
  }
  return Sorted(std::move(rows));
}

std::vector<Q6Row> ReferenceQ6(std::span<const Event> events, const QueryOptions& options) {
  std::map<int64_t, std::deque<int64_t>> recent;  // seller -> prices of the last sales
  std::vector<Q6Row> rows;
  for (const ClosedAuction& c : ReferenceWinningBids(events)) {  // in (closed_at, auction) order
    std::deque<int64_t>& prices = recent[c.seller];
    prices.push_back(c.price);
    if (static_cast<int64_t>(prices.size()) > options.q6_last_n) prices.pop_front();
    int64_t sum = 0;
    for (int64_t p : prices) sum += p;
    rows.push_back({c.seller, c.closed_at, c.auction, sum / static_cast<int64_t>(prices.size())});
  }
  return Sorted(std::move(rows));
}

std::vector<Q7Row> ReferenceQ7(std::span<const Event> events, const QueryOptions& options) {
  std::map<EventTime, int64_t> max_price;  // window start -> highest price
  for (const Event& e : events) {
    if (!e.is_bid()) continue;
    const EventTime start = WindowStart(e.bid().date_time, options.q7_window_ms);
    auto [it, inserted] = max_price.emplace(start, e.bid().price);
    if (!inserted) it->second = std::max(it->second, e.bid().price);
  }
  std::vector<Q7Row> rows;
  for (const Event& e : events) {
    if (!e.is_bid()) continue;
    const Bid& b = e.bid();
    const EventTime start = WindowStart(b.date_time, options.q7_window_ms);
    if (b.price == max_price[start]) {
      rows.push_back({start, start + options.q7_window_ms, b.auction, b.bidder, b.price, b.date_time});
    }
  }
  return Sorted(std::move(rows));
}

std::vector<Q8Row> ReferenceQ8(std::span<const Event> events, const QueryOptions& options) {
  std::set<std::pair<EventTime, int64_t>> sellers;  // (window start, seller)
  for (const Event& e : events) {
    if (e.is_auction()) {
      sellers.emplace(WindowStart(e.auction().date_time, options.q8_window_ms), e.auction().seller);
    }
  }
  std::set<Q8Row> rows;
  for (const Event& e : events) {
    if (!e.is_person()) continue;
    const Person& p = e.person();
    const EventTime start = WindowStart(p.date_time, options.q8_window_ms);
    if (sellers.count({start, p.id}) > 0) rows.insert({p.id, p.name, start});
  }
  return {rows.begin(), rows.end()};
}

}  // namespace cairn::nexmark
