#include "cairn/infer/kernels_internal.h"

namespace cairn::infer::internal {
const IsaKernels* Avx512Kernels() { return nullptr; }
}  // namespace cairn::infer::internal
