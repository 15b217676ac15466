// cairn/infer/kernels.h — weight-matrix products for the forward pass.
//
// MatMul multiplies a weight matrix, read in place from the model mapping (never expanded
// to float32 in memory), by a batch of float32 activation vectors. For the quantized types
// the activations are quantized on the fly, as llama.cpp does, so the inner loops are
// integer dot products: to Q8_0-style blocks of 32 for Q4_0 and Q8_0 weights, to
// Q8_K-style blocks of 256 (with the sums of each 16) for Q4_K and Q6_K. Each block has a
// float scale d = max|x| / 127 and values q = nearbyint(x / d), identical on every path.
// F32, F16 and BF16 weights use float dot products with the activations as given.
//
// Instruction sets: a scalar path (the reference, plain C++), AVX2 (+FMA, F16C), AVX-512
// (F/BW/VL/DQ, with VNNI vpdpbusd where the CPU has it) and NEON (vdotq_s32 where the
// compiler targets the dot-product extension). The best one the CPU supports is chosen
// once, at the first call; the environment variable CAIRN_INFER_ISA=scalar|avx2|avx512|neon
// forces one (a path the machine lacks falls back to the best, with a warning). Batches of
// 4 tokens or more run on AVX2 and AVX-512/VNNI through panels of 8 or 16 rows (rows in
// the vector lanes), so each weight block is unpacked once for the whole batch: read from
// a matrix packed at load (PackMatrix, below; Q4_0 and Q8_0), else repacked on the fly
// into a small per-thread buffer. Decode of a packed matrix streams its panels; of any
// other, the rows as they are, four at a time, prefetching the next four (the hardware
// prefetchers alone left Q4_0 decode at half the read bandwidth).
//
// Accuracy: every path computes, per output, the same quantity (the weights exactly as
// Dequantize gives them, times the quantized activations) and differs from the others only
// in float rounding. Against float activations the error is bounded by the activation
// rounding: at most sum over blocks of (d / 2) * sum |w_i|. Results never depend on the
// number of threads; they may differ in the last bits between a batch of 4+ tokens and
// the same tokens one at a time, and between paths.
//
// Packed weights: PackMatrix copies a Q4_0 or Q8_0 matrix once (at model load) into the
// panel layout of the active path (AVX-512/VNNI: panels of 16 rows, AVX2: 8; same bytes
// as the rows, laid out rows-in-lanes), and MatMul on a view that carries it reads the
// panels for every batch size: no per-call repacking for batches, and decode streams the
// same panels (one contiguous run of memory per 16 rows). The original rows stay valid;
// only the last rows % panel_rows rows (and other paths, e.g. MatMulIsa with another
// Isa) read them. A packed view gives exactly the results of the unpacked view for
// batches of panel_min_tokens tokens or more, and agrees within the bound below for
// fewer (it uses the panel arithmetic where the unpacked view uses the per-row kernels).
//
// Threads: `pool` splits the rows across its threads (the caller takes part); null runs on
// the calling thread. Thread-safety: all functions are reentrant; MatMul reads `w` and `x`
// and writes only y.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "cairn/infer/tensor_type.h"
#include "cairn/infer/thread_pool.h"

namespace cairn::infer {

// The instruction-set paths.
enum class Isa { kScalar, kAvx2, kAvx512, kNeon };

struct PackedMatrix;

// A weight matrix used in place from the mapping: rows x cols, row-major, `type`.
// Row r starts at data + r * row_bytes (row_bytes >= RowBytes(type, cols); rows need no
// particular alignment). `packed`, when set, is PackMatrix's copy of the same matrix; it
// must outlive the view's use.
struct WeightView {
  TensorType type;
  int64_t rows, cols;
  const void* data;
  size_t row_bytes;
  const PackedMatrix* packed = nullptr;
};

// Frees PackedMatrix::data.
struct PackedMatrixFree {
  size_t mapped = 0;  // bytes of the matrix's own mapping; 0: from operator new
  void operator()(uint8_t* p) const;
};

// The panels of a matrix for one instruction-set path (see "Packed weights" above).
struct PackedMatrix {
  const void* layout = nullptr;  // the kernel table that packed it; other paths ignore it
  int64_t rows = 0;              // rows in whole panels; the view's later rows are not packed
  int64_t panel_rows = 0;        // rows per panel
  size_t panel_bytes = 0;        // bytes per panel (a multiple of 64)
  size_t bytes() const { return panel_rows > 0 ? static_cast<size_t>(rows / panel_rows) * panel_bytes : 0; }
  using Free = PackedMatrixFree;
  // 64-byte aligned. From 2 MiB up, a private anonymous mapping aligned to 2 MiB and
  // advised for transparent huge pages (Linux): decode streams the whole matrix every
  // token, and the file mapping it replaces is usually held in 2 MiB pages.
  std::unique_ptr<uint8_t, Free> data;
};

// Packs `w` (CheckWeightView OK) for the active path; null when the path has no packed
// layout for w's type or w has fewer rows than a panel. The copy is w.rows rounded down to
// whole panels times about the row bytes. `pool` may be null.
std::unique_ptr<PackedMatrix> PackMatrix(const WeightView& w, ThreadPool* pool);
// The same for a given path (tests, benchmarks); `isa` must be available.
std::unique_ptr<PackedMatrix> PackMatrixIsa(Isa isa, const WeightView& w, ThreadPool* pool);

// OK when MatMul can run `w`: a supported type, rows >= 0, cols > 0 and a multiple of
// the type's block size, row_bytes large enough and data non-null (unless rows == 0).
absl::Status CheckWeightView(const WeightView& w);

// y[t * rows + r] = dot(W row r, x[t * cols ...]) for t in [0, n_tokens). x is float32;
// it is quantized on the fly (Q8_0 or Q8_K blocks as the weight type needs) so inner
// loops are integer dot products; F32/F16/BF16 weights use float dot products.
// `pool` may be null (runs on the calling thread). Precondition: CheckWeightView(w) is
// OK (the model validates its tensors when it loads); violating it aborts.
void MatMul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);

// A product of many tokens passes over the weights once per this many tokens (their
// quantized activations stay in L2 while the rows stream past): calling MatMul on
// consecutive groups of this size reads the weights as often as one call on them all.
inline constexpr int64_t kMatMulTokenBlock = 64;

// MatMul with strides: token t's input at x + t * ldx (ldx >= cols) and its outputs at
// y + t * ldy (ldy >= rows), e.g. to write Q, K and V side by side in one buffer. Other
// elements of y are left alone. Same results as MatMul.
void MatMulStrided(const WeightView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                   ThreadPool* pool);

// One output of MatMulShared: y = W x, y[t * w->rows + r] as in MatMul.
struct MatMulOut {
  const WeightView* w;
  float* y;
};

// Several matrices of the same number of columns applied to the same input (q, k and v;
// gate and up): the activations are converted once for all of them instead of once per
// matrix. Results are exactly those of one MatMul per output. Same precondition as
// MatMul for every matrix; mismatched column counts abort.
void MatMulShared(std::span<const MatMulOut> outs, const float* x, int64_t n_tokens, ThreadPool* pool);

// The instruction-set paths (declared above).
const char* IsaName(Isa isa);  // "scalar", "avx2", "avx512", "neon"
// Whether this build and CPU can run the path.
bool IsaAvailable(Isa isa);
// Those IsaAvailable accepts, scalar first.
std::vector<Isa> AvailableIsas();
// The path MatMul uses (chosen once: CAIRN_INFER_ISA, else the best available).
Isa ActiveIsa();
// A short description of the active path, e.g. "avx512 (vnni)", for logs and benchmarks.
std::string_view ActiveIsaDescription();

// MatMul on a given path (for tests and benchmarks); `isa` must be available (aborts
// otherwise).
void MatMulIsa(Isa isa, const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);

// The activation format MatMul uses for a weight type: kQ8_0, kQ8_K, or kF32 for the
// float types (the activations are used as they are).
TensorType ActivationType(TensorType weight_type);

}  // namespace cairn::infer
