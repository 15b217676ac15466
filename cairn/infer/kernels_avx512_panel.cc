// Batch kernels for AVX-512 with VNNI: matrix x many tokens (prompt processing).
//
// The per-row kernels put elements in the lanes, so every block of every (row, token)
// ends in a conversion and a scaled add of a whole register. Here 16 rows are first
// repacked into a panel with the rows in the lanes: for each 32-value unit (a Q4_0 / Q8_0
// block, a Q4_K sub-block, two Q6_K groups) eight 64-byte vectors whose lane r holds 4
// consecutive values of row r, unsigned. One vpdpbusd against 4 activation bytes
// broadcast to all lanes is then 64 useful multiply-adds for 16 outputs, and the block
// scale is applied once per block for 16 rows at a time. The panel (16 rows x cols bytes
// plus scales, 32 KiB for 2048 columns) is built once and stays in L1/L2 while every
// token of the batch passes over it.
//
// Q4_0 and Q8_0 panels keep the bytes of their 16 rows, rearranged (the layout PackMatrix
// stores once at load, kernels.h): per block, the value vectors (Q4_0: 4 of them, lane r =
// qs bytes 4m..4m+3 of row r, so values 4m.. in the low nibbles and 16 + 4m.. in the high,
// split when used; Q8_0: 8, the values + 128), then per block the 16 fp16 scales. The
// batch path builds the same panels on the fly for views that carry none.
//
// Offsets are folded into the int32 starting value of each block's sum, from the
// activation sums: -8 * sum (Q4_0), -128 * sum (Q8_0 stored as w + 128), -32 * group sum
// (Q6_K); Q4_K's mins are subtracted in float (dmin * min * sum of the sub-block).
#include "cairn/infer/kernels_internal.h"

#if defined(__x86_64__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace cairn::infer::internal {

#if defined(__x86_64__)

#define CAIRN_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

namespace {

constexpr int kRows = 16;
constexpr int kMaxTokens = 8;  // tokens per tile: 2 x 8 registers of sums

// A panel of 16 rows. vals: units x 8 vectors of 64 bytes. scale: 16 floats per unit
// (Q6_K: per 16-value group, two per unit). mins (Q4_K): 16 floats per unit.
struct Panel {
  uint8_t* vals;
  float* scale;
  float* mins;
};

thread_local Scratch panel_scratch;

Panel AllocPanel(int64_t cols) {
  const size_t units = static_cast<size_t>(cols / 32);
  const size_t vals = units * 8 * 64, scale = units * 2 * kRows * sizeof(float), mins = units * kRows * sizeof(float);
  auto* base = static_cast<uint8_t*>(panel_scratch.Get(vals + scale + mins));
  return Panel{base, reinterpret_cast<float*>(base + vals), reinterpret_cast<float*>(base + vals + scale)};
}

// 16 rows of 16 bytes (p[r] + off) to 4 vectors: out[m] lane r = bytes 4m..4m+3 of row r.
CAIRN_T inline void Transpose16(const uint8_t* const* p, size_t off, __m512i out[4]) {
  // Within a register of 4 rows, a 4 x 4 dword transpose (one permute), then the
  // 128-bit chunks of the four registers transposed with two rounds of shuffles.
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  __m512i b[4];
  for (int j = 0; j < 4; ++j) {
    __m512i a = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[4 * j] + off)));
    a = _mm512_inserti32x4(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[4 * j + 1] + off)), 1);
    a = _mm512_inserti32x4(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[4 * j + 2] + off)), 2);
    a = _mm512_inserti32x4(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[4 * j + 3] + off)), 3);
    b[j] = _mm512_permutexvar_epi32(idx, a);
  }
  const __m512i e0 = _mm512_shuffle_i32x4(b[0], b[1], 0x44), e1 = _mm512_shuffle_i32x4(b[0], b[1], 0xEE);
  const __m512i e2 = _mm512_shuffle_i32x4(b[2], b[3], 0x44), e3 = _mm512_shuffle_i32x4(b[2], b[3], 0xEE);
  out[0] = _mm512_shuffle_i32x4(e0, e2, 0x88);
  out[1] = _mm512_shuffle_i32x4(e0, e2, 0xDD);
  out[2] = _mm512_shuffle_i32x4(e1, e3, 0x88);
  out[3] = _mm512_shuffle_i32x4(e1, e3, 0xDD);
}

CAIRN_T inline void Store(uint8_t* p, __m512i v) { _mm512_store_si512(p, v); }

// Low and high nibbles of a transposed vector.
CAIRN_T inline __m512i Lo(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x0F)); }
CAIRN_T inline __m512i Hi(__m512i v) { return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F)); }

// ---- packing ----

// Bytes of the value vectors of one block.
template <bool kQ8>
constexpr size_t kValBytes = kQ8 ? 512 : 256;

template <bool kQ8>
CAIRN_T void PackBlocks(const uint8_t* const* rows, int64_t nb, uint8_t* dst) {
  constexpr size_t kBlock = kQ8 ? 34 : 18;
  auto* half = reinterpret_cast<uint16_t*>(dst + nb * kValBytes<kQ8>);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* v = dst + b * kValBytes<kQ8>;
    for (int part = 0; part < (kQ8 ? 2 : 1); ++part) {
      __m512i t[4];
      Transpose16(rows, static_cast<size_t>(kBlock * b + 2 + 16 * part), t);
      for (int m = 0; m < 4; ++m) Store(v + 64 * (4 * part + m), kQ8 ? _mm512_xor_si512(t[m], flip) : t[m]);
    }
    for (int r = 0; r < kRows; ++r) half[b * kRows + r] = LoadU16(rows[r] + kBlock * b);
  }
}

// Unit 8 * sb + j is sub-block j; its scale d * scale_j and min dmin * min_j, rounded as
// Dequantize rounds them.
CAIRN_T void PackQ4_K(const uint8_t* const* rows, int64_t nb, const Panel& pk) {
  for (int64_t sb = 0; sb < nb; ++sb) {
    const size_t base = static_cast<size_t>(144 * sb);
    for (int j2 = 0; j2 < 4; ++j2) {
      for (int half = 0; half < 2; ++half) {
        __m512i t[4];
        Transpose16(rows, base + 16 + 32 * j2 + 16 * half, t);
        uint8_t* lo = pk.vals + (8 * sb + 2 * j2) * 512;
        uint8_t* hi = lo + 512;
        for (int m = 0; m < 4; ++m) {
          Store(lo + 64 * (4 * half + m), Lo(t[m]));
          Store(hi + 64 * (4 * half + m), Hi(t[m]));
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

// The 6-bit values of each row are decoded to bytes in element order first (as the per-row
// kernel does), then transposed. Group g of 16 (scale[16 * sb + g]) is half of unit
// 8 * sb + g / 2.
CAIRN_T void PackQ6_K(const uint8_t* const* rows, int64_t nb, const Panel& pk) {
  alignas(64) uint8_t decoded[kRows][kQK_K];
  const uint8_t* dec[kRows];
  for (int r = 0; r < kRows; ++r) dec[r] = decoded[r];
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
  for (int64_t sb = 0; sb < nb; ++sb) {
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* blk = rows[r] + 210 * sb;
      for (int half = 0; half < 2; ++half) {
        const __m512i l = _mm512_loadu_si512(blk + 64 * half);
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * half));
        const __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
        const __m512i h01 = _mm512_slli_epi16(_mm512_and_si512(hz, m2), 4);
        const __m512i h23 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hz, 4), m2), 4);
        _mm512_store_si512(decoded[r] + 128 * half, _mm512_or_si512(_mm512_and_si512(l, m4), h01));
        _mm512_store_si512(decoded[r] + 128 * half + 64,
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), h23));
      }
      const float d = _cvtsh_ss(LoadU16(blk + 208));
      const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
      for (int gi = 0; gi < 16; ++gi) pk.scale[(16 * sb + gi) * kRows + r] = d * static_cast<float>(sc[gi]);
    }
    for (int u = 0; u < 8; ++u) {
      uint8_t* v = pk.vals + (8 * sb + u) * 512;
      for (int half = 0; half < 2; ++half) {
        __m512i t[4];
        Transpose16(dec, static_cast<size_t>(32 * u + 16 * half), t);
        for (int m = 0; m < 4; ++m) Store(v + 64 * (4 * half + m), t[m]);
      }
    }
  }
}

// ---- tiles: 16 rows x T tokens ----

// sum[t] += the 8 (or `steps`) vectors of a unit against token t's 32 activation bytes.
template <int T>
CAIRN_T inline void DotUnit(const uint8_t* v, const int8_t* const* x, int first, int steps, __m512i* sum) {
  for (int k = first; k < first + steps; ++k) {
    const __m512i w = _mm512_load_si512(v + 64 * k);
    for (int t = 0; t < T; ++t) {
      sum[t] = _mm512_dpbusd_epi32(sum[t], w, _mm512_set1_epi32(static_cast<int>(LoadU32(x[t] + 4 * k))));
    }
  }
}

// The activations of a run of tokens regrouped for TileBlocks: per tile of kMaxTokens
// tokens and per block, the tokens' 32 quantized values side by side (qs), then their
// scales (d) and the integer offsets each block's sum starts from (off). Every operand of
// the inner loop then sits at a fixed offset from one pointer per block, instead of one
// pointer per token (which spilled registers).
struct TileActs {
  int64_t nb = 0;
  const int8_t* qs = nullptr;  // [tile][block][token][32]
  const float* d = nullptr;    // [tile][block][token]
  const int32_t* off = nullptr;
};

thread_local Scratch tile_scratch;

// Bytes of the arrangement of tokens [t0, t1): per slot (tile, block, token) 32 values,
// a scale and an offset.
size_t TileSlots(const Acts& a, int64_t t0, int64_t t1) {
  const int64_t tiles = (t1 - t0 + kMaxTokens - 1) / kMaxTokens;
  return static_cast<size_t>(tiles * a.nb * kMaxTokens);
}

TileActs TileView(int64_t nb, size_t slots, const uint8_t* base) {
  return TileActs{nb, reinterpret_cast<const int8_t*>(base), reinterpret_cast<const float*>(base + slots * 32),
                  reinterpret_cast<const int32_t*>(base + slots * 36)};
}

template <bool kQ8>
void RegroupInto(const Acts& a, int64_t t0, int64_t t1, uint8_t* base) {
  constexpr int kShift = kQ8 ? 7 : 3;
  const int64_t nb = a.nb;
  const size_t slots = TileSlots(a, t0, t1);
  auto* qs = reinterpret_cast<int8_t*>(base);
  auto* d = reinterpret_cast<float*>(base + slots * 32);
  auto* off = reinterpret_cast<int32_t*>(base + slots * 36);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t tile = (t - t0) / kMaxTokens, lane = (t - t0) % kMaxTokens;
    for (int64_t b = 0; b < nb; ++b) {
      const size_t slot = static_cast<size_t>((tile * nb + b) * kMaxTokens + lane);
      std::memcpy(qs + slot * 32, a.qs + (t * nb + b) * 32, 32);
      d[slot] = a.d[t * nb + b];
      off[slot] = -(a.sums[t * nb + b] << kShift);
    }
  }
}

// The arrangement the batch's caller built (Acts::tiled) when it covers these tokens,
// else one made here.
template <bool kQ8>
TileActs RegroupActs(const Acts& a, int64_t t0, int64_t t1) {
  const size_t slots = TileSlots(a, t0, t1);
  const TensorType type = kQ8 ? TensorType::kQ8_0 : TensorType::kQ4_0;
  if (a.tiled != nullptr && a.tiled_t0 == t0 && a.tiled_t1 == t1 && a.tiled_for == type) {
    return TileView(a.nb, slots, a.tiled);
  }
  auto* base = static_cast<uint8_t*>(tile_scratch.Get(slots * (32 + sizeof(float) + sizeof(int32_t))));
  RegroupInto<kQ8>(a, t0, t1, base);
  return TileView(a.nb, slots, base);
}

template <int T, bool kQ8>
CAIRN_T void TileBlocks(const uint8_t* pk, const TileActs& ta, int64_t tile, float* y, int64_t ldy) {
  const int64_t nb = ta.nb;
  const auto* half = reinterpret_cast<const __m256i*>(pk + nb * kValBytes<kQ8>);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const size_t slot = static_cast<size_t>((tile * nb + b) * kMaxTokens);
    const int8_t* x = ta.qs + slot * 32;
    const float* xd = ta.d + slot;
    const int32_t* xo = ta.off + slot;
    __m512i sum[T];
    for (int t = 0; t < T; ++t) sum[t] = _mm512_set1_epi32(xo[t]);
    const uint8_t* v = pk + b * kValBytes<kQ8>;
    if constexpr (T == 1) {
      // Decode streams the panels from memory once per token, one run of bytes per
      // thread; the hardware prefetchers alone keep too few lines in flight for that
      // (see PrefetchNextTile), so fetch 8 blocks ahead in both the value and the scale
      // run. Past the panel's end these are the next panel's first bytes.
      for (size_t l = 0; l < kValBytes<kQ8>; l += 64) __builtin_prefetch(v + 8 * kValBytes<kQ8> + l, 0, 3);
      if (b % 2 == 0) __builtin_prefetch(half + b + 8, 0, 3);
    }
    if constexpr (kQ8) {
      for (int k = 0; k < 8; ++k) {
        const __m512i w = _mm512_load_si512(v + 64 * k);
        for (int t = 0; t < T; ++t) {
          sum[t] = _mm512_dpbusd_epi32(sum[t], w, _mm512_set1_epi32(static_cast<int>(LoadU32(x + 32 * t + 4 * k))));
        }
      }
    } else {
      for (int m = 0; m < 4; ++m) {
        const __m512i raw = _mm512_load_si512(v + 64 * m);
        const __m512i lo = Lo(raw), hi = Hi(raw);
        for (int t = 0; t < T; ++t) {
          sum[t] = _mm512_dpbusd_epi32(sum[t], lo, _mm512_set1_epi32(static_cast<int>(LoadU32(x + 32 * t + 4 * m))));
          sum[t] = _mm512_dpbusd_epi32(sum[t], hi,
                                       _mm512_set1_epi32(static_cast<int>(LoadU32(x + 32 * t + 16 + 4 * m))));
        }
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(half + b));
    for (int t = 0; t < T; ++t) {
      const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), s, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

// TileBlocks over two panels (32 rows) and up to 4 tokens (tile lanes lane0..): every
// activation broadcast feeds two products, so a block needs about half the loads per
// product of TileBlocks<8>. The same arithmetic per output, in the same order.
template <int T, bool kQ8>
CAIRN_T void TileBlocks2(const uint8_t* pk0, const uint8_t* pk1, const TileActs& ta, int64_t tile, int lane0,
                         float* y0, float* y1, int64_t ldy) {
  const int64_t nb = ta.nb;
  const auto* half0 = reinterpret_cast<const __m256i*>(pk0 + nb * kValBytes<kQ8>);
  const auto* half1 = reinterpret_cast<const __m256i*>(pk1 + nb * kValBytes<kQ8>);
  __m512 acc0[T], acc1[T];
  for (int t = 0; t < T; ++t) acc0[t] = acc1[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const size_t slot = static_cast<size_t>((tile * nb + b) * kMaxTokens + lane0);
    const int8_t* x = ta.qs + slot * 32;
    const float* xd = ta.d + slot;
    const int32_t* xo = ta.off + slot;
    __m512i sum0[T], sum1[T];
    for (int t = 0; t < T; ++t) sum0[t] = sum1[t] = _mm512_set1_epi32(xo[t]);
    const uint8_t* v0 = pk0 + b * kValBytes<kQ8>;
    const uint8_t* v1 = pk1 + b * kValBytes<kQ8>;
    if constexpr (T == 1) {  // as in TileBlocks, for both panels
      for (size_t l = 0; l < kValBytes<kQ8>; l += 64) {
        __builtin_prefetch(v0 + 8 * kValBytes<kQ8> + l, 0, 3);
        __builtin_prefetch(v1 + 8 * kValBytes<kQ8> + l, 0, 3);
      }
      if (b % 2 == 0) __builtin_prefetch(half0 + b + 8, 0, 3), __builtin_prefetch(half1 + b + 8, 0, 3);
    }
    if constexpr (kQ8) {
      for (int k = 0; k < 8; ++k) {
        const __m512i w0 = _mm512_load_si512(v0 + 64 * k), w1 = _mm512_load_si512(v1 + 64 * k);
        for (int t = 0; t < T; ++t) {
          const __m512i xa = _mm512_set1_epi32(static_cast<int>(LoadU32(x + 32 * t + 4 * k)));
          sum0[t] = _mm512_dpbusd_epi32(sum0[t], w0, xa);
          sum1[t] = _mm512_dpbusd_epi32(sum1[t], w1, xa);
        }
      }
    } else {
      for (int m = 0; m < 4; ++m) {
        const __m512i raw0 = _mm512_load_si512(v0 + 64 * m), raw1 = _mm512_load_si512(v1 + 64 * m);
        const __m512i lo0 = Lo(raw0), hi0 = Hi(raw0), lo1 = Lo(raw1), hi1 = Hi(raw1);
        for (int t = 0; t < T; ++t) {
          const __m512i xl = _mm512_set1_epi32(static_cast<int>(LoadU32(x + 32 * t + 4 * m)));
          const __m512i xh = _mm512_set1_epi32(static_cast<int>(LoadU32(x + 32 * t + 16 + 4 * m)));
          sum0[t] = _mm512_dpbusd_epi32(sum0[t], lo0, xl);
          sum0[t] = _mm512_dpbusd_epi32(sum0[t], hi0, xh);
          sum1[t] = _mm512_dpbusd_epi32(sum1[t], lo1, xl);
          sum1[t] = _mm512_dpbusd_epi32(sum1[t], hi1, xh);
        }
      }
    }
    const __m512 dw0 = _mm512_cvtph_ps(_mm256_load_si256(half0 + b));
    const __m512 dw1 = _mm512_cvtph_ps(_mm256_load_si256(half1 + b));
    for (int t = 0; t < T; ++t) {
      const __m512 dt = _mm512_set1_ps(xd[t]);
      acc0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum0[t]), _mm512_mul_ps(dw0, dt), acc0[t]);
      acc1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum1[t]), _mm512_mul_ps(dw1, dt), acc1[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    _mm512_storeu_ps(y0 + t * ldy, acc0[t]);
    _mm512_storeu_ps(y1 + t * ldy, acc1[t]);
  }
}

template <int T>
CAIRN_T void TileQ4_K(const Panel& pk, const Acts& a, int64_t t0, float* y, int64_t ldy) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < a.nb; ++sb) {
    for (int j = 0; j < 8; ++j) {
      const int64_t u = 8 * sb + j;
      __m512i sum[T];
      const int8_t* x[T];
      for (int t = 0; t < T; ++t) {
        sum[t] = _mm512_setzero_si512();
        x[t] = a.qs + ((t0 + t) * a.nb + sb) * kQK_K + 32 * j;
      }
      DotUnit<T>(pk.vals + u * 512, x, 0, 8, sum);
      const __m512 sc = _mm512_load_ps(pk.scale + u * kRows);
      const __m512 mn = _mm512_load_ps(pk.mins + u * kRows);
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + sb;
        const float da = a.d[tb];
        const int16_t* bs = a.bsums + tb * 16 + 2 * j;
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), _mm512_mul_ps(sc, _mm512_set1_ps(da)), acc[t]);
        acc[t] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(da * static_cast<float>(bs[0] + bs[1])), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + (t0 + t) * ldy, acc[t]);
}

template <int T>
CAIRN_T void TileQ6_K(const Panel& pk, const Acts& a, int64_t t0, float* y, int64_t ldy) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < a.nb; ++sb) {
    for (int gi = 0; gi < 16; ++gi) {
      __m512i sum[T];
      const int8_t* x[T];
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + sb;
        sum[t] = _mm512_set1_epi32(-32 * a.bsums[tb * 16 + gi]);
        x[t] = a.qs + tb * kQK_K + 32 * (gi / 2);
      }
      DotUnit<T>(pk.vals + (8 * sb + gi / 2) * 512, x, 4 * (gi % 2), 4, sum);
      const __m512 sc = _mm512_load_ps(pk.scale + (16 * sb + gi) * kRows);
      for (int t = 0; t < T; ++t) {
        const __m512 s = _mm512_mul_ps(sc, _mm512_set1_ps(a.d[(t0 + t) * a.nb + sb]));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), s, acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(y + (t0 + t) * ldy, acc[t]);
}

using PanelPackFn = void (*)(const uint8_t* const*, int64_t, const Panel&);
using TileFn = void (*)(const Panel&, const Acts&, int64_t, float*, int64_t);

template <template <int> class K>
void RunPanels(const GemmArgs& g, PanelPackFn pack, int64_t blocks) {
  static constexpr TileFn kTiles[kMaxTokens + 1] = {nullptr,  K<1>::Fn, K<2>::Fn, K<3>::Fn, K<4>::Fn,
                                                    K<5>::Fn, K<6>::Fn, K<7>::Fn, K<8>::Fn};
  const Panel pk = AllocPanel(g.cols);
  for (int64_t r = g.r0; r + kRows <= g.r1; r += kRows) {
    const uint8_t* rows[kRows];
    for (int i = 0; i < kRows; ++i) rows[i] = g.w + static_cast<size_t>(r + i) * g.row_bytes;
    pack(rows, blocks, pk);
    for (int64_t t = g.t0; t < g.t1; t += kMaxTokens) {
      const int64_t n = g.t1 - t < kMaxTokens ? g.t1 - t : kMaxTokens;
      kTiles[n](pk, *g.acts, t, g.y + r, g.ldy);
    }
  }
}

using BlockTileFn = void (*)(const uint8_t*, const TileActs&, int64_t, float*, int64_t);

// Q4_0 / Q8_0 over rows [g.r0, g.r1): with `packed`, g.w is the first panel of the
// matrix and g.row_bytes the panel stride; otherwise each panel is built on the fly.
template <bool kQ8>
void RunBlockPanels(const GemmArgs& g, bool packed) {
  static constexpr BlockTileFn kTiles[kMaxTokens + 1] = {
      nullptr,          TileBlocks<1, kQ8>, TileBlocks<2, kQ8>, TileBlocks<3, kQ8>, TileBlocks<4, kQ8>,
      TileBlocks<5, kQ8>, TileBlocks<6, kQ8>, TileBlocks<7, kQ8>, TileBlocks<8, kQ8>};
  const int64_t nb = g.cols / 32;
  uint8_t* own = packed ? nullptr
                        : static_cast<uint8_t*>(panel_scratch.Get(static_cast<size_t>(nb) * (kValBytes<kQ8> + 32)));
  const TileActs ta = RegroupActs<kQ8>(*g.acts, g.t0, g.t1);
  int64_t r = g.r0;
  using PairFn = void (*)(const uint8_t*, const uint8_t*, const TileActs&, int64_t, int, float*, float*, int64_t);
  if (packed && g.t1 - g.t0 == 1) {
    // One token: panels i and i + half of the range together, so the matrix is read as two
    // sequential runs at once (see OneTokenTiles); the same arithmetic per output.
    const int64_t half = (g.r1 - g.r0) / kRows / 2;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t ra = g.r0 + i * kRows, rb = ra + half * kRows;
      TileBlocks2<1, kQ8>(g.w + static_cast<size_t>(ra / kRows) * g.row_bytes,
                          g.w + static_cast<size_t>(rb / kRows) * g.row_bytes, ta, 0, 0, g.y + ra + g.t0 * g.ldy,
                          g.y + rb + g.t0 * g.ldy, g.ldy);
    }
    r = g.r0 + 2 * half * kRows;
  }
  if (packed && g.t1 - g.t0 >= 4) {  // batches: pairs of panels, tokens 4 at a time
    static constexpr PairFn kPairs[5] = {nullptr, TileBlocks2<1, kQ8>, TileBlocks2<2, kQ8>, TileBlocks2<3, kQ8>,
                                         TileBlocks2<4, kQ8>};
    for (; r + 2 * kRows <= g.r1; r += 2 * kRows) {
      const uint8_t* pk0 = g.w + static_cast<size_t>(r / kRows) * g.row_bytes;
      const uint8_t* pk1 = pk0 + g.row_bytes;
      for (int64_t t = g.t0; t < g.t1; t += 4) {
        const int64_t n = g.t1 - t < 4 ? g.t1 - t : 4;
        const int64_t rel = t - g.t0;
        kPairs[n](pk0, pk1, ta, rel / kMaxTokens, static_cast<int>(rel % kMaxTokens), g.y + r + t * g.ldy,
                  g.y + r + kRows + t * g.ldy, g.ldy);
      }
    }
  }
  for (; r + kRows <= g.r1; r += kRows) {
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
      kTiles[n](pk, ta, (t - g.t0) / kMaxTokens, g.y + r + t * g.ldy, g.ldy);
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
template <int T>
struct Q4_KTile {
  static constexpr TileFn Fn = TileQ4_K<T>;
};
template <int T>
struct Q6_KTile {
  static constexpr TileFn Fn = TileQ6_K<T>;
};

}  // namespace

size_t TileActsAvx512(const Acts& a, TensorType weights, int64_t t0, int64_t t1, uint8_t* dst) {
  const size_t bytes = TileSlots(a, t0, t1) * (32 + sizeof(float) + sizeof(int32_t));
  if (dst == nullptr) return bytes;
  if (weights == TensorType::kQ8_0) {
    RegroupInto<true>(a, t0, t1, dst);
  } else {
    RegroupInto<false>(a, t0, t1, dst);
  }
  return bytes;
}

void PanelQ4_0Avx512(const GemmArgs& g) { RunBlockPanels<false>(g, false); }
void PanelQ8_0Avx512(const GemmArgs& g) { RunBlockPanels<true>(g, false); }
void PackedQ4_0Avx512(const GemmArgs& g) { RunBlockPanels<false>(g, true); }
void PackedQ8_0Avx512(const GemmArgs& g) { RunBlockPanels<true>(g, true); }
void PackQ4_0Avx512(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                    size_t panel_bytes) {
  PackRows<false>(w, row_bytes, cols, p0, p1, dst, panel_bytes);
}
void PackQ8_0Avx512(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                    size_t panel_bytes) {
  PackRows<true>(w, row_bytes, cols, p0, p1, dst, panel_bytes);
}
void PanelQ4_KAvx512(const GemmArgs& g) { RunPanels<Q4_KTile>(g, PackQ4_K, g.cols / kQK_K); }
void PanelQ6_KAvx512(const GemmArgs& g) { RunPanels<Q6_KTile>(g, PackQ6_K, g.cols / kQK_K); }

#endif

}  // namespace cairn::infer::internal
