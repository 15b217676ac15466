#include "cairn/detect/cardinality.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
  history_size = static_cast<uint16_t>(history);  // <= kMaxHistory
  std::memset(inline_registers, 0, sizeof inline_registers);
  std::fill(std::begin(inline_history), std::end(inline_history), 0.0f);
  std::memset(inline_order, 0, sizeof inline_order);
  spill.Reset(FitsInline(registers, history)
                  ? 0
                  : ((registers + 3) & ~size_t{3}) + history * (sizeof(float) + sizeof(uint16_t)));
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
  const uint32_t samples = r.U32();
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
  // The ring fills from position 0: until it is full the next write goes to `samples`.
  if (h > kMaxHistory || samples > h || (h > 0 && out->next >= h) || (samples < h && out->next != samples) ||
      out->current >= 64 || out->zeros > registers.size()) {
    r.Fail("cardinality state: ring positions out of range");
    return false;
  }
  const auto bad = [](float v) { return !std::isfinite(v) || v < 0.0f; };
  if (bad(out->estimate) || bad(out->base_s) || !std::isfinite(out->base_y) || !std::isfinite(out->inv_sum) ||
      std::any_of(history.begin(), history.end(), bad)) {
    r.Fail("cardinality state: counts are not finite");
    return false;
  }
  out->samples = static_cast<uint16_t>(samples);
  out->Allocate(registers.size(), h);
  if (!registers.empty()) std::memcpy(out->registers(), registers.data(), registers.size());
  for (size_t i = 0; i < h; ++i) out->SetHistory(i, history[i]);
  std::array<uint16_t, kMaxHistory> order;
  for (uint16_t i = 0; i < samples; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.begin() + samples,
                   [&](uint16_t a, uint16_t b) { return history[a] < history[b]; });
  for (size_t k = 0; k < samples; ++k) out->SetOrder(k, order[k]);
  return true;
}

CardinalityDetector::CardinalityDetector(CardinalityConfig c) : config_(std::move(c)) {
  width_ = config_.window_ms / config_.buckets;
  m_ = uint32_t{1} << config_.precision;
  stride_ = static_cast<size_t>(config_.buckets);
  inline_ = CardinalityState::FitsInline(stride_ * m_, static_cast<size_t>(config_.history));
  straddles_ = !std::has_single_bit(stride_);  // groups start at multiples of stride: 1..64
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
// the sum of 2^-u (u clamped to 64 for damaged bytes), in two accumulators so
// that no single chain of dependent adds serializes it. The sum is exact while
// every u <= 46 (a sum <= 64 and its smallest term 2^-46 span the 53 bits of a
// double): a register of 47 or more needs a hash with 46 leading zero bits after
// the register index. kStride > 0 unrolls the common shapes.
constexpr std::array<double, 65> kInvPow2 = [] {
  std::array<double, 65> t{};
  double v = 1.0;
  for (double& x : t) x = v, v *= 0.5;
  return t;
}();

template <size_t kStride>
void UnionPass(const uint8_t* regs, uint32_t m, size_t stride, uint32_t* zeros, double* sum) {
  if constexpr (kStride > 0) stride = kStride;
  uint32_t z = 0;
  double acc[2] = {0.0, 0.0};
  for (uint32_t j = 0; j < m; ++j) {
    const uint8_t* reg = regs + j * stride;
    uint8_t u = 0;
    for (size_t b = 0; b < stride; ++b) u = std::max(u, reg[b]);
    z += u == 0;
    acc[j & 1] += kInvPow2[std::min<unsigned>(u, 64)];
  }
  *zeros = z;
  *sum = acc[0] + acc[1];
}

#if defined(__SSE2__)
// UnionPass<4> that first clears, in every group, the bytes `keep` zeroes (the
// sub-windows leaving the window): four groups per 16-byte vector, the max of
// each group's four bytes by two shifted byte maxima. The sum of 2^-u is taken
// in the vector registers too: 2^-u is a float whose exponent field is 127 - u
// (u <= 64: a normal number), widened to double and added in two pairs of lanes
// (exact under the same condition as UnionPass's).
void ClearUnionPass4(uint8_t* regs, uint32_t m, uint32_t keep, uint32_t* zeros, double* sum) {
  const __m128i kept = _mm_set1_epi32(static_cast<int>(keep));
  const __m128i low = _mm_set1_epi32(0xFF);
  const __m128i max_rank = _mm_set1_epi32(64);
  const __m128i bias = _mm_set1_epi32(127);
  __m128i empty = _mm_setzero_si128();  // minus the count of empty registers, per lane
  __m128d acc0 = _mm_setzero_pd(), acc1 = _mm_setzero_pd();
  for (uint32_t j = 0; j < m; j += 4) {  // m is a power of two >= 16
    auto* p = reinterpret_cast<__m128i*>(regs + 4 * size_t{j});
    __m128i v = _mm_and_si128(_mm_loadu_si128(p), kept);
    _mm_storeu_si128(p, v);
    v = _mm_max_epu8(v, _mm_srli_epi32(v, 8));
    v = _mm_and_si128(_mm_max_epu8(v, _mm_srli_epi32(v, 16)), low);  // u in 0..255
    empty = _mm_add_epi32(empty, _mm_cmpeq_epi32(v, _mm_setzero_si128()));
    v = _mm_min_epi16(v, max_rank);  // damaged bytes count as 64 (the upper halves are 0)
    const __m128 pow = _mm_castsi128_ps(_mm_slli_epi32(_mm_sub_epi32(bias, v), 23));
    acc0 = _mm_add_pd(acc0, _mm_cvtps_pd(pow));
    acc1 = _mm_add_pd(acc1, _mm_cvtps_pd(_mm_movehl_ps(pow, pow)));
  }
  alignas(16) int32_t e[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(e), empty);
  *zeros = static_cast<uint32_t>(-(e[0] + e[1] + e[2] + e[3]));
  alignas(16) double a[2];
  _mm_store_pd(a, _mm_add_pd(acc0, acc1));
  *sum = a[0] + a[1];
}
#endif

}  // namespace

// A sub-window rotation (about one record in 15 per key with 100 K keys at one
// record per key and second) recomputes the union: kept cheap.
void CardinalityDetector::RebuildUnion(CardinalityState& st, uint32_t keep) const {
  uint32_t zeros = 0;
  double sum = 0.0;
  uint8_t* const regs = st.registers();
  switch (stride_) {
    case 1: UnionPass<1>(regs, m_, stride_, &zeros, &sum); break;
    case 2: UnionPass<2>(regs, m_, stride_, &zeros, &sum); break;
#if defined(__SSE2__)
    case 4: ClearUnionPass4(regs, m_, keep, &zeros, &sum); break;
#else
    case 4: UnionPass<4>(regs, m_, stride_, &zeros, &sum); break;
#endif
    case 8: UnionPass<8>(regs, m_, stride_, &zeros, &sum); break;
    default: UnionPass<0>(regs, m_, stride_, &zeros, &sum); break;
  }
  st.zeros = zeros;
  st.inv_sum = sum;
  st.estimate = static_cast<float>(EstimateFrom(zeros, sum));
}

namespace {

// The k-th smallest (0-based) of |y_i - med| over sorted y[0..n), and the one
// before it (k > 0): the deviations below and above the median are each sorted
// already, so the two runs are merged outwards from where y crosses med.
template <typename Y>
std::pair<float, float> KthDeviation(const Y& y, size_t n, float med, size_t k) {
  size_t hi = 0;
  while (hi < n && y(hi) < med) ++hi;  // y(hi..) >= med
  size_t lo = hi;                      // y(..lo-1) < med
  float prev = 0.0f, cur = 0.0f;
  for (size_t taken = 0; taken <= k; ++taken) {
    prev = cur;
    const bool left = lo > 0, right = hi < n;
    const float dl = left ? std::fabs(y(lo - 1) - med) : 0.0f;
    const float dr = right ? std::fabs(y(hi) - med) : 0.0f;
    if (left && (!right || dl <= dr)) {
      cur = dl;
      --lo;
    } else {
      cur = dr;
      ++hi;
    }
  }
  return {prev, cur};
}

}  // namespace

// Median and MAD of y = sqrt(count + 3/8) over the history, from the sorted
// order (the same values MedianMad would give on the whole array).
void CardinalityDetector::RebuildBaseline(CardinalityState& st) const {
  const size_t n = st.samples;
  if (n == 0) {
    st.base_y = 0.0f;
    st.base_s = 1.0f;
    return;
  }
  const auto y = [&st](size_t k) { return std::sqrt(st.History(st.Order(k)) + 0.375f); };
  const float med = n % 2 == 1 ? y(n / 2) : 0.5f * (y(n / 2 - 1) + y(n / 2));
  const auto [dev_lo, dev_hi] = KthDeviation(y, n, med, n / 2);
  const float mad = n % 2 == 1 ? dev_hi : 0.5f * (dev_lo + dev_hi);
  st.base_y = med;
  st.base_s = std::max(1.4826f * mad, 0.5f) * (1.0f + 1.0f / static_cast<float>(n));
}

// Adds `count` to the history at ring position `next` (dropping the count it
// replaces once the ring is full) and keeps the sorted order.
void CardinalityDetector::AppendHistory(CardinalityState& st, float count) const {
  const size_t pos = st.next;
  size_t n = st.samples;
  if (n == st.history_size) {  // full: the oldest count, at `pos`, leaves the order
    size_t k = 0;
    while (k < n && st.Order(k) != pos) ++k;
    for (; k + 1 < n; ++k) st.SetOrder(k, st.Order(k + 1));
    --n;
  }
  st.SetHistory(pos, count);
  size_t k = n;  // after every count <= this one: equal counts keep arrival order
  while (k > 0 && st.History(st.Order(k - 1)) > count) {
    st.SetOrder(k, st.Order(k - 1));
    --k;
  }
  st.SetOrder(k, pos);
  st.samples = static_cast<uint16_t>(n + 1);
  st.next = pos + 1 == st.history_size ? 0 : static_cast<uint32_t>(pos + 1);
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
    AppendHistory(st, st.estimate);
    sampled = true;
  }
  const uint64_t distance = static_cast<uint64_t>(epoch) - static_cast<uint64_t>(st.epoch);
  const int steps = distance >= static_cast<uint64_t>(buckets) ? buckets : static_cast<int>(distance);
  const size_t stride = stride_;
  const uint32_t m = m_;
  uint8_t* const regs = st.registers();
  // The sub-windows that leave the window are cleared; with four (x86) as the
  // union pass reads each group, through the bytes `keep` zeroes.
#if defined(__SSE2__)
  constexpr bool kFused = true;
#else
  constexpr bool kFused = false;
#endif
  uint32_t keep = ~uint32_t{0};
  for (int k = 0; k < steps; ++k) {
    int64_t e;
    if (__builtin_sub_overflow(epoch, static_cast<int64_t>(k), &e)) break;
    const auto idx = static_cast<size_t>(((e % buckets) + buckets) % buckets);
    if (kFused && stride == 4) {
      keep &= ~(uint32_t{0xFF} << (8 * idx));
    } else {
      for (uint32_t j = 0; j < m; ++j) regs[j * stride + idx] = 0;
    }
  }
  st.epoch = epoch;
  st.current = static_cast<uint32_t>(((epoch % buckets) + buckets) % buckets);
  st.bucket_start = EpochStart(epoch, width_);
  st.bucket_end = SaturatingAdd(st.bucket_start, width_);
  RebuildUnion(st, keep);
  if (sampled) RebuildBaseline(st);
  Rescore(st);
}

Scored CardinalityDetector::UpdateHash(CardinalityState& st, uint64_t h, EventTime time) const {
  return UpdateOne(st, h, time);
}

// UpdateHash's body, inlined into UpdateBatch's loop.
inline __attribute__((always_inline)) Scored CardinalityDetector::UpdateOne(CardinalityState& st, uint64_t h,
                                                                             EventTime time) const {
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

size_t CardinalityDetector::UpdateBatch(std::span<CardinalityState* const> states, std::span<const uint64_t> item_hashes,
                                        std::span<const EventTime> times, std::span<Scored> out) const {
  const size_t n = std::min({states.size(), item_hashes.size(), times.size(), out.size()});
  // Two stages, as PrefetchState / Prefetch describe: the first line and the
  // register line kFar records ahead (no read of the state, so many misses
  // overlap), then, kNear ahead, the rest of a state whose record opens a new
  // sub-window (that reads the first line, in flight since the first stage).
  constexpr size_t kFar = 24, kNear = 12;
  for (size_t i = 0; i < std::min(n, kFar); ++i) PrefetchState(*states[i], item_hashes[i]);
  for (size_t i = 0; i < n; ++i) {
    if (i + kFar < n) PrefetchState(*states[i + kFar], item_hashes[i + kFar]);
    if (i + kNear < n) Prefetch(*states[i + kNear], item_hashes[i + kNear], times[i + kNear]);
    out[i] = UpdateOne(*states[i], item_hashes[i], times[i]);
  }
  return n;
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
