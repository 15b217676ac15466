#include "cairn/vector/distance.h"

namespace cairn::vector {
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

constexpr KernelTable kScalar = {"scalar",     L2SqScalar,      DotScalar, L2SqI8Scalar,
                                 DotI8Scalar,  L2SqF32U8Scalar, DotF32U8Scalar};

}  // namespace

const KernelTable& ScalarKernels() { return kScalar; }

// SIMD paths are added behind this one dispatch point.
const KernelTable& Kernels() { return kScalar; }

}  // namespace cairn::vector
