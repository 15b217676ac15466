#include "cairn/vector/distance.h"

#include <cstdlib>
#include <string>

#include "cairn/base/log.h"

namespace cairn::vector {

// Per-ISA tables live in distance_<isa>.cc, compiled with function-level target
// attributes so the project keeps its baseline flags. Each returns nullptr when the
// running CPU lacks the instructions (or the build targets another architecture).
namespace internal {
const KernelTable* Avx2Kernels();
const KernelTable* Avx512Kernels();
const KernelTable* NeonKernels();
}  // namespace internal

namespace {

float L2SqScalar(const float* a, const float* b, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

float DotScalar(const float* a, const float* b, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) s += a[i] * b[i];
  return s;
}

int32_t L2SqI8Scalar(const int8_t* a, const int8_t* b, size_t dim) {
  int32_t s = 0;
  for (size_t i = 0; i < dim; ++i) {
    const int32_t d = int32_t{a[i]} - int32_t{b[i]};
    s += d * d;
  }
  return s;
}

int32_t DotI8Scalar(const int8_t* a, const int8_t* b, size_t dim) {
  int32_t s = 0;
  for (size_t i = 0; i < dim; ++i) s += int32_t{a[i]} * int32_t{b[i]};
  return s;
}

float L2SqF32U8Scalar(const float* q, const uint8_t* c, const float* w, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) {
    const float d = q[i] - static_cast<float>(c[i]);
    s += w[i] * d * d;
  }
  return s;
}

float DotF32U8Scalar(const float* q, const uint8_t* c, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) s += q[i] * static_cast<float>(c[i]);
  return s;
}

void L2SqX4Scalar(const float* const* a, const float* b, size_t dim, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = L2SqScalar(a[j], b, dim);
}

void DotX4Scalar(const float* const* a, const float* b, size_t dim, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = DotScalar(a[j], b, dim);
}

constexpr KernelTable kScalar = {"scalar",       L2SqScalar,     DotScalar,      L2SqI8Scalar,
                                 DotI8Scalar,    L2SqF32U8Scalar, DotF32U8Scalar, L2SqX4Scalar,
                                 DotX4Scalar};

const KernelTable* Best() {
  if (const KernelTable* t = internal::Avx512Kernels()) return t;
  if (const KernelTable* t = internal::Avx2Kernels()) return t;
  if (const KernelTable* t = internal::NeonKernels()) return t;
  return &kScalar;
}

const KernelTable* Choose() {
  const char* env = std::getenv("CAIRN_VECTOR_ISA");
  if (env != nullptr && *env != '\0') {
    if (const KernelTable* t = KernelsFor(env)) return t;
    const KernelTable* best = Best();
    spdlog::warn("CAIRN_VECTOR_ISA={} is not supported on this machine; using {}", env, best->isa);
    return best;
  }
  return Best();
}

}  // namespace

const KernelTable& ScalarKernels() { return kScalar; }

const KernelTable& Kernels() {
  // Chosen once; a function-local static is initialized thread-safely.
  static const KernelTable* const table = Choose();
  return *table;
}

const KernelTable* KernelsFor(std::string_view isa) {
  if (isa == "scalar") return &kScalar;
  if (isa == "avx2") return internal::Avx2Kernels();
  if (isa == "avx512") return internal::Avx512Kernels();
  if (isa == "neon") return internal::NeonKernels();
  return nullptr;
}

std::vector<std::string_view> AvailableIsas() {
  std::vector<std::string_view> out;
  for (std::string_view isa : {"scalar", "avx2", "avx512", "neon"}) {
    if (KernelsFor(isa) != nullptr) out.push_back(isa);
  }
  return out;
}

}  // namespace cairn::vector
