// Nexmark queries Q0-Q8 as cairn stream pipelines.
//
// AddNexmarkSource() adds the generator as a parallel source whose watermark
// lags by the generator's max_out_of_order_ms, so no event is ever late. Each
// AddQn() appends query n's operators to the pipeline of `events` and returns
// its output stream; attach a sink to it (e.g. stream::Collect). Run on a
// bounded stream, the output is exactly the multiset of rows of ReferenceQn()
// (reference.h, where the semantics are written down), at any parallelism.
//
// How each query is built (the pipeline's default parallelism applies to every
// operator):
//  Q0   Filter(pass everything).
//  Q1   FlatMap: bids, price converted.
//  Q2   FlatMap: (auction, price) of bids on every q2_modulus-th auction.
//  Q3   Filter (persons in the states, auctions of the category) -> KeyBy(person
//       id / seller) -> Process: a two-sided join holding each person's name,
//       city and state and the auctions that came before their seller. Assumes
//       person ids are unique (the generator's are).
//  Winning bids (Q4, Q6): Filter(auctions, bids) -> KeyBy(auction id) ->
//       Process: keeps the auction's terms and its best qualifying price (bids
//       that come before their auction wait until the watermark passes their
//       time: after that no auction may claim them); an event-time timer at
//       expires - 1 emits a ClosedAuction when the auction sold, at event time
//       expires - 1.
//  Q4 / Q6  winning bids -> KeyBy(category / seller) -> Process: buffers the
//       closes, and on a timer at closed_at - 1 applies the due ones in
//       (closed_at, auction) order to the running average (Q4) or the last
//       q6_last_n prices (Q6).
//  Q5   bids -> FlatMap(auction) -> KeyBy(auction) -> Process: per subtask and
//       sliding window, each auction's count and the running maximum with its
//       auctions (counts only grow, so it is final when the window closes); one
//       timer per window emits the subtask's partial -> KeyBy(window end) ->
//       Process: merges the partials when the watermark passes the window's end
//       and emits every auction with the highest count. (Two-phase, so the end
//       of a window costs one record per subtask, not one per auction.)
//  Q7   bids -> Map(Q7Row) -> KeyBy(constant) -> tumbling Window, an aggregate
//       keeping the bids at the highest price -> FlatMap(rows). One key: a
//       single subtask does the work whatever the parallelism (as Flink's q7).
//  Q8   persons and auctions -> KeyBy(person id / seller) -> Process: per
//       subtask and tumbling window, what is known of each person; a row goes
//       out as soon as a person created in the window is seen selling in it
//       (earlier than the reference, which waits for the window's end; the rows
//       are the same), and one timer per window drops its state. Assumes person
//       ids are unique within a window (the generator's are unique).
//
// Thread-safety: build the pipeline from one thread (stream::Pipeline's rules).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "bench/nexmark/generator.h"
#include "bench/nexmark/model.h"
#include "bench/nexmark/query_types.h"
#include "cairn/stream/pipeline.h"

namespace cairn::nexmark {

// The generator as a source; each subtask generates its share of the stream
// (generator.h). The watermark lags the largest time by config.max_out_of_order_ms.
// `max_events_per_second` > 0 throttles each subtask to that wall-clock rate
// (for latency runs); 0 generates as fast as the pipeline takes events.
stream::Stream<Event> AddNexmarkSource(stream::Pipeline& pipeline, const GeneratorConfig& config,
                                       stream::Op op = stream::Op("nexmark"), double max_events_per_second = 0);

stream::Stream<Event> AddQ0(stream::Stream<Event> events);
stream::Stream<ClosedAuction> AddWinningBids(stream::Stream<Event> events);
// InvalidArgument (from QueryOptions::Validate) when the options are bad; the
// pipeline is then unchanged.
absl::StatusOr<stream::Stream<Bid>> AddQ1(stream::Stream<Event> events, const QueryOptions& options = {});
absl::StatusOr<stream::Stream<Q2Row>> AddQ2(stream::Stream<Event> events, const QueryOptions& options = {});
absl::StatusOr<stream::Stream<Q3Row>> AddQ3(stream::Stream<Event> events, const QueryOptions& options = {});
absl::StatusOr<stream::Stream<Q4Row>> AddQ4(stream::Stream<Event> events, const QueryOptions& options = {});
absl::StatusOr<stream::Stream<Q5Row>> AddQ5(stream::Stream<Event> events, const QueryOptions& options = {});
absl::StatusOr<stream::Stream<Q6Row>> AddQ6(stream::Stream<Event> events, const QueryOptions& options = {});
absl::StatusOr<stream::Stream<Q7Row>> AddQ7(stream::Stream<Event> events, const QueryOptions& options = {});
absl::StatusOr<stream::Stream<Q8Row>> AddQ8(stream::Stream<Event> events, const QueryOptions& options = {});

}  // namespace cairn::nexmark
