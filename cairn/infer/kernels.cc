#include "cairn/infer/kernels.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include <fmt/format.h>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "cairn/base/log.h"
#include "cairn/infer/kernels_internal.h"

namespace cairn::infer {

namespace {

using internal::Acts;
using internal::GemmArgs;
using internal::GemmFn;
using internal::IsaKernels;

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "cairn::infer::MatMul: %s\n", std::string(s.message()).c_str());
  std::abort();
}

const IsaKernels* KernelsFor(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return internal::ScalarKernels();
    case Isa::kAvx2:
      return internal::Avx2Kernels();
    case Isa::kAvx512:
      return internal::Avx512Kernels();
    case Isa::kNeon:
      return internal::NeonKernels();
  }
  return nullptr;
}

const IsaKernels* Best() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kNeon}) {
    if (const IsaKernels* k = KernelsFor(isa)) return k;
  }
  return internal::ScalarKernels();
}

const IsaKernels* Choose() {
  const char* env = std::getenv("CAIRN_INFER_ISA");
  if (env == nullptr || *env == '\0') return Best();
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (std::string(env) == IsaName(isa)) {
      if (const IsaKernels* k = KernelsFor(isa)) return k;
    }
  }
  const IsaKernels* best = Best();
  spdlog::warn("CAIRN_INFER_ISA={} is not available on this machine; using {}", env, best->description);
  return best;
}

const IsaKernels& Active() {
  static const IsaKernels* const kernels = Choose();  // chosen once, thread-safely
  return *kernels;
}

GemmFn PanelFor(const IsaKernels& k, TensorType type) {
  switch (type) {
    case TensorType::kQ8_0:
      return k.panel_q8_0;
    case TensorType::kQ4_0:
      return k.panel_q4_0;
    case TensorType::kQ4_K:
      return k.panel_q4_k;
    case TensorType::kQ6_K:
      return k.panel_q6_k;
    default:
      return nullptr;
  }
}

GemmFn GemmFor(const IsaKernels& k, TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return k.f32;
    case TensorType::kF16:
      return k.f16;
    case TensorType::kBF16:
      return k.bf16;
    case TensorType::kQ8_0:
      return k.q8_0;
    case TensorType::kQ4_0:
      return k.q4_0;
    case TensorType::kQ4_K:
      return k.q4_k;
    case TensorType::kQ6_K:
      return k.q6_k;
    default:
      return nullptr;
  }
}

// Scratch for the quantized activations, one per thread that calls MatMul. While this
// thread runs rows of a MatMul (matmul_depth > 0), the buffer may be in use by that call,
// so a MatMul started from there gets a buffer of its own.
using internal::Scratch;
thread_local Scratch scratch;
thread_local int matmul_depth = 0;
// The arrangement of activations a path's panel kernels share (IsaKernels::tile_acts),
// under the same rule as `scratch`.
thread_local Scratch tile_scratch;

inline size_t Align64(size_t n) { return (n + 63) & ~size_t{63}; }

}  // namespace

namespace {

// Bytes of the quantized activations of n_tokens tokens of `cols` values in `type`.
size_t ActsBytes(TensorType type, int64_t cols, int64_t n_tokens) {
  if (type == TensorType::kF32) return 0;
  const int64_t nb = cols / (type == TensorType::kQ8_0 ? 32 : kQK_K);
  const size_t n = static_cast<size_t>(n_tokens);
  const size_t extra = type == TensorType::kQ8_0 ? sizeof(int32_t) : 16 * sizeof(int16_t);
  return Align64(n * static_cast<size_t>(cols)) + Align64(n * static_cast<size_t>(nb) * sizeof(float)) +
         Align64(n * static_cast<size_t>(nb) * extra);
}

// Converts the activations to `type` (kF32: used as given) in `buf` (ActsBytes bytes).
Acts MakeActs(const IsaKernels& k, TensorType type, int64_t cols, const float* x, int64_t ldx, int64_t n_tokens,
              char* buf, ThreadPool* pool) {
  Acts acts;
  acts.type = type;
  acts.cols = cols;
  if (type == TensorType::kF32) {
    acts.x = x;
    acts.ldx = ldx;
    return acts;
  }
  acts.nb = cols / (type == TensorType::kQ8_0 ? 32 : kQK_K);
  const size_t n = static_cast<size_t>(n_tokens);
  const size_t qs_bytes = Align64(n * static_cast<size_t>(cols));
  const size_t d_bytes = Align64(n * static_cast<size_t>(acts.nb) * sizeof(float));
  auto* qs = reinterpret_cast<int8_t*>(buf);
  auto* d = reinterpret_cast<float*>(buf + qs_bytes);
  char* extra = buf + qs_bytes + d_bytes;
  const int64_t nb = acts.nb;
  auto quantize = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * ldx;
      int8_t* qt = qs + t * cols;
      float* dt = d + t * nb;
      if (type == TensorType::kQ8_0) {
        k.quantize_q8_0(xt, cols, qt, dt, reinterpret_cast<int32_t*>(extra) + t * nb);
      } else {
        k.quantize_q8_k(xt, cols, qt, dt, reinterpret_cast<int16_t*>(extra) + t * nb * 16);
      }
    }
  };
  if (pool != nullptr && n_tokens >= 8) {
    pool->ParallelFor(n_tokens, quantize);
  } else {
    quantize(0, n_tokens);
  }
  acts.qs = qs;
  acts.d = d;
  if (type == TensorType::kQ8_0) {
    acts.sums = reinterpret_cast<const int32_t*>(extra);
  } else {
    acts.bsums = reinterpret_cast<const int16_t*>(extra);
  }
  return acts;
}

GemmFn PackedFor(const IsaKernels& k, TensorType type) {
  switch (type) {
    case TensorType::kQ8_0:
      return k.packed_q8_0;
    case TensorType::kQ4_0:
      return k.packed_q4_0;
    default:
      return nullptr;
  }
}

internal::PackFn PackFor(const IsaKernels& k, TensorType type) {
  switch (type) {
    case TensorType::kQ8_0:
      return k.pack_q8_0;
    case TensorType::kQ4_0:
      return k.pack_q4_0;
    default:
      return nullptr;
  }
}

// The products of one matrix with activations already converted.
void RunRows(const IsaKernels& k, const WeightView& w, const Acts& acts, int64_t n_tokens, float* y, int64_t ldy,
             ThreadPool* pool) {
  const GemmFn gemm = GemmFor(k, w.type);
  const int threads = pool == nullptr ? 1 : pool->size();
  // Batches use the panel kernels where the path has them, and so does every call on a
  // matrix packed for this path: for whole panels of rows, so work items start on panel
  // boundaries and only the matrix's last rows % panel_rows rows fall back to the
  // per-row kernels (which rows take which kernel never depends on the thread count).
  const bool packed = w.packed != nullptr && w.packed->layout == &k && PackedFor(k, w.type) != nullptr;
  const GemmFn panel = packed                             ? PackedFor(k, w.type)
                       : n_tokens >= k.panel_min_tokens ? PanelFor(k, w.type)
                                                        : nullptr;
  // Packed batches run panels two at a time where the path pairs them: whole pairs per
  // work item, so that splitting a matrix across threads leaves no single panels behind.
  const int64_t align = panel == nullptr ? 4 : packed && n_tokens > 1 ? 2 * k.panel_rows : k.panel_rows;
  // Rows per work item. Decode: several items per thread so a late thread is not waited
  // for. Batches: as many rows as fit about 64 KiB, so the rows of an item stay in L2 while
  // every token tile passes over them.
  int64_t grain;
  if (n_tokens == 1) {
    grain = w.rows / (int64_t{threads} * 8);
  } else {
    grain = std::min<int64_t>(static_cast<int64_t>((64 << 10) / std::max<size_t>(w.row_bytes, 1)),
                              w.rows / (int64_t{threads} * 4));
  }
  grain = std::max<int64_t>(align, (grain + align - 1) / align * align);
  const int64_t panel_end = packed ? w.packed->rows : panel != nullptr ? w.rows / align * align : 0;
  const uint8_t* pbase = packed ? w.packed->data.get() : static_cast<const uint8_t*>(w.data);
  const size_t pstride = packed ? w.packed->panel_bytes : w.row_bytes;
  // Below about 64 KiB of weight traffic the work takes a few microseconds, about what
  // waking the pool and waiting for it costs: run it here.
  const double row_read = static_cast<double>(w.cols / BlockSize(w.type) * BlockBytes(w.type));
  const bool small = row_read * static_cast<double>(w.rows) * static_cast<double>(n_tokens) < 64.0 * 1024;

  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const bool parallel = pool != nullptr && threads > 1 && w.rows > grain && !small;
  // Q4_0 / Q8_0 panel kernels that read the activations in an arrangement of their own get
  // it built here, once per token block, rather than once per work item on every thread.
  const bool tile = parallel && panel != nullptr && panel_end > 0 && k.tile_acts != nullptr &&
                    (w.type == TensorType::kQ8_0 || w.type == TensorType::kQ4_0);
  std::unique_ptr<Scratch> own_tiles;
  Scratch* tiles = tile ? (matmul_depth == 0 ? &tile_scratch : (own_tiles = std::make_unique<Scratch>()).get())
                        : nullptr;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kMatMulTokenBlock) {
    const int64_t t1 = std::min(n_tokens, t0 + kMatMulTokenBlock);
    Acts block = acts;
    if (tile) {
      auto* dst = static_cast<uint8_t*>(tiles->Get(k.tile_acts(acts, w.type, t0, t1, nullptr)));
      k.tile_acts(acts, w.type, t0, t1, dst);
      block.tiled = dst;
      block.tiled_t0 = t0;
      block.tiled_t1 = t1;
      block.tiled_for = w.type;
    }
    auto rows_fn = [&](int64_t r0, int64_t r1) {
      ++matmul_depth;
      const int64_t split = std::clamp(panel_end, r0, r1);
      if (split > r0) panel(GemmArgs{pbase, pstride, w.cols, &block, r0, split, t0, t1, y, ldy});
      if (r1 > split) gemm(GemmArgs{wbase, w.row_bytes, w.cols, &block, split, r1, t0, t1, y, ldy});
      --matmul_depth;
    };
    if (parallel) {
      pool->ParallelForGrain(w.rows, grain, rows_fn);
    } else {
      rows_fn(0, w.rows);
    }
  }
}

// The calling thread's buffer, or (inside a MatMul's rows) one of the call's own.
Scratch* ActsScratch(std::unique_ptr<Scratch>& own) {
  if (matmul_depth == 0) return &scratch;
  own = std::make_unique<Scratch>();
  return own.get();
}

}  // namespace

namespace internal {
void MatMulWith(const IsaKernels& k, const WeightView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                int64_t ldy, ThreadPool* pool) {
  const TensorType type = ActivationType(w.type);
  std::unique_ptr<Scratch> own;
  char* buf = type == TensorType::kF32
                  ? nullptr
                  : static_cast<char*>(ActsScratch(own)->Get(ActsBytes(type, w.cols, n_tokens)));
  const Acts acts = MakeActs(k, type, w.cols, x, ldx, n_tokens, buf, pool);
  RunRows(k, w, acts, n_tokens, y, ldy, pool);
}

void MatMulSharedWith(const IsaKernels& k, std::span<const MatMulOut> outs, const float* x, int64_t n_tokens,
                      ThreadPool* pool) {
  // One conversion per activation format the matrices need (Q4_K and Q6_K share Q8_K).
  constexpr TensorType kFormats[] = {TensorType::kQ8_0, TensorType::kQ8_K};
  size_t offsets[2] = {0, 0}, total = 0;
  bool needed[2] = {false, false};
  const int64_t cols = outs.empty() ? 0 : outs[0].w->cols;
  for (const MatMulOut& o : outs) {
    for (int f = 0; f < 2; ++f) needed[f] |= ActivationType(o.w->type) == kFormats[f];
  }
  for (int f = 0; f < 2; ++f) {
    if (!needed[f]) continue;
    offsets[f] = total;
    total += ActsBytes(kFormats[f], cols, n_tokens);
  }
  std::unique_ptr<Scratch> own;
  char* buf = total == 0 ? nullptr : static_cast<char*>(ActsScratch(own)->Get(total));
  Acts acts[3];
  for (int f = 0; f < 2; ++f) {
    if (needed[f]) acts[f] = MakeActs(k, kFormats[f], cols, x, cols, n_tokens, buf + offsets[f], pool);
  }
  acts[2] = MakeActs(k, TensorType::kF32, cols, x, cols, n_tokens, nullptr, pool);
  for (const MatMulOut& o : outs) {
    const TensorType type = ActivationType(o.w->type);
    const Acts& a = type == kFormats[0] ? acts[0] : type == kFormats[1] ? acts[1] : acts[2];
    RunRows(k, *o.w, a, n_tokens, o.y, o.w->rows, pool);
  }
}
}  // namespace internal

void PackedMatrixFree::operator()(uint8_t* p) const {
#if defined(__linux__)
  if (mapped > 0) {
    ::munmap(p, mapped);
    return;
  }
#endif
  ::operator delete(p, std::align_val_t{64});
}

namespace {

// Memory for `bytes` of panels. Decode reads every byte of every matrix once per token,
// so a TinyLlama-sized model walks about 140 000 pages of 4 KiB per token: with
// transparent huge pages in "madvise" mode (the common default) plain heap memory stays in
// 4 KiB pages, and packed decode measured 12-17% slower than decode from the file
// mapping, which the page cache holds in 2 MiB pages. So a large matrix gets a mapping of
// its own, aligned to 2 MiB and advised MADV_HUGEPAGE; its last partial 2 MiB stays in
// small pages, so no memory beyond the matrix is touched.
std::unique_ptr<uint8_t, PackedMatrix::Free> AllocPanels(size_t bytes) {
#if defined(__linux__)
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes >= kHuge) {
    const size_t page = static_cast<size_t>(std::max(::sysconf(_SC_PAGESIZE), 4096L));
    const size_t length = (bytes + page - 1) / page * page;
    void* raw = ::mmap(nullptr, length + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw != MAP_FAILED) {
      const auto lo = reinterpret_cast<uintptr_t>(raw);
      const uintptr_t start = (lo + kHuge - 1) / kHuge * kHuge;
      if (start > lo) ::munmap(raw, start - lo);
      if (const uintptr_t tail = lo + length + kHuge - (start + length); tail > 0) {
        ::munmap(reinterpret_cast<void*>(start + length), tail);
      }
      ::madvise(reinterpret_cast<void*>(start), length, MADV_HUGEPAGE);  // advice: failure is harmless
      return std::unique_ptr<uint8_t, PackedMatrix::Free>(reinterpret_cast<uint8_t*>(start),
                                                          PackedMatrix::Free{length});
    }
  }
#endif
  return std::unique_ptr<uint8_t, PackedMatrix::Free>(static_cast<uint8_t*>(::operator new(bytes, std::align_val_t{64})));
}

std::unique_ptr<PackedMatrix> PackWith(const IsaKernels& k, const WeightView& w, ThreadPool* pool) {
  const internal::PackFn pack = PackFor(k, w.type);
  if (pack == nullptr || PackedFor(k, w.type) == nullptr || k.panel_rows <= 0 || w.rows < k.panel_rows) return nullptr;
  auto p = std::make_unique<PackedMatrix>();
  p->layout = &k;
  p->panel_rows = k.panel_rows;
  p->rows = w.rows / k.panel_rows * k.panel_rows;
  p->panel_bytes = internal::PackedPanelBytes(w.type, w.cols, k.panel_rows);
  const int64_t panels = p->rows / k.panel_rows;
  p->data = AllocPanels(static_cast<size_t>(panels) * p->panel_bytes);
  const auto* src = static_cast<const uint8_t*>(w.data);
  uint8_t* dst = p->data.get();
  const size_t panel_bytes = p->panel_bytes;
  const size_t used = static_cast<size_t>(w.cols / 32) * static_cast<size_t>(k.panel_rows) * static_cast<size_t>(BlockBytes(w.type));
  auto run = [&](int64_t p0, int64_t p1) {
    pack(src, w.row_bytes, w.cols, p0, p1, dst, panel_bytes);
    for (int64_t i = p0; i < p1; ++i) std::memset(dst + static_cast<size_t>(i) * panel_bytes + used, 0, panel_bytes - used);
  };
  if (pool != nullptr && pool->size() > 1 && panels > 1) {
    pool->ParallelFor(panels, run);
  } else {
    run(0, panels);
  }
  return p;
}

}  // namespace

std::unique_ptr<PackedMatrix> PackMatrix(const WeightView& w, ThreadPool* pool) {
  if (absl::Status s = CheckWeightView(w); !s.ok()) Die(s);
  return PackWith(Active(), w, pool);
}

std::unique_ptr<PackedMatrix> PackMatrixIsa(Isa isa, const WeightView& w, ThreadPool* pool) {
  if (absl::Status s = CheckWeightView(w); !s.ok()) Die(s);
  const IsaKernels* k = KernelsFor(isa);
  if (k == nullptr) Die(absl::InvalidArgumentError(fmt::format("instruction set {} is not available", IsaName(isa))));
  return PackWith(*k, w, pool);
}

absl::Status CheckWeightView(const WeightView& w) {
  if (!IsSupported(w.type)) {
    return absl::InvalidArgumentError(fmt::format("matmul: weight type {} is not supported", TensorTypeName(w.type)));
  }
  if (w.rows < 0 || w.cols <= 0) {
    return absl::InvalidArgumentError(fmt::format("matmul: bad weight shape {} x {}", w.rows, w.cols));
  }
  absl::StatusOr<uint64_t> rb = RowBytes(w.type, w.cols);
  if (!rb.ok()) return rb.status();
  if (w.row_bytes < *rb) {
    return absl::InvalidArgumentError(fmt::format("matmul: row_bytes {} is less than a {} row of {} ({} bytes)",
                                                  w.row_bytes, TensorTypeName(w.type), w.cols, *rb));
  }
  if (w.rows > 0 && w.data == nullptr) return absl::InvalidArgumentError("matmul: weight data is null");
  return absl::OkStatus();
}

TensorType ActivationType(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::kQ4_0:
    case TensorType::kQ8_0:
      return TensorType::kQ8_0;
    case TensorType::kQ4_K:
    case TensorType::kQ6_K:
      return TensorType::kQ8_K;
    default:
      return TensorType::kF32;
  }
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kNeon:
      return "neon";
  }
  return "?";
}

bool IsaAvailable(Isa isa) { return KernelsFor(isa) != nullptr; }

std::vector<Isa> AvailableIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (IsaAvailable(isa)) out.push_back(isa);
  }
  return out;
}

Isa ActiveIsa() { return Active().isa; }
std::string_view ActiveIsaDescription() { return Active().description; }

namespace {

void CheckOrDie(const WeightView& w, int64_t ldx, int64_t ldy) {
  if (absl::Status s = CheckWeightView(w); !s.ok()) Die(s);
  if (ldx < w.cols || ldy < w.rows) {
    Die(absl::InvalidArgumentError(fmt::format("strides ldx {} / ldy {} below the {} x {} matrix", ldx, ldy, w.rows, w.cols)));
  }
}

}  // namespace

void MatMulIsa(Isa isa, const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  CheckOrDie(w, w.cols, w.rows);
  const IsaKernels* k = KernelsFor(isa);
  if (k == nullptr) Die(absl::InvalidArgumentError(fmt::format("instruction set {} is not available", IsaName(isa))));
  if (n_tokens <= 0 || w.rows == 0) return;
  internal::MatMulWith(*k, w, x, w.cols, n_tokens, y, w.rows, pool);
}

void MatMul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  CheckOrDie(w, w.cols, w.rows);
  if (n_tokens <= 0 || w.rows == 0) return;
  internal::MatMulWith(Active(), w, x, w.cols, n_tokens, y, w.rows, pool);
}

void MatMulShared(std::span<const MatMulOut> outs, const float* x, int64_t n_tokens, ThreadPool* pool) {
  for (const MatMulOut& o : outs) {
    CheckOrDie(*o.w, o.w->cols, o.w->rows);
    if (o.w->cols != outs[0].w->cols) {
      Die(absl::InvalidArgumentError(
          fmt::format("MatMulShared: matrices of {} and {} columns share one input", outs[0].w->cols, o.w->cols)));
    }
  }
  if (n_tokens <= 0 || outs.empty()) return;
  internal::MatMulSharedWith(Active(), outs, x, n_tokens, pool);
}

void MatMulStrided(const WeightView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                   ThreadPool* pool) {
  CheckOrDie(w, ldx, ldy);
  if (n_tokens <= 0 || w.rows == 0) return;
  internal::MatMulWith(Active(), w, x, ldx, n_tokens, y, ldy, pool);
}

}  // namespace cairn::infer
