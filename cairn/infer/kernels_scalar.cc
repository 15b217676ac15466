// The scalar path: the reference the SIMD paths are tested against, and the fallback on
// CPUs without them. Integer dot products over the quantized activations, one block at a
// time, in the order the block layouts define.
#include <algorithm>
#include <cmath>

#include "cairn/infer/kernels_internal.h"

namespace cairn::infer::internal {

void QuantizeQ8_0Scalar(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sums) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float db = amax / 127;
    const float id = db != 0 ? 1 / db : 0;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      qs[b * 32 + i] = static_cast<int8_t>(q);
      sum += q;
    }
    d[b] = db;
    sums[b] = sum;
  }
}

void QuantizeQ8_KScalar(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float amax = 0;
    for (int i = 0; i < kQK_K; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float db = amax / 127;
    const float id = db != 0 ? 1 / db : 0;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int q = static_cast<int>(std::nearbyint(xb[i] * id));
        qs[b * kQK_K + i] = static_cast<int8_t>(q);
        sum += q;
      }
      bsums[b * 16 + g] = static_cast<int16_t>(sum);
    }
    d[b] = db;
  }
}

namespace {

const uint8_t* Row(const GemmArgs& g, int64_t r) { return g.w + static_cast<size_t>(r) * g.row_bytes; }

float DotQ8_0(const uint8_t* w, const Acts& a, int64_t t) {
  const int8_t* qs = a.qs + t * a.cols;
  const float* d = a.d + t * a.nb;
  float acc = 0;
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = w + b * sizeof(BlockQ8_0);
    const auto* wq = reinterpret_cast<const int8_t*>(blk + 2);
    int32_t isum = 0;
    for (int i = 0; i < 32; ++i) isum += int32_t{wq[i]} * qs[b * 32 + i];
    acc += Fp16ToFp32(LoadU16(blk)) * d[b] * static_cast<float>(isum);
  }
  return acc;
}

float DotQ4_0(const uint8_t* w, const Acts& a, int64_t t) {
  const int8_t* qs = a.qs + t * a.cols;
  const float* d = a.d + t * a.nb;
  float acc = 0;
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = w + b * sizeof(BlockQ4_0);
    const int8_t* ab = qs + b * 32;
    int32_t isum = 0;
    for (int i = 0; i < 16; ++i) {
      isum += ((blk[2 + i] & 0xF) - 8) * ab[i];
      isum += ((blk[2 + i] >> 4) - 8) * ab[i + 16];
    }
    acc += Fp16ToFp32(LoadU16(blk)) * d[b] * static_cast<float>(isum);
  }
  return acc;
}

// Per super-block: d * sum_j scale_j * (q . a)_j - dmin * sum_j min_j * (sum of a)_j,
// the sums of a taken from the activation's bsums.
float DotQ4_K(const uint8_t* w, const Acts& a, int64_t t) {
  const int8_t* qs = a.qs + t * a.cols;
  const float* d = a.d + t * a.nb;
  const int16_t* bsums = a.bsums + t * a.nb * 16;
  float acc = 0;
  for (int64_t b = 0; b < a.nb; ++b) {
    const auto* blk = reinterpret_cast<const uint8_t*>(w + b * sizeof(BlockQ4_K));
    uint64_t scales, mins;
    UnpackQ4KScales(blk + 4, &scales, &mins);
    const uint8_t* q = blk + 4 + kKScaleBytes;
    const int8_t* ab = qs + b * kQK_K;
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) {
        const int v = j % 2 == 0 ? q[32 * (j / 2) + l] & 0xF : q[32 * (j / 2) + l] >> 4;
        s += v * ab[32 * j + l];
      }
      isum += static_cast<int32_t>((scales >> (8 * j)) & 0xFF) * s;
      msum += static_cast<int32_t>((mins >> (8 * j)) & 0xFF) * (bsums[b * 16 + 2 * j] + bsums[b * 16 + 2 * j + 1]);
    }
    const float da = d[b];
    acc += Fp16ToFp32(LoadU16(blk)) * da * static_cast<float>(isum) -
           Fp16ToFp32(LoadU16(blk + 2)) * da * static_cast<float>(msum);
  }
  return acc;
}

// Per super-block: d * sum over the 16 groups of scale_g * ((q - 32) . a)_g.
float DotQ6_K(const uint8_t* w, const Acts& a, int64_t t) {
  const int8_t* qs = a.qs + t * a.cols;
  const float* d = a.d + t * a.nb;
  float acc = 0;
  for (int64_t b = 0; b < a.nb; ++b) {
    const auto* blk = reinterpret_cast<const BlockQ6_K*>(w + b * sizeof(BlockQ6_K));
    int32_t group[16] = {};
    const int8_t* ab = qs + b * kQK_K;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = blk->ql + 64 * half;
      const uint8_t* qh = blk->qh + 32 * half;
      const int8_t* ah = ab + 128 * half;
      for (int l = 0; l < 32; ++l) {
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        const int g = 8 * half + l / 16;
        group[g] += q1 * ah[l];
        group[g + 2] += q2 * ah[l + 32];
        group[g + 4] += q3 * ah[l + 64];
        group[g + 6] += q4 * ah[l + 96];
      }
    }
    int32_t isum = 0;
    for (int g = 0; g < 16; ++g) isum += blk->scales[g] * group[g];
    acc += Fp16ToFp32(blk->d) * d[b] * static_cast<float>(isum);
  }
  return acc;
}

template <float (*Dot)(const uint8_t*, const Acts&, int64_t)>
void GemmQuant(const GemmArgs& g) {
  for (int64_t r = g.r0; r < g.r1; ++r) {
    for (int64_t t = g.t0; t < g.t1; ++t) g.y[t * g.ldy + r] = Dot(Row(g, r), *g.acts, t);
  }
}

// Float weights: each row is converted in pieces of 256 and dotted with every token, the
// sum running over the columns in order.
template <float (*Load)(const uint8_t*, int64_t)>
void GemmFloat(const GemmArgs& g) {
  constexpr int64_t kPiece = 256;
  float wf[kPiece];
  for (int64_t r = g.r0; r < g.r1; ++r) {
    for (int64_t t = g.t0; t < g.t1; ++t) g.y[t * g.ldy + r] = 0;
    for (int64_t c0 = 0; c0 < g.cols; c0 += kPiece) {
      const int64_t len = std::min(kPiece, g.cols - c0);
      for (int64_t i = 0; i < len; ++i) wf[i] = Load(Row(g, r), c0 + i);
      for (int64_t t = g.t0; t < g.t1; ++t) {
        const float* xt = g.acts->x + t * g.acts->ldx + c0;
        float s = g.y[t * g.ldy + r];
        for (int64_t i = 0; i < len; ++i) s += wf[i] * xt[i];
        g.y[t * g.ldy + r] = s;
      }
    }
  }
}

float LoadF32(const uint8_t* row, int64_t i) {
  float f;
  std::memcpy(&f, row + 4 * i, 4);
  return f;
}
float LoadF16(const uint8_t* row, int64_t i) { return Fp16ToFp32(LoadU16(row + 2 * i)); }
float LoadBF16(const uint8_t* row, int64_t i) { return Bf16ToFp32(LoadU16(row + 2 * i)); }

constexpr IsaKernels kScalar = {
    Isa::kScalar,           "scalar",           QuantizeQ8_0Scalar,   QuantizeQ8_KScalar,
    GemmFloat<LoadF32>,     GemmFloat<LoadF16>, GemmFloat<LoadBF16>,  GemmQuant<DotQ8_0>,
    GemmQuant<DotQ4_0>,     GemmQuant<DotQ4_K>, GemmQuant<DotQ6_K>,
};

}  // namespace

const IsaKernels* ScalarKernels() { return &kScalar; }

}  // namespace cairn::infer::internal
