// AVX-512 kernels (F + BW + VL, with VNNI where the CPU has it). The body is in
// kernels_avx512_impl.h, compiled here twice under different target attributes.
#include "cairn/infer/kernels_internal.h"

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined vectors inside some AVX-512 intrinsics as
// uninitialized (a false positive in its own headers).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace cairn::infer::internal {

#if defined(__x86_64__)

// kernels_avx512_panel.cc (VNNI only).
void PanelQ4_0Avx512(const GemmArgs& g);
void PanelQ8_0Avx512(const GemmArgs& g);
void PanelQ4_KAvx512(const GemmArgs& g);
void PanelQ6_KAvx512(const GemmArgs& g);
void PackedQ4_0Avx512(const GemmArgs& g);
void PackedQ8_0Avx512(const GemmArgs& g);
void PackQ4_0Avx512(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                    size_t panel_bytes);
void PackQ8_0Avx512(const uint8_t* w, size_t row_bytes, int64_t cols, int64_t p0, int64_t p1, uint8_t* dst,
                    size_t panel_bytes);
size_t TileActsAvx512(const Acts& a, TensorType weights, int64_t t0, int64_t t1, uint8_t* dst);

namespace vnni {
namespace {
#define CAIRN_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define CAIRN_AVX512_VNNI 1
#include "cairn/infer/kernels_avx512_impl.h"
#undef CAIRN_T
#undef CAIRN_AVX512_VNNI
constexpr IsaKernels kTable = {Isa::kAvx512,    "avx512 (vnni)", QuantizeQ8_0Avx2, QuantizeQ8_KAvx2, GemmF32,
                               GemmF16,         GemmBF16,        GemmQ8_0,         GemmQ4_0,         GemmQ4_K,
                               GemmQ6_K,        16,              4,                PanelQ8_0Avx512,  PanelQ4_0Avx512,
                               PanelQ4_KAvx512, PanelQ6_KAvx512, PackQ8_0Avx512,   PackQ4_0Avx512,
                               PackedQ8_0Avx512, PackedQ4_0Avx512, TileActsAvx512};
}  // namespace
}  // namespace vnni

namespace plain {
namespace {
#define CAIRN_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define CAIRN_AVX512_VNNI 0
#include "cairn/infer/kernels_avx512_impl.h"
#undef CAIRN_T
#undef CAIRN_AVX512_VNNI
constexpr IsaKernels kTable = {Isa::kAvx512, "avx512", QuantizeQ8_0Avx2, QuantizeQ8_KAvx2, GemmF32, GemmF16,
                               GemmBF16,     GemmQ8_0, GemmQ4_0,         GemmQ4_K,         GemmQ6_K};
}  // namespace
}  // namespace plain

namespace {
bool HasAvx512() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         CpuHasF16c();
  return ok;
}
}  // namespace

const IsaKernels* Avx512Kernels() {
  if (!HasAvx512()) return nullptr;
  static const bool vnni_ok = __builtin_cpu_supports("avx512vnni");
  return vnni_ok ? &vnni::kTable : &plain::kTable;
}

const IsaKernels* Avx512NoVnniKernels() { return HasAvx512() ? &plain::kTable : nullptr; }

#else

const IsaKernels* Avx512Kernels() { return nullptr; }
const IsaKernels* Avx512NoVnniKernels() { return nullptr; }

#endif

}  // namespace cairn::infer::internal
