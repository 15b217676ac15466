#include "cairn/infer/tensor_type.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/base/random.h"

namespace cairn::infer {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<float> Gaussian(size_t n, uint64_t seed, float sigma = 1.0f) {
  SplitMix64 rng(seed);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i += 2) {
    const double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
    const double r = std::sqrt(-2 * std::log(u1));
    v[i] = static_cast<float>(sigma * r * std::cos(2 * M_PI * u2));
    if (i + 1 < n) v[i + 1] = static_cast<float>(sigma * r * std::sin(2 * M_PI * u2));
  }
  return v;
}

TEST(TensorTypeTest, TableMatchesGgmlIds) {
  EXPECT_EQ(static_cast<uint32_t>(TensorType::kQ4_K), 12u);
  EXPECT_EQ(static_cast<uint32_t>(TensorType::kBF16), 30u);
  EXPECT_EQ(FindTensorType(4), nullptr);  // retired Q4_2
  EXPECT_EQ(FindTensorType(31), nullptr);
  EXPECT_EQ(FindTensorType(1000), nullptr);
  ASSERT_NE(FindTensorType(14), nullptr);
  EXPECT_STREQ(FindTensorType(14)->name, "q6_K");
  EXPECT_EQ(BlockBytes(TensorType::kQ4_0), 18);
  EXPECT_EQ(BlockBytes(TensorType::kQ8_0), 34);
  EXPECT_EQ(BlockBytes(TensorType::kQ4_K), 144);
  EXPECT_EQ(BlockBytes(TensorType::kQ6_K), 210);
  EXPECT_EQ(BlockSize(TensorType::kQ6_K), 256);
  EXPECT_EQ(BlockBytes(TensorType::kIQ4_XS), 136);
  int supported = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    if (const TensorTypeInfo* t = FindTensorType(id); t != nullptr && t->supported) ++supported;
  }
  EXPECT_EQ(supported, 7);
  EXPECT_FALSE(IsSupported(TensorType::kQ5_K));
}

TEST(TensorTypeTest, ParseAndRowBytes) {
  EXPECT_EQ(*ParseTensorType("Q4_K"), TensorType::kQ4_K);
  EXPECT_EQ(*ParseTensorType("q8_0"), TensorType::kQ8_0);
  EXPECT_EQ(*ParseTensorType("BF16"), TensorType::kBF16);
  EXPECT_FALSE(ParseTensorType("q4_k_m").ok());
  EXPECT_EQ(*RowBytes(TensorType::kQ4_0, 64), 36u);
  EXPECT_EQ(*RowBytes(TensorType::kF16, 3), 6u);
  EXPECT_EQ(*RowBytes(TensorType::kQ6_K, 512), 420u);
  EXPECT_FALSE(RowBytes(TensorType::kQ4_K, 576).ok());
  EXPECT_FALSE(RowBytes(TensorType::kF32, -1).ok());
}

TEST(TensorTypeTest, Fp16KnownValues) {
  EXPECT_EQ(Fp32ToFp16(1.0f), 0x3C00);
  EXPECT_EQ(Fp32ToFp16(-2.0f), 0xC000);
  EXPECT_EQ(Fp32ToFp16(0.1f), 0x2E66);
  EXPECT_EQ(Fp32ToFp16(65504.0f), 0x7BFF);
  EXPECT_EQ(Fp32ToFp16(65519.0f), 0x7BFF);
  EXPECT_EQ(Fp32ToFp16(65520.0f), 0x7C00);  // rounds to infinity
  EXPECT_EQ(Fp32ToFp16(-INFINITY), 0xFC00);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25)), 0x0000);      // tie to even
  EXPECT_EQ(Fp32ToFp16(std::ldexp(3.0f, -25)), 0x0002);      // tie to even
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1023.0f, -24) + std::ldexp(1.0f, -25)), 0x0400);  // into the normals
  EXPECT_EQ(Fp32ToFp16(FromBits(0x3F801000)), 0x3C00);  // 1 + 2^-11: tie, to even
  EXPECT_EQ(Fp32ToFp16(FromBits(0x3F803000)), 0x3C02);  // 1 + 3*2^-11: tie, to even (up)
  EXPECT_EQ(Fp32ToFp16(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(Fp16ToFp32(Fp32ToFp16(NAN))));
  EXPECT_EQ(Fp16ToFp32(0x3555), 0.333251953125f);
  EXPECT_EQ(Fp16ToFp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(Fp16ToFp32(0x7C00), INFINITY);
}

TEST(TensorTypeTest, Fp16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(Fp32ToFp16(f), h) << std::hex << h;
  }
}

#if defined(__FLT16_MAX__) && defined(__x86_64__)
// The compiler's own _Float16 conversion is an independent round-to-nearest-even oracle.
TEST(TensorTypeTest, Fp16MatchesCompilerConversion) {
  SplitMix64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    // Exponents around the half range, including subnormals and overflow.
    const uint32_t bits = static_cast<uint32_t>(rng.Next()) & 0x807FFFFFu;
    const uint32_t exp = 96 + static_cast<uint32_t>(rng.Next() % 50);
    const float f = FromBits(bits | (exp << 23));
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(Fp32ToFp16(f), want) << f;
  }
}
#endif

TEST(TensorTypeTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(Fp32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(Fp32ToBf16(FromBits(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(Fp32ToBf16(FromBits(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(Fp32ToBf16(FromBits(0x3F808001)), 0x3F81);
  EXPECT_EQ(Bf16ToFp32(0xC040), -3.0f);
  EXPECT_TRUE(std::isnan(Bf16ToFp32(Fp32ToBf16(NAN))));
  EXPECT_EQ(Bits(Bf16ToFp32(0x3F81)), 0x3F810000u);
}

TEST(TensorTypeTest, DequantizeQ4_0HandBuilt) {
  BlockQ4_0 b;
  b.d = 0x3800;  // 0.5
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  ASSERT_TRUE(Dequantize(TensorType::kQ4_0, &b, y, 32).ok());
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f);
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f);
  }
}

TEST(TensorTypeTest, QuantizeQ4_0ByHand) {
  // x[j] = (j - 16) / 4: the largest magnitude is x[0] = -4, so d = -4 / -8 = 0.5 and
  // q = trunc(x / 0.5 + 8.5) = trunc(j / 2 + 0.5), capped at 15.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = (j - 16) * 0.25f;
  BlockQ4_0 b;
  ASSERT_TRUE(Quantize(TensorType::kQ4_0, x, &b, 32).ok());
  EXPECT_EQ(b.d, 0x3800);
  for (int j = 0; j < 32; ++j) {
    const int want = std::min(15, static_cast<int>(j / 2.0 + 0.5));
    const int got = j < 16 ? (b.qs[j] & 0xF) : (b.qs[j - 16] >> 4);
    EXPECT_EQ(got, want) << j;
  }
}

TEST(TensorTypeTest, Q8_0HandBuiltAndByHand) {
  BlockQ8_0 b;
  b.d = 0x3400;  // 0.25
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 128);
  float y[32];
  ASSERT_TRUE(Dequantize(TensorType::kQ8_0, &b, y, 32).ok());
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], (j * 8 - 128) * 0.25f);

  // amax 127 gives d = 1 exactly, so q = round(x) with halves away from zero.
  float x[32] = {127.0f, -2.5f, 2.5f, 0.49f, -126.6f};
  ASSERT_TRUE(Quantize(TensorType::kQ8_0, x, &b, 32).ok());
  EXPECT_EQ(b.d, 0x3C00);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], -3);
  EXPECT_EQ(b.qs[2], 3);
  EXPECT_EQ(b.qs[3], 0);
  EXPECT_EQ(b.qs[4], -127);
}

// Packs 6-bit scale/min pairs as the Q4_K layout describes: sub-blocks 0-3 in the low 6
// bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 in the nibbles of bytes
// 8-11, their top two bits in the top bits of bytes 0-7.
void PackQ4KScales(const int sc[8], const int m[8], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

TEST(TensorTypeTest, DequantizeQ4_KHandBuilt) {
  const int sc[8] = {1, 10, 20, 63, 5, 33, 47, 62};
  const int m[8] = {0, 3, 17, 63, 40, 1, 31, 16};
  BlockQ4_K b;
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  PackQ4KScales(sc, m, b.scales);
  for (int j = 0; j < 8; ++j) {
    uint8_t s, mm;
    Q4KScaleMin(j, b.scales, &s, &mm);
    EXPECT_EQ(s, sc[j]);
    EXPECT_EQ(mm, m[j]);
  }
  for (int i = 0; i < 128; ++i) b.qs[i] = static_cast<uint8_t>((i * 7 + 3) & 0xFF);
  std::vector<float> y(256);
  ASSERT_TRUE(Dequantize(TensorType::kQ4_K, &b, y.data(), 256).ok());
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32, l = e % 32;
    const uint8_t byte = b.qs[32 * (j / 2) + l];
    const int q = (j % 2 == 0) ? (byte & 15) : (byte >> 4);
    EXPECT_EQ(y[e], 1.0f * sc[j] * q - 0.5f * m[j]) << e;
  }
}

TEST(TensorTypeTest, DequantizeQ6_KHandBuilt) {
  BlockQ6_K b;
  b.d = 0x3400;  // 0.25
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j * 17 - 128);
  int q[256];
  for (int e = 0; e < 256; ++e) q[e] = (e * 37 + 11) % 64;
  std::memset(b.ql, 0, sizeof b.ql);
  std::memset(b.qh, 0, sizeof b.qh);
  // Element e: half n = e / 128; within it, quarter k = (e % 128) / 32 and l = e % 32.
  // Low 4 bits: ql[64n + l + 32 * (k % 2)], low nibble for k < 2, high for k >= 2.
  // High 2 bits: qh[32n + l] at bit 2k.
  for (int e = 0; e < 256; ++e) {
    const int n = e / 128, k = (e % 128) / 32, l = e % 32;
    uint8_t& lo = b.ql[64 * n + l + 32 * (k % 2)];
    lo |= static_cast<uint8_t>((q[e] & 15) << (k >= 2 ? 4 : 0));
    b.qh[32 * n + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * k));
  }
  std::vector<float> y(256);
  ASSERT_TRUE(Dequantize(TensorType::kQ6_K, &b, y.data(), 256).ok());
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.25f * b.scales[e / 16] * (q[e] - 32)) << e;
}

struct ErrorBound {
  TensorType type;
  double max_rel_rmse;  // RMS error / RMS of the data
};

TEST(TensorTypeTest, QuantizeDequantizeErrorBounds) {
  const int n = 256 * 16;
  const std::vector<float> x = Gaussian(n, 42);
  const ErrorBound bounds[] = {
      {TensorType::kF32, 0.0},     {TensorType::kF16, 0.0005}, {TensorType::kBF16, 0.004},
      {TensorType::kQ8_0, 0.01},   {TensorType::kQ6_K, 0.04},  {TensorType::kQ4_0, 0.15},
      {TensorType::kQ4_K, 0.12},
  };
  for (const ErrorBound& b : bounds) {
    std::vector<uint8_t> q(*RowBytes(b.type, n));
    std::vector<float> y(n);
    ASSERT_TRUE(Quantize(b.type, x.data(), q.data(), n).ok());
    ASSERT_TRUE(Dequantize(b.type, q.data(), y.data(), n).ok());
    double err = 0, ref = 0;
    for (int i = 0; i < n; ++i) {
      err += (x[i] - y[i]) * static_cast<double>(x[i] - y[i]);
      ref += x[i] * static_cast<double>(x[i]);
    }
    const double rel = std::sqrt(err / ref);
    EXPECT_LE(rel, b.max_rel_rmse) << TensorTypeName(b.type);
    // Requantizing the dequantized values must not drift far (the blocks are valid).
    std::vector<uint8_t> q2(q.size());
    ASSERT_TRUE(Quantize(b.type, y.data(), q2.data(), n).ok());
    std::vector<float> y2(n);
    ASSERT_TRUE(Dequantize(b.type, q2.data(), y2.data(), n).ok());
    double drift = 0;
    for (int i = 0; i < n; ++i) drift += (y[i] - y2[i]) * static_cast<double>(y[i] - y2[i]);
    EXPECT_LE(std::sqrt(drift / ref), b.max_rel_rmse) << TensorTypeName(b.type);
  }
}

TEST(TensorTypeTest, PerElementBoundsOfBlockTypes) {
  const int n = 32 * 64;
  const std::vector<float> x = Gaussian(n, 3);
  // Q8_0: |x - y| <= d/2 (rounding) plus the fp16 rounding of d, at most 127 * d * 2^-11.
  std::vector<BlockQ8_0> q8(n / 32);
  std::vector<float> y(n);
  ASSERT_TRUE(Quantize(TensorType::kQ8_0, x.data(), q8.data(), n).ok());
  ASSERT_TRUE(Dequantize(TensorType::kQ8_0, q8.data(), y.data(), n).ok());
  for (int i = 0; i < n; ++i) {
    const float d = Fp16ToFp32(q8[i / 32].d);
    ASSERT_LE(std::fabs(x[i] - y[i]), d * 0.5f + 127 * d * 0x1p-11f + 1e-7f) << i;
  }
  // Q4_0: the largest magnitude maps to -8d exactly, every other value within one step.
  std::vector<BlockQ4_0> q4(n / 32);
  ASSERT_TRUE(Quantize(TensorType::kQ4_0, x.data(), q4.data(), n).ok());
  ASSERT_TRUE(Dequantize(TensorType::kQ4_0, q4.data(), y.data(), n).ok());
  for (int i = 0; i < n; ++i) {
    const float d = std::fabs(Fp16ToFp32(q4[i / 32].d));
    ASSERT_LE(std::fabs(x[i] - y[i]), d * 1.01f + 1e-6f) << i;
  }
}

TEST(TensorTypeTest, ZerosStayZero) {
  const int n = 512;
  std::vector<float> x(n, 0.0f), y(n, 1.0f);
  for (TensorType t : {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0, TensorType::kQ4_0,
                       TensorType::kQ4_K, TensorType::kQ6_K}) {
    std::vector<uint8_t> q(*RowBytes(t, n), 0xAB);
    ASSERT_TRUE(Quantize(t, x.data(), q.data(), n).ok());
    ASSERT_TRUE(Dequantize(t, q.data(), y.data(), n).ok());
    for (int i = 0; i < n; ++i) ASSERT_EQ(y[i], 0.0f) << TensorTypeName(t) << " " << i;
  }
}

TEST(TensorTypeTest, RejectsUnsupportedAndPartialBlocks) {
  float x[256] = {};
  uint8_t out[1024] = {};
  EXPECT_EQ(Dequantize(TensorType::kQ5_K, out, x, 256).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Quantize(TensorType::kIQ2_XXS, x, out, 256).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Quantize(TensorType::kQ4_K, x, out, 100).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dequantize(TensorType::kQ8_0, out, x, 33).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::infer
