// cairn/infer/internal/ops_table.h — the per-ISA implementations behind ops.h.
#pragma once

#include <cstdint>

namespace cairn::infer::internal {

struct OpsTable {
  const char* name;
  void (*softmax)(float* x, int64_t n);
  void (*silu_mul)(const float* gate, const float* up, int64_t n, float* out);
  void (*gelu)(float* x, int64_t n);
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, int64_t n, float* y);
  void (*to_f16)(const float* x, int64_t n, uint16_t* out);
  void (*from_f16)(const uint16_t* x, int64_t n, float* out);
  float (*dot_f16)(const float* a, const uint16_t* b, int64_t n);
  void (*axpy_f16)(float a, const uint16_t* x, int64_t n, float* y);
  void (*gather_dot)(const float* q, const float* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                     float* out);
  void (*gather_dot_f16)(const float* q, const uint16_t* base, const int32_t* idx, int64_t n, int64_t stride,
                         int64_t hd, float* out);
  void (*gather_sum)(const float* p, const float* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                     float* out);
  void (*gather_sum_f16)(const float* p, const uint16_t* base, const int32_t* idx, int64_t n, int64_t stride,
                         int64_t hd, float* out);
  void (*tile_scores)(const float* k, int64_t n, int64_t hd, const float* qt, int64_t m, float* st);
  void (*softmax_columns)(float* st, int64_t n, int64_t m);
  void (*tile_values)(const float* pt, int64_t n, int64_t m, const float* v, int64_t hd, float* out);
};

// The scalar reference, always available.
const OpsTable& ScalarOps();
// AVX2 + FMA + F16C, or nullptr when the CPU lacks them or the build is not x86-64.
const OpsTable* Avx2Ops();

}  // namespace cairn::infer::internal
