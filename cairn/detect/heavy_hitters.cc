#include "cairn/detect/heavy_hitters.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "cairn/base/hash.h"
#include "cairn/detect/internal/sketch_util.h"
#include "fmt/format.h"

namespace cairn::detect {
namespace {

constexpr uint8_t kStateVersion = 1;
constexpr int kMaxReferenceWindows = 64;
constexpr int kMaxCapacity = 1 << 20;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return q;
}

EventTime Saturate(int64_t e, int64_t width, int64_t add) {
  int64_t out;
  if (__builtin_mul_overflow(e, width, &out) || __builtin_add_overflow(out, add, &out)) {
    return e < 0 ? std::numeric_limits<EventTime>::min() : std::numeric_limits<EventTime>::max();
  }
  return out;
}

absl::StatusOr<sketch::TopK<uint64_t>> DecodeTopK(ByteReader& r) {
  std::string_view bytes = r.String();
  if (!r.ok()) return r.status();
  return sketch::TopK<uint64_t>::Deserialize(bytes);
}

}  // namespace

size_t HeavyHitterState::MemoryBytes() const {
  size_t bytes = sizeof(*this);
  if (current) bytes += current->MemoryBytes() - sizeof(sketch::TopK<uint64_t>);
  bytes += past.capacity() * sizeof(sketch::TopK<uint64_t>);
  for (const auto& s : past) bytes += s.MemoryBytes() - sizeof(sketch::TopK<uint64_t>);
  bytes += reference.capacity() * sizeof(RefItem) + findings.capacity() * sizeof(HeavyHitterFinding);
  return bytes;
}

void HeavyHitterState::Encode(ByteWriter& w) const {
  w.U8(kStateVersion);
  w.U8(current.has_value());
  if (current) w.String(current->Serialize());
  w.I64(epoch);
  w.I64(window_start);
  w.I64(window_end);
  w.U64(window_records);
  w.U64(next_eval);
  w.U64(evaluated_records);
  w.Varint(past.size());
  for (const auto& s : past) w.String(s.Serialize());
  w.U32(past_next);
  w.Varint(reference.size());
  for (const RefItem& it : reference) {
    w.U64(it.item);
    w.U64(it.count);
    w.U32(it.rank);
  }
  w.U64(reference_records);
  w.U64(reference_min);
  w.Varint(findings.size());
  w.Varint(num_findings);
  for (size_t i = 0; i < findings.size(); ++i) {
    const HeavyHitterFinding& f = findings[i];
    if (!f.used) continue;
    w.Varint(i);
    w.U64(f.item);
    w.F64(f.score);
    w.F32(f.raw);
    w.U32(f.rank);
    w.U32(f.past_rank);
    w.U64(f.count);
    w.U64(f.past_count);
  }
}

bool HeavyHitterState::Decode(ByteReader& r, HeavyHitterState* out) {
  auto fail = [&](std::string msg) {
    if (r.ok()) r.Fail("heavy-hitter state: " + msg);
    return false;
  };
  if (r.U8() != kStateVersion) return fail("unknown version");
  *out = HeavyHitterState{};
  if (r.U8() != 0) {
    auto s = DecodeTopK(r);
    if (!s.ok()) return fail(std::string(s.status().message()));
    out->current = std::move(*s);
  }
  out->epoch = r.I64();
  out->window_start = r.I64();
  out->window_end = r.I64();
  out->window_records = r.U64();
  out->next_eval = r.U64();
  out->evaluated_records = r.U64();
  const uint64_t num_past = r.Varint();
  if (!r.ok()) return false;
  if (num_past > kMaxReferenceWindows) return fail(fmt::format("{} past windows, at most {}", num_past, kMaxReferenceWindows));
  for (uint64_t i = 0; i < num_past; ++i) {
    auto s = DecodeTopK(r);
    if (!s.ok()) return fail(std::string(s.status().message()));
    out->past.push_back(std::move(*s));
  }
  out->past_next = r.U32();
  if (out->past_next > out->past.size()) return fail("ring position out of range");
  const uint64_t num_ref = r.Varint();
  if (!r.ok()) return false;
  if (num_ref > r.remaining() / 20) return fail("reference runs past the end");
  out->reference.resize(num_ref);
  for (auto& it : out->reference) {
    it.item = r.U64();
    it.count = r.U64();
    it.rank = r.U32();
  }
  if (!std::is_sorted(out->reference.begin(), out->reference.end(),
                      [](const RefItem& a, const RefItem& b) { return a.item < b.item; })) {
    return fail("reference is not sorted");
  }
  out->reference_records = r.U64();
  out->reference_min = r.U64();
  const uint64_t table = r.Varint();
  const uint64_t used = r.Varint();
  if (!r.ok()) return false;
  if (table > (uint64_t{1} << 16) || (table & (table - 1)) != 0 || used > table) return fail("bad findings table");
  out->findings.assign(table, HeavyHitterFinding{});
  for (uint64_t k = 0; k < used; ++k) {
    const uint64_t i = r.Varint();
    if (!r.ok()) return false;
    if (i >= table) return fail("finding position out of range");
    HeavyHitterFinding& f = out->findings[i];
    f.item = r.U64();
    f.score = r.F64();
    f.raw = r.F32();
    f.rank = r.U32();
    f.past_rank = r.U32();
    f.count = r.U64();
    f.past_count = r.U64();
    f.used = true;
  }
  out->num_findings = static_cast<uint32_t>(
      std::count_if(out->findings.begin(), out->findings.end(), [](const auto& f) { return f.used; }));
  return r.ok();
}

HeavyHitterDetector::HeavyHitterDetector(HeavyHitterConfig c, sketch::TopK<uint64_t> empty)
    : config_(std::move(c)), empty_(std::move(empty)) {
  table_size_ = std::bit_ceil(static_cast<size_t>(4 * config_.top_k));
  shift_ = 64 - std::countr_zero(table_size_);
}

absl::StatusOr<HeavyHitterDetector> HeavyHitterDetector::Create(HeavyHitterConfig c) {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError("heavy-hitter detector: " + msg); };
  if (c.window_ms <= 0) return bad(fmt::format("window {} ms must be positive", c.window_ms));
  if (c.top_k < 1 || c.top_k > 1000) return bad(fmt::format("top_k {} is out of range 1..1000", c.top_k));
  if (c.capacity < 2 * c.top_k || c.capacity > kMaxCapacity) {
    return bad(fmt::format("capacity {} is out of range {}..{} (at least twice top_k)", c.capacity, 2 * c.top_k,
                           kMaxCapacity));
  }
  if (c.reference_windows < 1 || c.reference_windows > kMaxReferenceWindows) {
    return bad(fmt::format("reference_windows {} is out of range 1..{}", c.reference_windows, kMaxReferenceWindows));
  }
  if (!(c.min_rank_rise >= 1.0 && c.min_rank_rise < 1e9)) {
    return bad(fmt::format("min_rank_rise {} must be at least 1", c.min_rank_rise));
  }
  if (c.eval_every < 64) return bad(fmt::format("eval_every {} records must be at least 64", c.eval_every));
  if (c.min_reference_records < 1) {
    return bad(fmt::format("min_reference_records {} must be at least 1", c.min_reference_records));
  }
  absl::StatusOr<sketch::TopK<uint64_t>> empty = sketch::TopK<uint64_t>::Create(static_cast<size_t>(c.capacity));
  if (!empty.ok()) return bad(std::string(empty.status().message()));
  return HeavyHitterDetector(std::move(c), std::move(*empty));
}

uint64_t HeavyHitterDetector::HashItem(std::string_view item) const { return Hash64(item, config_.seed); }

void HeavyHitterDetector::Reset(HeavyHitterState& st, int64_t epoch) const {
  st = HeavyHitterState{};
  st.current = empty_;
  st.epoch = epoch;
  st.window_start = Saturate(epoch, config_.window_ms, 0);
  st.window_end = Saturate(epoch, config_.window_ms, config_.window_ms);
  st.findings.assign(table_size_, HeavyHitterFinding{});
}

void HeavyHitterDetector::CloseWindow(HeavyHitterState& st, int64_t epoch) const {
  const size_t ring = static_cast<size_t>(config_.reference_windows);
  if (st.past.size() > ring || st.past_next >= ring) [[unlikely]] {
    st.past.clear();  // a ring of another shape (decoded under another config)
    st.past_next = 0;
  }
  if (st.window_records > 0) {
    if (st.past.size() < ring) {
      st.past.push_back(std::move(*st.current));
      st.past_next = static_cast<uint32_t>(st.past.size() % ring);
    } else {
      st.past[st.past_next] = std::move(*st.current);
      st.past_next = static_cast<uint32_t>((st.past_next + 1) % ring);
    }
    // The reference: the merge of the ring, oldest first so that the result does
    // not depend on the ring's rotation.
    sketch::TopK<uint64_t> merged = empty_;
    const size_t n = st.past.size();
    const size_t oldest = n < ring ? 0 : st.past_next;
    for (size_t k = 0; k < n; ++k) (void)merged.Merge(st.past[(oldest + k) % n]);
    const auto items = merged.Top(static_cast<size_t>(config_.capacity));
    st.reference.clear();
    for (size_t i = 0; i < items.size(); ++i) {
      st.reference.push_back({items[i].key, items[i].count, static_cast<uint32_t>(i + 1)});
    }
    std::sort(st.reference.begin(), st.reference.end(),
              [](const auto& a, const auto& b) { return a.item < b.item; });
    st.reference_records = merged.TotalCount();
    st.reference_min = merged.MinCount();
  }
  st.current = empty_;
  st.epoch = epoch;
  st.window_start = Saturate(epoch, config_.window_ms, 0);
  st.window_end = Saturate(epoch, config_.window_ms, config_.window_ms);
  st.window_records = 0;
  st.next_eval = 64;
  st.evaluated_records = 0;
  if (st.num_findings > 0) {
    std::fill(st.findings.begin(), st.findings.end(), HeavyHitterFinding{});
    st.num_findings = 0;
  }
}

void HeavyHitterDetector::Evaluate(HeavyHitterState& st) const {
  const uint64_t n = st.window_records;
  st.evaluated_records = n;
  const uint64_t every = static_cast<uint64_t>(config_.eval_every);
  st.next_eval = n < every ? std::min(n * 2, every) : n + every;
  if (st.num_findings > 0) {
    std::fill(st.findings.begin(), st.findings.end(), HeavyHitterFinding{});
    st.num_findings = 0;
  }
  if (st.reference_records < static_cast<uint64_t>(config_.min_reference_records)) return;
  const double q = static_cast<double>(n) / static_cast<double>(n + st.reference_records);
  const auto top = st.current->Top(static_cast<size_t>(config_.top_k));
  const double unmonitored_rank = static_cast<double>(st.reference.size() + 1);
  for (size_t i = 0; i < top.size(); ++i) {
    const auto& item = top[i];
    const uint32_t rank = static_cast<uint32_t>(i + 1);
    auto it = std::lower_bound(st.reference.begin(), st.reference.end(), item.key,
                               [](const HeavyHitterState::RefItem& a, uint64_t k) { return a.item < k; });
    const bool monitored = it != st.reference.end() && it->item == item.key;
    const double past_rank = monitored ? it->rank : unmonitored_rank;
    if (past_rank < config_.min_rank_rise * rank) continue;
    const uint64_t c = item.count - item.error;  // certainly this many in the window
    const uint64_t c0 = monitored ? it->count : st.reference_min;
    const double p = c == 0 ? 1.0 : internal::BinomialUpperTail(c + c0, c, q);
    HeavyHitterFinding f;
    f.item = item.key;
    f.score = internal::ScoreFromP(p);
    f.raw = static_cast<float>(past_rank / rank);
    f.rank = rank;
    f.past_rank = monitored ? it->rank : 0;
    f.count = item.count;
    f.past_count = c0;
    f.used = true;
    size_t s = Slot(item.key);
    while (st.findings[s].used) s = (s + 1) & (table_size_ - 1);
    st.findings[s] = f;
    ++st.num_findings;
  }
}

const HeavyHitterFinding* HeavyHitterDetector::Find(const HeavyHitterState& st, uint64_t item) const {
  if (st.num_findings == 0 || st.findings.size() != table_size_) return nullptr;
  size_t s = Slot(item);
  for (size_t probes = 0; probes < table_size_; ++probes, s = (s + 1) & (table_size_ - 1)) {
    const HeavyHitterFinding& f = st.findings[s];
    if (!f.used) return nullptr;
    if (f.item == item) return &f;
  }
  return nullptr;
}

Scored HeavyHitterDetector::UpdateHash(HeavyHitterState& st, uint64_t h, EventTime time) const {
  if (!st.current || st.current->capacity() != empty_.capacity() || st.findings.size() != table_size_ ||
      st.num_findings >= table_size_) [[unlikely]] {
    Reset(st, FloorDiv(time, config_.window_ms));
  }
  if (time >= st.window_end) [[unlikely]] {
    const int64_t e = FloorDiv(time, config_.window_ms);
    if (e > st.epoch) CloseWindow(st, e);
  }
  st.current->Add(h);
  if (++st.window_records >= st.next_eval) [[unlikely]] Evaluate(st);
  if (st.num_findings == 0) [[likely]] return {};
  const HeavyHitterFinding* f = Find(st, h);
  if (f == nullptr) return {};
  return {f->score, f->raw};
}

std::string HeavyHitterDetector::Explain(const HeavyHitterState& st, const Observation& obs,
                                         const Scored& scored) const {
  (void)scored;
  const HeavyHitterFinding* f = Find(st, HashItem(obs.item));
  if (f == nullptr) {
    return fmt::format("{} '{}' is not rising into the top {} (last {} window)", config_.item_name, obs.item,
                       config_.top_k, internal::FormatDuration(config_.window_ms));
  }
  std::string past;
  if (f->past_rank > 0) {
    past = fmt::format("from rank {} ({} of {} records", f->past_rank, internal::GroupThousands(f->past_count),
                       internal::GroupThousands(st.reference_records));
  } else if (st.reference_min == 0) {
    past = fmt::format("from unseen (0 of {} records", internal::GroupThousands(st.reference_records));
  } else {
    past = fmt::format("from below rank {} (at most {} of {} records", st.reference.size(),
                       internal::GroupThousands(f->past_count), internal::GroupThousands(st.reference_records));
  }
  const size_t windows = st.past.size();
  past += windows == 1 ? " in the window before)" : fmt::format(" in the {} windows before)", windows);
  return fmt::format("{} '{}' rose to rank {} of the top {} ({} of {} records in this {} window) {}", config_.item_name,
                     obs.item, f->rank, config_.top_k, internal::GroupThousands(f->count),
                     internal::GroupThousands(st.evaluated_records), internal::FormatDuration(config_.window_ms), past);
}

}  // namespace cairn::detect
