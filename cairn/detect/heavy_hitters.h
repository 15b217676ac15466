#pragma once
// Heavy-hitter emergence: an item that jumps into the top-k far above its past
// rank (a host suddenly among the busiest talkers, an error code suddenly
// among the most frequent, a product suddenly among the best sellers).
//
// Windows: tumbling windows of `window_ms` event time. The current window's
// item frequencies are counted by a SpaceSaving sketch (cairn/sketch/top_k.h,
// `capacity` counters); when a window closes its sketch joins a ring of the
// last `reference_windows` windows that had records, and their merge is the
// reference: each item's past count (an upper bound) and past rank, or, for an
// item the reference does not monitor, the bound MinCount() on its past count
// (0 when the reference never evicted: the item is unseen).
//
// Evaluation: the current window's top `top_k` items are compared with the
// reference after 64, 128, 256, ... records of the window and then every
// `eval_every` records, so the per-record cost stays one sketch update and one
// probe of a small table of the items the last evaluation scored; detection
// waits for the next evaluation (at most `eval_every` records). An item is
// scored when its past rank is at least `min_rank_rise` times its current rank
// (an unseen or unmonitored item always qualifies); the others score 0.
//
// Calibration: if the item kept its past rate, its occurrences in the current
// window and the reference, c + c0, would split between them in proportion to
// their lengths in records: c ~ Binomial(c + c0, q) with q = N / (N + N0).
// p = P(Binomial(c + c0, q) >= c), the exact conditional test for a change of a
// Poisson rate, with c the sketch's lower bound on the current count and c0 the
// upper bound on the past count, so both sketch errors push p up (towards
// fewer alarms). score = 1 - p; `raw` is how many times the rank rose (past
// rank / current rank, past rank = reference size + 1 when unmonitored).
// Nothing is scored until the reference holds `min_reference_records` records.
//
// Cost: Update is O(1) amortized (a TopK add, a table probe); an evaluation is
// O(capacity) plus top_k binomial tails, a window close O(reference_windows *
// capacity log capacity). Memory: (reference_windows + 1) sketches of about
// capacity * 60 bytes, the reference (24 bytes per item), a 4 * top_k entry
// table (MemoryBytes()). One State per stream (it reads only
// Observation::item and time), not per key.
//
// Thread-safety: the detector is immutable and shareable; a State is used by
// one thread at a time.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/detect/detect.h"
#include "cairn/sketch/top_k.h"

namespace cairn::detect {

struct HeavyHitterConfig {
  // Tumbling window length, ms of event time.
  EventTime window_ms = 60'000;
  // Ranks that make "the top" (1..1000) and SpaceSaving counters per window
  // (>= 2 * top_k, <= 2^20).
  int top_k = 20;
  int capacity = 1024;
  // Past windows merged into the reference (1..64).
  int reference_windows = 4;
  // How many times the rank must rise for an item to be scored (>= 1).
  double min_rank_rise = 2.0;
  // Records between evaluations once a window has that many (>= 64).
  int64_t eval_every = 4096;
  // Records the reference needs before anything is scored (>= 1).
  int64_t min_reference_records = 1000;
  // "<item_name> 'X' rose to rank 2 of the top 20 ...".
  std::string item_name = "item";
  uint64_t seed = 0x6865617679686974ULL;
};

// What the latest evaluation found for one item of the current top-k.
struct HeavyHitterFinding {
  uint64_t item = 0;        // item hash
  double score = 0.0;
  float raw = 0.0f;
  uint32_t rank = 0;        // current rank, 1-based
  uint32_t past_rank = 0;   // 0: not monitored by the reference
  uint64_t count = 0;       // current count (upper bound)
  uint64_t past_count = 0;  // reference count (upper bound), or its MinCount when not monitored
  bool used = false;
};

// One stream's state. Default-constructed empty; sized by the first Update.
struct HeavyHitterState {
  struct RefItem {
    uint64_t item;
    uint64_t count;
    uint32_t rank;
  };
  std::optional<sketch::TopK<uint64_t>> current;
  int64_t epoch = 0;
  EventTime window_start = 0;
  EventTime window_end = 0;
  uint64_t window_records = 0;  // N: records of the current window
  uint64_t next_eval = 64;
  uint64_t evaluated_records = 0;  // N at the latest evaluation
  std::vector<sketch::TopK<uint64_t>> past;  // ring of closed windows
  uint32_t past_next = 0;
  std::vector<RefItem> reference;  // sorted by item
  uint64_t reference_records = 0;  // N0
  uint64_t reference_min = 0;      // bound on the count of an item not in `reference`
  std::vector<HeavyHitterFinding> findings;  // open-addressing table by item hash
  uint32_t num_findings = 0;

  size_t MemoryBytes() const;
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, HeavyHitterState* out);
};

class HeavyHitterDetector {
 public:
  static constexpr std::string_view kName = "heavy_hitters";
  static absl::StatusOr<HeavyHitterDetector> Create(HeavyHitterConfig config);

  // Counts obs.item at obs.time and returns the latest evaluation's score of
  // that item (0 when it is not a riser of the top-k). Records older than the
  // current window count towards it.
  Scored Update(HeavyHitterState& st, const Observation& obs) const {
    return UpdateHash(st, HashItem(obs.item), obs.time);
  }
  Scored UpdateHash(HeavyHitterState& st, uint64_t item_hash, EventTime time) const;
  uint64_t HashItem(std::string_view item) const;

  // "item 'X' rose to rank 2 of the top 20 (1,204 of 9,800 records in this
  // 1 min window) from rank 57 (212 of 39,000 records in the 4 windows before)".
  std::string Explain(const HeavyHitterState& st, const Observation& obs, const Scored& scored) const;
  // The latest evaluation's finding for an item, if it scored one.
  const HeavyHitterFinding* Find(const HeavyHitterState& st, uint64_t item_hash) const;

  const HeavyHitterConfig& config() const { return config_; }

 private:
  HeavyHitterDetector(HeavyHitterConfig c, sketch::TopK<uint64_t> empty);
  void Reset(HeavyHitterState& st, int64_t epoch) const;
  void CloseWindow(HeavyHitterState& st, int64_t epoch) const;
  void Evaluate(HeavyHitterState& st) const;
  size_t Slot(uint64_t item) const { return static_cast<size_t>((item * 0x9e3779b97f4a7c15ULL) >> shift_); }

  HeavyHitterConfig config_;
  sketch::TopK<uint64_t> empty_;
  size_t table_size_ = 0;  // findings table, a power of two >= 4 * top_k
  int shift_ = 0;
};

}  // namespace cairn::detect
