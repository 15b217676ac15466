#pragma once
// Novelty: an item never seen before (a new device, user, destination, error
// code).
//
// The detector remembers every item it has seen in a split-block Bloom filter
// (cairn/sketch/bloom_filter.h) sized from the config: `expected_items`
// distinct items at a false-positive rate of `false_positive_rate`. An item
// the filter does not contain is new; it is then inserted. A false positive
// makes a new item look known (a missed novelty, at most the filter's rate);
// a known item is never reported as new. Past `expected_items` distinct items
// the false-positive rate grows (BloomFilter::EstimatedFalsePositiveRate), so
// size the filter for the stream's lifetime.
//
// Calibration: in a stream where new items are common, a new item is not
// surprising. The detector keeps a decayed rate of new items per record,
// rate = (new + 0.5) / (records + 1), with both counts halving every
// `half_life` records, and scores a new item 1 - rate (the probability that a
// record is at least this surprising is the chance it is new at all). A known
// item scores 0. With a steady rate r, records are flagged at a threshold
// 1 - f only when r < f, so the flagged fraction stays below f; after a
// change to a stream with many new items the rate catches up within about a
// half-life. `raw` is 1 / rate ("1 in N records is new"). Nothing is scored
// during the first `warmup` records, which only fill the filter.
//
// Cost: one hash and one cache line of the filter per record, no allocation
// after the first record; memory is the filter's (about 10.5 bits per expected
// item at 1%, 1.3 MB for a million) plus 80 bytes. One State per stream (it
// reads only Observation::item), not per key.
//
// Thread-safety: the detector is immutable and shareable; a State is used by
// one thread at a time.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/detect/detect.h"
#include "cairn/sketch/bloom_filter.h"

namespace cairn::detect {

struct NoveltyConfig {
  // Distinct items the filter is sized for, and its false-positive rate there.
  uint64_t expected_items = 1'000'000;
  double false_positive_rate = 0.01;
  // Records over which the rate of new items halves its memory (>= 1).
  double half_life = 100'000;
  // Records that only fill the filter before anything is scored.
  int64_t warmup = 10'000;
  // "first time <item_name> 'robot-17' is seen".
  std::string item_name = "item";
};

// One stream's state. Default-constructed empty; the filter is made by the
// first Update.
struct NoveltyState {
  std::optional<sketch::BloomFilter> seen;
  int64_t records = 0;    // records so far
  uint64_t distinct = 0;  // items found new (distinct items, up to false positives)
  double new_weight = 0.0;     // decayed count of new items
  double record_weight = 0.0;  // decayed count of records
  double last_rate = 0.0;      // the rate that scored the latest record

  size_t MemoryBytes() const {
    return sizeof(*this) + (seen ? seen->MemoryBytes() - sizeof(sketch::BloomFilter) : 0);
  }
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, NoveltyState* out);
};

class NoveltyDetector {
 public:
  static constexpr std::string_view kName = "novelty";
  static absl::StatusOr<NoveltyDetector> Create(NoveltyConfig config);

  // Scores obs.item (1 - recent rate of new items if it is new, else 0) and
  // remembers it. A state whose filter has another shape is reset first.
  Scored Update(NoveltyState& st, const Observation& obs) const {
    return UpdateHash(st, HashItem(obs.item));
  }
  // The same with the item hashed by HashItem.
  Scored UpdateHash(NoveltyState& st, uint64_t item_hash) const;
  uint64_t HashItem(std::string_view item) const;

  // "first time device 'robot-17' is seen (new items are 1 in 50,000 recently)".
  std::string Explain(const NoveltyState& st, const Observation& obs, const Scored& scored) const;

  const NoveltyConfig& config() const { return config_; }

 private:
  NoveltyDetector(NoveltyConfig c, sketch::BloomFilter empty);
  void Reset(NoveltyState& st) const;

  NoveltyConfig config_;
  sketch::BloomFilter empty_;  // the filter's shape (copied into a new state)
  double decay_ = 1.0;         // per record: 2^(-1 / half_life)
};

}  // namespace cairn::detect
