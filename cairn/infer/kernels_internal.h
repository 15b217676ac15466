// cairn/infer/kernels_internal.h — what kernels.cc shares with the per-ISA kernel files
// (kernels_scalar.cc, kernels_avx2.cc, kernels_avx512.cc, kernels_neon.cc). Not part of
// the public API.
//
// MatMul runs in two steps. First the activations of all tokens are converted once to
// the format the weight type needs (Acts). Then the rows are split across the threads and
// each range is handed to the ISA's Gemm for the type, which walks it in tiles of a few
// rows x a few tokens (the weights of a range stay in L2 while every token tile passes
// over them). Every tile computes each output with the same operations in the same order,
// whatever its size, so results never depend on how the rows were split.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>

#include "cairn/infer/kernels.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::infer::internal {

// Activations of n_tokens tokens of `cols` elements each, in the format ActivationType
// names. Quantized formats are structure-of-arrays, per token:
//   qs    int8 values, cols per token (token t at qs + t * cols)
//   d     float scale of each block, nb per token (value = q * d)
//   sums  Q8_0: the int32 sum of each block's 32 values (nb per token)
//   bsums Q8_K: the int16 sum of each 16 values, 16 per block (16 * nb per token)
// Scales are float (more precise than llama.cpp's fp16 Q8_0 scale); q = nearbyint(x / d)
// with d = max|x| / 127 over the block, identical on every path.
struct Acts {
  TensorType type = TensorType::kF32;
  int64_t cols = 0;
  int64_t nb = 0;  // blocks per token
  const float* x = nullptr;  // kF32: the caller's activations, token t at x + t * ldx
  int64_t ldx = 0;
  const int8_t* qs = nullptr;
  const float* d = nullptr;
  const int32_t* sums = nullptr;
  const int16_t* bsums = nullptr;
  // Optional: tokens [tiled_t0, tiled_t1) arranged by the path's tile_acts for a matrix
  // of type tiled_for, built once per token range and shared by every row range.
  const uint8_t* tiled = nullptr;
  int64_t tiled_t0 = 0, tiled_t1 = 0;
  TensorType tiled_for = TensorType::kF32;
};

// Output rows [r0, r1) for tokens [t0, t1): y[t * ldy + r].
struct GemmArgs {
  const uint8_t* w;  // row 0 of the matrix
  size_t row_bytes;
  int64_t cols;
  const Acts* acts;
  int64_t r0, r1, t0, t1;
  float* y;
  int64_t ldy;
  // Rows of a tile: r, r + rs, r + 2 rs, ... (OneTokenTiles sets it).
  int64_t rs = 1;
};

using GemmFn = void (*)(const GemmArgs& args);
// Arranges tokens [t0, t1) of Q8_0 activations for the path's Q4_0 / Q8_0 panel kernels
// on a matrix of type `weights` into dst (64-byte aligned) and returns the bytes written;
// with dst == nullptr only returns the bytes needed.
using TileActsFn = size_t (*)(const Acts& a, TensorType weights, int64_t t0, int64_t t1, uint8_t* dst);
// Packs panels [p0, p1) of the matrix at w (rows row_bytes apart) to dst + p * panel_bytes.
using PackFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                        size_t panel_bytes);
// Quantizes n values (a multiple of the block size) of one token.
using QuantizeQ8_0Fn = void (*)(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sums);
using QuantizeQ8_KFn = void (*)(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums);

struct IsaKernels {
  Isa isa;
  const char* description;
  QuantizeQ8_0Fn quantize_q8_0;
  QuantizeQ8_KFn quantize_q8_k;
  GemmFn f32, f16, bf16, q8_0, q4_0, q4_k, q6_k;
  // Batches of at least panel_min_tokens tokens: kernels over panels of panel_rows rows
  // repacked on the fly (lanes = rows), for ranges whose r0 and r1 are multiples of
  // panel_rows; the last rows % panel_rows rows of a matrix use the kernels above. Null
  // where the path has none.
  int panel_rows = 0;
  int64_t panel_min_tokens = 0;
  GemmFn panel_q8_0 = nullptr, panel_q4_0 = nullptr, panel_q4_k = nullptr, panel_q6_k = nullptr;
  // Packed weights (PackMatrix): pack_* write panels [p0, p1) of a matrix to
  // dst + p * panel_bytes; packed_* take GemmArgs whose w is the first panel and row_bytes
  // the panel stride, with r0 and r1 multiples of panel_rows, for any number of tokens.
  // A Q4_0 / Q8_0 panel holds per block panel_rows x (block bytes - 2) value bytes, then
  // per block panel_rows fp16 scales (PackedPanelBytes). Null where the path has none.
  PackFn pack_q8_0 = nullptr, pack_q4_0 = nullptr;
  GemmFn packed_q8_0 = nullptr, packed_q4_0 = nullptr;
  // Where the Q4_0 / Q8_0 panel and packed kernels read activations in an arrangement of
  // their own: builds it (Acts::tiled), so that a batch's row ranges on several threads
  // share one copy rather than each making its own. Null where they read Acts as it is.
  TileActsFn tile_acts = nullptr;
};

// Bytes of one packed Q4_0 / Q8_0 panel of `panel_rows` rows (a multiple of 64).
inline size_t PackedPanelBytes(TensorType type, int64_t cols, int panel_rows) {
  const size_t block = type == TensorType::kQ8_0 ? 34 : 18;
  const size_t bytes = static_cast<size_t>(cols / 32) * static_cast<size_t>(panel_rows) * block;
  return (bytes + 63) & ~size_t{63};
}

// Each returns nullptr when the build or the CPU lacks the instructions.
const IsaKernels* ScalarKernels();  // never nullptr
const IsaKernels* Avx2Kernels();
const IsaKernels* Avx512Kernels();
const IsaKernels* NeonKernels();

// x86: whether the CPU has F16C (false elsewhere).
bool CpuHasF16c();

// The AVX-512 table without VNNI (nullptr without AVX-512), for tests and benchmarks.
const IsaKernels* Avx512NoVnniKernels();

// MatMulStrided with a given table (the public functions pick one by Isa).
void MatMulWith(const IsaKernels& kernels, const WeightView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                int64_t ldy, ThreadPool* pool);

// MatMulShared with a given table.
void MatMulSharedWith(const IsaKernels& kernels, std::span<const MatMulOut> outs, const float* x, int64_t n_tokens,
                      ThreadPool* pool);

// The quantizers; the SIMD ones produce the same bytes as the scalar ones.
void QuantizeQ8_0Scalar(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sums);
void QuantizeQ8_KScalar(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums);
void QuantizeQ8_0Avx2(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sums);
void QuantizeQ8_KAvx2(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums);

// A 64-byte aligned buffer that grows on demand and never shrinks, so steady-state calls
// do not allocate. Not thread-safe: one per thread (thread_local) or per call.
class Scratch {
 public:
  void* Get(size_t bytes) {
    if (bytes > size_) {
      buf_.reset(static_cast<char*>(::operator new(bytes, std::align_val_t{64})));
      size_ = bytes;
    }
    return buf_.get();
  }

 private:
  struct Free {
    void operator()(char* p) const { ::operator delete(p, std::align_val_t{64}); }
  };
  std::unique_ptr<char, Free> buf_;
  size_t size_ = 0;
};

// Loads that tolerate any alignment.
inline uint16_t LoadU16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t LoadU32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t LoadU64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The 8 six-bit scales and 8 six-bit mins of a Q4_K block (layout in Q4KScaleMin),
// unpacked to one byte each with 32-bit operations.
inline void UnpackQ4KScales(const uint8_t* packed, uint64_t* scales, uint64_t* mins) {
  const uint32_t u0 = LoadU32(packed), u1 = LoadU32(packed + 4), u2 = LoadU32(packed + 8);
  const uint32_t s_lo = u0 & 0x3f3f3f3fu;
  const uint32_t m_lo = u1 & 0x3f3f3f3fu;
  const uint32_t s_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
  *scales = uint64_t{s_lo} | (uint64_t{s_hi} << 32);
  *mins = uint64_t{m_lo} | (uint64_t{m_hi} << 32);
}

// Decode streams each matrix once from memory, a few rows at a time, and the hardware
// prefetchers alone keep too few lines in flight for that (measured: Q4_0 decode at half
// the plain read bandwidth). So a one-token tile of R rows, as it consumes `bytes` bytes
// at p in one of its rows, fetches the same bytes of the row the next tile takes in its
// place: R rows on when the tile's rows are adjacent, the next row when they are g.rs
// apart (OneTokenTiles). Prefetches never fault, so running past the matrix is harmless.
template <int R, int T, int kBytes>
inline void PrefetchNextTile(const uint8_t* p, const GemmArgs& g) {
  if constexpr (T == 1 && R > 1) {
    const uint8_t* q = p + (g.rs == 1 ? R : 1) * g.row_bytes;
    // Every line [q, q + kBytes) touches (one more when it straddles).
    for (int l = 0; l < (kBytes + 63) / 64 + 1; ++l) __builtin_prefetch(q + 64 * l, 0, 3);
  }
}

// One token (decode): calls tile(args, r) for tiles of R rows and one(args, r) for the
// leftover rows. A tile's rows come from R parts of the range, r, r + S, ..., r + (R-1) S
// with S = rows / R (args.rs = S), so the matrix is read as R sequential streams at once
// rather than one: one core draws more bandwidth from several streams (measured on a Q4_K
// matrix larger than the cache, one thread: 1.3x; the machine's read bandwidth with eight
// streams is ~1.7x that with one). Each output is still computed by the same operations
// in the same order.
template <int R, class Tile, class One>
inline void OneTokenTiles(const GemmArgs& g, const Tile& tile, const One& one) {
  int64_t r = g.r0;
  const int64_t s = (g.r1 - g.r0) / R;
  if (s > 1) {
    GemmArgs gs = g;
    gs.rs = s;
    for (int64_t i = 0; i < s; ++i) tile(gs, g.r0 + i);
    r = g.r0 + R * s;
  }
  for (; r + R <= g.r1; r += R) tile(g, r);
  for (; r < g.r1; ++r) one(g, r);
}

// Tiles of R rows x T tokens over rows [g.r0, g.r1) for tokens [t, t + T); leftover rows
// one at a time (one token: OneTokenTiles).
template <class K, int R, int T>
inline void RowTiles(const GemmArgs& g, int64_t t) {
  if constexpr (T == 1 && R > 1) {
    OneTokenTiles<R>(
        g, [t](const GemmArgs& a, int64_t r) { K::template Tile<R, 1>(a, r, t); },
        [t](const GemmArgs& a, int64_t r) { K::template Tile<1, 1>(a, r, t); });
    return;
  }
  int64_t r = g.r0;
  for (; r + R <= g.r1; r += R) K::template Tile<R, T>(g, r, t);
  for (; r < g.r1; ++r) K::template Tile<1, T>(g, r, t);
}

// Walks a GemmArgs range in tiles. K provides
//   template <int R, int T> static void Tile(const GemmArgs& g, int64_t r, int64_t t);
// computing rows [r, r+R) for tokens [t, t+T). One token (decode): tiles of 4 rows, so
// four independent dependency chains hide the FMA latency. More tokens: tiles of RB rows x
// TB tokens (TB <= 6), so each unpacked weight vector is used RB x TB times.
template <class K, int RB = 2, int TB = 4>
inline void RunTiles(const GemmArgs& g) {
  static_assert(TB >= 1 && TB <= 6);
  if (g.t1 - g.t0 == 1) {
    RowTiles<K, 4, 1>(g, g.t0);
    return;
  }
  for (int64_t t = g.t0; t < g.t1; t += TB) {
    switch (g.t1 - t < TB ? g.t1 - t : TB) {
      case 6:
        if constexpr (TB >= 6) RowTiles<K, RB, 6>(g, t);
        break;
      case 5:
        if constexpr (TB >= 5) RowTiles<K, RB, 5>(g, t);
        break;
      case 4:
        if constexpr (TB >= 4) RowTiles<K, RB, 4>(g, t);
        break;
      case 3:
        if constexpr (TB >= 3) RowTiles<K, RB, 3>(g, t);
        break;
      case 2:
        RowTiles<K, RB, 2>(g, t);
        break;
      default:
        RowTiles<K, 4, 1>(g, t);
        break;
    }
  }
}

}  // namespace cairn::infer::internal
