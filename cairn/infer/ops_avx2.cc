// AVX2 + FMA + F16C versions of the hot ops.h functions. Compiled with per-function
// target attributes (the project builds for baseline x86-64) and chosen at run time.
#include <algorithm>
#include <cmath>

#include "cairn/infer/internal/ops_table.h"
#include "cairn/infer/tensor_type.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace cairn::infer::internal {

#if defined(__x86_64__)
namespace {

#define CAIRN_AVX2 __attribute__((target("avx2,fma,f16c")))

CAIRN_AVX2 inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by Cephes' degree-6 polynomial, 2^n through
// the exponent bits. Inputs are clamped to the finite float range, so a very negative
// x gives a tiny positive number rather than 0 (harmless for softmax and silu).
CAIRN_AVX2 inline __m256 Exp(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

CAIRN_AVX2 void Softmax(float* x, int64_t n) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float max = -INFINITY;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  for (float v : lanes) max = std::max(max, v);
  for (int64_t j = i; j < n; ++j) max = std::max(max, x[j]);
  const __m256 m = _mm256_set1_ps(max);
  __m256 vsum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  double sum = HorizontalSum(vsum);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= static_cast<float>(1.0 / sum);
}

CAIRN_AVX2 void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

CAIRN_AVX2 void Gelu(float* x, int64_t n) {
  // tanh(y) = 1 - 2 / (e^{2y} + 1)
  const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), half = _mm256_set1_ps(0.5f);
  const __m256 k = _mm256_set1_ps(0.79788456080286535588f), c = _mm256_set1_ps(0.044715f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 y = _mm256_mul_ps(_mm256_mul_ps(k, v), _mm256_fmadd_ps(_mm256_mul_ps(c, v), v, one));
    const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(Exp(_mm256_mul_ps(two, y)), one)));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
  }
  for (; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(0.79788456080286535588f * v * (1.0f + 0.044715f * v * v)));
  }
}

CAIRN_AVX2 float Dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

CAIRN_AVX2 void Axpy(float a, const float* x, int64_t n, float* y) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

CAIRN_AVX2 inline __m256 LoadF16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

CAIRN_AVX2 void ToF16(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = Fp32ToFp16(x[i]);
}

CAIRN_AVX2 void FromF16(const uint16_t* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, LoadF16(x + i));
  for (; i < n; ++i) out[i] = Fp16ToFp32(x[i]);
}

CAIRN_AVX2 float DotF16(const float* a, const uint16_t* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LoadF16(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), LoadF16(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LoadF16(b + i), s0);
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * Fp16ToFp32(b[i]);
  return s;
}

CAIRN_AVX2 void AxpyF16(float a, const uint16_t* x, int64_t n, float* y) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, LoadF16(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * Fp16ToFp32(x[i]);
}

CAIRN_AVX2 inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
CAIRN_AVX2 inline __m256 Load8(const uint16_t* p) { return LoadF16(p); }
inline float Load1(float v) { return v; }
inline float Load1(uint16_t v) { return Fp16ToFp32(v); }

// Eight keys at a time, one accumulator each; the eight are then summed across lanes
// together (hadd tree), so no key pays a horizontal sum of its own.
template <typename T>
CAIRN_AVX2 void GatherDot(const float* q, const T* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                          float* out) {
  int64_t j = 0;
  if (hd % 8 == 0) {
    for (; j + 8 <= n; j += 8) {
      const T* r[8];
      for (int k = 0; k < 8; ++k) r[k] = base + idx[j + k] * stride;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      __m256 a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(), a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
      for (int64_t d = 0; d < hd; d += 8) {
        const __m256 qv = _mm256_loadu_ps(q + d);
        a0 = _mm256_fmadd_ps(Load8(r[0] + d), qv, a0);
        a1 = _mm256_fmadd_ps(Load8(r[1] + d), qv, a1);
        a2 = _mm256_fmadd_ps(Load8(r[2] + d), qv, a2);
        a3 = _mm256_fmadd_ps(Load8(r[3] + d), qv, a3);
        a4 = _mm256_fmadd_ps(Load8(r[4] + d), qv, a4);
        a5 = _mm256_fmadd_ps(Load8(r[5] + d), qv, a5);
        a6 = _mm256_fmadd_ps(Load8(r[6] + d), qv, a6);
        a7 = _mm256_fmadd_ps(Load8(r[7] + d), qv, a7);
      }
      const __m256 t0 = _mm256_hadd_ps(a0, a1), t1 = _mm256_hadd_ps(a2, a3);
      const __m256 t2 = _mm256_hadd_ps(a4, a5), t3 = _mm256_hadd_ps(a6, a7);
      const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
      const __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
      _mm256_storeu_ps(out + j, sum);
    }
  }
  for (; j < n; ++j) {
    const T* row = base + idx[j] * stride;
    int64_t i = 0;
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= hd; i += 8) acc = _mm256_fmadd_ps(Load8(row + i), _mm256_loadu_ps(q + i), acc);
    float s = HorizontalSum(acc);
    for (; i < hd; ++i) s += q[i] * Load1(row[i]);
    out[j] = s;
  }
}

// The output stays in registers, 64 values at a time, while the rows stream past.
template <typename T>
CAIRN_AVX2 void GatherSum(const float* p, const T* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                          float* out) {
  int64_t c = 0;
  for (; c + 64 <= hd; c += 64) {
    __m256 a[8];
    for (int i = 0; i < 8; ++i) a[i] = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m256 pj = _mm256_set1_ps(p[j]);
      const T* row = base + idx[j] * stride + c;
      for (int i = 0; i < 8; ++i) a[i] = _mm256_fmadd_ps(pj, Load8(row + 8 * i), a[i]);
    }
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + c + 8 * i, a[i]);
  }
  for (; c + 8 <= hd; c += 8) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), Load8(base + idx[j] * stride + c), a);
    _mm256_storeu_ps(out + c, a);
  }
  for (; c < hd; ++c) {
    float a = 0;
    for (int64_t j = 0; j < n; ++j) a += p[j] * Load1(base[idx[j] * stride + c]);
    out[c] = a;
  }
}

// Four keys x sixteen queries per block: per element of the head, two vector loads of
// queries and four broadcast keys feed eight independent FMAs.
CAIRN_AVX2 void TileScores(const float* k, int64_t n, int64_t hd, const float* qt, int64_t m, float* st) {
  int64_t c = 0;
  for (; c + 16 <= m; c += 16) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const float* k0 = k + j * hd;
      __m256 a[4][2];
      for (auto& r : a) r[0] = r[1] = _mm256_setzero_ps();
      for (int64_t d = 0; d < hd; ++d) {
        const __m256 q0 = _mm256_loadu_ps(qt + d * m + c), q1 = _mm256_loadu_ps(qt + d * m + c + 8);
        for (int r = 0; r < 4; ++r) {
          const __m256 b = _mm256_broadcast_ss(k0 + r * hd + d);
          a[r][0] = _mm256_fmadd_ps(b, q0, a[r][0]);
          a[r][1] = _mm256_fmadd_ps(b, q1, a[r][1]);
        }
      }
      for (int r = 0; r < 4; ++r) {
        _mm256_storeu_ps(st + (j + r) * m + c, a[r][0]);
        _mm256_storeu_ps(st + (j + r) * m + c + 8, a[r][1]);
      }
    }
    for (; j < n; ++j) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (int64_t d = 0; d < hd; ++d) {
        const __m256 b = _mm256_broadcast_ss(k + j * hd + d);
        a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(qt + d * m + c), a0);
        a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(qt + d * m + c + 8), a1);
      }
      _mm256_storeu_ps(st + j * m + c, a0);
      _mm256_storeu_ps(st + j * m + c + 8, a1);
    }
  }
  for (; c + 8 <= m; c += 8) {
    for (int64_t j = 0; j < n; ++j) {
      __m256 a0 = _mm256_setzero_ps();
      for (int64_t d = 0; d < hd; ++d) {
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(k + j * hd + d), _mm256_loadu_ps(qt + d * m + c), a0);
      }
      _mm256_storeu_ps(st + j * m + c, a0);
    }
  }
  for (; c < m; ++c) {
    for (int64_t j = 0; j < n; ++j) {
      float a = 0;
      for (int64_t d = 0; d < hd; ++d) a += k[j * hd + d] * qt[d * m + c];
      st[j * m + c] = a;
    }
  }
}

CAIRN_AVX2 void SoftmaxColumns(float* st, int64_t n, int64_t m) {
  int64_t c = 0;
  for (; c + 8 <= m; c += 8) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n; ++j) mx = _mm256_max_ps(mx, _mm256_loadu_ps(st + j * m + c));
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(st + j * m + c), mx));
      _mm256_storeu_ps(st + j * m + c, e);
      sum = _mm256_add_ps(sum, e);
    }
    const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
    for (int64_t j = 0; j < n; ++j) _mm256_storeu_ps(st + j * m + c, _mm256_mul_ps(_mm256_loadu_ps(st + j * m + c), inv));
  }
  for (; c < m; ++c) {
    float max = -INFINITY;
    for (int64_t j = 0; j < n; ++j) max = std::max(max, st[j * m + c]);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (st[j * m + c] = std::exp(st[j * m + c] - max));
    for (int64_t j = 0; j < n; ++j) st[j * m + c] *= static_cast<float>(1.0 / sum);
  }
}

// Four queries x sixteen output values per block: two vector loads of a value row and
// four broadcast probabilities feed eight FMAs per key.
CAIRN_AVX2 void TileValues(const float* pt, int64_t n, int64_t m, const float* v, int64_t hd, float* out) {
  int64_t i = 0;
  for (; i + 16 <= hd; i += 16) {
    int64_t c = 0;
    for (; c + 4 <= m; c += 4) {
      __m256 a[4][2];
      for (auto& r : a) r[0] = r[1] = _mm256_setzero_ps();
      for (int64_t j = 0; j < n; ++j) {
        const __m256 v0 = _mm256_loadu_ps(v + j * hd + i), v1 = _mm256_loadu_ps(v + j * hd + i + 8);
        const float* p = pt + j * m + c;
        for (int r = 0; r < 4; ++r) {
          const __m256 b = _mm256_broadcast_ss(p + r);
          a[r][0] = _mm256_fmadd_ps(b, v0, a[r][0]);
          a[r][1] = _mm256_fmadd_ps(b, v1, a[r][1]);
        }
      }
      for (int r = 0; r < 4; ++r) {
        _mm256_storeu_ps(out + (c + r) * hd + i, a[r][0]);
        _mm256_storeu_ps(out + (c + r) * hd + i + 8, a[r][1]);
      }
    }
    for (; c < m; ++c) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (int64_t j = 0; j < n; ++j) {
        const __m256 b = _mm256_broadcast_ss(pt + j * m + c);
        a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(v + j * hd + i), a0);
        a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(v + j * hd + i + 8), a1);
      }
      _mm256_storeu_ps(out + c * hd + i, a0);
      _mm256_storeu_ps(out + c * hd + i + 8, a1);
    }
  }
  for (; i + 8 <= hd; i += 8) {
    for (int64_t c = 0; c < m; ++c) {
      __m256 a0 = _mm256_setzero_ps();
      for (int64_t j = 0; j < n; ++j) {
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(pt + j * m + c), _mm256_loadu_ps(v + j * hd + i), a0);
      }
      _mm256_storeu_ps(out + c * hd + i, a0);
    }
  }
  for (; i < hd; ++i) {
    for (int64_t c = 0; c < m; ++c) {
      float a = 0;
      for (int64_t j = 0; j < n; ++j) a += pt[j * m + c] * v[j * hd + i];
      out[c * hd + i] = a;
    }
  }
}

constexpr OpsTable kAvx2 = {"avx2",           Softmax,          SiluMul,
                            Gelu,             Dot,              Axpy,
                            ToF16,            FromF16,          DotF16,
                            AxpyF16,          GatherDot<float>, GatherDot<uint16_t>,
                            GatherSum<float>, GatherSum<uint16_t>, TileScores,
                            SoftmaxColumns,   TileValues};

}  // namespace

const OpsTable* Avx2Ops() {
  __builtin_cpu_init();
  // Not every compiler knows "f16c" as a __builtin_cpu_supports name: CPUID leaf 1,
  // ECX bit 29.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  return ok ? &kAvx2 : nullptr;
}

#else  // not x86-64

const OpsTable* Avx2Ops() { return nullptr; }

#endif

}  // namespace cairn::infer::internal
