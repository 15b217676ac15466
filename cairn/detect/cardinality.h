#pragma once
// Distinct-count surges per key: one source contacting many destinations, one
// device publishing on many topics, one user touching many accounts.
//
// Per key the detector counts the distinct items of a sliding event-time
// window with HyperLogLog registers and compares that count with the key's own
// history of window counts.
//
//  * Window: `window_ms` of event time, cut into `buckets` sub-windows. Each
//    sub-window has its own 2^precision one-byte HyperLogLog registers (hash
//    bits and ranks as cairn/sketch/hyperloglog.h); register j of every
//    sub-window lies side by side, so that the window's register j (the
//    union's: the max over the live sub-windows) is read off the same cache
//    line. The window's estimate is maintained in O(1) per record: a record
//    changes at most one union register, and the estimator's sum of
//    2^-register and count of empty registers are updated with it (linear
//    counting while many registers are empty, the raw HyperLogLog estimate
//    above 2.5 m). The window
//    slides by one sub-window: it covers between window - window/buckets and
//    window of history. The registers are this detector's own rather than
//    cairn::sketch::HyperLogLog objects because a key's state must be one flat,
//    fixed-size block (no sparse mode that grows, no O(m) Estimate per record).
//  * History: when a sub-window closes, the count of the window that ends with
//    it is appended to a ring of the key's last `history` counts (windows in
//    which the key was silent add nothing; the first buckets - 1 sub-windows
//    of a key, whose window is not yet full, add nothing either).
//  * Score: the counts are compared on a square-root scale, y = sqrt(count +
//    3/8), which makes count noise roughly constant (Anscombe): z = (y -
//    median(y)) / s with s = max(1.4826 MAD(y), 0.5), the 0.5 being the
//    spread of y for Poisson counts, widened by 1 + 1/samples while the
//    history is short. score = 1 - P(Z >= z) for a standard normal Z: one-sided,
//    only surges score high. `raw` is z. The score is recomputed only when the
//    estimate or the baseline changes.
//
// Cost: Update is O(1): one hash, a few byte compares (O(buckets) when a
// register grows); a sub-window rotation costs O(buckets * 2^precision +
// history) once per sub-window and key (the history is kept in sorted order
// as well as in arrival order, so the baseline's median and spread need no
// sort). No allocation after a key's first record (none at all for the default
// shape). Memory per key: 512 bytes while buckets * 2^precision <= 256 and
// history <= 32 (the defaults: everything in one block of eight cache lines),
// else 512 bytes + buckets * 2^precision (rounded up to 4) + 6 * history + 16
// on the heap (MemoryBytes()). A record touches the state's first
// cache line and one line of registers, at a fixed offset from the state in the
// default shape (PrefetchState).
//
// Thread-safety: the detector is immutable and shareable; a State is used by
// one thread at a time.

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/base/prefetch.h"
#include "cairn/detect/detect.h"

namespace cairn::detect {

struct CardinalityConfig {
  // Length of the sliding window, ms of event time.
  EventTime window_ms = 60'000;
  // Sub-windows per window (1..64); window_ms must be a multiple of it.
  int buckets = 4;
  // HyperLogLog registers per sub-window: 2^precision (4..12). Relative error
  // of large counts about 1.04 / sqrt(2^precision): 13% at 6; small counts are
  // near exact (linear counting).
  int precision = 6;
  // Past window counts kept per key (8..1024), and how many are needed before
  // the key is scored (1..history).
  int history = 32;
  int warmup = 8;
  // Words of the reason: "<key> <verb> <n> distinct <item_name> in the last
  // <window>" ("10.0.0.7 contacted 912 distinct destinations in the last 1 min").
  std::string verb = "had";
  std::string item_name = "items";
  // Hash seed of items.
  uint64_t seed = 0x63617264696e616cULL;
};

// A heap byte buffer that copies deeply and is one pointer wide (its size is
// kept in front of the bytes), for the parts of a state that do not fit inline.
class SpillBuffer {
 public:
  SpillBuffer() = default;
  SpillBuffer(const SpillBuffer& o) { Assign(o); }
  SpillBuffer(SpillBuffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  SpillBuffer& operator=(const SpillBuffer& o) {
    if (this != &o) Assign(o);
    return *this;
  }
  SpillBuffer& operator=(SpillBuffer&& o) noexcept {
    if (this != &o) {
      delete[] p_;
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  ~SpillBuffer() { delete[] p_; }

  // n zeroed bytes (0: none, the buffer freed).
  void Reset(size_t n) {
    delete[] p_;
    p_ = nullptr;
    if (n == 0) return;
    p_ = new uint8_t[kHeader + n]();
    std::memcpy(p_, &n, sizeof n);
  }
  uint8_t* data() { return p_ == nullptr ? nullptr : p_ + kHeader; }
  const uint8_t* data() const { return p_ == nullptr ? nullptr : p_ + kHeader; }
  size_t size() const {
    size_t n = 0;
    if (p_ != nullptr) std::memcpy(&n, p_, sizeof n);
    return n;
  }
  bool empty() const { return p_ == nullptr; }
  // Heap bytes held, the size in front included.
  size_t allocated() const { return p_ == nullptr ? 0 : kHeader + size(); }

 private:
  static constexpr size_t kHeader = 16;  // the size, keeping the bytes 16-byte aligned
  void Assign(const SpillBuffer& o) {
    Reset(o.size());
    if (p_ != nullptr) std::memcpy(data(), o.data(), o.size());
  }
  uint8_t* p_ = nullptr;
};

// One key's state. Default-constructed empty; sized by the first Update. The
// fields every record reads fill the first cache line; the registers and the
// history follow in the same block when they fit (`kInlineRegisters` and
// `kInlineHistory`: the default shape, 512 bytes in all, no heap allocation),
// so that the register line a record touches sits at a fixed offset from the
// state and can be fetched together with it. Larger shapes keep both in
// `spill` on the heap.
struct alignas(64) CardinalityState {
  static constexpr size_t kInlineRegisters = 256;  // 4 sub-windows x 2^6
  static constexpr size_t kInlineHistory = 32;

  // First cache line: what a record reads.
  EventTime bucket_start = 0;  // newest sub-window: [bucket_start, bucket_end)
  EventTime bucket_end = 0;
  double inv_sum = 0.0;        // sum over union registers of 2^-register
  double score = 0.0;          // cached Scored of the current estimate
  uint32_t zeros = 0;          // empty union registers
  uint32_t current = 0;        // ring index of the newest sub-window
  float raw = 0.0f;
  float estimate = 0.0f;       // distinct count of the window
  float base_y = 0.0f;         // median of sqrt(count + 3/8) over the history
  float base_s = 0.0f;         // its robust spread
  uint32_t register_count = 0; // 2^precision x buckets; 0 = empty state
  uint16_t history_size = 0;   // length of the history ring (<= 1024)
  uint16_t samples = 0;        // counts in the history ring (<= its size); read by every rescore

  // 2^precision registers x buckets bytes: register j of sub-window b (by epoch
  // mod buckets) at j * buckets + b. The union's register j is the max of the
  // group; it is not stored.
  alignas(64) uint8_t inline_registers[kInlineRegisters] = {};
  float inline_history[kInlineHistory] = {};

  // Cold: read when a sub-window closes.
  int64_t epoch = 0;        // newest sub-window: [epoch * width, (epoch + 1) * width)
  int64_t first_epoch = 0;  // the key's first sub-window
  uint32_t next = 0;        // next write position of the ring
  // Registers, then the history (4-byte floats, at register_count rounded up
  // to 4), then the history's order (2-byte ring positions), when either does
  // not fit inline (!IsInline()); empty otherwise.
  SpillBuffer spill;
  // The ring positions of the history's `samples` counts in ascending order of
  // count (inline shapes; a spilled one keeps them in `spill`): when a
  // sub-window closes the baseline's median and spread are read off it rather
  // than found by re-sorting the history. The counts occupy positions 0 ..
  // samples - 1 of the ring (all of it once full).
  uint8_t inline_order[kInlineHistory] = {};

  static bool FitsInline(size_t registers, size_t history) {
    return registers <= kInlineRegisters && history <= kInlineHistory;
  }
  // Whether registers and history are inline, from the first line alone (not
  // from `spill`, whose pointers lie in the cold line).
  bool IsInline() const { return FitsInline(register_count, history_size); }
  uint8_t* registers() { return IsInline() ? inline_registers : spill.data(); }
  const uint8_t* registers() const { return IsInline() ? inline_registers : spill.data(); }
  // Ring position of the k-th smallest count (k < samples).
  size_t Order(size_t k) const {
    if (IsInline()) return inline_order[k];
    uint16_t v;
    std::memcpy(&v, spill.data() + OrderOffset() + k * sizeof v, sizeof v);
    return v;
  }
  void SetOrder(size_t k, size_t pos) {
    if (IsInline()) {
      inline_order[k] = static_cast<uint8_t>(pos);
    } else {
      const auto v = static_cast<uint16_t>(pos);
      std::memcpy(spill.data() + OrderOffset() + k * sizeof v, &v, sizeof v);
    }
  }
  float History(size_t i) const {
    if (IsInline()) return inline_history[i];
    float v;
    std::memcpy(&v, spill.data() + HistoryOffset() + i * sizeof(float), sizeof v);
    return v;
  }
  void SetHistory(size_t i, float v) {
    if (IsInline()) {
      inline_history[i] = v;
    } else {
      std::memcpy(spill.data() + HistoryOffset() + i * sizeof(float), &v, sizeof v);
    }
  }
  // Sizes the storage for this shape (zeroed), inline or spilled.
  void Allocate(size_t registers, size_t history);

  size_t MemoryBytes() const { return sizeof(*this) + spill.allocated(); }
  void Encode(ByteWriter& w) const;
  static bool Decode(ByteReader& r, CardinalityState* out);

 private:
  size_t HistoryOffset() const { return (size_t{register_count} + 3) & ~size_t{3}; }
  size_t OrderOffset() const { return HistoryOffset() + size_t{history_size} * sizeof(float); }
};

class CardinalityDetector {
 public:
  static constexpr std::string_view kName = "cardinality";
  // InvalidArgument naming the bad field when the config is out of range.
  static absl::StatusOr<CardinalityDetector> Create(CardinalityConfig config);

  // Counts obs.item for the key whose state is `st` at obs.time and scores the
  // window's distinct count. A state of another shape (decoded under another
  // config) is reset first. Records older than the window are ignored (score 0).
  Scored Update(CardinalityState& st, const Observation& obs) const {
    return UpdateHash(st, HashItem(obs.item), obs.time);
  }
  // The same with the item already hashed by HashItem (or any well-mixed hash).
  Scored UpdateHash(CardinalityState& st, uint64_t item_hash, EventTime time) const;
  // UpdateHash(*states[i], item_hashes[i], times[i]) for every i in order, the
  // score in out[i]; a state may appear more than once. Processes as many
  // records as the shortest span holds and returns that count. Same results as
  // one call per record; faster when the states do not fit the caches, since
  // the lines of records further on are requested while earlier ones are
  // scored (PrefetchState / Prefetch below).
  size_t UpdateBatch(std::span<CardinalityState* const> states, std::span<const uint64_t> item_hashes,
                   std::span<const EventTime> times, std::span<Scored> out) const;
  uint64_t HashItem(std::string_view item) const;

  // Requests the cache lines that UpdateHash(st, item_hash, time) will touch, for
  // callers that see records ahead (a batch); results do not depend on it. Two
  // stages:
  //  * PrefetchState(st, item_hash), some records ahead, reads nothing from the
  //    state: its first line and, for the shapes held inline (the default), the
  //    item's register line at its fixed offset, so that the two misses overlap;
  //  * Prefetch(st, item_hash, time), a few records ahead, reads the first line
  //    (cached by then): every register and the history when the record opens
  //    a new sub-window, else the item's register line of a spilled state.
  void PrefetchState(const CardinalityState& st, uint64_t item_hash) const {
    cairn::Prefetch(&st);
    if (!inline_) return;
    const uint8_t* reg = st.inline_registers + (item_hash >> (64 - config_.precision)) * stride_;
    cairn::Prefetch(reg);
    // Groups of some shapes straddle two lines; a power-of-two group (the default
    // four bytes) never does, and its second request would name the same line.
    if (straddles_) cairn::Prefetch(reg + stride_ - 1);
  }
  void Prefetch(const CardinalityState& st, uint64_t item_hash, EventTime time) const {
    const size_t regs = st.register_count;
    const uint8_t* reg = st.registers();
    if (time >= st.bucket_start && time < st.bucket_end) [[likely]] {
      if (!st.IsInline()) {
        const size_t j = static_cast<size_t>(item_hash >> (64 - config_.precision));
        if ((j + 1) * stride_ <= regs) cairn::Prefetch(reg + j * stride_);
      }
      return;
    }
    cairn::Prefetch(&st.epoch);  // the cold fields and the history's order
    for (size_t off = 0; off < regs; off += 64) cairn::Prefetch(reg + off);
    const auto* h = st.IsInline() ? reinterpret_cast<const char*>(st.inline_history)
                                     : reinterpret_cast<const char*>(reg + ((regs + 3) & ~size_t{3}));
    for (size_t off = 0; off < st.history_size * sizeof(float); off += 64) cairn::Prefetch(h + off);
  }

  // "10.0.0.7 contacted 912 distinct destinations in the last 1 min; usually
  // 14 (±5)" for the record just passed to Update.
  std::string Explain(const CardinalityState& st, const Observation& obs, const Scored& scored) const;

  // The window's current distinct-count estimate.
  double Estimate(const CardinalityState& st) const { return st.estimate; }
  // Median and robust spread (1.4826 MAD) of the key's past window counts.
  std::pair<double, double> Baseline(const CardinalityState& st) const;

  const CardinalityConfig& config() const { return config_; }

 private:
  explicit CardinalityDetector(CardinalityConfig c);

  Scored UpdateOne(CardinalityState& st, uint64_t item_hash, EventTime time) const;
  void Reset(CardinalityState& st, int64_t epoch) const;
  void Rotate(CardinalityState& st, int64_t epoch) const;
  // Recomputes the union's zeros, sum and estimate; with four sub-windows,
  // first clears in each register group the bytes that `keep` zeroes.
  void RebuildUnion(CardinalityState& st, uint32_t keep) const;
  void RebuildBaseline(CardinalityState& st) const;
  void AppendHistory(CardinalityState& st, float count) const;
  void Rescore(CardinalityState& st) const;
  double EstimateFrom(uint32_t zeros, double inv_sum) const;

  CardinalityConfig config_;
  size_t stride_ = 0;    // buckets: bytes per register group
  bool inline_ = false;  // this shape's registers and history fit in the state block
  bool straddles_ = true; // a register group can straddle two cache lines (stride not a power of two)
  int64_t width_ = 0;  // sub-window length, ms
  uint32_t m_ = 0;     // registers per sub-window
  double alpha_mm_ = 0.0;
  std::array<double, 66> inv_pow2_{};   // 2^-r
  std::vector<double> linear_counting_;  // m ln(m / zeros), by zeros
};

}  // namespace cairn::detect
