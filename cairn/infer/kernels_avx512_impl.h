// cairn/infer/kernels_avx512_impl.h — the body of the AVX-512 kernels, included twice by
// kernels_avx512.cc: once with VNNI (CAIRN_AVX512_VNNI 1) and once without, each with its
// own target attribute (CAIRN_T) inside its own namespace, so no VNNI instruction can
// appear in the variant that runs on CPUs without it. No include guard on purpose.
//
// Weights and activations are in natural element order; a 512-bit register holds 64
// values: two Q4_0 / Q8_0 blocks, or two 32-value sub-blocks of a K-quant super-block.
//   Q4_0: nibbles 0..15 (unsigned) times a; the -8 offset is -8 * (sum of a) per block.
//   Q8_0: w + 128 (unsigned, w xor 0x80) times a, minus 128 * (sum of a) with VNNI;
//         without it, |w| times a with w's sign (vpmaddubsw would saturate on w + 128).
//   Q4_K / Q6_K: unsigned values times a to int16 pairs, times the sub-block scales into
//         int32 (vpdpwssd with VNNI); mins and the -32 offset through the sums of a.
// Every tile computes each output with the same operations in the same order.

// a += (unsigned bytes u) . (signed bytes s), 4 products per int32 lane.
CAIRN_T inline __m512i DotBytes(__m512i acc, __m512i u, __m512i s) {
#if CAIRN_AVX512_VNNI
  return _mm512_dpbusd_epi32(acc, u, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

// a += int16 pairs p . int16 pairs q.
CAIRN_T inline __m512i DotPairs(__m512i acc, __m512i p, __m512i q) {
#if CAIRN_AVX512_VNNI
  return _mm512_dpwssd_epi32(acc, p, q);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p, q));
#endif
}

// Sums of all lanes as a fixed tree (not _mm512_reduce_add_ps, whose order is the
// compiler's choice).
CAIRN_T inline float Hsum4(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
CAIRN_T inline float Hsum(__m512 v) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  return Hsum4(_mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)));
}

// Two floats (a in lanes 0-7, b in lanes 8-15).
CAIRN_T inline __m512 Pair(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// Two int32 values into lanes 0 and 8, zeros elsewhere.
CAIRN_T inline __m512i PairLanes(int32_t a, int32_t b) {
  return _mm512_inserti32x8(_mm512_castsi256_si512(_mm256_setr_epi32(a, 0, 0, 0, 0, 0, 0, 0)),
                            _mm256_setr_epi32(b, 0, 0, 0, 0, 0, 0, 0), 1);
}

CAIRN_T inline float HalfF(const uint8_t* p) { return _cvtsh_ss(LoadU16(p)); }

inline const uint8_t* RowPtr(const GemmArgs& g, int64_t r) { return g.w + static_cast<size_t>(r) * g.row_bytes; }

// Q4_0 and Q8_0 walk their blocks two at a time; with an odd count the last step has
// only one (the other half of every vector zero).
template <bool kQ8>
struct BlockPairKernel {
  static constexpr int kBlockBytes = kQ8 ? 34 : 18;

  // Weight values of blocks b (lanes 0-31) and b + 1 (32-63, zero when !two), unsigned.
  CAIRN_T static __m512i Weights(const uint8_t* blk, bool two) {
    if constexpr (kQ8) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 36)) : _mm256_setzero_si256();
      return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    } else {
      const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i hi = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 20)) : _mm_setzero_si128();
      // [lo, lo, hi, hi] then the high nibbles of the second copy of each.
      const __m512i v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                                 _mm512_castsi256_si512(_mm256_set_m128i(hi, lo)));
      const __m512i shifted = _mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
      return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
    }
  }

  // Blocks per group: their fp16 scales (words 9k or 17k of the group) all lie in its
  // first 128 bytes, so one two-register word permute gathers them.
  static constexpr int kGroup = kQ8 ? 4 : 8;
  static constexpr bool kCorr = !kQ8 || CAIRN_AVX512_VNNI;  // offset removed through sums
  static constexpr int kShift = kQ8 ? 7 : 3;                 // offset 128 or 8

  CAIRN_T static __m256 GroupScales(const uint8_t* blk) {
    const __m512i idx = kQ8 ? _mm512_setr_epi32(0 | (17 << 16), 34 | (51 << 16), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                            : _mm512_setr_epi32(0 | (9 << 16), 18 | (27 << 16), 36 | (45 << 16), 54 | (63 << 16), 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i h = _mm512_permutex2var_epi16(_mm512_loadu_si512(blk), idx, _mm512_loadu_si512(blk + 64));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(h));
  }

  // Lanes 0-7 from element 2p, lanes 8-15 from element 2p + 1.
  CAIRN_T static __m512i PairIdx(int p) {
    return _mm512_inserti64x4(_mm512_set1_epi32(2 * p), _mm256_set1_epi32(2 * p + 1), 1);
  }

  // acc += (w . x) * scale for one register of two blocks; init carries the offsets.
  CAIRN_T static __m512 Step(__m512 acc, __m512i w, __m512i ws, __m512i x, __m512i init, __m512 scale) {
    __m512i p;
    if constexpr (kCorr) {
      p = DotBytes(init, w, x);
    } else {
      const __m512i xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
      p = _mm512_madd_epi16(_mm512_maddubs_epi16(ws, xs), _mm512_set1_epi16(1));
    }
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc);
  }

  CAIRN_T static void PrepWeights(const uint8_t* blk, bool two, __m512i* w, __m512i* ws) {
    *w = Weights(blk, two);
    if constexpr (kQ8) {
      if constexpr (kCorr) {
        *w = _mm512_xor_si512(*w, _mm512_set1_epi8(static_cast<char>(0x80)));
      } else {
        *ws = _mm512_abs_epi8(*w);
      }
    }
  }

  template <int R, int T>
  CAIRN_T static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = RowPtr(g, r0 + r * g.rs);
    __m512i w[R], ws[R];
    for (int r = 0; r < R; ++r) ws[r] = _mm512_setzero_si512();
    int64_t b = 0;
    for (; b + kGroup <= a.nb; b += kGroup) {
      // Per group: the scale products dw * da and the offsets of all its blocks.
      __m256 dw[R];
      for (int r = 0; r < R; ++r) {
        dw[r] = GroupScales(rows[r] + kBlockBytes * b);
        PrefetchNextTile<R, T, kBlockBytes * kGroup>(rows[r] + kBlockBytes * b, g);
      }
      __m256 sc[R][T];
      __m256i corr[T];
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + b;
        const __m256 da = kQ8 ? _mm256_castps128_ps256(_mm_loadu_ps(a.d + tb)) : _mm256_loadu_ps(a.d + tb);
        for (int r = 0; r < R; ++r) sc[r][t] = _mm256_mul_ps(dw[r], da);
        const __m256i sums = kQ8 ? _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.sums + tb)))
                                 : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.sums + tb));
        corr[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, kShift));
      }
      for (int p = 0; p < kGroup / 2; ++p) {
        const __m512i idx = PairIdx(p);
        for (int r = 0; r < R; ++r) PrepWeights(rows[r] + kBlockBytes * (b + 2 * p), true, &w[r], &ws[r]);
        for (int t = 0; t < T; ++t) {
          const __m512i x = _mm512_loadu_si512(a.qs + ((t0 + t) * a.nb + b + 2 * p) * 32);
          // Offsets into int32 lanes 0 and 8 only.
          const __m512i init = kCorr ? _mm512_maskz_permutexvar_epi32(0x0101, idx, _mm512_castsi256_si512(corr[t]))
                                     : _mm512_setzero_si512();
          for (int r = 0; r < R; ++r) {
            acc[r][t] = Step(acc[r][t], w[r], ws[r], x, init,
                             _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(sc[r][t])));
          }
        }
      }
    }
    for (; b < a.nb; b += 2) {
      const bool two = b + 1 < a.nb;
      __m512 dw[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = rows[r] + kBlockBytes * b;
        PrepWeights(blk, two, &w[r], &ws[r]);
        dw[r] = Pair(HalfF(blk), two ? HalfF(blk + kBlockBytes) : 0.0f);
      }
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * a.nb + b;
        const int8_t* xp = a.qs + tb * 32;
        const __m512i x = two ? _mm512_loadu_si512(xp)
                              : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp)));
        const __m512 da = Pair(a.d[tb], two ? a.d[tb + 1] : 0.0f);
        const __m512i init =
            kCorr ? PairLanes(-(a.sums[tb] << kShift), two ? -(a.sums[tb + 1] << kShift) : 0) : _mm512_setzero_si512();
        for (int r = 0; r < R; ++r) acc[r][t] = Step(acc[r][t], w[r], ws[r], x, init, _mm512_mul_ps(dw[r], da));
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = Hsum(acc[r][t]);
  }
};

// ---- Q4_K ----

struct Q4_KKernel {
  template <int R, int T>
  CAIRN_T static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    const __m256i mask = _mm256_set1_epi8(0x0F);
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
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
        uint64_t scales, mins;
        UnpackQ4KScales(blk + 4, &scales, &mins);
        // Sub-blocks 2j and 2j+1: int16 scale lanes 0-15 and 16-31.
        const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(scales))));
        __m512i sc[4];
        __m512i w[4];
        for (int j = 0; j < 4; ++j) {
          sc[j] = _mm512_permutexvar_epi16(
              _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(2 * j)), _mm256_set1_epi16(static_cast<int16_t>(2 * j + 1)), 1),
              sc16);
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * j));
          w[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, mask)),
                                    _mm256_and_si256(_mm256_srli_epi16(v, 4), mask), 1);
        }
        const __m128i mins16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(mins)));
        const float d = HalfF(blk), dmin = HalfF(blk + 2);
        for (int t = 0; t < T; ++t) {
          const int64_t tb = (t0 + t) * a.nb + b;
          const int8_t* x = a.qs + tb * kQK_K;
          __m512i isum = _mm512_setzero_si512();
          for (int j = 0; j < 4; ++j) {
            isum = DotPairs(isum, _mm512_maddubs_epi16(w[j], _mm512_loadu_si512(x + 64 * j)), sc[j]);
          }
          const __m128i msum = _mm_madd_epi16(bsum32[t], mins16);
          const float da = a.d[tb];
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * da), acc[r][t]);
          acc[r][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi128_si512(msum)), _mm512_set1_ps(dmin * da),
                                       acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = Hsum(acc[r][t]);
  }
};

// Decode (one token) of Q4_K rows. A 64-byte load of a super-block's nibbles holds
// sub-blocks 4k and 4k + 2 in its low nibbles and 4k + 1 and 4k + 3 in its high ones, so
// the token's activations are first copied in that order (once per call for all its rows;
// with several threads each work item copies them, a few KB against the hundreds of KB of
// weights it reads):
// each 64 weights then take one load and two masks instead of two 32-byte loads, two
// masks, two shifts and an insert. The integer sums are the same (exact), so are the results.
thread_local Scratch q4k_decode_acts;

template <int R>
CAIRN_T void DecodeQ4_KTile(const GemmArgs& g, int64_t r0, const int8_t* xr, const __m512i* sc_idx) {
  const Acts& a = *g.acts;
  const int64_t tb0 = g.t0 * a.nb;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  __m128 accm[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps(), accm[r] = _mm_setzero_ps();
  for (int64_t b = 0; b < a.nb; ++b) {
    const int16_t* bs = a.bsums + (tb0 + b) * 16;
    const __m128i bsum32 = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bs)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(bs + 8)));
    const __m128 da4 = _mm_set1_ps(a.d[tb0 + b]);
    const int8_t* x = xr + b * kQK_K;
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = RowPtr(g, r0 + r * g.rs) + 144 * b;
      PrefetchNextTile<R, 1, 144>(blk, g);
      uint64_t scales, mins;
      UnpackQ4KScales(blk + 4, &scales, &mins);
      const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(scales))));
      __m512i isum = _mm512_setzero_si512();
      for (int k = 0; k < 2; ++k) {
        const __m512i raw = _mm512_loadu_si512(blk + 16 + 64 * k);
        const __m512i lo = _mm512_and_si512(raw, mask);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
        isum = DotPairs(isum, _mm512_maddubs_epi16(lo, _mm512_loadu_si512(x + 128 * k)),
                        _mm512_permutexvar_epi16(sc_idx[2 * k], sc16));
        isum = DotPairs(isum, _mm512_maddubs_epi16(hi, _mm512_loadu_si512(x + 128 * k + 64)),
                        _mm512_permutexvar_epi16(sc_idx[2 * k + 1], sc16));
      }
      // The mins' term has a sum of its own in a 128-bit register (subtracted at the end):
      // off the main accumulator's dependency chain, without widening it to 512 bits; d and
      // dmin are converted together. Measured with the rows in L2 (cairn_infer_bench
      // BM_MatMulIsa/12/2/1/256): about 1.13x the previous form, median of six pairs.
      const __m128i mins16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(mins)));
      const __m128i msum = _mm_madd_epi16(bsum32, mins16);
      const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(LoadU32(blk)))), da4);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_broadcastss_ps(dd), acc[r]);
      accm[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(msum), _mm_shuffle_ps(dd, dd, 0x55), accm[r]);
    }
  }
  for (int r = 0; r < R; ++r) g.y[g.t0 * g.ldy + r0 + r * g.rs] = Hsum(acc[r]) - Hsum4(accm[r]);
}

CAIRN_T void DecodeQ4_K(const GemmArgs& g) {
  const Acts& a = *g.acts;
  auto* xr = static_cast<int8_t*>(q4k_decode_acts.Get(static_cast<size_t>(a.nb) * kQK_K));
  const int8_t* x = a.qs + g.t0 * a.nb * kQK_K;
  // Per super-block: [4k | 4k+2] then [4k+1 | 4k+3] for k = 0, 1, 32 values each.
  for (int64_t b = 0; b < a.nb; ++b) {
    for (int k = 0; k < 2; ++k) {
      for (int h = 0; h < 2; ++h) {
        int8_t* dst = xr + b * kQK_K + 128 * k + 64 * h;
        std::memcpy(dst, x + b * kQK_K + 32 * (4 * k + h), 32);
        std::memcpy(dst + 32, x + b * kQK_K + 32 * (4 * k + 2 + h), 32);
      }
    }
  }
  // int16 scale lanes: the first 16 take sub-block 4k + h, the last 16 sub-block 4k + 2 + h.
  __m512i sc_idx[4];
  for (int k = 0; k < 2; ++k) {
    for (int h = 0; h < 2; ++h) {
      sc_idx[2 * k + h] = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(4 * k + h)),
                                             _mm256_set1_epi16(static_cast<int16_t>(4 * k + 2 + h)), 1);
    }
  }
  OneTokenTiles<4>(
      g, [&](const GemmArgs& a, int64_t r) { DecodeQ4_KTile<4>(a, r, xr, sc_idx); },
      [&](const GemmArgs& a, int64_t r) { DecodeQ4_KTile<1>(a, r, xr, sc_idx); });
}

// ---- Q6_K ----

// int16 lane i -> i / 8.
alignas(64) constexpr int16_t kQuarterIdx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

struct Q6_KKernel {
  template <int R, int T>
  CAIRN_T static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    const Acts& a = *g.acts;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i m2 = _mm512_set1_epi8(0x03);
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < a.nb; ++b) {
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = RowPtr(g, r0 + r * g.rs) + 210 * b;
        PrefetchNextTile<R, T, 210>(blk, g);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192)));
        // 64 values (4 groups of 16) per register: int16 lanes 8k..8k+7 take group 4m + k.
        __m512i sc[4];
        __m512i w[4];
        for (int m = 0; m < 4; ++m) {
          const __m512i idx = _mm512_add_epi16(_mm512_loadu_si512(kQuarterIdx), _mm512_set1_epi16(static_cast<int16_t>(4 * m)));
          sc[m] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc16));
        }
        for (int half = 0; half < 2; ++half) {
          const __m512i l = _mm512_loadu_si512(blk + 64 * half);  // ql: values 0..63 low, 64..127 high nibbles
          const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * half));
          const __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
          const __m512i h01 = _mm512_slli_epi16(_mm512_and_si512(hz, m2), 4);
          const __m512i h23 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hz, 4), m2), 4);
          w[2 * half] = _mm512_or_si512(_mm512_and_si512(l, m4), h01);
          w[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), h23);
        }
        const float d = HalfF(blk + 208);
        for (int t = 0; t < T; ++t) {
          const int64_t tb = (t0 + t) * a.nb + b;
          const int8_t* x = a.qs + tb * kQK_K;
          __m512i isum = _mm512_setzero_si512();
          for (int m = 0; m < 4; ++m) {
            isum = DotPairs(isum, _mm512_maddubs_epi16(w[m], _mm512_loadu_si512(x + 64 * m)), sc[m]);
          }
          // -32 * sum over groups of scale * (sum of a): 16 int16 products in 8 lanes.
          const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums + tb * 16));
          const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5);
          isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(off));
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * a.d[tb]), acc[r][t]);
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
  CAIRN_T static __m512 Load(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static constexpr int kBytes = 2;
  CAIRN_T static __m512 Load(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  }
};
struct LoadBF16 {
  static constexpr int kBytes = 2;
  CAIRN_T static __m512 Load(const uint8_t* row, int64_t i, __mmask16 m) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
};

template <class L>
struct FloatKernel {
  template <int R, int T>
  CAIRN_T static void Tile(const GemmArgs& g, int64_t r0, int64_t t0) {
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = RowPtr(g, r0 + r * g.rs);
    const float* xs = g.acts->x;
    // Masked loads cover the tail (and never fault on the masked-off part).
    for (int64_t i = 0; i < g.cols; i += 16) {
      const __mmask16 m = g.cols - i >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (g.cols - i)) - 1);
      __m512 w[R];
      if ((i & 31) == 0) {
        for (int r = 0; r < R; ++r) PrefetchNextTile<R, T, 32 * L::kBytes>(rows[r] + L::kBytes * i, g);
      }
      for (int r = 0; r < R; ++r) w[r] = L::Load(rows[r], i, m);
      for (int t = 0; t < T; ++t) {
        const __m512 x = _mm512_maskz_loadu_ps(m, xs + (t0 + t) * g.acts->ldx + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(w[r], x, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.ldy + r0 + r * g.rs] = Hsum(acc[r][t]);
  }
};

void GemmQ4_0(const GemmArgs& g) { RunTiles<BlockPairKernel<false>>(g); }
void GemmQ8_0(const GemmArgs& g) { RunTiles<BlockPairKernel<true>>(g); }
void GemmQ4_K(const GemmArgs& g) {
  if (g.t1 - g.t0 == 1) {
    DecodeQ4_K(g);
    return;
  }
  RunTiles<Q4_KKernel>(g);
}
void GemmQ6_K(const GemmArgs& g) { RunTiles<Q6_KKernel>(g); }
// Float batches are bound by loads: 4 x 6 tiles (24 accumulators of the 32 registers)
// take 10 loads per 24 FMAs where 2 x 4 take 6 per 8.
void GemmF32(const GemmArgs& g) { RunTiles<FloatKernel<LoadF32>, 4, 6>(g); }
void GemmF16(const GemmArgs& g) { RunTiles<FloatKernel<LoadF16>, 4, 6>(g); }
void GemmBF16(const GemmArgs& g) { RunTiles<FloatKernel<LoadBF16>, 4, 6>(g); }
