#pragma once
// Edge-stream detector: sudden bursts of an edge (src, dst) or of a node (all
// edges out of a source, or into a destination), in constant memory and
// constant time per record.
//
// Technique (after MIDAS / MIDAS-R / MIDAS-F, S. Bhatia et al., AAAI 2020 and
// TKDD 2022). Three Count-Min sketches — keyed by the edge, by the source and by
// the destination — hold in each cell
//   cur    the decayed recent count: +1 per record, times `decay` per tick
//          (MIDAS-R's temporal decay), so it sums about 1 / (1 - decay) ticks;
//   total  the learned history: the records of every finished tick, optionally
//          fading with `history_half_life_ticks`;
// and the usual rate of a cell is lambda = total / (ticks of history). Each
// record scores, per sketch, the one-sided chi-square burst statistic of its
// cell
//   X = (cur - mu)^2 / max(mu, min_expected)  when cur > mu, else 0,
//   mu = lambda / (1 - decay)  (what cur holds in steady state),
// and takes the largest over the three sketches: `raw`; which sketch gave it
// (edge, source or destination) is what Explain names. Changes against the
// papers, each for accuracy on the generated stream (bench/edge_workload.h):
// a count below its usual rate is not an anomaly here (one-sided); mu is the
// steady-state decayed count rather than the per-tick mean (MIDAS-R compares a
// decayed sum with a per-tick mean, which ranks busy edges high even when
// steady); `min_expected` keeps a first-ever record from scoring as a burst
// (novelty is novelty.h's job); and the default sketch is one wide row rather
// than two narrow ones. With rows > 1 a record takes, per sketch, the row with
// the smallest statistic (a collision with a bursting key in one row is not a
// burst), but a burst that shares a cell with a busy key in any row is then
// missed, and on the generated stream one row of 2w cells beats two of w.
//
// Filtering (MIDAS-F): a record whose statistic for a sketch is at least
// `filter_threshold` is not learned into that sketch's history, so an ongoing
// burst does not become the usual rate and keeps scoring high. Its `cur` still
// grows: the burst remains visible.
//
// Calibration. The statistic is not chi-square(1) distributed in practice: cells
// are sums of colliding keys, decayed counts are under-dispersed, and the
// record takes the maximum of three minimums. So score = 1 - p uses the
// empirical tail of the statistics of past records on this stream: a fixed
// histogram of log2(1 + raw) (16 bins per octave, 32 octaves), p = the
// (interpolated) fraction of past records whose statistic was at least this
// record's, with a strictly decreasing extrapolation beyond the largest seen,
// so scores keep ranking records there. The tail table is refreshed every
// `calibration_refresh` records; counts are halved when they reach
// `calibration_window` so that the calibration follows the recent stream. On
// traffic that behaves as it has so far, about a fraction f of records reach
// ThresholdFor(f). Scores are 0 during the first `warmup_ticks` ticks and the
// first `calibration_warmup` records.
//
// Time: ticks of `tick_ms` of event time (default 1 s; a CSV with unix-second
// timestamps gives one tick per second). Records out of order are counted in
// the current tick. Cells are brought up to date lazily when a record touches
// them, so a tick change costs nothing by itself: Update is O(rows) always.
//
// Memory: rows * (edge_width + 2 * node_width) cells of 16 bytes (260 KiB by
// default) plus 4 KiB of calibration; fixed by the config
// (EdgeState::MemoryBytes()); Update never allocates after the first call on a
// fresh state. Speed: per record three cells (one row), no branch on the data
// in the usual case, and no division by the tick length (see docs/detect.md
// for measured rates).
//
// Usage:
//   EdgeDetector d;                          // or EdgeDetector::Create(config)
//   EdgeState st;                            // one per stream
//   Scored s = d.Update(st, {.key = src, .item = dst, .time = t_ms});
//   if (s.score >= ThresholdFor(1e-4)) log(d.Explain(st, obs, s));
// Hot loops with integer ids hash each node once and call UpdateHashed, or
// UpdateBatch for a block of records (same results, faster).
// Thread-safety: the detector is immutable and shareable; a state is used by
// one thread at a time.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/base/hash.h"
#include "cairn/detect/detect.h"

namespace cairn::detect {

struct EdgeConfig {
  // Count-Min shape: rows per sketch (1..8) and cells per row of the edge
  // sketch and of each node sketch (1..2^24).
  // One wide row beats several narrower ones here: a burst diluted by a busy
  // key in any row is missed when rows are combined (see above). Wider rows
  // are more accurate and slower once the cells outgrow the core's cache.
  int rows = 1;
  uint32_t edge_width = 8192;
  uint32_t node_width = 4096;
  // Event time per tick, milliseconds.
  int64_t tick_ms = 1000;
  // Factor applied to recent counts per tick (0 < decay < 1).
  double decay = 0.5;
  // History fades by half over this many ticks; 0 = never (MIDAS's totals).
  double history_half_life_ticks = 3600;
  // Floor of the expected count in the statistic's denominator (>= 0).
  double min_expected = 1.0;
  // Statistic from which a record is not learned into a sketch's history
  // (MIDAS-F); 0 = learn everything (MIDAS-R). Learning resumes from the
  // warm-up: everything is learned in the first `warmup_ticks` ticks.
  double filter_threshold = 30.0;
  // Scores are 0 for this many ticks after the first record ...
  int64_t warmup_ticks = 3;
  // ... and until this many records have been calibrated.
  int64_t calibration_warmup = 2000;
  uint32_t calibration_refresh = 1024;
  uint64_t calibration_window = uint64_t{1} << 26;
  uint64_t seed = 0x65646765735f3031ULL;
  // Words used by Explain: what one record is.
  std::string record_noun = "records";
};

// One sketch cell; see edges.h's header comment.
struct EdgeCell {
  float cur = 0;    // decayed recent count, as of `tick`
  float learn = 0;  // records of `tick` to learn (filtered)
  float total = 0;  // learned history before `tick`
  uint32_t tick = 0;
};

// The whole state of one stream. Fixed size once the first record arrived.
struct EdgeState {
  static constexpr int kBinsPerOctave = 16;
  static constexpr int kBins = 32 * kBinsPerOctave;

  std::vector<EdgeCell> cells;  // edge sketch, then source, then destination
  int64_t first_tick = 0;       // event-time tick of the first record
  int64_t base_tick = 0;        // event-time tick that cell ticks count from
  uint32_t now = 0;             // current tick, relative to base_tick
  int64_t tick_end_ms = 0;      // event time at which the current tick ends
  bool started = false;
  float inv_history = 0;        // 1 / ticks of history (decayed)
  uint64_t records = 0;

  // Calibration: counts per bin of log2(1 + raw), and the tail table p[b].
  std::vector<uint32_t> bins;   // kBins
  std::vector<float> tail;      // kBins + 1
  uint64_t calibrated = 0;      // sum of bins
  uint32_t since_refresh = 0;

  // What the last Update compared, for Explain.
  uint8_t fired = 0;            // 0 edge, 1 source, 2 destination
  float observed = 0;           // decayed recent count of the fired sketch
  float expected = 0;           // its mu (lambda / (1 - decay))

  size_t MemoryBytes() const {
    return sizeof(*this) + cells.capacity() * sizeof(EdgeCell) + bins.capacity() * sizeof(uint32_t) +
           tail.capacity() * sizeof(float);
  }
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, EdgeState* out);
};

class EdgeDetector {
 public:
  static constexpr std::string_view kName = "edges";
  static absl::StatusOr<EdgeDetector> Create(EdgeConfig config);
  EdgeDetector();

  // Scores the record key -> item at obs.time, then learns it.
  Scored Update(EdgeState& st, const Observation& obs) const {
    return UpdateHashed(st, HashNode(obs.key), HashNode(obs.item), obs.time);
  }
  // The same with the nodes hashed by HashNode (or any well-mixed 64-bit hash
  // used consistently for the whole stream).
  Scored UpdateHashed(EdgeState& st, uint64_t src_hash, uint64_t dst_hash, EventTime time_ms) const;
  // Records i = 0..n-1 (src_hash[i] -> dst_hash[i] at time_ms[i]), n the
  // shortest of the four spans, exactly as n calls of UpdateHashed in that
  // order would (same scores in out[i], same state), but faster: the cells of
  // the next 16 records are located (8 at a time with AVX-512 where the CPU
  // has it) and requested while the current ones are applied, in two passes
  // (cells, then calibration: see Learn). Returns n.
  size_t UpdateBatch(EdgeState& st, std::span<const uint64_t> src_hash, std::span<const uint64_t> dst_hash,
                     std::span<const EventTime> time_ms, std::span<Scored> out) const;

  // One sentence for the record just passed to Update, naming which of edge,
  // source or destination fired.
  std::string Explain(const EdgeState& st, const Observation& obs, const Scored& scored) const;

  // OK when `st` is empty or has this detector's shape (e.g. after Decode).
  // Update resets a state of another shape.
  absl::Status Check(const EdgeState& st) const;
  // The memory a state holds once it has seen a record.
  size_t StateBytes() const;

  uint64_t HashNode(std::string_view node) const { return Hash64(node, config_.seed); }
  uint64_t HashNode(uint64_t node) const { return Hash64(node, config_.seed); }
  const EdgeConfig& config() const { return config_; }

 private:
  static constexpr int kPowTable = 64;
  explicit EdgeDetector(EdgeConfig c);
  void Init(EdgeState& st) const;
  // The state's scalars that every record reads or writes, copied into locals
  // for a call or a whole batch and written back by Store. As state fields they
  // would be reloaded for every record (the cells' vector stores may alias
  // them); the per-tick values (scale, filter, warm) are computed once per tick
  // instead of once per record. Same values, same order of operations.
  struct Hot {
    EventTime tick_end_ms;  // the state's, or INT64_MIN before the first record
    uint32_t now;
    bool warm;              // the warm-up ticks are over
    float scale;            // inv_history / (1 - decay)
    float filter;           // filter_ once warm, else +inf (learn everything)
    uint64_t records, calibrated;
    uint32_t since_refresh;
    uint32_t* bins;
    const float* tail;
    uint8_t fired = 0;  // set by every record (Load leaves them)
    float observed = 0, expected = 0;
  };
  void Load(EdgeState& st, Hot& h) const;
  void LoadTick(const EdgeState& st, Hot& h) const;
  static void Store(const Hot& h, EdgeState& st);
  // The first record, or one at or past the end of the current tick.
  void NewTick(EdgeState& st, Hot& h, EventTime time_ms) const;
  template <int kRows>
  Scored UpdateRows(EdgeState& st, uint64_t src_hash, uint64_t dst_hash, EventTime time_ms) const;
  // A record's winning statistic as num / den (Learn), before calibration.
  struct Stat {
    float num, den;
    bool warm;  // h.warm at the record
  };
  // Scores and learns one record whose cells (per sketch, per row) are known:
  // Learn updates its cells and returns the statistic; Calibrated divides it out,
  // scores it and counts it in the histogram. UpdateBatch runs Learn over a block
  // and then Calibrated over it, so that the two dependency chains of a record
  // (cells; division, histogram, tail) overlap with other records'. Records are
  // calibrated in order, so the results are those of Learn + Calibrated per record.
  template <int kRows>
  __attribute__((always_inline)) Stat Learn(EdgeState& st, Hot& h, EdgeCell* const (&cells)[3][8],
                                            EventTime time_ms) const;
  __attribute__((always_inline)) Scored Calibrated(EdgeState& st, Hot& h, Stat stat) const;
  void Advance(EdgeState& st, int64_t tick) const;
  void Refresh(EdgeState& st) const;
  void Fold(EdgeCell& c, int64_t ticks) const;
  // Factors that bring a cell k ticks forward (k < kPowTable): recent count,
  // history, the pending tick's learned records, and what stays pending.
  struct Step {
    float cur, total, learn, keep;
  };
  // The same as lanes (cur, learn, total, tick) of a cell: factors of the cell,
  // and of its learn count (added to the total).
  struct alignas(16) VStep {
    float mul[4], learn[4];
  };
  // The score of a statistic in histogram bin `b` at `frac` of the bin (BinOf).
  static double Calibrate(const float* tail, int b, float frac);

  EdgeConfig config_;
  size_t cells_ = 0;
  float inv_one_minus_decay_ = 2;
  float min_expected_ = 1;
  float filter_ = 0;
  bool avx512_ = false;  // LocateAvx512 runs here
  std::array<Step, kPowTable> steps_{};
  std::array<VStep, kPowTable> vsteps_{};
  std::array<float, EdgeState::kBins + 1> beyond_{};  // tail extrapolation, 2^-(k+1)/4
  double log2_decay_ = -1;
  double log2_history_ = 0;
};

}  // namespace cairn::detect
