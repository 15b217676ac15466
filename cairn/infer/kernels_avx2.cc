// AVX2 kernels (with FMA and F16C). Per-function target attributes keep the project's
// baseline flags; kernels.cc picks this table at run time.
//
// Integer dot products use vpmaddubsw (unsigned x signed bytes to int16 pairs) and
// vpmaddwd (int16 pairs to int32), so one operand must be unsigned and no int16 pair
// may exceed 32767:
//   Q4_0: nibbles 0..15 times the activations; the -8 offset comes back as
//         -8 * (sum of the activation block), added to the int32 lanes exactly.
//   Q8_0: |w| times a with w's sign moved onto a (vpsignb), as llama.cpp does.
//   Q4_K: nibbles times a, int16 pairs times the sub-block scale (vpmaddwd); the mins
//         are applied through the activation's 16-value sums.
//   Q6_K: the 6-bit values 0..63 times a, times the group scales; the -32 offset is
//         -32 * sum of scale * (group sum of a).
// Every tile computes each output with the same operations in the same order.
#include "cairn/infer/kernels_internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace cairn::infer::internal {

#if defined(__x86_64__)
namespace {

#define CAIRN_AVX2 __attribute__((target("avx2,fma,f16c")))

CAIRN_AVX2 inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

CAIRN_AVX2 inline float Hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

CAIRN_AVX2 inline int32_t HsumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

CAIRN_AVX2 inline float Half(const uint8_t* p) { return _cvtsh_ss(LoadU16(p)); }

// 32 floats to 32 int8 (rounded to nearest even, as nearbyint) and their int32 lanes.
CAIRN_AVX2 inline __m256i Round32(const float* x, __m256 id, int8_t* out) {
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
  const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
  const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
  const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
  // packs works within 128-bit lanes; the permutation restores the element order.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  return _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
}

CAIRN_AVX2 inline float AbsMax(const float* x, int n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  return Hmax(m);
}

}  // namespace

CAIRN_AVX2 void QuantizeQ8_0Avx2(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sums) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float db = AbsMax(x + 32 * b, 32) / 127;
    const float id = db != 0 ? 1 / db : 0;
    d[b] = db;
    sums[b] = HsumI32(Round32(x + 32 * b, _mm256_set1_ps(id), qs + 32 * b));
  }
}

CAIRN_AVX2 void QuantizeQ8_KAvx2(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + kQK_K * b;
    const float db = AbsMax(xb, kQK_K) / 127;
    const float id = db != 0 ? 1 / db : 0;
    d[b] = db;
    for (int k = 0; k < 8; ++k) {
      // Each 32 values: i0, i1 are the first 16 (one bsum), i2, i3 the second.
      const __m256 vid = _mm256_set1_ps(id);
      const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 32 * k), vid));
      const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 32 * k + 8), vid));
      const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 32 * k + 16), vid));
      const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 32 * k + 24), vid));
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + kQK_K * b + 32 * k),
                          _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
      bsums[16 * b + 2 * k] = static_cast<int16_t>(HsumI32(_mm256_add_epi32(i0, i1)));
      bsums[16 * b + 2 * k + 1] = static_cast<int16_t>(HsumI32(_mm256_add_epi32(i2, i3)));
    }
  }
}

// kernels_avx2_panel.cc.
void PanelQ4_0Avx2(const GemmArgs& g);
void PanelQ8_0Avx2(const GemmArgs& g);
void PanelQ4_KAvx2(const GemmArgs& g);
void PanelQ6_KAvx2(const GemmArgs& g);
void PackedQ4_0Avx2(const GemmArgs& g);
void PackedQ8_0Avx2(const GemmArgs& g);
void PackQ4_0Avx2(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                  size_t panel_bytes);
void PackQ8_0Avx2(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                  size_t panel_bytes);

namespace {

inline const uint8_t* RowPtr(const GemmArgs& g, int64_t r) { return g.w + static_cast<size_t>(r) * g.row_bytes; }

// ---- Q4_0 ----

struct Q4_0Kernel {
  template <int R, int T>
  CAIRN_AVX2 static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = RowPtr(g, r0 + r * g.rs);
    for (int64_t b = 0; b < a.nb; ++b) {
      __m256i w[R];
      float dw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = rows[r] + 18 * b;
        if ((b & 7) == 0) PrefetchNextTile<R, T, 18 * 8>(blk, g);
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        w[r] = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1), mask);
        dw[r] = Half(blk);
      }
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + b;
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + tb * 32));
        const __m256i corr = _mm256_castsi128_si256(_mm_cvtsi32_si128(-8 * a.sums[tb]));
        const float da = a.d[tb];
        for (int r = 0; r < R; ++r) {
          const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(w[r], x), ones), corr);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[r] * da), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = Hsum(acc[r][t]);
  }
};

// ---- Q8_0 ----

struct Q8_0Kernel {
  template <int R, int T>
  CAIRN_AVX2 static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = RowPtr(g, r0 + r * g.rs);
    for (int64_t b = 0; b < a.nb; ++b) {
      __m256i w[R], wabs[R];
      float dw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = rows[r] + 34 * b;
        if ((b & 3) == 0) PrefetchNextTile<R, T, 34 * 4>(blk, g);
        w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
        wabs[r] = _mm256_sign_epi8(w[r], w[r]);
        dw[r] = Half(blk);
      }
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + b;
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + tb * 32));
        const float da = a.d[tb];
        for (int r = 0; r < R; ++r) {
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(x, w[r])), ones);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[r] * da), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = Hsum(acc[r][t]);
  }
};

// ---- Q4_K ----

struct Q4_KKernel {
  template <int R, int T>
  CAIRN_AVX2 static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    const __m256i mask = _mm256_set1_epi8(0x0F);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < a.nb; ++b) {
      // The sums of each 32 activations (pairwise adds of the 16 sums of 16), shared by
      // the rows.
      __m128i bsum32[T];
      for (int t = 0; t < T; ++t) {
        const int16_t* bs = a.bsums + ((t0 + t) * a.nb + b) * 16;
        bsum32[t] = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bs)),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(bs + 8)));
      }
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = RowPtr(g, r0 + r * g.rs) + 144 * b;
        PrefetchNextTile<R, T, 144>(blk, g);
        const uint8_t* q = blk + 16;
        uint64_t scales, mins;
        UnpackQ4KScales(blk + 4, &scales, &mins);
        __m256i sc[8];
        for (int j = 0; j < 8; ++j) sc[j] = _mm256_set1_epi16(static_cast<int16_t>((scales >> (8 * j)) & 0xFF));
        const __m128i mins16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(mins)));
        const float d = Half(blk), dmin = Half(blk + 2);
        for (int t = 0; t < T; ++t) {
          const int64_t tb = (t0 + t) * a.nb + b;
          const int8_t* x = a.qs + tb * kQK_K;
          __m256i isum = _mm256_setzero_si256();
          for (int j = 0; j < 4; ++j) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * j));
            const __m256i lo = _mm256_and_si256(v, mask);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
            const __m256i xl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * j));
            const __m256i xh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * j + 32));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xl), sc[2 * j]));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xh), sc[2 * j + 1]));
          }
          const __m128i msum = _mm_madd_epi16(bsum32[t], mins16);
          const float da = a.d[tb];
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * da), acc[r][t]);
          acc[r][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_castsi128_si256(msum)), _mm256_set1_ps(dmin * da),
                                       acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = Hsum(acc[r][t]);
  }
};

// ---- Q6_K ----

struct Q6_KKernel {
  template <int R, int T>
  CAIRN_AVX2 static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < a.nb; ++b) {
      for (int r = 0; r < R; ++r) {
        const auto* blk = RowPtr(g, r0 + r * g.rs) + 210 * b;
        PrefetchNextTile<R, T, 210>(blk, g);
        const uint8_t* ql = blk;
        const uint8_t* qh = blk + 128;
        const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192));
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        // Scale pairs (groups 2k, 2k+1) as 8 + 8 int16 lanes.
        __m256i sc[8];
        for (int k = 0; k < 8; ++k) {
          const __m128i shuf = _mm_setr_epi8(static_cast<char>(2 * k), static_cast<char>(2 * k),
                                             static_cast<char>(2 * k), static_cast<char>(2 * k),
                                             static_cast<char>(2 * k), static_cast<char>(2 * k),
                                             static_cast<char>(2 * k), static_cast<char>(2 * k),
                                             static_cast<char>(2 * k + 1), static_cast<char>(2 * k + 1),
                                             static_cast<char>(2 * k + 1), static_cast<char>(2 * k + 1),
                                             static_cast<char>(2 * k + 1), static_cast<char>(2 * k + 1),
                                             static_cast<char>(2 * k + 1), static_cast<char>(2 * k + 1));
          sc[k] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, shuf));
        }
        const float d = Half(blk + 208);
        for (int t = 0; t < T; ++t) {
          const int64_t tb = (t0 + t) * a.nb + b;
          const int8_t* x = a.qs + tb * kQK_K;
          __m256i isum = _mm256_setzero_si256();
          for (int half = 0; half < 2; ++half) {
            const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * half));
            const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * half + 32));
            const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh + 32 * half));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            const int8_t* xh = x + 128 * half;
            const __m256i* xv = reinterpret_cast<const __m256i*>(xh);
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q1, _mm256_loadu_si256(xv)), sc[4 * half]));
            isum = _mm256_add_epi32(isum,
                                    _mm256_madd_epi16(_mm256_maddubs_epi16(q2, _mm256_loadu_si256(xv + 1)), sc[4 * half + 1]));
            isum = _mm256_add_epi32(isum,
                                    _mm256_madd_epi16(_mm256_maddubs_epi16(q3, _mm256_loadu_si256(xv + 2)), sc[4 * half + 2]));
            isum = _mm256_add_epi32(isum,
                                    _mm256_madd_epi16(_mm256_maddubs_epi16(q4, _mm256_loadu_si256(xv + 3)), sc[4 * half + 3]));
          }
          const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums + tb * 16));
          isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * a.d[tb]), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = Hsum(acc[r][t]);
  }
};

// ---- F32 / F16 / BF16 ----

struct LoadF32 {
  static constexpr int kBytes = 4;
  CAIRN_AVX2 static __m256 Load8(const uint8_t* row, int64_t i) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
  static float Load1(const uint8_t* row, int64_t i) {
    float f;
    std::memcpy(&f, row + 4 * i, 4);
    return f;
  }
};
struct LoadF16 {
  static constexpr int kBytes = 2;
  CAIRN_AVX2 static __m256 Load8(const uint8_t* row, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  }
  static float Load1(const uint8_t* row, int64_t i) { return Fp16ToFp32(LoadU16(row + 2 * i)); }
};
struct LoadBF16 {
  static constexpr int kBytes = 2;
  CAIRN_AVX2 static __m256 Load8(const uint8_t* row, int64_t i) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static float Load1(const uint8_t* row, int64_t i) { return Bf16ToFp32(LoadU16(row + 2 * i)); }
};

template <class L>
struct FloatKernel {
  template <int R, int T>
  CAIRN_AVX2 static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = RowPtr(g, r0 + r * g.rs);
    const float* xs = g.acts->x;
    int64_t i = 0;
    for (; i + 8 <= g.cols; i += 8) {
      __m256 w[R];
      if ((i & 31) == 0) {
        for (int r = 0; r < R; ++r) PrefetchNextTile<R, T, 32 * L::kBytes>(rows[r] + L::kBytes * i, g);
      }
      for (int r = 0; r < R; ++r) w[r] = L::Load8(rows[r], i);
      for (int t = 0; t < T; ++t) {
        const __m256 x = _mm256_loadu_ps(xs + (t0 + t) * g.acts->ldx + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(w[r], x, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        float s = Hsum(acc[r][t]);
        for (int64_t k = i; k < g.cols; ++k) s += L::Load1(rows[r], k) * xs[(t0 + t) * g.acts->ldx + k];
        g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = s;
      }
    }
  }
};

void GemmQ4_0(const GemmArgs& g) { RunTiles<Q4_0Kernel>(g); }
void GemmQ8_0(const GemmArgs& g) { RunTiles<Q8_0Kernel>(g); }
void GemmQ4_K(const GemmArgs& g) { RunTiles<Q4_KKernel>(g); }
void GemmQ6_K(const GemmArgs& g) { RunTiles<Q6_KKernel>(g); }
void GemmF32(const GemmArgs& g) { RunTiles<FloatKernel<LoadF32>>(g); }
void GemmF16(const GemmArgs& g) { RunTiles<FloatKernel<LoadF16>>(g); }
void GemmBF16(const GemmArgs& g) { RunTiles<FloatKernel<LoadBF16>>(g); }

constexpr IsaKernels kAvx2 = {Isa::kAvx2,   "avx2",        QuantizeQ8_0Avx2, QuantizeQ8_KAvx2, GemmF32,
                              GemmF16,      GemmBF16,      GemmQ8_0,         GemmQ4_0,         GemmQ4_K,
                              GemmQ6_K,     8,             4,                PanelQ8_0Avx2,    PanelQ4_0Avx2,
                              PanelQ4_KAvx2, PanelQ6_KAvx2, PackQ8_0Avx2,     PackQ4_0Avx2,
                              PackedQ8_0Avx2, PackedQ4_0Avx2};

}  // namespace

// Not every compiler's __builtin_cpu_supports knows "f16c" (clang 14 does not): CPUID
// leaf 1, ECX bit 29.
bool CpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
}

const IsaKernels* Avx2Kernels() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
  return supported ? &kAvx2 : nullptr;
}

#else

const IsaKernels* Avx2Kernels() { return nullptr; }
bool CpuHasF16c() { return false; }

#endif

}  // namespace cairn::infer::internal
