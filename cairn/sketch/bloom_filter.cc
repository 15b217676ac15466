#include "cairn/sketch/bloom_filter.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "cairn/base/codec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cairn::sketch {

namespace internal {

#if defined(__x86_64__)
static bool DetectAvx2() {
  __builtin_cpu_init();  // we may run before libgcc's own constructor
  return __builtin_cpu_supports("avx2");
}
const bool kBloomUseAvx2 = DetectAvx2();

// Baseline x86-64 (SSE2) has neither a 32-bit lane multiply nor per-lane
// shifts, so the scalar loop does not vectorize; AVX2 does the eight words in
// one multiply, one shift and one variable shift.
__attribute__((target("avx2"))) static inline __m256i BloomMaskAvx2(uint32_t key) {
  const __m256i salts = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(BloomFilter::kSalts));
  const __m256i products = _mm256_mullo_epi32(_mm256_set1_epi32(static_cast<int>(key)), salts);
  return _mm256_sllv_epi32(_mm256_set1_epi32(1), _mm256_srli_epi32(products, 27));
}

__attribute__((target("avx2"))) void BloomInsertAvx2(uint32_t* block, uint32_t key) {
  __m256i* p = reinterpret_cast<__m256i*>(block);
  _mm256_store_si256(p, _mm256_or_si256(_mm256_load_si256(p), BloomMaskAvx2(key)));
}

__attribute__((target("avx2"))) bool BloomContainsAvx2(const uint32_t* block, uint32_t key) {
  // testc: true when every bit of the mask is set in the block.
  return _mm256_testc_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(block)),
                            BloomMaskAvx2(key));
}
#else
const bool kBloomUseAvx2 = false;
void BloomInsertAvx2(uint32_t*, uint32_t) {}
bool BloomContainsAvx2(const uint32_t*, uint32_t) { return false; }
#endif

}  // namespace internal

namespace {

constexpr uint32_t kMagic = MakeMagic("CBLM");
constexpr uint16_t kVersion = 1;

}  // namespace

double BloomFilter::FalsePositiveRateAtLoad(double keys_per_block) {
  // The keys landing in one block are Poisson(lambda); a block with j keys has
  // each of its eight words' bits set with probability 1 - (31/32)^j, and a
  // query's eight bits are (modelled as) independent. Sum over j in log space
  // so that large loads (lambda > 700) do not underflow exp(-lambda).
  const double lambda = keys_per_block;
  if (!(lambda > 0)) return 0.0;
  const double spread = 12.0 * std::sqrt(lambda) + 12.0;
  const double lo = std::max(0.0, std::floor(lambda - spread));
  const double hi = std::ceil(lambda + spread);
  const double log_lambda = std::log(lambda);
  const double log_keep = std::log(31.0 / 32.0);
  double fpr = 0.0;
  for (double j = lo; j <= hi; j += 1.0) {
    const double log_p = -lambda + j * log_lambda - std::lgamma(j + 1.0);
    const double word_set = -std::expm1(j * log_keep);  // 1 - (31/32)^j
    fpr += std::exp(log_p) * std::pow(word_set, static_cast<double>(kWordsPerBlock));
  }
  return std::min(fpr, 1.0);
}

absl::StatusOr<BloomFilter> BloomFilter::Create(uint64_t expected_keys,
                                                double false_positive_rate) {
  if (expected_keys == 0) {
    return absl::InvalidArgumentError("BloomFilter expected_keys must be at least 1");
  }
  if (!(false_positive_rate >= kMinFalsePositiveRate &&
        false_positive_rate <= kMaxFalsePositiveRate)) {
    return absl::InvalidArgumentError(
        fmt::format("BloomFilter false_positive_rate {} is out of range {}..{}",
                    false_positive_rate, kMinFalsePositiveRate, kMaxFalsePositiveRate));
  }
  // The model FPR rises monotonically with the load, so bisect for the largest
  // keys-per-block whose FPR meets the target, then round the block count up
  // (which only lowers the load). The model matches measurements within noise
  // for XXH3 hashes and these salts (see BloomFilter.MeasuredFprMatchesModel).
  double ok_load = 1e-3;
  double bad_load = 256.0;  // a 256-bit block with 256 keys is saturated
  for (int i = 0; i < 100 && bad_load - ok_load > 1e-9 * bad_load; ++i) {
    const double mid = 0.5 * (ok_load + bad_load);
    if (FalsePositiveRateAtLoad(mid) <= false_positive_rate) {
      ok_load = mid;
    } else {
      bad_load = mid;
    }
  }
  const double blocks = std::ceil(static_cast<double>(expected_keys) / ok_load);
  if (blocks > static_cast<double>(kMaxBlocks)) {
    return absl::InvalidArgumentError(fmt::format(
        "BloomFilter for {} keys at FPR {} needs {} blocks, more than the maximum {}",
        expected_keys, false_positive_rate, blocks, kMaxBlocks));
  }
  return BloomFilter(std::max<uint64_t>(1, static_cast<uint64_t>(blocks)), kSeed);
}

absl::Status BloomFilter::Merge(const BloomFilter& other) {
  if (other.num_blocks_ != num_blocks_ || other.seed_ != seed_) {
    return absl::InvalidArgumentError(fmt::format(
        "BloomFilter merge needs the same shape: this has {} blocks (seed {:016x}), the other "
        "{} blocks (seed {:016x}); create both with the same expected_keys and FPR",
        num_blocks_, seed_, other.num_blocks_, other.seed_));
  }
  if (&other == this) return absl::OkStatus();
  uint32_t* dst = blocks_.data()->words;
  const uint32_t* src = other.blocks_.data()->words;
  const size_t words = num_blocks_ * kWordsPerBlock;
  for (size_t i = 0; i < words; ++i) dst[i] |= src[i];
  return absl::OkStatus();
}

double BloomFilter::EstimatedFalsePositiveRate(uint64_t inserted_keys) const {
  return FalsePositiveRateAtLoad(static_cast<double>(inserted_keys) /
                                 static_cast<double>(num_blocks_));
}

double BloomFilter::FillRatio() const {
  uint64_t set = 0;
  for (const Block& b : blocks_) {
    for (uint32_t w : b.words) set += std::popcount(w);
  }
  return static_cast<double>(set) / (static_cast<double>(num_blocks_) * kBlockBytes * 8);
}

bool operator==(const BloomFilter& a, const BloomFilter& b) {
  return a.num_blocks_ == b.num_blocks_ && a.seed_ == b.seed_ &&
         std::memcmp(a.blocks_.data(), b.blocks_.data(), a.num_blocks_ * BloomFilter::kBlockBytes) == 0;
}

std::string BloomFilter::Serialize() const {
  ByteWriter w;
  w.U64(seed_);
  w.U32(kWordsPerBlock);
  w.U64(num_blocks_);
  w.Bytes(std::string_view(reinterpret_cast<const char*>(blocks_.data()), num_blocks_ * kBlockBytes));
  return SealEnvelope(kMagic, kVersion, w.data());
}

absl::StatusOr<BloomFilter> BloomFilter::Deserialize(std::string_view bytes) {
  auto envelope = OpenEnvelope(bytes, kMagic, kVersion, "BloomFilter");
  if (!envelope.ok()) return envelope.status();
  ByteReader r(envelope->payload, "BloomFilter");
  const uint64_t seed = r.U64();
  const uint32_t words_per_block = r.U32();
  const uint64_t num_blocks = r.U64();
  if (!r.ok()) return r.status();
  if (words_per_block != kWordsPerBlock) {
    r.Fail(fmt::format("{} words per block is not supported (only {})", words_per_block,
                       kWordsPerBlock));
    return r.status();
  }
  if (num_blocks == 0 || num_blocks > kMaxBlocks) {
    r.Fail(fmt::format("block count {} is out of range 1..{}", num_blocks, kMaxBlocks));
    return r.status();
  }
  // Check the length before allocating, so a corrupt count cannot exhaust memory.
  if (r.remaining() != num_blocks * kBlockBytes) {
    r.Fail(fmt::format("{} blocks need {} bytes of bits but {} remain", num_blocks,
                       num_blocks * kBlockBytes, r.remaining()));
    return r.status();
  }
  BloomFilter filter(num_blocks, seed);
  std::string_view bits = r.Bytes(num_blocks * kBlockBytes);
  if (auto st = r.Finish(); !st.ok()) return st;
  std::memcpy(filter.blocks_.data(), bits.data(), bits.size());
  return filter;
}

}  // namespace cairn::sketch
