// Reference implementations of Nexmark queries Q0-Q8: deliberately simple,
// single-threaded, over the whole event vector at once. They define what the
// engine pipelines must output: the same multiset of rows (each function
// returns its rows sorted).
//
// Semantics, in event time (the events' date_time). Windows are epoch-aligned
// and half-open, [start, start + size). "Emitted" says when a streaming
// implementation outputs a row; as long as no event is late (the generator's
// bounded out-of-orderness never is, for a watermark that lags the largest time
// seen by max_out_of_order_ms), the rows do not depend on arrival order, and
// every window or auction still open at the end of a bounded input is closed
// by the final watermark and emitted then.
//
// Q0 passthrough: every event, unchanged. Emitted per event.
// Q1 currency conversion: every bid, with price = price * 908 / 1000 (integer
//    division; the factor of Flink's nexmark, 0.908, where Beam uses 0.89).
//    Emitted per bid.
// Q2 selection: (auction, price) of every bid with auction % 123 == 0 (the
//    modulus is QueryOptions::q2_modulus). Emitted per bid.
// Q3 local item suggestion: an unwindowed inner join of persons and auctions
//    on seller == person id, keeping auctions of category 10 and persons whose
//    state is OR, ID or CA: one row (person id, name, city, state, auction id)
//    per matching pair, whichever side arrives first. Emitted when the second
//    side arrives; the join state is kept for ever (as in Flink's q3).
// Winning bids (shared by Q4 and Q6): an auction's qualifying bids are those
//    with bid.auction == auction.id, auction.date_time <= bid.date_time <
//    auction.expires and price >= auction.reserve (Beam's rule; Flink's SQL q4
//    uses BETWEEN, i.e. <= expires, and no reserve). An auction with at least
//    one qualifying bid is sold at the highest such price and closes at
//    `expires`; an auction without one is not sold and appears in no output.
//    Only the price of the winning bid matters, so ties need no rule.
// Q4 average price per category: each category's sales in (closed_at,
//    auction id) order; after each sale one row (category, closed_at, auction,
//    floor(sum / count), count) over that category's sales so far. Emitted when
//    the watermark passes closed_at. The last row of a category is Flink q4's
//    final result (AVG of BIGINT truncates).
// Q5 hot items: sliding windows of 10 s every 2 s (q5_window_ms, q5_slide_ms)
//    over bids; per window, every auction whose bid count equals the window's
//    maximum count (ties: all of them, as Flink's q5 join with >= max):
//    (window_start, window_end, auction, count). Windows without bids emit
//    nothing. Emitted when the watermark passes window_end.
// Q6 average selling price by seller: each seller's sales in (closed_at,
//    auction id) order; after each sale one row (seller, closed_at, auction,
//    floor(sum / count)) over the seller's last 10 sales (q6_last_n) including
//    this one (Beam's Query6; Flink's q6 SQL would take 11 rows). Emitted when
//    the watermark passes closed_at.
// Q7 highest bid: tumbling windows of 10 s (q7_window_ms) over bids; every bid
//    of a window whose price equals the window's maximum (ties: all of them):
//    (window_start, window_end, auction, bidder, price, date_time). Emitted
//    when the watermark passes window_end.
// Q8 monitor new users: tumbling windows of 10 s (q8_window_ms); one row
//    (person id, name, window_start) per person created in a window who is the
//    seller of at least one auction created in the same window (distinct rows).
//    Emitted when the watermark passes window_end.
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <vector>

#include "bench/nexmark/model.h"
#include "bench/nexmark/query_types.h"

namespace cairn::nexmark {

std::vector<Event> ReferenceQ0(std::span<const Event> events);
std::vector<Bid> ReferenceQ1(std::span<const Event> events, const QueryOptions& options = {});
std::vector<Q2Row> ReferenceQ2(std::span<const Event> events, const QueryOptions& options = {});
std::vector<Q3Row> ReferenceQ3(std::span<const Event> events, const QueryOptions& options = {});
// Every sold auction, sorted by (closed_at, auction).
std::vector<ClosedAuction> ReferenceWinningBids(std::span<const Event> events);
std::vector<Q4Row> ReferenceQ4(std::span<const Event> events, const QueryOptions& options = {});
std::vector<Q5Row> ReferenceQ5(std::span<const Event> events, const QueryOptions& options = {});
std::vector<Q6Row> ReferenceQ6(std::span<const Event> events, const QueryOptions& options = {});
std::vector<Q7Row> ReferenceQ7(std::span<const Event> events, const QueryOptions& options = {});
std::vector<Q8Row> ReferenceQ8(std::span<const Event> events, const QueryOptions& options = {});

}  // namespace cairn::nexmark
