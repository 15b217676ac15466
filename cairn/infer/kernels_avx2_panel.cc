// Batch kernels for AVX2: matrix x many tokens (prompt processing), the AVX2 counterpart
// of kernels_avx512_panel.cc (read that first). Panels of 8 rows: for each 32-value unit,
// eight 32-byte vectors whose dword lane r holds 4 consecutive values of row r.
//
// vpmaddubsw multiplies the unsigned panel bytes by 4 activation bytes broadcast to all
// lanes, giving int16 pairs. For Q4_0 and Q4_K (values 0..15) a pair is at most
// 2 * 15 * 127 = 3810, so the 8 steps of a unit add up in int16 (at most 30480) before a
// single vpmaddwd to int32. Q6_K values (0..63) reach 16002 a step and go to int32 after
// each. Q8_0 keeps signed values and uses |w| times a with w's sign (vpsignb), as the
// per-row kernel does (w + 128 would overflow the int16 pairs).
// Q4_0 and Q8_0 panels keep the bytes of their 8 rows in the layout PackMatrix stores
// (kernels.h): per block the value vectors (Q4_0: 4, nibbles split when used; Q8_0: 8),
// then per block the 8 fp16 scales.
#include "cairn/infer/kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cairn::infer::internal {

#if defined(__x86_64__)

#define CAIRN_T __attribute__((target("avx2,fma,f16c")))

namespace {

constexpr int kRows = 8;
constexpr int kMaxTokens = 4;  // 16 registers: T int sums, T float sums, weights, temporaries

struct Panel {
  uint8_t* vals;  // units x 8 vectors of 32 bytes
  float* scale;   // 8 floats per unit (Q6_K: per 16-value group, two per unit)
  float* mins;    // Q4_K: 8 floats per unit
};

thread_local Scratch panel_scratch;

Panel AllocPanel(int64_t cols) {
  const size_t units = static_cast<size_t>(cols / 32);
  const size_t vals = units * 8 * 32, scale = units * 2 * kRows * sizeof(float), mins = units * kRows * sizeof(float);
  auto* base = static_cast<uint8_t*>(panel_scratch.Get(vals + scale + mins));
  return Panel{base, reinterpret_cast<float*>(base + vals), reinterpret_cast<float*>(base + vals + scale)};
}

// 8 rows of 16 bytes (p[r] + off) to 4 vectors: out[m] lane r = bytes 4m..4m+3 of row r.
CAIRN_T inline void Transpose8(const uint8_t* const* p, size_t off, __m256i out[4]) {
  __m256i a[4];
  for (int j = 0; j < 4; ++j) {
    a[j] = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[j] + off))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[j + 4] + off)), 1);
  }
  // A 4 x 4 dword transpose in each 128-bit half: rows j and j + 4 side by side.
  const __m256i t0 = _mm256_unpacklo_epi32(a[0], a[1]), t1 = _mm256_unpackhi_epi32(a[0], a[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(a[2], a[3]), t3 = _mm256_unpackhi_epi32(a[2], a[3]);
  out[0] = _mm256_unpacklo_epi64(t0, t2);
  out[1] = _mm256_unpackhi_epi64(t0, t2);
  out[2] = _mm256_unpacklo_epi64(t1, t3);
  out[3] = _mm256_unpackhi_epi64(t1, t3);
}

CAIRN_T inline void Store(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
CAIRN_T inline __m256i Lo(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
CAIRN_T inline __m256i Hi(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)); }

// ---- packing ----

template <bool kQ8>
constexpr size_t kValBytes = kQ8 ? 256 : 128;

template <bool kQ8>
CAIRN_T void PackBlocks(const uint8_t* const* rows, int64_t nb, uint8_t* dst) {
  constexpr size_t kBlock = kQ8 ? 34 : 18;
  auto* half = reinterpret_cast<uint16_t*>(dst + nb * kValBytes<kQ8>);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* v = dst + b * kValBytes<kQ8>;
    for (int part = 0; part < (kQ8 ? 2 : 1); ++part) {
      __m256i t[4];
      Transpose8(rows, static_cast<size_t>(kBlock * b + 2 + 16 * part), t);
      for (int m = 0; m < 4; ++m) Store(v + 32 * (4 * part + m), t[m]);
    }
    for (int r = 0; r < kRows; ++r) half[b * kRows + r] = LoadU16(rows[r] + kBlock * b);
  }
}

CAIRN_T void PackQ4_K(const uint8_t* const* rows, int64_t nb, const Panel& pk) {
  for (int64_t sb = 0; sb < nb; ++sb) {
    const size_t base = static_cast<size_t>(144 * sb);
    for (int j2 = 0; j2 < 4; ++j2) {
      for (int half = 0; half < 2; ++half) {
        __m256i t[4];
        Transpose8(rows, base + 16 + 32 * j2 + 16 * half, t);
        uint8_t* lo = pk.vals + (8 * sb + 2 * j2) * 256;
        uint8_t* hi = lo + 256;
        for (int m = 0; m < 4; ++m) {
          Store(lo + 32 * (4 * half + m), Lo(t[m]));
          Store(hi + 32 * (4 * half + m), Hi(t[m]));
        }
      }
    }
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* blk = rows[r] + base;
      const float d = _cvtsh_ss(LoadU16(blk)), dmin = _cvtsh_ss(LoadU16(blk + 2));
      uint64_t scales, mins;
      UnpackQ4KScales(blk + 4, &scales, &mins);
      for (int j = 0; j < 8; ++j) {
        pk.scale[(8 * sb + j) * kRows + r] = d * static_cast<float>((scales >> (8 * j)) & 0xFF);
        pk.mins[(8 * sb + j) * kRows + r] = dmin * static_cast<float>((mins >> (8 * j)) & 0xFF);
      }
    }
  }
}

// Bits kShift and kShift + 1 of each byte of h, moved to bits 4 and 5.
template <int kShift>
CAIRN_T inline __m256i HighBits(__m256i h, __m256i m2) {
  return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, kShift), m2), 4);
}

CAIRN_T void PackQ6_K(const uint8_t* const* rows, int64_t nb, const Panel& pk) {
  alignas(32) uint8_t decoded[kRows][kQK_K];
  const uint8_t* dec[kRows];
  for (int r = 0; r < kRows; ++r) dec[r] = decoded[r];
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  for (int64_t sb = 0; sb < nb; ++sb) {
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* blk = rows[r] + 210 * sb;
      for (int half = 0; half < 2; ++half) {
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * half));
        const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * half + 32));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * half));
        uint8_t* out = decoded[r] + 128 * half;
        Store(out, _mm256_or_si256(_mm256_and_si256(l0, m4), HighBits<0>(h, m2)));
        Store(out + 32, _mm256_or_si256(_mm256_and_si256(l1, m4), HighBits<2>(h, m2)));
        Store(out + 64, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), HighBits<4>(h, m2)));
        Store(out + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), HighBits<6>(h, m2)));
      }
      const float d = _cvtsh_ss(LoadU16(blk + 208));
      const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
      for (int gi = 0; gi < 16; ++gi) pk.scale[(16 * sb + gi) * kRows + r] = d * static_cast<float>(sc[gi]);
    }
    for (int u = 0; u < 8; ++u) {
      uint8_t* v = pk.vals + (8 * sb + u) * 256;
      for (int half = 0; half < 2; ++half) {
        __m256i t[4];
        Transpose8(dec, static_cast<size_t>(32 * u + 16 * half), t);
        for (int m = 0; m < 4; ++m) Store(v + 32 * (4 * half + m), t[m]);
      }
    }
  }
}

// ---- tiles: 8 rows x T tokens ----

CAIRN_T inline __m256i Bcast(const int8_t* x, int k) { return _mm256_set1_epi32(static_cast<int>(LoadU32(x + 4 * k))); }

// int32 sums of a Q4_0 / Q4_K unit (values 0..15): int16 through all 8 steps. Q4_K units
// hold 8 vectors of values; Q4_0 (kSplit) 4 vectors of nibble pairs, step k < 4 the low
// nibbles of vector k, step k + 4 its high nibbles.
template <int T, bool kSplit = false>
CAIRN_T inline void DotNibbles(const uint8_t* v, const int8_t* const* x, __m256i* sum) {
  __m256i s16[T];
  for (int t = 0; t < T; ++t) s16[t] = _mm256_setzero_si256();
  for (int k = 0; k < 8; ++k) {
    __m256i w;
    if constexpr (kSplit) {
      const __m256i raw = _mm256_load_si256(reinterpret_cast<const __m256i*>(v + 32 * (k % 4)));
      w = k < 4 ? Lo(raw) : Hi(raw);
    } else {
      w = _mm256_load_si256(reinterpret_cast<const __m256i*>(v + 32 * k));
    }
    for (int t = 0; t < T; ++t) s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(w, Bcast(x[t], k)));
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int t = 0; t < T; ++t) sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(s16[t], ones));
}

template <int T>
CAIRN_T void TileQ4_0(const uint8_t* pk, const Acts& a, int64_t t0, float* y, int64_t ldy) {
  const auto* half = reinterpret_cast<const __m128i*>(pk + a.nb * kValBytes<false>);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.nb; ++b) {
    __m256i sum[T];
    const int8_t* x[T];
    for (int t = 0; t < T; ++t) {
      const int64_t tb = (t0 + t) * a.nb + b;
      sum[t] = _mm256_set1_epi32(-8 * a.sums[tb]);
      x[t] = a.qs + tb * 32;
    }
    if constexpr (T == 1) {
      // Decode: fetch 8 blocks ahead (kernels_avx512_panel.cc says why).
      for (size_t l = 0; l < kValBytes<false>; l += 64) __builtin_prefetch(pk + (b + 8) * kValBytes<false> + l, 0, 3);
      if (b % 4 == 0) __builtin_prefetch(half + b + 8, 0, 3);
    }
    DotNibbles<T, true>(pk + b * kValBytes<false>, x, sum);
    const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(half + b));
    for (int t = 0; t < T; ++t) {
      const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(a.d[(t0 + t) * a.nb + b]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), s, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + (t0 + t) * ldy, acc[t]);
}

template <int T>
CAIRN_T void TileQ8_0(const uint8_t* pk, const Acts& a, int64_t t0, float* y, int64_t ldy) {
  const __m256i ones = _mm256_set1_epi16(1);
  const auto* half = reinterpret_cast<const __m128i*>(pk + a.nb * kValBytes<true>);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.nb; ++b) {
    __m256i sum[T];
    const int8_t* x[T];
    for (int t = 0; t < T; ++t) {
      sum[t] = _mm256_setzero_si256();
      x[t] = a.qs + ((t0 + t) * a.nb + b) * 32;
    }
    const uint8_t* v = pk + b * kValBytes<true>;
    if constexpr (T == 1) {
      for (size_t l = 0; l < kValBytes<true>; l += 64) __builtin_prefetch(v + 8 * kValBytes<true> + l, 0, 3);
      if (b % 4 == 0) __builtin_prefetch(half + b + 8, 0, 3);
    }
    for (int k = 0; k < 8; ++k) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(v + 32 * k));
      const __m256i wabs = _mm256_sign_epi8(w, w);
      for (int t = 0; t < T; ++t) {
        const __m256i p = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(Bcast(x[t], k), w));
        sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(p, ones));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(half + b));
    for (int t = 0; t < T; ++t) {
      const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(a.d[(t0 + t) * a.nb + b]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), s, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + (t0 + t) * ldy, acc[t]);
}

template <int T>
CAIRN_T void TileQ4_K(const Panel& pk, const Acts& a, int64_t t0, float* y, int64_t ldy) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < a.nb; ++sb) {
    for (int j = 0; j < 8; ++j) {
      const int64_t u = 8 * sb + j;
      __m256i sum[T];
      const int8_t* x[T];
      for (int t = 0; t < T; ++t) {
        sum[t] = _mm256_setzero_si256();
        x[t] = a.qs + ((t0 + t) * a.nb + sb) * kQK_K + 32 * j;
      }
      DotNibbles<T>(pk.vals + u * 256, x, sum);
      const __m256 sc = _mm256_load_ps(pk.scale + u * kRows);
      const __m256 mn = _mm256_load_ps(pk.mins + u * kRows);
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + sb;
        const float da = a.d[tb];
        const int16_t* bs = a.bsums + tb * 16 + 2 * j;
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_mul_ps(sc, _mm256_set1_ps(da)), acc[t]);
        acc[t] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(da * static_cast<float>(bs[0] + bs[1])), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + (t0 + t) * ldy, acc[t]);
}

template <int T>
CAIRN_T void TileQ6_K(const Panel& pk, const Acts& a, int64_t t0, float* y, int64_t ldy) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < a.nb; ++sb) {
    for (int gi = 0; gi < 16; ++gi) {
      __m256i sum[T];
      const int8_t* x[T];
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + sb;
        sum[t] = _mm256_set1_epi32(-32 * a.bsums[tb * 16 + gi]);
        x[t] = a.qs + tb * kQK_K + 32 * (gi / 2);
      }
      const uint8_t* v = pk.vals + (8 * sb + gi / 2) * 256;
      for (int k = 4 * (gi % 2); k < 4 * (gi % 2) + 4; ++k) {
        const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(v + 32 * k));
        for (int t = 0; t < T; ++t) {
          sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(w, Bcast(x[t], k)), ones));
        }
      }
      const __m256 sc = _mm256_load_ps(pk.scale + (16 * sb + gi) * kRows);
      for (int t = 0; t < T; ++t) {
        const __m256 s = _mm256_mul_ps(sc, _mm256_set1_ps(a.d[(t0 + t) * a.nb + sb]));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), s, acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(y + (t0 + t) * ldy, acc[t]);
}

using PanelPackFn = void (*)(const uint8_t* const*, int64_t, const Panel&);
using TileFn = void (*)(const Panel&, const Acts&, int64_t, float*, int64_t);

void RunPanels(const GemmArgs& g, PanelPackFn pack, int64_t blocks, const TileFn* tiles) {
  const Panel pk = AllocPanel(g.cols);
  for (int64_t r = g.r0; r + kRows <= g.r1; r += kRows) {
    const uint8_t* rows[kRows];
    for (int i = 0; i < kRows; ++i) rows[i] = g.w + static_cast<size_t>(r + i) * g.row_bytes;
    pack(rows, blocks, pk);
    for (int64_t t = g.t0; t < g.t1; t += kMaxTokens) {
      const int64_t n = g.t1 - t < kMaxTokens ? g.t1 - t : kMaxTokens;
      tiles[n](pk, *g.acts, t, g.y + r, g.ldy);
    }
  }
}

using BlockTileFn = void (*)(const uint8_t*, const Acts&, int64_t, float*, int64_t);
constexpr BlockTileFn kQ4_0[] = {nullptr, TileQ4_0<1>, TileQ4_0<2>, TileQ4_0<3>, TileQ4_0<4>};
constexpr BlockTileFn kQ8_0[] = {nullptr, TileQ8_0<1>, TileQ8_0<2>, TileQ8_0<3>, TileQ8_0<4>};

// Q4_0 / Q8_0 over rows [g.r0, g.r1): with `packed`, g.w is the first panel of the
// matrix and g.row_bytes the panel stride; otherwise each panel is built on the fly.
template <bool kQ8>
void RunBlockPanels(const GemmArgs& g, bool packed) {
  const BlockTileFn* tiles = kQ8 ? kQ8_0 : kQ4_0;
  const int64_t nb = g.cols / 32;
  uint8_t* own = packed ? nullptr
                        : static_cast<uint8_t*>(panel_scratch.Get(static_cast<size_t>(nb) * (kValBytes<kQ8> + 16)));
  for (int64_t r = g.r0; r + kRows <= g.r1; r += kRows) {
    const uint8_t* pk = own;
    if (packed) {
      pk = g.w + static_cast<size_t>(r / kRows) * g.row_bytes;
    } else {
      const uint8_t* rows[kRows];
      for (int i = 0; i < kRows; ++i) rows[i] = g.w + static_cast<size_t>(r + i) * g.row_bytes;
      PackBlocks<kQ8>(rows, nb, own);
    }
    for (int64_t t = g.t0; t < g.t1; t += kMaxTokens) {
      const int64_t n = g.t1 - t < kMaxTokens ? g.t1 - t : kMaxTokens;
      tiles[n](pk, *g.acts, t, g.y + r, g.ldy);
    }
  }
}

template <bool kQ8>
void PackRows(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
              size_t panel_bytes) {
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* rows[kRows];
    for (int i = 0; i < kRows; ++i) rows[i] = w + static_cast<size_t>(p * kRows + i) * row_bytes;
    PackBlocks<kQ8>(rows, cols / 32, dst + static_cast<size_t>(p) * panel_bytes);
  }
}
constexpr TileFn kQ4_K[] = {nullptr, TileQ4_K<1>, TileQ4_K<2>, TileQ4_K<3>, TileQ4_K<4>};
constexpr TileFn kQ6_K[] = {nullptr, TileQ6_K<1>, TileQ6_K<2>, TileQ6_K<3>, TileQ6_K<4>};

}  // namespace

void PanelQ4_0Avx2(const GemmArgs& g) { RunBlockPanels<false>(g, false); }
void PanelQ8_0Avx2(const GemmArgs& g) { RunBlockPanels<true>(g, false); }
void PackedQ4_0Avx2(const GemmArgs& g) { RunBlockPanels<false>(g, true); }
void PackedQ8_0Avx2(const GemmArgs& g) { RunBlockPanels<true>(g, true); }
void PackQ4_0Avx2(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                  size_t panel_bytes) {
  PackRows<false>(w, row_bytes, cols, p0, p1, dst, panel_bytes);
}
void PackQ8_0Avx2(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                  size_t panel_bytes) {
  PackRows<true>(w, row_bytes, cols, p0, p1, dst, panel_bytes);
}
void PanelQ4_KAvx2(const GemmArgs& g) { RunPanels(g, PackQ4_K, g.cols / kQK_K, kQ4_K); }
void PanelQ6_KAvx2(const GemmArgs& g) { RunPanels(g, PackQ6_K, g.cols / kQK_K, kQ6_K); }

#endif

}  // namespace cairn::infer::internal
