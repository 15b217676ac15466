#include "cairn/detect/cardinality.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "cairn/base/hash.h"
#include "cairn/detect/internal/sketch_util.h"
#include "fmt/format.h"

namespace cairn::detect {
namespace {

// Version 2: no stored union registers (version 1 kept one per register group).
constexpr uint8_t kStateVersion = 2;
constexpr int kMaxHistory = 1024;
constexpr size_t kMaxRegisters = size_t{64} << 12;  // 64 sub-windows, 2^12 each

// floor(a / b) for b > 0.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return q;
}

// e * width, saturated to the int64 range.
EventTime EpochStart(int64_t e, int64_t width) {
  int64_t out;
  if (__builtin_mul_overflow(e, width, &out)) {
    return e < 0 ? std::numeric_limits<EventTime>::min() : std::numeric_limits<EventTime>::max();
  }
  return out;
}

EventTime SaturatingAdd(EventTime a, int64_t b) {
  EventTime out;
  if (__builtin_add_overflow(a, b, &out)) return std::numeric_limits<EventTime>::max();
  return out;
}

// Median of v[0..n) (reorders v).
float MedianOf(float* v, size_t n) {
  std::nth_element(v, v + n / 2, v + n);
  float hi = v[n / 2];
  if (n % 2 == 1) return hi;
  float lo = *std::max_element(v, v + n / 2);
  return 0.5f * (lo + hi);
}

// Median and MAD of v[0..n) (reorders v).
std::pair<float, float> MedianMad(float* v, size_t n) {
  const float med = MedianOf(v, n);
  for (size_t i = 0; i < n; ++i) v[i] = std::fabs(v[i] - med);
  return {med, MedianOf(v, n)};
}

}  // namespace

// The default shape's block: eight cache lines (see the header).
static_assert(sizeof(CardinalityState) == 512);

void CardinalityState::Encode(ByteWriter& w) const {
  w.U8(kStateVersion);
  w.I64(epoch);
  w.I64(first_epoch);
  w.I64(bucket_start);
  w.I64(bucket_end);
  w.F64(inv_sum);
  w.U32(zeros);
  w.U32(samples);
  w.U32(next);
  w.U32(current);
  w.F32(estimate);
  w.F32(base_y);
  w.F32(base_s);
  w.F32(raw);
  w.F64(score);
  // The same bytes whether the registers and history are inline or spilled.
  w.Varint(register_count);
  w.Array<uint8_t>(std::span<const uint8_t>(registers(), register_count));
  w.Varint(history_size);
  for (size_t i = 0; i < history_size; ++i) w.F32(History(i));
}

void CardinalityState::Allocate(size_t registers, size_t history) {
  register_count = static_cast<uint32_t>(registers);
  history_size = static_cast<uint32_t>(history);
  std::memset(inline_registers, 0, sizeof inline_registers);
  std::fill(std::begin(inline_history), std::end(inline_history), 0.0f);
  if (FitsInline(registers, history)) {
    spill.clear();
    spill.shrink_to_fit();
  } else {
    spill.assign(((registers + 3) & ~size_t{3}) + history * sizeof(float), 0);
  }
}

bool CardinalityState::Decode(ByteReader& r, CardinalityState* out) {
  const uint8_t version = r.U8();
  if (!r.ok()) return false;
  if (version != kStateVersion) {
    r.Fail(version == 1 ? "cardinality state: version 1 (registers with a stored union) is no longer read; "
                          "this version writes 2: start the state afresh"
                        : fmt::format("cardinality state: unknown version {} (this version reads {})", version,
                                      kStateVersion));
    return false;
  }
  out->epoch = r.I64();
  out->first_epoch = r.I64();
  out->bucket_start = r.I64();
  out->bucket_end = r.I64();
  out->inv_sum = r.F64();
  out->zeros = r.U32();
  out->samples = r.U32();
  out->next = r.U32();
  out->current = r.U32();
  out->estimate = r.F32();
  out->base_y = r.F32();
  out->base_s = r.F32();
  out->raw = r.F32();
  out->score = r.F64();
  // Sizes are checked against what remains before anything is allocated.
  std::vector<uint8_t> registers;
  std::vector<float> history;
  const uint64_t register_count = r.Varint();
  if (r.ok() && register_count > kMaxRegisters) {
    r.Fail("cardinality state: too many registers");
    return false;
  }
  if (!r.Array(register_count, &registers)) return false;
  if (!r.Array(r.Varint(), &history)) return false;
  if (!r.ok()) return false;
  // Indexes must stay inside the arrays whatever the bytes said: a state that
  // does not fit is reset by the next Update (its sizes differ from the config's).
  const size_t h = history.size();
  if (h > kMaxHistory || out->samples > h || (h > 0 && out->next >= h) || out->current >= 64 ||
      out->zeros > registers.size()) {
    r.Fail("cardinality state: ring positions out of range");
    return false;
  }
  const auto bad = [](float v) { return !std::isfinite(v) || v < 0.0f; };
  if (bad(out->estimate) || bad(out->base_s) || !std::isfinite(out->base_y) || !std::isfinite(out->inv_sum) ||
      std::any_of(history.begin(), history.end(), bad)) {
    r.Fail("cardinality state: counts are not finite");
    return false;
  }
  out->Allocate(registers.size(), h);
  if (!registers.empty()) std::memcpy(out->registers(), registers.data(), registers.size());
  for (size_t i = 0; i < h; ++i) out->SetHistory(i, history[i]);
  return true;
}

CardinalityDetector::CardinalityDetector(CardinalityConfig c) : config_(std::move(c)) {
  width_ = config_.window_ms / config_.buckets;
  m_ = uint32_t{1} << config_.precision;
  stride_ = static_cast<size_t>(config_.buckets);
  inline_ = CardinalityState::FitsInline(stride_ * m_, static_cast<size_t>(config_.history));
  // alpha_m of Flajolet et al.: the exact constants for small m, the usual fit above.
  double alpha;
  switch (m_) {
    case 16: alpha = 0.673; break;
    case 32: alpha = 0.697; break;
    case 64: alpha = 0.709; break;
    default: alpha = 0.7213 / (1.0 + 1.079 / m_); break;
  }
  alpha_mm_ = alpha * m_ * m_;
  for (size_t r = 0; r < inv_pow2_.size(); ++r) inv_pow2_[r] = std::ldexp(1.0, -static_cast<int>(r));
  linear_counting_.resize(m_ + 1);
  linear_counting_[0] = 0.0;  // unused: no empty register means the raw estimate
  for (uint32_t v = 1; v <= m_; ++v) linear_counting_[v] = m_ * std::log(static_cast<double>(m_) / v);
}

absl::StatusOr<CardinalityDetector> CardinalityDetector::Create(CardinalityConfig c) {
  auto bad = [](std::string msg) { return absl::InvalidArgumentError("cardinality detector: " + msg); };
  if (c.buckets < 1 || c.buckets > 64) return bad(fmt::format("buckets {} is out of range 1..64", c.buckets));
  if (c.window_ms <= 0) return bad(fmt::format("window {} ms must be positive", c.window_ms));
  if (c.window_ms % c.buckets != 0) {
    return bad(fmt::format("window {} ms is not a multiple of {} buckets", c.window_ms, c.buckets));
  }
  if (c.precision < 4 || c.precision > 12) {
    return bad(fmt::format("precision {} is out of range 4..12", c.precision));
  }
  if (c.history < 8 || c.history > kMaxHistory) {
    return bad(fmt::format("history {} is out of range 8..{}", c.history, kMaxHistory));
  }
  if (c.warmup < 1 || c.warmup > c.history) {
    return bad(fmt::format("warmup {} is out of range 1..{} (the history)", c.warmup, c.history));
  }
  return CardinalityDetector(std::move(c));
}

uint64_t CardinalityDetector::HashItem(std::string_view item) const { return Hash64(item, config_.seed); }

double CardinalityDetector::EstimateFrom(uint32_t zeros, double inv_sum) const {
  const double raw = alpha_mm_ / inv_sum;
  if (zeros > 0 && raw <= 2.5 * m_) return linear_counting_[zeros];
  return raw;
}

void CardinalityDetector::Reset(CardinalityState& st, int64_t epoch) const {
  st.Allocate(stride_ * m_, static_cast<size_t>(config_.history));
  st.epoch = epoch;
  st.first_epoch = epoch;
  st.bucket_start = EpochStart(epoch, width_);
  st.bucket_end = SaturatingAdd(st.bucket_start, width_);
  st.current = static_cast<uint32_t>(((epoch % config_.buckets) + config_.buckets) % config_.buckets);
  st.inv_sum = m_;
  st.zeros = m_;
  st.samples = 0;
  st.next = 0;
  st.estimate = 0.0f;
  st.base_y = 0.0f;
  st.base_s = 0.0f;
  st.score = 0.0;
  st.raw = 0.0f;
}

namespace {

// The union pass of RebuildUnion: per register, the max over the live
// sub-windows (the union's register, not stored), the count of empty ones and
// the sum of 2^-u, exact in fixed point
// (2^(64 - u), u clamped to 64 for damaged bytes) so that no chain of dependent
// floating-point adds serializes it. kStride > 0 unrolls the common shapes.
template <size_t kStride>
void UnionPass(const uint8_t* regs, uint32_t m, size_t stride, uint32_t* zeros, unsigned __int128* sum) {
  if constexpr (kStride > 0) stride = kStride;
  uint32_t z = 0;
  unsigned __int128 acc = 0;
  for (uint32_t j = 0; j < m; ++j) {
    const uint8_t* reg = regs + j * stride;
    uint8_t u = 0;
    for (size_t b = 0; b < stride; ++b) u = std::max(u, reg[b]);
    z += u == 0;
    acc += static_cast<unsigned __int128>(1) << (64 - std::min<unsigned>(u, 64));
  }
  *zeros = z;
  *sum = acc;
}

}  // namespace

// A sub-window rotation (about one record in 15 per key with 100 K keys at one
// record per key and second) recomputes the union: kept cheap.
void CardinalityDetector::RebuildUnion(CardinalityState& st) const {
  uint32_t zeros = 0;
  unsigned __int128 fixed = 0;
  const uint8_t* const regs = st.registers();
  switch (stride_) {
    case 1: UnionPass<1>(regs, m_, stride_, &zeros, &fixed); break;
    case 2: UnionPass<2>(regs, m_, stride_, &zeros, &fixed); break;
    case 4: UnionPass<4>(regs, m_, stride_, &zeros, &fixed); break;
    case 8: UnionPass<8>(regs, m_, stride_, &zeros, &fixed); break;
    default: UnionPass<0>(regs, m_, stride_, &zeros, &fixed); break;
  }
  const double sum = std::ldexp(static_cast<double>(fixed), -64);
  st.zeros = zeros;
  st.inv_sum = sum;
  st.estimate = static_cast<float>(EstimateFrom(zeros, sum));
}

void CardinalityDetector::RebuildBaseline(CardinalityState& st) const {
  std::array<float, kMaxHistory> y;
  size_t n = 0;
  for (size_t i = 0; i < st.samples; ++i) {
    const float v = st.History(i);
    if (std::isfinite(v) && v >= 0.0f) y[n++] = std::sqrt(v + 0.375f);
  }
  if (n == 0) {
    st.base_y = 0.0f;
    st.base_s = 1.0f;
    return;
  }
  const auto [med, mad] = MedianMad(y.data(), n);
  st.base_y = med;
  st.base_s = std::max(1.4826f * mad, 0.5f) * (1.0f + 1.0f / static_cast<float>(n));
}

void CardinalityDetector::Rescore(CardinalityState& st) const {
  if (st.samples < static_cast<uint32_t>(config_.warmup)) {
    st.score = 0.0;
    st.raw = 0.0f;
    return;
  }
  const double z = (std::sqrt(static_cast<double>(st.estimate) + 0.375) - st.base_y) / st.base_s;
  st.raw = static_cast<float>(z);
  st.score = internal::ScoreFromP(internal::NormalUpperTail(z));
}

void CardinalityDetector::Rotate(CardinalityState& st, int64_t epoch) const {
  if (st.history_size != static_cast<uint32_t>(config_.history) || st.next >= st.history_size ||
      st.samples > st.history_size) [[unlikely]] {
    Reset(st, epoch);  // the history has another shape: start afresh
    return;
  }
  const int buckets = config_.buckets;
  bool sampled = false;
  // The window ending with the sub-window that closes: a history sample once the
  // key has been seen for a whole window.
  if (static_cast<uint64_t>(st.epoch) - static_cast<uint64_t>(st.first_epoch) >= static_cast<uint64_t>(buckets - 1) &&
      st.estimate > 0.0f && std::isfinite(st.estimate)) {
    st.SetHistory(st.next, st.estimate);
    st.next = st.next + 1 == st.history_size ? 0 : st.next + 1;
    st.samples = std::min<uint32_t>(st.samples + 1, st.history_size);
    sampled = true;
  }
  const uint64_t distance = static_cast<uint64_t>(epoch) - static_cast<uint64_t>(st.epoch);
  const int steps = distance >= static_cast<uint64_t>(buckets) ? buckets : static_cast<int>(distance);
  const size_t stride = stride_;
  uint8_t* const regs = st.registers();
  for (int k = 0; k < steps; ++k) {
    int64_t e;
    if (__builtin_sub_overflow(epoch, static_cast<int64_t>(k), &e)) break;
    const auto idx = static_cast<size_t>(((e % buckets) + buckets) % buckets);
    for (uint32_t j = 0; j < m_; ++j) regs[j * stride + idx] = 0;
  }
  st.epoch = epoch;
  st.current = static_cast<uint32_t>(((epoch % buckets) + buckets) % buckets);
  st.bucket_start = EpochStart(epoch, width_);
  st.bucket_end = SaturatingAdd(st.bucket_start, width_);
  RebuildUnion(st);
  if (sampled) RebuildBaseline(st);
  Rescore(st);
}

Scored CardinalityDetector::UpdateHash(CardinalityState& st, uint64_t h, EventTime time) const {
  const size_t stride = stride_;
  // A state of another shape (or decoded from damaged bytes) starts afresh; the
  // history's shape is checked where it is used (Rotate), off the hot path.
  if (st.register_count != stride * m_ || st.current >= static_cast<uint32_t>(config_.buckets) ||
      st.zeros > m_) [[unlikely]] {
    Reset(st, FloorDiv(time, width_));
  }
  size_t bucket;
  if (time >= st.bucket_start && time < st.bucket_end) [[likely]] {
    bucket = st.current;
  } else {
    const int64_t e = FloorDiv(time, width_);
    if (e > st.epoch) {
      Rotate(st, e);
      bucket = st.current;
    } else if (static_cast<uint64_t>(st.epoch) - static_cast<uint64_t>(e) >=
               static_cast<uint64_t>(config_.buckets)) {
      return {};  // older than the window
    } else {
      bucket = static_cast<size_t>(((e % config_.buckets) + config_.buckets) % config_.buckets);
    }
  }
  const int p = config_.precision;
  const uint32_t j = static_cast<uint32_t>(h >> (64 - p));
  const uint8_t rank = static_cast<uint8_t>(std::countl_zero((h << p) | (uint64_t{1} << (p - 1))) + 1);
  // Register j of every sub-window lies side by side: one cache line.
  uint8_t* reg = st.registers() + j * stride;
  if (rank > reg[bucket]) {
    // The union's register j before this record: the max over the sub-windows
    // (unrolled for the default 4, the common case: registers grow often while
    // a young sub-window fills).
    uint8_t u;
    if (stride == 4) {
      u = std::max(std::max(reg[0], reg[1]), std::max(reg[2], reg[3]));
    } else {
      u = 0;
      for (size_t b = 0; b < stride; ++b) u = std::max(u, reg[b]);
    }
    reg[bucket] = rank;
    if (rank > u) {
      st.zeros -= (u == 0) & (st.zeros > 0);
      st.inv_sum += inv_pow2_[rank] - inv_pow2_[u];
      st.estimate = static_cast<float>(EstimateFrom(st.zeros, st.inv_sum));
      Rescore(st);
    }
  }
  return {st.score, st.raw};
}

std::pair<double, double> CardinalityDetector::Baseline(const CardinalityState& st) const {
  if (st.samples == 0) return {0.0, 0.0};
  std::array<float, kMaxHistory> v;
  size_t n = 0;
  for (size_t i = 0; i < st.samples && i < st.history_size; ++i) {
    if (std::isfinite(st.History(i))) v[n++] = st.History(i);
  }
  if (n == 0) return {0.0, 0.0};
  const auto [med, mad] = MedianMad(v.data(), n);
  return {med, 1.4826 * mad};
}

std::string CardinalityDetector::Explain(const CardinalityState& st, const Observation& obs,
                                         const Scored& scored) const {
  (void)scored;
  std::string out = fmt::format("{} {} {} distinct {} in the last {}", obs.key, config_.verb,
                                internal::FormatCount(st.estimate), config_.item_name,
                                internal::FormatDuration(config_.window_ms));
  if (st.samples < static_cast<uint32_t>(config_.warmup)) {
    return out + fmt::format("; too little history to compare yet ({} of {} windows)", st.samples,
                             config_.warmup);
  }
  const auto [median, spread] = Baseline(st);
  return out + fmt::format("; usually {} (±{})", internal::FormatCount(median),
                           internal::FormatCount(std::max(spread, 1.0)));
}

}  // namespace cairn::detect
