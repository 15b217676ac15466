// NEON kernels for aarch64 (Advanced SIMD is mandatory there, so no run-time check).
// Only baseline ARMv8.0 instructions are used (no dot-product extension), so the
// table runs on every 64-bit ARM core, Raspberry Pi 3/4 included.
#include "cairn/vector/distance.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace cairn::vector::internal {

#if defined(__aarch64__)
namespace {

// Four accumulators of 4 lanes hide the FMA latency.
float L2Sq(const float* a, const float* b, size_t dim) {
  float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
    const float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    const float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    const float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    s0 = vfmaq_f32(s0, d0, d0);
    s1 = vfmaq_f32(s1, d1, d1);
    s2 = vfmaq_f32(s2, d2, d2);
    s3 = vfmaq_f32(s3, d3, d3);
  }
  for (; i + 4 <= dim; i += 4) {
    const float32x4_t d = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
    s0 = vfmaq_f32(s0, d, d);
  }
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

float Dot(const float* a, const float* b, size_t dim) {
  float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= dim; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < dim; ++i) s += a[i] * b[i];
  return s;
}

// int8 products fit int16 (|-128 * -128| = 16384); pairwise-add them into int32.
int32_t DotI8(const int8_t* a, const int8_t* b, size_t dim) {
  int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const int8x16_t va = vld1q_s8(a + i), vb = vld1q_s8(b + i);
    s0 = vpadalq_s16(s0, vmull_s8(vget_low_s8(va), vget_low_s8(vb)));
    s1 = vpadalq_s16(s1, vmull_high_s8(va, vb));
  }
  int32_t s = vaddvq_s32(vaddq_s32(s0, s1));
  for (; i < dim; ++i) s += int32_t{a[i]} * int32_t{b[i]};
  return s;
}

// Differences need 9 bits: subtract into int16, then square-accumulate into int32.
int32_t L2SqI8(const int8_t* a, const int8_t* b, size_t dim) {
  int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const int8x16_t va = vld1q_s8(a + i), vb = vld1q_s8(b + i);
    const int16x8_t d0 = vsubl_s8(vget_low_s8(va), vget_low_s8(vb));
    const int16x8_t d1 = vsubl_high_s8(va, vb);
    s0 = vmlal_s16(s0, vget_low_s16(d0), vget_low_s16(d0));
    s1 = vmlal_high_s16(s1, d0, d0);
    s0 = vmlal_s16(s0, vget_low_s16(d1), vget_low_s16(d1));
    s1 = vmlal_high_s16(s1, d1, d1);
  }
  int32_t s = vaddvq_s32(vaddq_s32(s0, s1));
  for (; i < dim; ++i) {
    const int32_t d = int32_t{a[i]} - int32_t{b[i]};
    s += d * d;
  }
  return s;
}

// Eight codes widened to two float vectors.
inline void LoadCodes8(const uint8_t* c, float32x4_t* lo, float32x4_t* hi) {
  const uint16x8_t w = vmovl_u8(vld1_u8(c));
  *lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(w)));
  *hi = vcvtq_f32_u32(vmovl_high_u16(w));
}

float L2SqF32U8(const float* q, const uint8_t* c, const float* w, size_t dim) {
  float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
  size_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    float32x4_t c0, c1;
    LoadCodes8(c + i, &c0, &c1);
    const float32x4_t d0 = vsubq_f32(vld1q_f32(q + i), c0);
    const float32x4_t d1 = vsubq_f32(vld1q_f32(q + i + 4), c1);
    s0 = vfmaq_f32(s0, vmulq_f32(d0, vld1q_f32(w + i)), d0);
    s1 = vfmaq_f32(s1, vmulq_f32(d1, vld1q_f32(w + i + 4)), d1);
  }
  float s = vaddvq_f32(vaddq_f32(s0, s1));
  for (; i < dim; ++i) {
    const float d = q[i] - static_cast<float>(c[i]);
    s += w[i] * d * d;
  }
  return s;
}

float DotF32U8(const float* q, const uint8_t* c, size_t dim) {
  float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
  size_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    float32x4_t c0, c1;
    LoadCodes8(c + i, &c0, &c1);
    s0 = vfmaq_f32(s0, vld1q_f32(q + i), c0);
    s1 = vfmaq_f32(s1, vld1q_f32(q + i + 4), c1);
  }
  float s = vaddvq_f32(vaddq_f32(s0, s1));
  for (; i < dim; ++i) s += q[i] * static_cast<float>(c[i]);
  return s;
}

// NEON has 32 registers too, but four single-row calls are already close to the
// load bandwidth of the small cores this path targets.
void L2SqX4(const float* const* a, const float* b, size_t dim, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = L2Sq(a[j], b, dim);
}

void DotX4(const float* const* a, const float* b, size_t dim, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = Dot(a[j], b, dim);
}

constexpr KernelTable kNeon = {"neon",    L2Sq,     Dot,    L2SqI8, DotI8,
                               L2SqF32U8, DotF32U8, L2SqX4, DotX4};

}  // namespace

const KernelTable* NeonKernels() { return &kNeon; }

#else  // not aarch64

const KernelTable* NeonKernels() { return nullptr; }

#endif

}  // namespace cairn::vector::internal
