#include "cairn/detect/novelty.h"

#include <cmath>

#include "cairn/base/hash.h"
#include "cairn/detect/internal/sketch_util.h"
#include "fmt/format.h"

namespace cairn::detect {
namespace {
constexpr uint8_t kStateVersion = 1;
}  // namespace

void NoveltyState::Encode(ByteWriter& w) const {
  w.U8(kStateVersion);
  w.I64(records);
  w.U64(distinct);
  w.F64(new_weight);
  w.F64(record_weight);
  w.F64(last_rate);
  w.U8(seen.has_value());
  if (seen) w.String(seen->Serialize());
}

bool NoveltyState::Decode(ByteReader& r, NoveltyState* out) {
  if (r.U8() != kStateVersion) {
    if (r.ok()) r.Fail("novelty state: unknown version");
    return false;
  }
  out->records = r.I64();
  out->distinct = r.U64();
  out->new_weight = r.F64();
  out->record_weight = r.F64();
  out->last_rate = r.F64();
  const bool has_filter = r.U8() != 0;
  out->seen.reset();
  if (has_filter) {
    std::string_view bytes = r.String();
    if (!r.ok()) return false;
    absl::StatusOr<sketch::BloomFilter> f = sketch::BloomFilter::Deserialize(bytes);
    if (!f.ok()) {
      r.Fail("novelty state: " + std::string(f.status().message()));
      return false;
    }
    out->seen = std::move(*f);
  }
  return r.ok();
}

NoveltyDetector::NoveltyDetector(NoveltyConfig c, sketch::BloomFilter empty)
    : config_(std::move(c)), empty_(std::move(empty)), decay_(std::exp2(-1.0 / config_.half_life)) {}

absl::StatusOr<NoveltyDetector> NoveltyDetector::Create(NoveltyConfig c) {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError("novelty detector: " + msg); };
  if (c.expected_items < 1) return bad("expected_items must be at least 1");
  if (!(c.false_positive_rate >= sketch::BloomFilter::kMinFalsePositiveRate &&
        c.false_positive_rate <= sketch::BloomFilter::kMaxFalsePositiveRate)) {
    return bad(fmt::format("false_positive_rate {} is out of range {}..{}", c.false_positive_rate,
                           sketch::BloomFilter::kMinFalsePositiveRate, sketch::BloomFilter::kMaxFalsePositiveRate));
  }
  if (!(c.half_life >= 1.0 && c.half_life <= 1e15)) {
    return bad(fmt::format("half_life {} records is out of range 1..1e15", c.half_life));
  }
  if (c.warmup < 0) return bad(fmt::format("warmup {} records must be >= 0", c.warmup));
  absl::StatusOr<sketch::BloomFilter> filter = sketch::BloomFilter::Create(c.expected_items, c.false_positive_rate);
  if (!filter.ok()) return bad(std::string(filter.status().message()));
  return NoveltyDetector(std::move(c), std::move(*filter));
}

uint64_t NoveltyDetector::HashItem(std::string_view item) const { return Hash64(item, empty_.seed()); }

void NoveltyDetector::Reset(NoveltyState& st) const {
  st = NoveltyState{};
  st.seen = empty_;
}

Scored NoveltyDetector::UpdateHash(NoveltyState& st, uint64_t h) const {
  if (!st.seen || st.seen->num_blocks() != empty_.num_blocks() || st.seen->seed() != empty_.seed()) [[unlikely]] {
    Reset(st);
  }
  ++st.records;
  const bool is_new = !st.seen->ContainsHash(h);
  if (!is_new) [[likely]] {
    st.new_weight *= decay_;
    st.record_weight = st.record_weight * decay_ + 1.0;
    return {};
  }
  // The rate before this record: how often the stream has been showing new items.
  const double rate = (st.new_weight + 0.5) / (st.record_weight + 1.0);
  st.new_weight = st.new_weight * decay_ + 1.0;
  st.record_weight = st.record_weight * decay_ + 1.0;
  st.seen->InsertHash(h);
  ++st.distinct;
  st.last_rate = rate;
  if (st.records <= config_.warmup) return {};
  return {internal::ScoreFromP(rate), 1.0 / rate};
}

std::string NoveltyDetector::Explain(const NoveltyState& st, const Observation& obs, const Scored& scored) const {
  if (scored.score <= 0.0 && scored.raw <= 0.0) {
    if (st.records <= config_.warmup) {
      return fmt::format("{} '{}' recorded while learning ({} of {} warm-up records)", config_.item_name, obs.item,
                         internal::GroupThousands(static_cast<uint64_t>(st.records)),
                         internal::GroupThousands(static_cast<uint64_t>(config_.warmup)));
    }
    return fmt::format("{} '{}' has been seen before", config_.item_name, obs.item);
  }
  const double one_in = st.last_rate > 0.0 ? 1.0 / st.last_rate : 0.0;
  return fmt::format("first time {} '{}' is seen (new items are 1 in {} recently)", config_.item_name, obs.item,
                     internal::FormatCount(one_in));
}

}  // namespace cairn::detect
