// cairn/sketch/windowed.h — sliding event-time windows over any mergeable sketch.
//
// TimeWindowed<Sketch> keeps a ring of `buckets` sub-sketches, each covering
// window / buckets nanoseconds of event time (bucket b covers
// [b * width, (b + 1) * width), aligned to time 0). Add(t, args...) forwards args to
// the Add of the bucket that covers t, after rotating out the buckets that fell out of
// the window as t advanced. Snapshot(now) merges the buckets of the window ending at
// now: the bucket holding `now` and the buckets - 1 before it, so it covers between
// window - width and window nanoseconds of history (granularity: one bucket).
//
// Late events: an event older than the ring (its bucket already rotated out) is not
// added; it is counted in late_dropped(). Events out of order but still inside the
// ring go to the bucket of their own time, so they are not lost.
//
// Requirements on Sketch: copy-constructible, `absl::Status Merge(const Sketch&)`, an
// Add taking the forwarded arguments, and `size_t MemoryBytes() const` — e.g.
// CountMinSketch, TopK<Key>, HyperLogLog. Accuracy is that of Sketch merged over the
// window. Memory: (buckets + 1) sketches (MemoryBytes()).
//
// Also here: DecayedCountMin, a Count-Min sketch whose counts fade exponentially with
// event time (a half-life instead of a hard window), built on CountMinSketch::Scale.
//
// Thread-safety: not thread-safe; one writer, or external locking. Snapshot is const
// and safe concurrently with other const calls.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/sketch/count_min.h"

namespace cairn::sketch {

template <typename Sketch>
class TimeWindowed {
 public:
  static constexpr int kMaxBuckets = 4096;

  // window_nanos > 0, buckets in 1..kMaxBuckets, window_nanos a multiple of buckets.
  // make_empty builds each bucket's empty sketch (called once; buckets are copies).
  static absl::StatusOr<TimeWindowed> Create(int64_t window_nanos, int buckets,
                                             std::function<absl::StatusOr<Sketch>()> make_empty) {
    if (window_nanos <= 0) {
      return absl::InvalidArgumentError(
          fmt::format("TimeWindowed window {} ns must be positive", window_nanos));
    }
    if (buckets < 1 || buckets > kMaxBuckets) {
      return absl::InvalidArgumentError(
          fmt::format("TimeWindowed buckets {} is out of range 1..{}", buckets, kMaxBuckets));
    }
    if (window_nanos % buckets != 0) {
      return absl::InvalidArgumentError(fmt::format(
          "TimeWindowed window {} ns is not a multiple of {} buckets", window_nanos, buckets));
    }
    if (!make_empty) return absl::InvalidArgumentError("TimeWindowed needs a make_empty function");
    absl::StatusOr<Sketch> empty = make_empty();
    if (!empty.ok()) return empty.status();
    return TimeWindowed(window_nanos, buckets, std::move(*empty));
  }

  TimeWindowed(const TimeWindowed&) = default;
  TimeWindowed& operator=(const TimeWindowed&) = default;
  TimeWindowed(TimeWindowed&&) noexcept = default;
  TimeWindowed& operator=(TimeWindowed&&) noexcept = default;

  // Adds an event at event time `time_nanos`: Sketch::Add(args...) on its bucket, or
  // counts it in late_dropped() when it is older than the ring.
  template <typename... A>
  void Add(int64_t time_nanos, A&&... args) {
    const int64_t epoch = EpochOf(time_nanos);
    if (!started_ || epoch > newest_epoch_) {
      Advance(epoch);
    } else if (Distance(newest_epoch_, epoch) >= static_cast<uint64_t>(buckets_)) {
      ++late_dropped_;
      return;
    }
    ring_[Index(epoch)].sketch->Add(std::forward<A>(args)...);
  }

  // The merge of the buckets in the window ending at now_nanos (an empty sketch when
  // none holds data). Buckets already rotated out are gone, so a `now` far behind the
  // newest event sees only what is left of its window.
  absl::StatusOr<Sketch> Snapshot(int64_t now_nanos) const {
    Sketch result(empty_);
    if (!started_) return result;
    const int64_t now_epoch = EpochOf(now_nanos);
    // Oldest first, so that the result does not depend on the ring's rotation.
    for (int k = buckets_ - 1; k >= 0; --k) {
      int64_t epoch;
      if (__builtin_sub_overflow(now_epoch, static_cast<int64_t>(k), &epoch)) continue;
      const Bucket& b = ring_[Index(epoch)];
      if (b.epoch != epoch) continue;
      absl::Status s = result.Merge(*b.sketch);
      if (!s.ok()) return s;
    }
    return result;
  }

  // Events dropped because they were older than the ring when they arrived.
  uint64_t late_dropped() const { return late_dropped_; }
  int64_t window_nanos() const { return bucket_nanos_ * buckets_; }
  int64_t bucket_nanos() const { return bucket_nanos_; }
  int buckets() const { return buckets_; }

  size_t MemoryBytes() const {
    // Sketch::MemoryBytes counts the object itself, which sits inside *this or ring_.
    size_t bytes = sizeof(*this) - sizeof(Sketch) + empty_.MemoryBytes() +
                   ring_.capacity() * sizeof(Bucket);
    for (const Bucket& b : ring_) bytes += b.sketch->MemoryBytes() - sizeof(Sketch);
    return bytes;
  }

 private:
  struct Bucket {
    int64_t epoch;
    std::optional<Sketch> sketch;  // always engaged; optional so resets need only a copy
  };

  TimeWindowed(int64_t window_nanos, int buckets, Sketch empty)
      : bucket_nanos_(window_nanos / buckets), buckets_(buckets), empty_(std::move(empty)) {
    ring_.resize(buckets_);
    for (Bucket& b : ring_) {
      b.epoch = 0;
      b.sketch.emplace(empty_);
    }
  }

  // floor(t / bucket_nanos_), also for negative times.
  int64_t EpochOf(int64_t t) const {
    int64_t q = t / bucket_nanos_;
    if (t % bucket_nanos_ != 0 && t < 0) --q;
    return q;
  }
  // a - b for a >= b, without overflow.
  static uint64_t Distance(int64_t a, int64_t b) {
    return static_cast<uint64_t>(a) - static_cast<uint64_t>(b);
  }
  size_t Index(int64_t epoch) const {
    const int64_t r = epoch % buckets_;
    return static_cast<size_t>(r < 0 ? r + buckets_ : r);
  }

  // Makes `epoch` the newest bucket: every bucket between the old newest and it
  // starts empty (all of them after a jump of a whole window or more).
  void Advance(int64_t epoch) {
    const uint64_t n = started_ ? Distance(epoch, newest_epoch_) : UINT64_MAX;
    const int steps = n >= static_cast<uint64_t>(buckets_) ? buckets_ : static_cast<int>(n);
    for (int k = steps - 1; k >= 0; --k) {
      int64_t e;
      if (__builtin_sub_overflow(epoch, static_cast<int64_t>(k), &e)) continue;
      Bucket& b = ring_[Index(e)];
      b.epoch = e;
      b.sketch.emplace(empty_);
    }
    newest_epoch_ = epoch;
    started_ = true;
  }

  int64_t bucket_nanos_;
  int buckets_;
  Sketch empty_;
  std::vector<Bucket> ring_;
  int64_t newest_epoch_ = 0;
  bool started_ = false;
  uint64_t late_dropped_ = 0;
};

// A Count-Min sketch with exponentially decaying counts: an occurrence at time t
// weighs 2^-((now - t) / half_life) at time now. The decay is applied with
// CountMinSketch::Scale once per tick of event time; counts are kept in fixed point
// (kUnit per occurrence) so that the rounding of each Scale loses at most 1/kUnit of
// an occurrence per counter and tick. Estimates are upper bounds on the decayed count,
// up to that rounding, with the error of the underlying sketch relative to the
// decayed total. Events older than the last tick are added with their own (smaller)
// weight, not dropped. Thread-safety as for CountMinSketch.
class DecayedCountMin {
 public:
  static constexpr uint64_t kUnit = uint64_t{1} << 16;

  // half_life_nanos > 0, tick_nanos in 1..half_life_nanos; sketch: an empty sketch
  // whose shape sets the accuracy (e.g. CountMinSketch::Create(epsilon, delta)).
  static absl::StatusOr<DecayedCountMin> Create(int64_t half_life_nanos, int64_t tick_nanos,
                                                CountMinSketch sketch) {
    if (half_life_nanos <= 0) {
      return absl::InvalidArgumentError(
          fmt::format("DecayedCountMin half-life {} ns must be positive", half_life_nanos));
    }
    if (tick_nanos <= 0 || tick_nanos > half_life_nanos) {
      return absl::InvalidArgumentError(fmt::format(
          "DecayedCountMin tick {} ns is out of range 1..{} (the half-life)", tick_nanos,
          half_life_nanos));
    }
    if (sketch.TotalCount() != 0) {
      return absl::InvalidArgumentError("DecayedCountMin needs an empty sketch");
    }
    return DecayedCountMin(half_life_nanos, tick_nanos, std::move(sketch));
  }

  void Add(int64_t time_nanos, uint64_t key, uint64_t count = 1) {
    AddHash(time_nanos, Hash64(key, sketch_.seed()), count);
  }
  void Add(int64_t time_nanos, std::string_view key, uint64_t count = 1) {
    AddHash(time_nanos, Hash64(key, sketch_.seed()), count);
  }
  void AddHash(int64_t time_nanos, uint64_t h, uint64_t count = 1) {
    const int64_t tick = FloorDiv(time_nanos, tick_nanos_);
    if (!started_ || tick > tick_) AdvanceTo(tick);
    if (tick == tick_) {
      sketch_.AddHash(h, Weight(count, 1.0));
    } else {
      // A late event: weigh it as if it had decayed with the sketch since its tick.
      const double age = static_cast<double>(tick_ - tick) * static_cast<double>(tick_nanos_);
      sketch_.AddHash(h, Weight(count, std::exp2(-age / static_cast<double>(half_life_))));
    }
  }

  // Decayed count of the key at time now_nanos (>= the latest event for exact decay;
  // an earlier now is treated as the latest tick).
  double Estimate(int64_t now_nanos, uint64_t key) const {
    return EstimateHash(now_nanos, Hash64(key, sketch_.seed()));
  }
  double Estimate(int64_t now_nanos, std::string_view key) const {
    return EstimateHash(now_nanos, Hash64(key, sketch_.seed()));
  }
  double EstimateHash(int64_t now_nanos, uint64_t h) const {
    return static_cast<double>(sketch_.EstimateHash(h)) / kUnit * DecaySince(now_nanos);
  }
  // Decayed total count at time now_nanos.
  double TotalCount(int64_t now_nanos) const {
    return static_cast<double>(sketch_.TotalCount()) / kUnit * DecaySince(now_nanos);
  }

  int64_t half_life_nanos() const { return half_life_; }
  int64_t tick_nanos() const { return tick_nanos_; }
  // The underlying sketch (fixed-point counts as of the latest tick).
  const CountMinSketch& sketch() const { return sketch_; }
  size_t MemoryBytes() const { return sizeof(*this) - sizeof(CountMinSketch) + sketch_.MemoryBytes(); }

 private:
  DecayedCountMin(int64_t half_life, int64_t tick_nanos, CountMinSketch sketch)
      : half_life_(half_life), tick_nanos_(tick_nanos), sketch_(std::move(sketch)) {}

  static int64_t FloorDiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b != 0 && a < 0) --q;
    return q;
  }
  static uint64_t Weight(uint64_t count, double factor) {
    const double w = static_cast<double>(count) * static_cast<double>(kUnit) * factor;
    return w >= 18446744073709551616.0 ? ~uint64_t{0} : static_cast<uint64_t>(std::ceil(w));
  }
  void AdvanceTo(int64_t tick) {
    if (started_) {
      const double elapsed = (static_cast<double>(tick) - static_cast<double>(tick_)) *
                             static_cast<double>(tick_nanos_);
      sketch_.Scale(std::exp2(-elapsed / static_cast<double>(half_life_)));
    }
    tick_ = tick;
    started_ = true;
  }
  double DecaySince(int64_t now_nanos) const {
    if (!started_) return 1.0;
    const double start = static_cast<double>(tick_) * static_cast<double>(tick_nanos_);
    const double age = static_cast<double>(now_nanos) - start;
    return age <= 0 ? 1.0 : std::exp2(-age / static_cast<double>(half_life_));
  }

  int64_t half_life_;
  int64_t tick_nanos_;
  CountMinSketch sketch_;
  int64_t tick_ = 0;
  bool started_ = false;
};

}  // namespace cairn::sketch
