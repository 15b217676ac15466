// NEON kernels for aarch64 (Advanced SIMD is mandatory there, so no run-time check).
// Integer dot products use the dot-product extension (vdotq_s32, ARMv8.2) when the
// compiler targets it (-march=armv8.2-a+dotprod or later) and widening multiplies with
// pairwise adds otherwise, so the file runs on every 64-bit ARM core. Both operands are
// signed here: Q4_0 values are stored minus 8 and Q6_K values minus 32, Q4_K nibbles
// (0..15) fit int8 as they are.
//
// Every tile computes each output with the same operations in the same order.
#include "cairn/infer/kernels_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace cairn::infer::internal {

#if defined(__aarch64__)
namespace {

// acc + the 16 products of a and b, summed in groups of 4.
inline int32x4_t Dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
  const int16x8_t hi = vmull_high_s8(a, b);
  return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

inline float Half(const uint8_t* p) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(LoadU16(p)))), 0); }

inline const uint8_t* RowPtr(const GemmArgs& g, int64_t r) { return g.w + static_cast<size_t>(r) * g.row_bytes; }

template <int R, int T>
inline void StoreTile(const GemmArgs& g, int64_t r0, int64_t t0, float32x4_t (&acc)[R][T]) {
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = vaddvq_f32(acc[r][t]);
}

// ---- Q4_0 and Q8_0 ----

template <bool kQ8>
struct BlockKernel {
  static constexpr int kBlockBytes = kQ8 ? 34 : 18;

  template <int R, int T>
  static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    float32x4_t acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_f32(0);
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = RowPtr(g, r0 + r * g.rs);
    for (int64_t b = 0; b < a.nb; ++b) {
      int8x16_t w0[R], w1[R];
      float dw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = rows[r] + kBlockBytes * b;
        if ((b & 3) == 0) PrefetchNextTile<R, T, kBlockBytes * 4>(blk, g);
        if constexpr (kQ8) {
          w0[r] = vld1q_s8(reinterpret_cast<const int8_t*>(blk + 2));
          w1[r] = vld1q_s8(reinterpret_cast<const int8_t*>(blk + 18));
        } else {
          const uint8x16_t v = vld1q_u8(blk + 2);
          const int8x16_t eight = vdupq_n_s8(8);
          w0[r] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), eight);
          w1[r] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
        }
        dw[r] = Half(blk);
      }
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + b;
        const int8x16_t x0 = vld1q_s8(a.qs + tb * 32), x1 = vld1q_s8(a.qs + tb * 32 + 16);
        const float da = a.d[tb];
        for (int r = 0; r < R; ++r) {
          const int32x4_t p = Dot(Dot(vdupq_n_s32(0), w0[r], x0), w1[r], x1);
          acc[r][t] = vfmaq_f32(acc[r][t], vcvtq_f32_s32(p), vdupq_n_f32(dw[r] * da));
        }
      }
    }
    StoreTile<R, T>(g, r0, t0, acc);
  }
};

// ---- Q4_K ----

struct Q4_KKernel {
  template <int R, int T>
  static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    float32x4_t acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_f32(0);
    for (int64_t b = 0; b < a.nb; ++b) {
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = RowPtr(g, r0 + r * g.rs) + 144 * b;
        PrefetchNextTile<R, T, 144>(blk, g);
        const uint8_t* q = blk + 16;
        uint64_t scales, mins;
        UnpackQ4KScales(blk + 4, &scales, &mins);
        const float d = Half(blk), dmin = Half(blk + 2);
        for (int t = 0; t < T; ++t) {
          const int64_t tb = (t0 + t) * a.nb + b;
          const int8_t* x = a.qs + tb * kQK_K;
          int32x4_t isum = vdupq_n_s32(0);
          for (int j2 = 0; j2 < 4; ++j2) {
            const uint8x16_t v0 = vld1q_u8(q + 32 * j2), v1 = vld1q_u8(q + 32 * j2 + 16);
            const int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(v0, vdupq_n_u8(0x0F)));
            const int8x16_t lo1 = vreinterpretq_s8_u8(vandq_u8(v1, vdupq_n_u8(0x0F)));
            const int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(v0, 4));
            const int8x16_t hi1 = vreinterpretq_s8_u8(vshrq_n_u8(v1, 4));
            const int8_t* xs = x + 64 * j2;
            const int32x4_t slo = Dot(Dot(vdupq_n_s32(0), lo0, vld1q_s8(xs)), lo1, vld1q_s8(xs + 16));
            const int32x4_t shi = Dot(Dot(vdupq_n_s32(0), hi0, vld1q_s8(xs + 32)), hi1, vld1q_s8(xs + 48));
            isum = vmlaq_n_s32(isum, slo, static_cast<int32_t>((scales >> (16 * j2)) & 0xFF));
            isum = vmlaq_n_s32(isum, shi, static_cast<int32_t>((scales >> (16 * j2 + 8)) & 0xFF));
          }
          const int16_t* bs = a.bsums + tb * 16;
          int32_t msum = 0;
          for (int j = 0; j < 8; ++j) msum += static_cast<int32_t>((mins >> (8 * j)) & 0xFF) * (bs[2 * j] + bs[2 * j + 1]);
          const float da = a.d[tb];
          acc[r][t] = vfmaq_f32(acc[r][t], vcvtq_f32_s32(isum), vdupq_n_f32(d * da));
          acc[r][t] = vfmsq_f32(acc[r][t], vcvtq_f32_s32(vsetq_lane_s32(msum, vdupq_n_s32(0), 0)), vdupq_n_f32(dmin * da));
        }
      }
    }
    StoreTile<R, T>(g, r0, t0, acc);
  }
};

// ---- Q6_K ----

struct Q6_KKernel {
  template <int R, int T>
  static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    float32x4_t acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x03);
    const int8x16_t off = vdupq_n_s8(32);
    for (int64_t b = 0; b < a.nb; ++b) {
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = RowPtr(g, r0 + r * g.rs) + 210 * b;
        PrefetchNextTile<R, T, 210>(blk, g);
        const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
        const float d = Half(blk + 208);
        for (int t = 0; t < T; ++t) {
          const int64_t tb = (t0 + t) * a.nb + b;
          const int8_t* x = a.qs + tb * kQK_K;
          int32x4_t isum = vdupq_n_s32(0);
          for (int half = 0; half < 2; ++half) {
            for (int c = 0; c < 2; ++c) {
              // 16 values of each of the four groups 8 * half + c + {0, 2, 4, 6}.
              const uint8x16_t l0 = vld1q_u8(blk + 64 * half + 16 * c);
              const uint8x16_t l1 = vld1q_u8(blk + 64 * half + 32 + 16 * c);
              const uint8x16_t h = vld1q_u8(blk + 128 + 32 * half + 16 * c);
              const uint8x16_t q[4] = {
                  vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(h, m2), 4)),
                  vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m2), 4)),
                  vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), m2), 4)),
                  vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4)),
              };
              for (int k = 0; k < 4; ++k) {
                const int8x16_t w = vsubq_s8(vreinterpretq_s8_u8(q[k]), off);
                const int32x4_t p = Dot(vdupq_n_s32(0), w, vld1q_s8(x + 128 * half + 32 * k + 16 * c));
                isum = vmlaq_n_s32(isum, p, sc[8 * half + 2 * k + c]);
              }
            }
          }
          acc[r][t] = vfmaq_f32(acc[r][t], vcvtq_f32_s32(isum), vdupq_n_f32(d * a.d[tb]));
        }
      }
    }
    StoreTile<R, T>(g, r0, t0, acc);
  }
};

// ---- F32 / F16 / BF16 ----

struct LoadF32 {
  static float32x4_t Load4(const uint8_t* row, int64_t i) { return vld1q_f32(reinterpret_cast<const float*>(row) + i); }
  static float Load1(const uint8_t* row, int64_t i) {
    float f;
    std::memcpy(&f, row + 4 * i, 4);
    return f;
  }
};
struct LoadF16 {
  static float32x4_t Load4(const uint8_t* row, int64_t i) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(row + 2 * i))));
  }
  static float Load1(const uint8_t* row, int64_t i) { return Fp16ToFp32(LoadU16(row + 2 * i)); }
};
struct LoadBF16 {
  static float32x4_t Load4(const uint8_t* row, int64_t i) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(row + 2 * i)), 16));
  }
  static float Load1(const uint8_t* row, int64_t i) { return Bf16ToFp32(LoadU16(row + 2 * i)); }
};

template <class L>
struct FloatKernel {
  template <int R, int T>
  static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    float32x4_t acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = vdupq_n_f32(0);
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = RowPtr(g, r0 + r * g.rs);
    const float* xs = g.acts->x;
    int64_t i = 0;
    for (; i + 4 <= g.cols; i += 4) {
      float32x4_t w[R];
      for (int r = 0; r < R; ++r) w[r] = L::Load4(rows[r], i);
      for (int t = 0; t < T; ++t) {
        const float32x4_t x = vld1q_f32(xs + (t0 + t) * g.acts->ldx + i);
        for (int r = 0; r < R; ++r) acc[r][t] = vfmaq_f32(acc[r][t], w[r], x);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        float s = vaddvq_f32(acc[r][t]);
        for (int64_t k = i; k < g.cols; ++k) s += L::Load1(rows[r], k) * xs[(t0 + t) * g.acts->ldx + k];
        g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = s;
      }
    }
  }
};

void GemmQ4_0(const GemmArgs& g) { RunTiles<BlockKernel<false>>(g); }
void GemmQ8_0(const GemmArgs& g) { RunTiles<BlockKernel<true>>(g); }
void GemmQ4_K(const GemmArgs& g) { RunTiles<Q4_KKernel>(g); }
void GemmQ6_K(const GemmArgs& g) { RunTiles<Q6_KKernel>(g); }
void GemmF32(const GemmArgs& g) { RunTiles<FloatKernel<LoadF32>>(g); }
void GemmF16(const GemmArgs& g) { RunTiles<FloatKernel<LoadF16>>(g); }
void GemmBF16(const GemmArgs& g) { RunTiles<FloatKernel<LoadBF16>>(g); }

#if defined(__ARM_FEATURE_DOTPROD)
constexpr const char* kDescription = "neon (dotprod)";
#else
constexpr const char* kDescription = "neon";
#endif

constexpr IsaKernels kNeon = {Isa::kNeon, kDescription, QuantizeQ8_0Scalar, QuantizeQ8_KScalar, GemmF32, GemmF16,
                              GemmBF16,   GemmQ8_0,     GemmQ4_0,           GemmQ4_K,           GemmQ6_K};

}  // namespace

const IsaKernels* NeonKernels() { return &kNeon; }

#else

const IsaKernels* NeonKernels() { return nullptr; }

#endif

}  // namespace cairn::infer::internal
