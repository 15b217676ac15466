#include "cairn/infer/ops.h"

#include <algorithm>
#include <cmath>

#include "cairn/infer/internal/ops_table.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::infer {
namespace {

void SoftmaxScalar(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SiluMulScalar(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kGeluCoef = 0.044715f;

void GeluScalar(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kGeluCoef * v * v)));
  }
}

float DotScalar(const float* a, const float* b, int64_t n) {
  // Four partial sums: the same association the SIMD paths use, and it vectorizes.
  float s[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) s[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

void AxpyScalar(float a, const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void ToF16Scalar(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = Fp32ToFp16(x[i]);
}

void FromF16Scalar(const uint16_t* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = Fp16ToFp32(x[i]);
}

float DotF16Scalar(const float* a, const uint16_t* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * Fp16ToFp32(b[i]);
  return s;
}

void AxpyF16Scalar(float a, const uint16_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * Fp16ToFp32(x[i]);
}

template <typename T>
float Load(T v) {
  if constexpr (sizeof(T) == 2) {
    return Fp16ToFp32(v);
  } else {
    return v;
  }
}

template <typename T>
void GatherDotScalar(const float* q, const T* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                     float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const T* row = base + idx[j] * stride;
    float s = 0;
    for (int64_t i = 0; i < hd; ++i) s += q[i] * Load(row[i]);
    out[j] = s;
  }
}

template <typename T>
void GatherSumScalar(const float* p, const T* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                     float* out) {
  std::fill(out, out + hd, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const T* row = base + idx[j] * stride;
    for (int64_t i = 0; i < hd; ++i) out[i] += p[j] * Load(row[i]);
  }
}

void TileScoresScalar(const float* k, int64_t n, int64_t hd, const float* qt, int64_t m, float* st) {
  for (int64_t j = 0; j < n; ++j) {
    float* row = st + j * m;
    std::fill(row, row + m, 0.0f);
    for (int64_t d = 0; d < hd; ++d) {
      const float kd = k[j * hd + d];
      for (int64_t c = 0; c < m; ++c) row[c] += kd * qt[d * m + c];
    }
  }
}

void SoftmaxColumnsScalar(float* st, int64_t n, int64_t m) {
  for (int64_t c = 0; c < m; ++c) {
    float max = -INFINITY;
    for (int64_t j = 0; j < n; ++j) max = std::max(max, st[j * m + c]);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      float& x = st[j * m + c];
      x = std::exp(x - max);
      sum += x;
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < n; ++j) st[j * m + c] *= inv;
  }
}

void TileValuesScalar(const float* pt, int64_t n, int64_t m, const float* v, int64_t hd, float* out) {
  std::fill(out, out + m * hd, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t c = 0; c < m; ++c) {
      const float p = pt[j * m + c];
      for (int64_t i = 0; i < hd; ++i) out[c * hd + i] += p * v[j * hd + i];
    }
  }
}

constexpr internal::OpsTable kScalar = {"scalar",
                                        SoftmaxScalar,
                                        SiluMulScalar,
                                        GeluScalar,
                                        DotScalar,
                                        AxpyScalar,
                                        ToF16Scalar,
                                        FromF16Scalar,
                                        DotF16Scalar,
                                        AxpyF16Scalar,
                                        GatherDotScalar<float>,
                                        GatherDotScalar<uint16_t>,
                                        GatherSumScalar<float>,
                                        GatherSumScalar<uint16_t>,
                                        TileScoresScalar,
                                        SoftmaxColumnsScalar,
                                        TileValuesScalar};

const internal::OpsTable& Ops() {
  static const internal::OpsTable* table = [] {
    const internal::OpsTable* t = internal::Avx2Ops();
    return t != nullptr ? t : &kScalar;
  }();
  return *table;
}

}  // namespace

namespace internal {
const OpsTable& ScalarOps() { return kScalar; }
}  // namespace internal

void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* out) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void LayerNorm(const float* x, const float* w, const float* b, float eps, int64_t n, float* out) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  double var = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    var += static_cast<double>(d) * d;
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - mean) * scale * w[i] + b[i];
}

void RopeAngles(int32_t pos, int n_rot, float freq_base, float freq_scale, const float* factors, float* cos_sin) {
  // In double: at positions in the thousands a float angle would lose the low bits
  // that decide the fast-rotating dimensions.
  for (int i = 0; i < n_rot / 2; ++i) {
    const double inv_freq = std::pow(static_cast<double>(freq_base), -2.0 * i / n_rot);
    double theta = static_cast<double>(pos) * freq_scale * inv_freq;
    if (factors != nullptr) theta /= factors[i];
    cos_sin[2 * i] = static_cast<float>(std::cos(theta));
    cos_sin[2 * i + 1] = static_cast<float>(std::sin(theta));
  }
}

void Rope(float* x, int n_heads, int head_dim, int n_rot, bool neox, const float* cos_sin) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      const int a = neox ? i : 2 * i;
      const int b = neox ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void Softmax(float* x, int64_t n) { Ops().softmax(x, n); }
void SiluMul(const float* gate, const float* up, int64_t n, float* out) { Ops().silu_mul(gate, up, n, out); }
void Gelu(float* x, int64_t n) { Ops().gelu(x, n); }

void AddTo(float* x, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += b[i];
}

float Dot(const float* a, const float* b, int64_t n) { return Ops().dot(a, b, n); }
void Axpy(float a, const float* x, int64_t n, float* y) { Ops().axpy(a, x, n, y); }
void ToF16(const float* x, int64_t n, uint16_t* out) { Ops().to_f16(x, n, out); }
void FromF16(const uint16_t* x, int64_t n, float* out) { Ops().from_f16(x, n, out); }
float DotF16(const float* a, const uint16_t* b, int64_t n) { return Ops().dot_f16(a, b, n); }
void AxpyF16(float a, const uint16_t* x, int64_t n, float* y) { Ops().axpy_f16(a, x, n, y); }

void GatherDot(const float* q, const float* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
               float* out) {
  Ops().gather_dot(q, base, idx, n, stride, hd, out);
}
void GatherDotF16(const float* q, const uint16_t* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                  float* out) {
  Ops().gather_dot_f16(q, base, idx, n, stride, hd, out);
}
void GatherSum(const float* p, const float* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
               float* out) {
  Ops().gather_sum(p, base, idx, n, stride, hd, out);
}
void GatherSumF16(const float* p, const uint16_t* base, const int32_t* idx, int64_t n, int64_t stride, int64_t hd,
                  float* out) {
  Ops().gather_sum_f16(p, base, idx, n, stride, hd, out);
}

void TileScores(const float* k, int64_t n, int64_t hd, const float* qt, int64_t m, float* st) {
  Ops().tile_scores(k, n, hd, qt, m, st);
}
void SoftmaxColumns(float* st, int64_t n, int64_t m) { Ops().softmax_columns(st, n, m); }
void TileValues(const float* pt, int64_t n, int64_t m, const float* v, int64_t hd, float* out) {
  Ops().tile_values(pt, n, m, v, hd, out);
}

const char* OpsIsa() { return Ops().name; }

}  // namespace cairn::infer
