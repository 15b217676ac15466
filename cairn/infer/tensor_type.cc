#include "cairn/infer/tensor_type.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

namespace cairn::infer {
namespace {

// Sizes from GGML's type_traits table (ggml.c). Retired ids (4, 5, 31-33, 36-38) are absent.
constexpr TensorTypeInfo kTypes[] = {
    {TensorType::kF32, "f32", 1, 4, true},
    {TensorType::kF16, "f16", 1, 2, true},
    {TensorType::kQ4_0, "q4_0", 32, 18, true},
    {TensorType::kQ4_1, "q4_1", 32, 20, false},
    {TensorType::kQ5_0, "q5_0", 32, 22, false},
    {TensorType::kQ5_1, "q5_1", 32, 24, false},
    {TensorType::kQ8_0, "q8_0", 32, 34, true},
    {TensorType::kQ8_1, "q8_1", 32, 36, false},
    {TensorType::kQ2_K, "q2_K", 256, 84, false},
    {TensorType::kQ3_K, "q3_K", 256, 110, false},
    {TensorType::kQ4_K, "q4_K", 256, 144, true},
    {TensorType::kQ5_K, "q5_K", 256, 176, false},
    {TensorType::kQ6_K, "q6_K", 256, 210, true},
    {TensorType::kQ8_K, "q8_K", 256, 292, false},
    {TensorType::kIQ2_XXS, "iq2_xxs", 256, 66, false},
    {TensorType::kIQ2_XS, "iq2_xs", 256, 74, false},
    {TensorType::kIQ3_XXS, "iq3_xxs", 256, 98, false},
    {TensorType::kIQ1_S, "iq1_s", 256, 50, false},
    {TensorType::kIQ4_NL, "iq4_nl", 32, 18, false},
    {TensorType::kIQ3_S, "iq3_s", 256, 110, false},
    {TensorType::kIQ2_S, "iq2_s", 256, 82, false},
    {TensorType::kIQ4_XS, "iq4_xs", 256, 136, false},
    {TensorType::kI8, "i8", 1, 1, false},
    {TensorType::kI16, "i16", 1, 2, false},
    {TensorType::kI32, "i32", 1, 4, false},
    {TensorType::kI64, "i64", 1, 8, false},
    {TensorType::kF64, "f64", 1, 8, false},
    {TensorType::kIQ1_M, "iq1_m", 256, 56, false},
    {TensorType::kBF16, "bf16", 1, 2, true},
    {TensorType::kTQ1_0, "tq1_0", 256, 54, false},
    {TensorType::kTQ2_0, "tq2_0", 256, 66, false},
    {TensorType::kMXFP4, "mxfp4", 32, 17, false},
};

constexpr uint32_t kMaxId = 40;

constexpr std::array<int8_t, kMaxId> BuildIndex() {
  std::array<int8_t, kMaxId> index{};
  for (auto& i : index) i = -1;
  for (size_t i = 0; i < std::size(kTypes); ++i) index[static_cast<uint32_t>(kTypes[i].type)] = static_cast<int8_t>(i);
  return index;
}
constexpr std::array<int8_t, kMaxId> kIndex = BuildIndex();

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// GGML's nearest_int (the 1.5 * 2^23 trick) rounds half to even, as nearbyint does in
// the default rounding mode.
int NearestInt(float x) { return static_cast<int>(std::nearbyint(x)); }

// ---- Q4_0 ----

void DequantizeQ4_0(const BlockQ4_0* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(blocks[i].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int x0 = (blocks[i].qs[j] & 0x0F) - 8;
      const int x1 = (blocks[i].qs[j] >> 4) - 8;
      y[i * kQK4_0 + j] = static_cast<float>(x0) * d;
      y[i * kQK4_0 + j + kQK4_0 / 2] = static_cast<float>(x1) * d;
    }
  }
}

// GGML's reference quantizer: the element of largest magnitude maps to -8 exactly.
void QuantizeQ4_0(const float* x, BlockQ4_0* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK4_0;
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      // The int8 truncation (not rounding) after adding 8.5 is GGML's.
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j + kQK4_0 / 2] * id + 8.5f)));
      blocks[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// ---- Q8_0 ----

void DequantizeQ8_0(const BlockQ8_0* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(blocks[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[i * kQK8_0 + j] = static_cast<float>(blocks[i].qs[j]) * d;
  }
}

void QuantizeQ8_0(const float* x, BlockQ8_0* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[i].d = Fp32ToFp16(d);
    // roundf (half away from zero), as GGML's reference.
    for (int j = 0; j < kQK8_0; ++j) blocks[i].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
  }
}

// ---- Q4_K ----

void DequantizeQ4_K(const BlockQ4_K* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(blocks[i].d);
    const float dmin = Fp16ToFp32(blocks[i].dmin);
    const uint8_t* q = blocks[i].qs;
    for (int j = 0; j < kQK_K / 64; ++j) {
      uint8_t sc, m;
      Q4KScaleMin(2 * j, blocks[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = dmin * m;
      Q4KScaleMin(2 * j + 1, blocks[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
    }
  }
}

// Per sub-block of 32: an affine fit y = scale * q - min with q in 0..15 and min >= 0
// (the offset is never positive, as in GGML), refined by one least-squares pass over
// the chosen q. Then the 8 scales and 8 mins are quantized to 6 bits against the
// super-block's largest, and q recomputed with the scales actually stored.
void QuantizeQ4_K(const float* x, BlockQ4_K* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK_K;
    float scales[8], mins[8];
    for (int j = 0; j < 8; ++j) {
      const float* s = xb + 32 * j;
      float lo = s[0], hi = s[0];
      for (int l = 1; l < 32; ++l) {
        lo = std::min(lo, s[l]);
        hi = std::max(hi, s[l]);
      }
      lo = std::min(lo, 0.0f);
      float scale = (hi - lo) / 15;
      float min = -lo;
      if (scale > 0) {
        // Least squares for (scale, offset) given the rounded q: minimize
        // sum (scale*q + offset - x)^2; keep it only if the offset stays <= 0.
        double sq = 0, sqq = 0, sx = 0, sqx = 0;
        const float inv = 1.0f / scale;
        for (int l = 0; l < 32; ++l) {
          const int q = std::clamp(NearestInt((s[l] - lo) * inv), 0, 15);
          sq += q;
          sqq += static_cast<double>(q) * q;
          sx += s[l];
          sqx += q * static_cast<double>(s[l]);
        }
        const double det = 32 * sqq - sq * sq;
        if (det > 0) {
          const double a = (32 * sqx - sq * sx) / det;
          const double b = (sx - a * sq) / 32;
          if (a > 0 && b <= 0) {
            scale = static_cast<float>(a);
            min = static_cast<float>(-b);
          }
        }
      } else {
        scale = 0;
      }
      scales[j] = scale;
      mins[j] = min;
    }
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      ls[j] = static_cast<uint8_t>(std::min(63, NearestInt(inv_scale * scales[j])));
      lm[j] = static_cast<uint8_t>(std::min(63, NearestInt(inv_min * mins[j])));
    }
    BlockQ4_K& b = blocks[i];
    std::memset(b.scales, 0, sizeof b.scales);
    for (int j = 0; j < 8; ++j) {
      if (j < 4) {
        b.scales[j] = ls[j];
        b.scales[j + 4] = lm[j];
      } else {
        b.scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
        b.scales[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
        b.scales[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
      }
    }
    b.d = Fp32ToFp16(max_scale / 63.f);
    b.dmin = Fp32ToFp16(max_min / 63.f);
    const float d = Fp16ToFp32(b.d);
    const float dmin = Fp16ToFp32(b.dmin);
    uint8_t q[kQK_K];
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      Q4KScaleMin(j, b.scales, &sc, &m);
      const float dj = d * sc;
      const float mj = dmin * m;
      for (int l = 0; l < 32; ++l) {
        q[32 * j + l] = dj == 0.0f ? 0 : static_cast<uint8_t>(std::clamp(NearestInt((xb[32 * j + l] + mj) / dj), 0, 15));
      }
    }
    for (int j = 0; j < kQK_K / 64; ++j) {
      for (int l = 0; l < 32; ++l) b.qs[32 * j + l] = static_cast<uint8_t>(q[64 * j + l] | (q[64 * j + 32 + l] << 4));
    }
  }
}

// ---- Q6_K ----

void DequantizeQ6_K(const BlockQ6_K* blocks, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(blocks[i].d);
    const uint8_t* ql = blocks[i].ql;
    const uint8_t* qh = blocks[i].qh;
    const int8_t* sc = blocks[i].scales;
    for (int n = 0; n < kQK_K; n += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

// Per sub-block of 16: the element of largest magnitude maps to -32 (as GGML's
// make_qx_quants starts), then the 16 scales are quantized to int8 against the largest.
void QuantizeQ6_K(const float* x, BlockQ6_K* blocks, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK_K;
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < 16; ++j) {
      float amax = 0, max = 0;
      for (int l = 0; l < 16; ++l) {
        const float v = xb[16 * j + l];
        if (std::fabs(v) > amax) {
          amax = std::fabs(v);
          max = v;
        }
      }
      scales[j] = max / -32;
      if (std::fabs(scales[j]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    BlockQ6_K& b = blocks[i];
    uint8_t q[kQK_K];
    if (max_abs_scale == 0) {
      std::memset(&b, 0, sizeof b);
      std::memset(q, 32, sizeof q);
    } else {
      const float iscale = -128.f / max_scale;
      b.d = Fp32ToFp16(1 / iscale);
      for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[j])));
      const float d = Fp16ToFp32(b.d);
      for (int j = 0; j < 16; ++j) {
        const float dj = d * b.scales[j];
        for (int l = 0; l < 16; ++l) {
          const int v = dj == 0.0f ? 0 : std::clamp(NearestInt(xb[16 * j + l] / dj), -32, 31);
          q[16 * j + l] = static_cast<uint8_t>(v + 32);
        }
      }
    }
    uint8_t* ql = b.ql;
    uint8_t* qh = b.qh;
    for (int n = 0; n < kQK_K; n += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = q[n + l], q2 = q[n + l + 32], q3 = q[n + l + 64], q4 = q[n + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

absl::Status CheckArgs(TensorType type, int64_t n) {
  const TensorTypeInfo& info = TypeInfo(type);
  if (!info.supported) {
    return absl::InvalidArgumentError(fmt::format("tensor type {} is not supported (supported: f32, f16, bf16, "
                                                  "q8_0, q4_0, q4_K, q6_K)",
                                                  info.name));
  }
  if (n < 0 || n % info.block_size != 0) {
    return absl::InvalidArgumentError(
        fmt::format("{} elements are not a whole number of {} blocks of {}", n, info.name, info.block_size));
  }
  return absl::OkStatus();
}

}  // namespace

const TensorTypeInfo* FindTensorType(uint32_t id) {
  if (id >= kMaxId || kIndex[id] < 0) return nullptr;
  return &kTypes[kIndex[id]];
}

const TensorTypeInfo& TypeInfo(TensorType type) {
  const TensorTypeInfo* info = FindTensorType(static_cast<uint32_t>(type));
  // Only reachable with a value cast from an unchecked integer: a programmer error.
  if (info == nullptr) __builtin_trap();
  return *info;
}

absl::StatusOr<TensorType> ParseTensorType(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const TensorTypeInfo& info : kTypes) {
    std::string n = info.name;
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (n == lower) return info.type;
  }
  return absl::InvalidArgumentError(fmt::format("unknown tensor type '{}'", name));
}

absl::StatusOr<uint64_t> RowBytes(TensorType type, int64_t n) {
  const TensorTypeInfo& info = TypeInfo(type);
  if (n < 0 || n % info.block_size != 0) {
    return absl::InvalidArgumentError(
        fmt::format("row of {} elements is not a whole number of {} blocks of {}", n, info.name, info.block_size));
  }
  return static_cast<uint64_t>(n / info.block_size) * static_cast<uint64_t>(info.block_bytes);
}

absl::Status Dequantize(TensorType type, const void* src, float* out, int64_t n) {
  if (absl::Status s = CheckArgs(type, n); !s.ok()) return s;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case TensorType::kF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = Fp16ToFp32(h);
      }
      break;
    }
    case TensorType::kBF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = Bf16ToFp32(h);
      }
      break;
    }
    case TensorType::kQ4_0:
      DequantizeQ4_0(static_cast<const BlockQ4_0*>(src), out, n / kQK4_0);
      break;
    case TensorType::kQ8_0:
      DequantizeQ8_0(static_cast<const BlockQ8_0*>(src), out, n / kQK8_0);
      break;
    case TensorType::kQ4_K:
      DequantizeQ4_K(static_cast<const BlockQ4_K*>(src), out, n / kQK_K);
      break;
    case TensorType::kQ6_K:
      DequantizeQ6_K(static_cast<const BlockQ6_K*>(src), out, n / kQK_K);
      break;
    default:
      break;  // CheckArgs admits only the cases above
  }
  return absl::OkStatus();
}

absl::Status Quantize(TensorType type, const float* src, void* dst, int64_t n) {
  if (absl::Status s = CheckArgs(type, n); !s.ok()) return s;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case TensorType::kF16: {
      auto* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = Fp32ToFp16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    }
    case TensorType::kBF16: {
      auto* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = Fp32ToBf16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    }
    case TensorType::kQ4_0:
      QuantizeQ4_0(src, static_cast<BlockQ4_0*>(dst), n / kQK4_0);
      break;
    case TensorType::kQ8_0:
      QuantizeQ8_0(src, static_cast<BlockQ8_0*>(dst), n / kQK8_0);
      break;
    case TensorType::kQ4_K:
      QuantizeQ4_K(src, static_cast<BlockQ4_K*>(dst), n / kQK_K);
      break;
    case TensorType::kQ6_K:
      QuantizeQ6_K(src, static_cast<BlockQ6_K*>(dst), n / kQK_K);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

float Fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float.
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return BitsFloat(sign | 0x7F800000u | (mant << 13));
  return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t Fp32ToFp16(float f) {
  const uint32_t bits = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00);  // NaN
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);  // >= 65520 rounds to inf
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a multiple of 2^-24, rounded to nearest
    // even; 1024 (the smallest normal) is the right encoding too.
    const float scaled = std::ldexp(BitsFloat(abs), 24);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)));
  }
  uint32_t h = (abs >> 13) - (112u << 10);
  const uint32_t rest = abs & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

uint16_t Fp32ToBf16(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
  return static_cast<uint16_t>((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
}

}  // namespace cairn::infer
