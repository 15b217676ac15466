#include "cairn/sketch/count_min.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

#include "cairn/base/codec.h"

namespace cairn::sketch {
namespace {

constexpr uint32_t kMagic = MakeMagic("CCMS");
constexpr uint16_t kVersion = 1;
constexpr uint8_t kFlagConservative = 1;

// 2^64 as a double: products at or above it saturate.
constexpr double kTwoPow64 = 18446744073709551616.0;

absl::Status CheckShape(uint32_t depth, uint32_t width) {
  if (depth < 1 || depth > CountMinSketch::kMaxDepth) {
    return absl::InvalidArgumentError(fmt::format(
        "CountMinSketch depth {} is out of range 1..{}", depth, CountMinSketch::kMaxDepth));
  }
  if (width < 1 || width > CountMinSketch::kMaxWidth) {
    return absl::InvalidArgumentError(fmt::format(
        "CountMinSketch width {} is out of range 1..{}", width, CountMinSketch::kMaxWidth));
  }
  if (static_cast<uint64_t>(depth) * width > CountMinSketch::kMaxCounters) {
    return absl::InvalidArgumentError(fmt::format(
        "CountMinSketch shape {}x{} has {} counters, more than the limit of {}", depth, width,
        static_cast<uint64_t>(depth) * width, CountMinSketch::kMaxCounters));
  }
  return absl::OkStatus();
}

}  // namespace

CountMinSketch::CountMinSketch(uint32_t depth, uint32_t width, bool conservative, uint64_t seed)
    : depth_(depth),
      width_(width),
      conservative_(conservative),
      seed_(seed),
      counters_(static_cast<size_t>(depth) * width, 0) {}

absl::StatusOr<CountMinSketch> CountMinSketch::Create(double epsilon, double delta,
                                                      bool conservative_update) {
  if (!(epsilon > 0.0 && epsilon <= 1.0)) {
    return absl::InvalidArgumentError(
        fmt::format("CountMinSketch epsilon {} is out of range (0, 1]", epsilon));
  }
  if (!(delta > 0.0 && delta < 1.0)) {
    return absl::InvalidArgumentError(
        fmt::format("CountMinSketch delta {} is out of range (0, 1)", delta));
  }
  const double width = std::ceil(std::numbers::e / epsilon);
  const double depth = std::max(1.0, std::ceil(std::log(1.0 / delta)));
  if (width > kMaxWidth) {
    return absl::InvalidArgumentError(fmt::format(
        "CountMinSketch epsilon {} needs width {:.0f}, more than the limit of {}; use a larger "
        "epsilon",
        epsilon, width, kMaxWidth));
  }
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(fmt::format(
        "CountMinSketch delta {} needs depth {:.0f}, more than the limit of {}; use a larger "
        "delta",
        delta, depth, kMaxDepth));
  }
  return CreateWithShape(static_cast<uint32_t>(depth), static_cast<uint32_t>(width),
                         conservative_update);
}

absl::StatusOr<CountMinSketch> CountMinSketch::CreateWithShape(uint32_t depth, uint32_t width,
                                                               bool conservative_update) {
  if (absl::Status s = CheckShape(depth, width); !s.ok()) return s;
  return CountMinSketch(depth, width, conservative_update, kSeed);
}

double CountMinSketch::epsilon() const { return std::numbers::e / width_; }

double CountMinSketch::delta() const { return std::exp(-static_cast<double>(depth_)); }

absl::Status CountMinSketch::Merge(const CountMinSketch& other) {
  if (depth_ != other.depth_ || width_ != other.width_ || seed_ != other.seed_) {
    return absl::InvalidArgumentError(fmt::format(
        "CountMinSketch merge needs equal shape and seed: this is {}x{} (seed {:016x}), the "
        "other is {}x{} (seed {:016x})",
        depth_, width_, seed_, other.depth_, other.width_, other.seed_));
  }
  // Indexing (not iterators) keeps a self-merge well defined.
  const size_t n = counters_.size();
  for (size_t i = 0; i < n; ++i) counters_[i] = SaturatingAdd(counters_[i], other.counters_[i]);
  total_ = SaturatingAdd(total_, other.total_);
  return absl::OkStatus();
}

void CountMinSketch::Scale(double factor) {
  assert(factor >= 0.0 && "CountMinSketch::Scale needs a factor >= 0");
  if (!(factor >= 0.0)) factor = 0.0;  // NaN or negative: treat as "forget everything"
  if (factor == 1.0) return;
  auto scale = [factor](uint64_t v) -> uint64_t {
    const double x = static_cast<double>(v) * factor;
    return x >= kTwoPow64 ? ~uint64_t{0} : static_cast<uint64_t>(x);
  };
  // Rounding each counter and the total separately can leave a row summing to more
  // than the scaled total (by floating-point rounding); the total is raised to the
  // largest row sum so that "no row sums to more than TotalCount" — which
  // Deserialize checks — keeps holding.
  uint64_t new_total = scale(total_);
  uint64_t* row = counters_.data();
  for (uint32_t r = 0; r < depth_; ++r, row += width_) {
    uint64_t sum = 0;
    for (uint32_t c = 0; c < width_; ++c) {
      row[c] = scale(row[c]);
      sum = SaturatingAdd(sum, row[c]);
    }
    if (sum > new_total) new_total = sum;
  }
  total_ = new_total;
}

void CountMinSketch::Clear() {
  std::fill(counters_.begin(), counters_.end(), 0);
  total_ = 0;
}

size_t CountMinSketch::MemoryBytes() const {
  return sizeof(*this) + counters_.capacity() * sizeof(uint64_t);
}

std::string CountMinSketch::Serialize() const {
  ByteWriter w;
  w.U64(seed_);
  w.U32(depth_);
  w.U32(width_);
  w.U8(conservative_ ? kFlagConservative : 0);
  w.U64(total_);
  // Varints: most counters of a sketch sized for its stream are small.
  for (uint64_t c : counters_) w.Varint(c);
  return SealEnvelope(kMagic, kVersion, w.data());
}

absl::StatusOr<CountMinSketch> CountMinSketch::Deserialize(std::string_view bytes) {
  auto envelope = OpenEnvelope(bytes, kMagic, kVersion, "CountMinSketch");
  if (!envelope.ok()) return envelope.status();
  ByteReader r(envelope->payload, "CountMinSketch");
  const uint64_t seed = r.U64();
  const uint32_t depth = r.U32();
  const uint32_t width = r.U32();
  const uint8_t flags = r.U8();
  const uint64_t total = r.U64();
  if (!r.ok()) return r.status();
  if (absl::Status s = CheckShape(depth, width); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("CountMinSketch blob: {}", std::string(s.message())));
  }
  if (flags & ~kFlagConservative) {
    return absl::InvalidArgumentError(
        fmt::format("CountMinSketch blob: unknown flags 0x{:02x}", flags));
  }
  const uint64_t n = static_cast<uint64_t>(depth) * width;
  // Every counter takes at least one byte: a corrupt shape cannot make us allocate
  // more than the blob could describe.
  if (n > r.remaining()) {
    return absl::InvalidArgumentError(fmt::format(
        "CountMinSketch blob: shape {}x{} needs {} counters but only {} bytes remain", depth,
        width, n, r.remaining()));
  }
  CountMinSketch sketch(depth, width, (flags & kFlagConservative) != 0, seed);
  sketch.total_ = total;
  for (uint64_t i = 0; i < n; ++i) sketch.counters_[i] = r.Varint();
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  // Every update adds at most `count` to each row, and merges and scaling keep that,
  // so no row may sum to more than the total.
  const uint64_t* row = sketch.counters_.data();
  for (uint32_t i = 0; i < depth; ++i, row += width) {
    uint64_t sum = 0;
    for (uint32_t c = 0; c < width; ++c) sum = SaturatingAdd(sum, row[c]);
    if (sum > total) {
      return absl::InvalidArgumentError(fmt::format(
          "CountMinSketch blob: row {} sums to {}, more than the total count {}: corrupted", i,
          sum, total));
    }
  }
  return sketch;
}

}  // namespace cairn::sketch
