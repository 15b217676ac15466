// Distance kernels behind one dispatch point.
//
// `Kernels()` returns the table for the best instruction set this CPU supports
// (AVX-512, AVX2+FMA, NEON, scalar), chosen once at first use; `ScalarKernels()`
// is the portable reference every SIMD path is tested against. Setting the
// environment variable CAIRN_VECTOR_ISA=scalar|avx2|avx512 before first use
// forces a path (an unsupported request falls back to the best available).
//
// "avx512" needs AVX-512 F/BW/VL and uses VNNI (vpdpbusd, vpdpwssd) for the int8
// kernels when the CPU has it. NEON is the aarch64 baseline (no run-time check).
//
// All kernels read exactly `dim` elements, need no alignment, and are thread-safe.
// Float results may differ from scalar in the last bits (summation order); int8
// results are exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace cairn::vector {

struct KernelTable {
  std::string_view isa;  // "scalar", "avx2", "avx512", "neon"
  // float32 x float32
  float (*l2sq)(const float* a, const float* b, size_t dim);
  float (*dot)(const float* a, const float* b, size_t dim);
  // int8 x int8 (symmetric int8 vectors), exact integer results
  int32_t (*l2sq_i8)(const int8_t* a, const int8_t* b, size_t dim);
  int32_t (*dot_i8)(const int8_t* a, const int8_t* b, size_t dim);
  // float32 query x uint8 code (SQ8, see quantize.h):
  //   l2sq_f32_u8 = sum_i w_i * (q_i - c_i)^2      (q already in code units, w = step^2)
  //   dot_f32_u8  = sum_i q_i * c_i
  float (*l2sq_f32_u8)(const float* q, const uint8_t* c, const float* w, size_t dim);
  float (*dot_f32_u8)(const float* q, const uint8_t* c, size_t dim);
  // One row `b` against four vectors a[0..3] at once: out[j] = l2sq / dot (a[j], b).
  // Exact search (ExactKnn) walks blocks of queries over the base, so each row is
  // loaded once for four distances. The a[j] may repeat (to pad a short block).
  void (*l2sq_x4)(const float* const* a, const float* b, size_t dim, float* out);
  void (*dot_x4)(const float* const* a, const float* b, size_t dim, float* out);
};

const KernelTable& Kernels();
const KernelTable& ScalarKernels();

// The table of one instruction set ("scalar", "avx2", "avx512", "neon"), or nullptr
// when this build or this CPU cannot run it. For tests and benchmarks; production
// code calls Kernels().
const KernelTable* KernelsFor(std::string_view isa);
// The instruction sets KernelsFor accepts on this machine, scalar first.
std::vector<std::string_view> AvailableIsas();

}  // namespace cairn::vector
