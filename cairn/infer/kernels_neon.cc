#include "cairn/infer/kernels_internal.h"

namespace cairn::infer::internal {
const IsaKernels* NeonKernels() { return nullptr; }
}  // namespace cairn::infer::internal
