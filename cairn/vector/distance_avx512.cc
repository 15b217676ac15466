// AVX-512 kernels (F + BW + VL, and VNNI for the int8 kernels where the CPU has it).
// Per-function target attributes keep the project's baseline flags; distance.cc
// picks this table at run time. Tails use masked loads, which never fault on the
// masked-off bytes, so no scalar remainder loop is needed.
#include "cairn/vector/distance.h"

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined vectors inside _mm512_reduce_add_* and the
// widening conversions as uninitialized (a false positive in its own headers).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace cairn::vector::internal {

#if defined(__x86_64__)
namespace {

#define CAIRN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define CAIRN_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

CAIRN_AVX512 inline __mmask16 Mask16(size_t n) {
  return static_cast<__mmask16>((1u << n) - 1u);
}
CAIRN_AVX512 inline __mmask32 Mask32(size_t n) {
  return static_cast<__mmask32>((uint64_t{1} << n) - 1u);
}
CAIRN_AVX512 inline __mmask64 Mask64(size_t n) {
  return n >= 64 ? ~__mmask64{0} : static_cast<__mmask64>((uint64_t{1} << n) - 1u);
}

// Four accumulators of 16 lanes: 64 floats per iteration covers dim 128 in two
// iterations and dim 96 in one plus two single steps.
CAIRN_AVX512 float L2Sq(const float* a, const float* b, size_t dim) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= dim; i += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; i + 16 <= dim; i += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < dim) {
    const __mmask16 m = Mask16(dim - i);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

CAIRN_AVX512 float Dot(const float* a, const float* b, size_t dim) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= dim; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= dim; i += 16) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  }
  if (i < dim) {
    const __mmask16 m = Mask16(dim - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// ---- int8 x int8 without VNNI: widen 32 bytes to int16 and madd (exact).

CAIRN_AVX512 inline __m512i Widen32(const int8_t* p, __mmask32 m) {
  return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, p));
}

CAIRN_AVX512 int32_t L2SqI8(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  size_t i = 0;
  const __mmask32 all = ~__mmask32{0};
  for (; i + 64 <= dim; i += 64) {
    const __m512i d0 = _mm512_sub_epi16(Widen32(a + i, all), Widen32(b + i, all));
    const __m512i d1 = _mm512_sub_epi16(Widen32(a + i + 32, all), Widen32(b + i + 32, all));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(d0, d0));
    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(d1, d1));
  }
  for (; i < dim; i += 32) {
    const __mmask32 m = dim - i >= 32 ? all : Mask32(dim - i);
    const __m512i d = _mm512_sub_epi16(Widen32(a + i, m), Widen32(b + i, m));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(d, d));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

CAIRN_AVX512 int32_t DotI8(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  size_t i = 0;
  const __mmask32 all = ~__mmask32{0};
  for (; i + 64 <= dim; i += 64) {
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(Widen32(a + i, all), Widen32(b + i, all)));
    s1 = _mm512_add_epi32(s1,
                          _mm512_madd_epi16(Widen32(a + i + 32, all), Widen32(b + i + 32, all)));
  }
  for (; i < dim; i += 32) {
    const __mmask32 m = dim - i >= 32 ? all : Mask32(dim - i);
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(Widen32(a + i, m), Widen32(b + i, m)));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

// ---- int8 x int8 with VNNI.
//
// vpdpbusd multiplies unsigned by signed bytes. With a' = a + 128 (a XOR 0x80 as an
// unsigned byte), sum a'*b = sum a*b + 128 * sum b, and sum b is one more vpdpbusd
// against a vector of ones. Lane sums wrap modulo 2^32 like the final subtraction,
// so the result is exact whenever the true dot product fits in int32.
CAIRN_AVX512_VNNI int32_t DotI8Vnni(const int8_t* a, const int8_t* b, size_t dim) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i p0 = _mm512_setzero_si512(), p1 = _mm512_setzero_si512();
  __m512i sb = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 128 <= dim; i += 128) {
    const __m512i b0 = _mm512_loadu_si512(b + i);
    const __m512i b1 = _mm512_loadu_si512(b + i + 64);
    p0 = _mm512_dpbusd_epi32(p0, _mm512_xor_si512(_mm512_loadu_si512(a + i), bias), b0);
    p1 = _mm512_dpbusd_epi32(p1, _mm512_xor_si512(_mm512_loadu_si512(a + i + 64), bias), b1);
    sb = _mm512_dpbusd_epi32(sb, ones, b0);
    sb = _mm512_dpbusd_epi32(sb, ones, b1);
  }
  for (; i < dim; i += 64) {
    const __mmask64 m = Mask64(dim - i);
    // Masked-off bytes load as 0 in both: (0 ^ 0x80) * 0 adds nothing.
    const __m512i vb = _mm512_maskz_loadu_epi8(m, b + i);
    p0 = _mm512_dpbusd_epi32(p0, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i), bias), vb);
    sb = _mm512_dpbusd_epi32(sb, ones, vb);
  }
  const uint32_t biased = static_cast<uint32_t>(_mm512_reduce_add_epi32(_mm512_add_epi32(p0, p1)));
  const uint32_t sum_b = static_cast<uint32_t>(_mm512_reduce_add_epi32(sb));
  return static_cast<int32_t>(biased - 128u * sum_b);
}

// Differences of int8 need 9 bits: widen to int16 and let vpdpwssd square-and-add.
CAIRN_AVX512_VNNI int32_t L2SqI8Vnni(const int8_t* a, const int8_t* b, size_t dim) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  size_t i = 0;
  const __mmask32 all = ~__mmask32{0};
  for (; i + 64 <= dim; i += 64) {
    const __m512i d0 = _mm512_sub_epi16(Widen32(a + i, all), Widen32(b + i, all));
    const __m512i d1 = _mm512_sub_epi16(Widen32(a + i + 32, all), Widen32(b + i + 32, all));
    s0 = _mm512_dpwssd_epi32(s0, d0, d0);
    s1 = _mm512_dpwssd_epi32(s1, d1, d1);
  }
  for (; i < dim; i += 32) {
    const __mmask32 m = dim - i >= 32 ? all : Mask32(dim - i);
    const __m512i d = _mm512_sub_epi16(Widen32(a + i, m), Widen32(b + i, m));
    s0 = _mm512_dpwssd_epi32(s0, d, d);
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

// ---- float32 query x uint8 code.

CAIRN_AVX512 inline __m512 LoadCodes16(const uint8_t* c, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c)));
}

CAIRN_AVX512 float L2SqF32U8(const float* q, const uint8_t* c, const float* w, size_t dim) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  const __mmask16 all = 0xFFFF;
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), LoadCodes16(c + i, all));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), LoadCodes16(c + i + 16, all));
    s0 = _mm512_fmadd_ps(_mm512_mul_ps(d0, _mm512_loadu_ps(w + i)), d0, s0);
    s1 = _mm512_fmadd_ps(_mm512_mul_ps(d1, _mm512_loadu_ps(w + i + 16)), d1, s1);
  }
  for (; i < dim; i += 16) {
    const __mmask16 m = dim - i >= 16 ? all : Mask16(dim - i);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), LoadCodes16(c + i, m));
    s0 = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, w + i)), d, s0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

CAIRN_AVX512 float DotF32U8(const float* q, const uint8_t* c, size_t dim) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  const __mmask16 all = 0xFFFF;
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadCodes16(c + i, all), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), LoadCodes16(c + i + 16, all), s1);
  }
  for (; i < dim; i += 16) {
    const __mmask16 m = dim - i >= 16 ? all : Mask16(dim - i);
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), LoadCodes16(c + i, m), s0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

// ---- one row against four vectors.
//
// Two 16-lane steps per iteration for each of the four vectors: eight independent
// accumulators keep both FMA ports busy, and each row chunk is loaded once for
// four products (the a[j] of a query block stay in L1).

CAIRN_AVX512 inline void Reduce4(__m512 s0, __m512 s1, __m512 s2, __m512 s3, float* out) {
  out[0] = _mm512_reduce_add_ps(s0);
  out[1] = _mm512_reduce_add_ps(s1);
  out[2] = _mm512_reduce_add_ps(s2);
  out[3] = _mm512_reduce_add_ps(s3);
}

CAIRN_AVX512 void L2SqX4(const float* const* a, const float* b, size_t dim, float* out) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(),
         s3 = _mm512_setzero_ps(), t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps(),
         t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 b0 = _mm512_loadu_ps(b + i), b1 = _mm512_loadu_ps(b + i + 16);
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a0 + i), b0);
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a1 + i), b0);
    __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a2 + i), b0);
    __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a3 + i), b0);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
    d0 = _mm512_sub_ps(_mm512_loadu_ps(a0 + i + 16), b1);
    d1 = _mm512_sub_ps(_mm512_loadu_ps(a1 + i + 16), b1);
    d2 = _mm512_sub_ps(_mm512_loadu_ps(a2 + i + 16), b1);
    d3 = _mm512_sub_ps(_mm512_loadu_ps(a3 + i + 16), b1);
    t0 = _mm512_fmadd_ps(d0, d0, t0);
    t1 = _mm512_fmadd_ps(d1, d1, t1);
    t2 = _mm512_fmadd_ps(d2, d2, t2);
    t3 = _mm512_fmadd_ps(d3, d3, t3);
  }
  for (; i < dim; i += 16) {
    const __mmask16 m = dim - i >= 16 ? __mmask16{0xFFFF} : Mask16(dim - i);
    const __m512 b0 = _mm512_maskz_loadu_ps(m, b + i);
    const __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a0 + i), b0);
    const __m512 d1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a1 + i), b0);
    const __m512 d2 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a2 + i), b0);
    const __m512 d3 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a3 + i), b0);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  Reduce4(_mm512_add_ps(s0, t0), _mm512_add_ps(s1, t1), _mm512_add_ps(s2, t2),
          _mm512_add_ps(s3, t3), out);
}

CAIRN_AVX512 void DotX4(const float* const* a, const float* b, size_t dim, float* out) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(),
         s3 = _mm512_setzero_ps(), t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps(),
         t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 b0 = _mm512_loadu_ps(b + i), b1 = _mm512_loadu_ps(b + i + 16);
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + i), b0, s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a1 + i), b0, s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a2 + i), b0, s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a3 + i), b0, s3);
    t0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + i + 16), b1, t0);
    t1 = _mm512_fmadd_ps(_mm512_loadu_ps(a1 + i + 16), b1, t1);
    t2 = _mm512_fmadd_ps(_mm512_loadu_ps(a2 + i + 16), b1, t2);
    t3 = _mm512_fmadd_ps(_mm512_loadu_ps(a3 + i + 16), b1, t3);
  }
  for (; i < dim; i += 16) {
    const __mmask16 m = dim - i >= 16 ? __mmask16{0xFFFF} : Mask16(dim - i);
    const __m512 b0 = _mm512_maskz_loadu_ps(m, b + i);
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a0 + i), b0, s0);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a1 + i), b0, s1);
    s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a2 + i), b0, s2);
    s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a3 + i), b0, s3);
  }
  Reduce4(_mm512_add_ps(s0, t0), _mm512_add_ps(s1, t1), _mm512_add_ps(s2, t2),
          _mm512_add_ps(s3, t3), out);
}

constexpr KernelTable kAvx512 = {"avx512",  L2Sq,     Dot,    L2SqI8, DotI8,
                                 L2SqF32U8, DotF32U8, L2SqX4, DotX4};
constexpr KernelTable kAvx512Vnni = {"avx512",  L2Sq,     Dot,    L2SqI8Vnni, DotI8Vnni,
                                     L2SqF32U8, DotF32U8, L2SqX4, DotX4};

const KernelTable* Choose() {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx2") ||
      !__builtin_cpu_supports("fma")) {
    return nullptr;
  }
  return __builtin_cpu_supports("avx512vnni") ? &kAvx512Vnni : &kAvx512;
}

}  // namespace

const KernelTable* Avx512Kernels() {
  static const KernelTable* const table = Choose();
  return table;
}

// The AVX512BW int8 kernels without VNNI, so tests can check them on a VNNI CPU.
const KernelTable* Avx512NoVnniKernels() {
  return Avx512Kernels() != nullptr ? &kAvx512 : nullptr;
}

#else  // not x86-64

const KernelTable* Avx512Kernels() { return nullptr; }
const KernelTable* Avx512NoVnniKernels() { return nullptr; }

#endif

}  // namespace cairn::vector::internal
