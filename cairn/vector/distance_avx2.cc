// AVX2 + FMA kernels. Compiled with per-function target attributes (the project
// builds for baseline x86-64), selected at run time by distance.cc.
#include "cairn/vector/distance.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cairn::vector::internal {

#if defined(__x86_64__)
namespace {

#define CAIRN_AVX2 __attribute__((target("avx2,fma")))

CAIRN_AVX2 inline float HorizontalSum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

CAIRN_AVX2 inline int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// Lanes [0, n) set, for a masked tail of n <= 8 floats. maskload never touches the
// masked-off lanes, so the tail cannot fault past the end of the array.
CAIRN_AVX2 inline __m256i TailMask(size_t n) {
  alignas(32) static constexpr int32_t kLanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                     0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLanes + 8 - n));
}

// Four independent accumulators hide the FMA latency (4 cycles, 2 per cycle).
CAIRN_AVX2 float L2Sq(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= dim; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  if (i < dim) {
    const __m256i m = TailMask(dim - i);
    const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
    s1 = _mm256_fmadd_ps(d, d, s1);
  }
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

CAIRN_AVX2 float Dot(const float* a, const float* b, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= dim; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  if (i < dim) {
    const __m256i m = TailMask(dim - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// int8: widen to int16 and use madd (pairwise int16 products summed into int32),
// which is exact; maddubs would saturate at (-128)*(-128)*2.
CAIRN_AVX2 int32_t L2SqI8(const int8_t* a, const int8_t* b, size_t dim) {
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m256i d0 = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(va)),
                                        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(vb)));
    const __m256i d1 = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(va, 1)),
                                        _mm256_cvtepi8_epi16(_mm256_extracti128_si256(vb, 1)));
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(d0, d0));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(d1, d1));
  }
  for (; i + 16 <= dim; i += 16) {
    const __m256i d = _mm256_sub_epi16(
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i))),
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i))));
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(d, d));
  }
  int32_t s = HorizontalSum(_mm256_add_epi32(s0, s1));
  for (; i < dim; ++i) {
    const int32_t d = int32_t{a[i]} - int32_t{b[i]};
    s += d * d;
  }
  return s;
}

CAIRN_AVX2 int32_t DotI8(const int8_t* a, const int8_t* b, size_t dim) {
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(va)),
                                                _mm256_cvtepi8_epi16(_mm256_castsi256_si128(vb))));
    s1 = _mm256_add_epi32(s1,
                          _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(va, 1)),
                                            _mm256_cvtepi8_epi16(_mm256_extracti128_si256(vb, 1))));
  }
  for (; i + 16 <= dim; i += 16) {
    s0 = _mm256_add_epi32(
        s0, _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i))),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)))));
  }
  int32_t s = HorizontalSum(_mm256_add_epi32(s0, s1));
  for (; i < dim; ++i) s += int32_t{a[i]} * int32_t{b[i]};
  return s;
}

// Eight codes widened to floats; reads exactly 8 bytes.
CAIRN_AVX2 inline __m256 LoadCodes8(const uint8_t* c) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}

CAIRN_AVX2 float L2SqF32U8(const float* q, const uint8_t* c, const float* w, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), LoadCodes8(c + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), LoadCodes8(c + i + 8));
    s0 = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_loadu_ps(w + i)), d0, s0);
    s1 = _mm256_fmadd_ps(_mm256_mul_ps(d1, _mm256_loadu_ps(w + i + 8)), d1, s1);
  }
  for (; i + 8 <= dim; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(q + i), LoadCodes8(c + i));
    s0 = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_loadu_ps(w + i)), d, s0);
  }
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < dim; ++i) {
    const float d = q[i] - static_cast<float>(c[i]);
    s += w[i] * d * d;
  }
  return s;
}

CAIRN_AVX2 float DotF32U8(const float* q, const uint8_t* c, size_t dim) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadCodes8(c + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), LoadCodes8(c + i + 8), s1);
  }
  for (; i + 8 <= dim; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadCodes8(c + i), s0);
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < dim; ++i) s += q[i] * static_cast<float>(c[i]);
  return s;
}

// ---- one row against four vectors: each 8-float chunk of the row is loaded once
// for four products; two chunks per iteration give eight independent accumulators.

CAIRN_AVX2 void L2SqX4(const float* const* a, const float* b, size_t dim, float* out) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
         s3 = _mm256_setzero_ps(), t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps(),
         t2 = _mm256_setzero_ps(), t3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m256 b0 = _mm256_loadu_ps(b + i), b1 = _mm256_loadu_ps(b + i + 8);
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a0 + i), b0);
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a1 + i), b0);
    __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a2 + i), b0);
    __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a3 + i), b0);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
    d0 = _mm256_sub_ps(_mm256_loadu_ps(a0 + i + 8), b1);
    d1 = _mm256_sub_ps(_mm256_loadu_ps(a1 + i + 8), b1);
    d2 = _mm256_sub_ps(_mm256_loadu_ps(a2 + i + 8), b1);
    d3 = _mm256_sub_ps(_mm256_loadu_ps(a3 + i + 8), b1);
    t0 = _mm256_fmadd_ps(d0, d0, t0);
    t1 = _mm256_fmadd_ps(d1, d1, t1);
    t2 = _mm256_fmadd_ps(d2, d2, t2);
    t3 = _mm256_fmadd_ps(d3, d3, t3);
  }
  for (; i < dim; i += 8) {
    const __m256i m = TailMask(dim - i >= 8 ? 8 : dim - i);
    const __m256 b0 = _mm256_maskload_ps(b + i, m);
    const __m256 d0 = _mm256_sub_ps(_mm256_maskload_ps(a0 + i, m), b0);
    const __m256 d1 = _mm256_sub_ps(_mm256_maskload_ps(a1 + i, m), b0);
    const __m256 d2 = _mm256_sub_ps(_mm256_maskload_ps(a2 + i, m), b0);
    const __m256 d3 = _mm256_sub_ps(_mm256_maskload_ps(a3 + i, m), b0);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  out[0] = HorizontalSum(_mm256_add_ps(s0, t0));
  out[1] = HorizontalSum(_mm256_add_ps(s1, t1));
  out[2] = HorizontalSum(_mm256_add_ps(s2, t2));
  out[3] = HorizontalSum(_mm256_add_ps(s3, t3));
}

CAIRN_AVX2 void DotX4(const float* const* a, const float* b, size_t dim, float* out) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
         s3 = _mm256_setzero_ps(), t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps(),
         t2 = _mm256_setzero_ps(), t3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m256 b0 = _mm256_loadu_ps(b + i), b1 = _mm256_loadu_ps(b + i + 8);
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + i), b0, s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + i), b0, s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a2 + i), b0, s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a3 + i), b0, s3);
    t0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + i + 8), b1, t0);
    t1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + i + 8), b1, t1);
    t2 = _mm256_fmadd_ps(_mm256_loadu_ps(a2 + i + 8), b1, t2);
    t3 = _mm256_fmadd_ps(_mm256_loadu_ps(a3 + i + 8), b1, t3);
  }
  for (; i < dim; i += 8) {
    const __m256i m = TailMask(dim - i >= 8 ? 8 : dim - i);
    const __m256 b0 = _mm256_maskload_ps(b + i, m);
    s0 = _mm256_fmadd_ps(_mm256_maskload_ps(a0 + i, m), b0, s0);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a1 + i, m), b0, s1);
    s2 = _mm256_fmadd_ps(_mm256_maskload_ps(a2 + i, m), b0, s2);
    s3 = _mm256_fmadd_ps(_mm256_maskload_ps(a3 + i, m), b0, s3);
  }
  out[0] = HorizontalSum(_mm256_add_ps(s0, t0));
  out[1] = HorizontalSum(_mm256_add_ps(s1, t1));
  out[2] = HorizontalSum(_mm256_add_ps(s2, t2));
  out[3] = HorizontalSum(_mm256_add_ps(s3, t3));
}

constexpr KernelTable kAvx2 = {"avx2",    L2Sq,     Dot,    L2SqI8, DotI8,
                               L2SqF32U8, DotF32U8, L2SqX4, DotX4};

}  // namespace

const KernelTable* Avx2Kernels() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported ? &kAvx2 : nullptr;
}

#else  // not x86-64

const KernelTable* Avx2Kernels() { return nullptr; }

#endif

}  // namespace cairn::vector::internal
