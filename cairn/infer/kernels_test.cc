#include "cairn/infer/kernels.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "cairn/infer/kernels_internal.h"
#include "cairn/infer/thread_pool.h"

namespace cairn::infer {
namespace {

// Every path this machine can run: each available Isa, plus AVX-512 without VNNI where
// the CPU has VNNI (so both variants are tested).
struct Path {
  std::string name;
  const internal::IsaKernels* kernels;
};
std::vector<Path> Paths() {
  std::vector<Path> out;
  for (Isa isa : AvailableIsas()) out.push_back({IsaName(isa), nullptr});
  const internal::IsaKernels* plain = internal::Avx512NoVnniKernels();
  if (plain != nullptr && plain != internal::Avx512Kernels()) out.push_back({"avx512-novnni", plain});
  return out;
}
void RunPath(const Path& p, const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  if (p.kernels != nullptr) {
    internal::MatMulWith(*p.kernels, w, x, w.cols, n_tokens, y, w.rows, pool);
    return;
  }
  for (Isa isa : AvailableIsas()) {
    if (p.name == IsaName(isa)) MatMulIsa(isa, w, x, n_tokens, y, pool);
  }
}

constexpr TensorType kAllTypes[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16, TensorType::kQ8_0,
                                    TensorType::kQ4_0, TensorType::kQ4_K, TensorType::kQ6_K};

std::vector<float> Gaussian(size_t n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i += 2) {
    const double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
    const double r = std::sqrt(-2 * std::log(u1));
    v[i] = static_cast<float>(r * std::cos(2 * M_PI * u2));
    if (i + 1 < n) v[i + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
  }
  return v;
}

// A quantized weight matrix plus its exact float values (as Dequantize gives them).
struct Matrix {
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // rows x cols
  WeightView view;
};

Matrix MakeMatrix(TensorType type, int64_t rows, int64_t cols, uint64_t seed, size_t row_padding = 0) {
  Matrix m;
  const size_t row_bytes = *RowBytes(type, cols) + row_padding;
  m.bytes.assign(row_bytes * static_cast<size_t>(rows) + 2, 0xA5);
  m.values.resize(static_cast<size_t>(rows * cols));
  const std::vector<float> src = Gaussian(static_cast<size_t>(rows * cols), seed);
  // Offset by two bytes so no path can rely on aligned rows (GGUF only guarantees the
  // 2-byte alignment of the fp16 scales: every block size is even).
  uint8_t* base = m.bytes.data() + 2;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = base + static_cast<size_t>(r) * row_bytes;
    EXPECT_TRUE(Quantize(type, src.data() + r * cols, row, cols).ok());
    EXPECT_TRUE(Dequantize(type, row, m.values.data() + r * cols, cols).ok());
  }
  m.view = WeightView{type, rows, cols, base, row_bytes};
  return m;
}

// Worst-case error of one output against float activations: each activation block is
// rounded to a grid of step d = amax / 127, so an element moves by at most d / 2 (the
// bound allows d * (0.5 + 2^-10) for the rounding of d and of x / d). So
// |error| <= sum over blocks of d * (0.5 + 2^-10) * sum |w_i|, plus at most
// cols * 2^-23 * sum |w_i x_i| from float accumulation. Float weight types (activations
// used as they are) have only the second part.
double Tolerance(const Matrix& m, const float* x, int64_t r) {
  const int64_t cols = m.view.cols;
  const float* w = m.values.data() + r * cols;
  double abs_dot = 0;
  for (int64_t i = 0; i < cols; ++i) abs_dot += std::fabs(double{w[i]} * x[i]);
  double tol = abs_dot * static_cast<double>(cols) * 0x1p-23 + 1e-30;
  const TensorType act = ActivationType(m.view.type);
  if (act == TensorType::kF32) return tol;
  const int64_t block = act == TensorType::kQ8_0 ? 32 : 256;
  for (int64_t b = 0; b < cols; b += block) {
    double amax = 0, wsum = 0;
    for (int64_t i = b; i < b + block; ++i) {
      amax = std::max(amax, std::fabs(double{x[i]}));
      wsum += std::fabs(double{w[i]});
    }
    tol += amax / 127 * (0.5 + 0x1p-10) * wsum;
  }
  return tol;
}

double ExactDot(const Matrix& m, const float* x, int64_t r) {
  const float* w = m.values.data() + r * m.view.cols;
  double s = 0;
  for (int64_t i = 0; i < m.view.cols; ++i) s += double{w[i]} * x[i];
  return s;
}

// The activations as the kernels see them: each block of 32 (Q8_0) or 256 (Q8_K) values
// rounded to q * d with d = max|x| / 127 and q = nearbyint(x / d) (kernels_internal.h).
std::vector<float> QuantizedActivations(TensorType weight_type, const std::vector<float>& x) {
  const TensorType act = ActivationType(weight_type);
  if (act == TensorType::kF32) return x;
  const size_t block = act == TensorType::kQ8_0 ? 32 : 256;
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size(); b += block) {
    float amax = 0;
    for (size_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127;
    const float id = d != 0 ? 1 / d : 0;
    for (size_t i = b; i < b + block; ++i) out[i] = std::nearbyint(x[i] * id) * d;
  }
  return out;
}

// Against the quantized activations the kernels differ from exact arithmetic only by
// float rounding: |y - sum w_i xq_i| <= 2^-13 * sum |w_i xq_i| (over an order of magnitude
// above the rounding of the longest rows tested, far below what any indexing mistake gives).
void ExpectCloseToQuantizedReference(const Matrix& m, const std::vector<float>& xq, int64_t n_tokens,
                                     const std::vector<float>& y, const std::string& what) {
  const int64_t rows = m.view.rows, cols = m.view.cols;
  int failures = 0;
  for (int64_t t = 0; t < n_tokens && failures < 5; ++t) {
    for (int64_t r = 0; r < rows && failures < 5; ++r) {
      const float* xt = xq.data() + t * cols;
      const float* w = m.values.data() + r * cols;
      double want = 0, abs_sum = 0;
      for (int64_t i = 0; i < cols; ++i) {
        want += double{w[i]} * xt[i];
        abs_sum += std::fabs(double{w[i]} * xt[i]);
      }
      const double tol = abs_sum * 0x1p-13 + 1e-30;
      const double got = y[static_cast<size_t>(t * rows + r)];
      if (!(std::fabs(got - want) <= tol)) {
        ++failures;
        ADD_FAILURE() << what << " (quantized x) token " << t << " row " << r << ": got " << got << " want " << want
                      << " (tolerance " << tol << ")";
      }
    }
  }
}

void ExpectCloseToReference(const Matrix& m, const std::vector<float>& x, int64_t n_tokens,
                            const std::vector<float>& y, const std::string& what) {
  const int64_t rows = m.view.rows, cols = m.view.cols;
  int failures = 0;
  for (int64_t t = 0; t < n_tokens && failures < 5; ++t) {
    for (int64_t r = 0; r < rows && failures < 5; ++r) {
      const float* xt = x.data() + t * cols;
      const double want = ExactDot(m, xt, r);
      const double tol = Tolerance(m, xt, r);
      const double got = y[static_cast<size_t>(t * rows + r)];
      if (!(std::fabs(got - want) <= tol)) {
        ++failures;
        ADD_FAILURE() << what << " token " << t << " row " << r << ": got " << got << " want " << want
                      << " (tolerance " << tol << ")";
      }
    }
  }
}

TEST(KernelsTest, CheckWeightView) {
  uint8_t data[64] = {};
  EXPECT_TRUE(CheckWeightView({TensorType::kQ4_0, 1, 32, data, 18}).ok());
  EXPECT_FALSE(CheckWeightView({TensorType::kQ4_0, 1, 33, data, 18}).ok());
  EXPECT_FALSE(CheckWeightView({TensorType::kQ4_0, 1, 32, data, 17}).ok());
  EXPECT_FALSE(CheckWeightView({TensorType::kQ5_K, 1, 256, data, 256}).ok());
  EXPECT_FALSE(CheckWeightView({TensorType::kF32, 1, 0, data, 0}).ok());
  EXPECT_FALSE(CheckWeightView({TensorType::kF32, 1, 4, nullptr, 16}).ok());
  EXPECT_TRUE(CheckWeightView({TensorType::kF32, 0, 4, nullptr, 16}).ok());
}

TEST(KernelsTest, ActivationTypes) {
  EXPECT_EQ(ActivationType(TensorType::kQ4_0), TensorType::kQ8_0);
  EXPECT_EQ(ActivationType(TensorType::kQ8_0), TensorType::kQ8_0);
  EXPECT_EQ(ActivationType(TensorType::kQ4_K), TensorType::kQ8_K);
  EXPECT_EQ(ActivationType(TensorType::kQ6_K), TensorType::kQ8_K);
  EXPECT_EQ(ActivationType(TensorType::kF16), TensorType::kF32);
}

TEST(KernelsTest, MatMulMatchesReferenceEveryTypeIsaAndShape) {
  ThreadPool pool(3);
  struct Shape {
    int64_t rows, cols_blocks;
  };
  for (TensorType type : kAllTypes) {
    const int64_t bs = BlockSize(type) == 256 ? 256 : 32;  // one block or, for plain types, 32 columns
    for (Shape shape : {Shape{1, 1}, Shape{5, 1}, Shape{37, 3}, Shape{19, 8}, Shape{6, 13}}) {
      const int64_t cols = shape.cols_blocks * bs;
      const Matrix m = MakeMatrix(type, shape.rows, cols, 17 + shape.rows, shape.rows == 19 ? 6 : 0);
      for (int64_t n_tokens : {1, 2, 7, 64}) {
        if (n_tokens == 64 && shape.rows != 37) continue;  // one batch shape: panels plus leftover rows
        const std::vector<float> x = Gaussian(static_cast<size_t>(n_tokens * cols), 99 + n_tokens);
        const std::vector<float> xq = QuantizedActivations(type, x);
        for (const Path& path : Paths()) {
          std::vector<float> y(static_cast<size_t>(n_tokens * shape.rows), NAN);
          RunPath(path, m.view, x.data(), n_tokens, y.data(), &pool);
          const std::string what = std::string(TensorTypeName(type)) + " " + path.name + " " +
                                   std::to_string(shape.rows) + "x" + std::to_string(cols) +
                                   " n=" + std::to_string(n_tokens);
          ExpectCloseToReference(m, x, n_tokens, y, what);
          ExpectCloseToQuantizedReference(m, xq, n_tokens, y, what);
        }
      }
    }
  }
}

TEST(KernelsTest, ResultsDoNotDependOnThreadCount) {
  ThreadPool one(1), two(2), five(5);
  for (TensorType type : kAllTypes) {
    // Big enough (> 64 KiB of weights) that MatMul uses the pool even for one token.
    const int64_t cols = 1024, rows = 130;
    const Matrix m = MakeMatrix(type, rows, cols, 5);
    for (int64_t n_tokens : {1, 7, 19}) {
      const std::vector<float> x = Gaussian(static_cast<size_t>(n_tokens * cols), 3);
      for (const Path& path : Paths()) {
        std::vector<float> y0(static_cast<size_t>(n_tokens * rows)), y1 = y0, y2 = y0, y5 = y0;
        RunPath(path, m.view, x.data(), n_tokens, y0.data(), nullptr);
        RunPath(path, m.view, x.data(), n_tokens, y1.data(), &one);
        RunPath(path, m.view, x.data(), n_tokens, y2.data(), &two);
        RunPath(path, m.view, x.data(), n_tokens, y5.data(), &five);
        EXPECT_EQ(0, std::memcmp(y0.data(), y1.data(), y0.size() * 4)) << TensorTypeName(type) << " " << path.name;
        EXPECT_EQ(0, std::memcmp(y0.data(), y2.data(), y0.size() * 4)) << TensorTypeName(type) << " " << path.name;
        EXPECT_EQ(0, std::memcmp(y0.data(), y5.data(), y0.size() * 4)) << TensorTypeName(type) << " " << path.name;
      }
    }
  }
}

const internal::IsaKernels* TableFor(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return internal::Avx2Kernels();
    case Isa::kAvx512:
      return internal::Avx512Kernels();
    case Isa::kNeon:
      return internal::NeonKernels();
    default:
      return internal::ScalarKernels();
  }
}

// Matrices packed once (PackMatrix) against the same matrices read from their rows, on
// shapes that leave a partial last panel (rows not a multiple of 8 or 16), a matrix of one
// panel, and padded rows: bit for bit for batches that take the panel kernels either way,
// within the stated bounds for smaller ones (the packed view uses the panel arithmetic
// there, the unpacked one the per-row kernels); any thread count gives the same bytes.
TEST(KernelsTest, PackedMatchesUnpacked) {
  ThreadPool pool(3);
  struct Shape {
    int64_t rows, cols_blocks;
    size_t padding;
  };
  for (TensorType type : {TensorType::kQ4_0, TensorType::kQ8_0}) {
    for (Shape shape : {Shape{16, 1, 0}, Shape{21, 3, 0}, Shape{37, 8, 6}, Shape{11, 2, 2}, Shape{7, 4, 0},
                        Shape{96, 5, 0}}) {
      const int64_t cols = shape.cols_blocks * 32;
      const Matrix m = MakeMatrix(type, shape.rows, cols, 31 + shape.rows, shape.padding);
      for (Isa isa : AvailableIsas()) {
        const internal::IsaKernels* k = TableFor(isa);
        std::unique_ptr<PackedMatrix> packed = PackMatrixIsa(isa, m.view, nullptr);
        const bool packs = k->pack_q4_0 != nullptr && shape.rows >= k->panel_rows;
        ASSERT_EQ(packs, packed != nullptr) << IsaName(isa) << " rows " << shape.rows;
        if (packed == nullptr) continue;
        EXPECT_EQ(packed->rows, shape.rows / k->panel_rows * k->panel_rows);
        EXPECT_EQ(packed->panel_bytes % 64, 0u);
        // Packing in parallel writes the same bytes.
        std::unique_ptr<PackedMatrix> packed3 = PackMatrixIsa(isa, m.view, &pool);
        ASSERT_NE(packed3, nullptr);
        EXPECT_EQ(0, std::memcmp(packed->data.get(), packed3->data.get(), packed->bytes()));
        WeightView pv = m.view;
        pv.packed = packed.get();
        for (int64_t n_tokens : {1, 2, 3, 4, 9, 17, 70}) {
          const std::vector<float> x = Gaussian(static_cast<size_t>(n_tokens * cols), 7 + n_tokens);
          const size_t n = static_cast<size_t>(n_tokens * shape.rows);
          std::vector<float> plain(n, NAN), fast(n, NAN), fast3(n, NAN), other(n, NAN), scalar(n, NAN);
          MatMulIsa(isa, m.view, x.data(), n_tokens, plain.data(), nullptr);
          MatMulIsa(isa, pv, x.data(), n_tokens, fast.data(), nullptr);
          MatMulIsa(isa, pv, x.data(), n_tokens, fast3.data(), &pool);
          const std::string what = std::string(TensorTypeName(type)) + " " + IsaName(isa) + " packed " +
                                   std::to_string(shape.rows) + "x" + std::to_string(cols) +
                                   " n=" + std::to_string(n_tokens);
          EXPECT_EQ(0, std::memcmp(fast.data(), fast3.data(), n * 4)) << what << " (threads)";
          if (n_tokens >= k->panel_min_tokens) {
            EXPECT_EQ(0, std::memcmp(plain.data(), fast.data(), n * 4)) << what;
          }
          ExpectCloseToReference(m, x, n_tokens, fast, what);
          ExpectCloseToQuantizedReference(m, QuantizedActivations(type, x), n_tokens, fast, what);
          // Another path ignores the panels and reads the rows.
          MatMulIsa(Isa::kScalar, pv, x.data(), n_tokens, other.data(), nullptr);
          MatMulIsa(Isa::kScalar, m.view, x.data(), n_tokens, scalar.data(), nullptr);
          EXPECT_EQ(0, std::memcmp(other.data(), scalar.data(), n * 4)) << what << " (scalar)";
        }
      }
    }
  }
  // Types without a packed layout are not packed.
  const Matrix k4 = MakeMatrix(TensorType::kQ4_K, 32, 256, 3);
  for (Isa isa : AvailableIsas()) EXPECT_EQ(PackMatrixIsa(isa, k4.view, nullptr), nullptr) << IsaName(isa);
}

// A packed matrix of 2 MiB or more lives in a mapping of its own, aligned to 2 MiB so that
// it can be held in huge pages; it is read exactly as a small one.
TEST(KernelsTest, LargePackedMatrixIsHugePageAligned) {
  const Matrix m = MakeMatrix(TensorType::kQ8_0, 1030, 2048, 12);
  for (Isa isa : AvailableIsas()) {
    std::unique_ptr<PackedMatrix> packed = PackMatrixIsa(isa, m.view, nullptr);
    if (packed == nullptr) continue;
    SCOPED_TRACE(IsaName(isa));
    ASSERT_GE(packed->bytes(), size_t{2} << 20);
#if defined(__linux__)
    EXPECT_EQ(reinterpret_cast<uintptr_t>(packed->data.get()) % (uintptr_t{2} << 20), 0u);
    EXPECT_GE(packed->data.get_deleter().mapped, packed->bytes());
#endif
    WeightView pv = m.view;
    pv.packed = packed.get();
    for (int64_t n_tokens : {1, 8}) {
      const std::vector<float> x = Gaussian(static_cast<size_t>(n_tokens * m.view.cols), 40 + n_tokens);
      const size_t n = static_cast<size_t>(n_tokens * m.view.rows);
      std::vector<float> plain(n, NAN), fast(n, NAN);
      MatMulIsa(isa, m.view, x.data(), n_tokens, plain.data(), nullptr);
      MatMulIsa(isa, pv, x.data(), n_tokens, fast.data(), nullptr);
      const std::string what = std::string(IsaName(isa)) + " n=" + std::to_string(n_tokens);
      if (n_tokens >= TableFor(isa)->panel_min_tokens) {
        EXPECT_EQ(0, std::memcmp(plain.data(), fast.data(), n * 4)) << what;
      }
      ExpectCloseToQuantizedReference(m, QuantizedActivations(TensorType::kQ8_0, x), n_tokens, fast, what);
    }
  }
}

TEST(KernelsTest, MatMulUsesActivePath) {
  const Matrix m = MakeMatrix(TensorType::kQ4_0, 9, 64, 1);
  const std::vector<float> x = Gaussian(64 * 2, 2);
  std::vector<float> a(18), b(18);
  MatMul(m.view, x.data(), 2, a.data(), nullptr);
  MatMulIsa(ActiveIsa(), m.view, x.data(), 2, b.data(), nullptr);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(IsaAvailable(Isa::kScalar));
  EXPECT_EQ(AvailableIsas().front(), Isa::kScalar);
  EXPECT_FALSE(ActiveIsaDescription().empty());
}

TEST(KernelsTest, StridedMatchesPacked) {
  for (TensorType type : kAllTypes) {
    const int64_t cols = 512, rows = 21, n = 5, ldx = cols + 3, ldy = rows + 11;
    const Matrix m = MakeMatrix(type, rows, cols, 8);
    const std::vector<float> x = Gaussian(static_cast<size_t>(n * cols), 4);
    std::vector<float> xs(static_cast<size_t>(n * ldx), NAN);
    for (int64_t t = 0; t < n; ++t) std::copy_n(x.begin() + t * cols, cols, xs.begin() + t * ldx);
    std::vector<float> y(static_cast<size_t>(n * rows)), ys(static_cast<size_t>(n * ldy), -7.0f);
    ThreadPool pool(2);
    MatMul(m.view, x.data(), n, y.data(), &pool);
    MatMulStrided(m.view, xs.data(), ldx, n, ys.data(), ldy, &pool);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t r = 0; r < ldy; ++r) {
        const float got = ys[static_cast<size_t>(t * ldy + r)];
        if (r < rows) {
          ASSERT_EQ(got, y[static_cast<size_t>(t * rows + r)]) << TensorTypeName(type);
        } else {
          ASSERT_EQ(got, -7.0f) << "wrote outside the outputs";
        }
      }
    }
  }
}

// Matrices sharing one input get exactly what separate calls give, whatever mix of
// activation formats they need (Q8_0, Q8_K, float), for decode and for batches.
TEST(KernelsTest, SharedInputMatchesSeparateCalls) {
  const int64_t cols = 512;
  const int64_t rows[] = {37, 16, 0, 8, 21, 40};
  const TensorType types[] = {TensorType::kQ4_K, TensorType::kQ6_K, TensorType::kQ4_K,
                              TensorType::kQ8_0, TensorType::kF16,  TensorType::kQ4_0};
  std::vector<Matrix> ms;
  for (size_t i = 0; i < std::size(types); ++i) ms.push_back(MakeMatrix(types[i], rows[i], cols, 20 + i));
  ThreadPool pool(2);
  for (int64_t n : {1, 5, 19}) {
    const std::vector<float> x = Gaussian(static_cast<size_t>(n * cols), 30 + static_cast<uint64_t>(n));
    std::vector<std::vector<float>> want(ms.size()), got(ms.size());
    std::vector<MatMulOut> outs;
    for (size_t i = 0; i < ms.size(); ++i) {
      want[i].resize(static_cast<size_t>(n * rows[i]) + 1);
      got[i].assign(static_cast<size_t>(n * rows[i]) + 1, -3.0f);
      MatMul(ms[i].view, x.data(), n, want[i].data(), &pool);
      want[i].back() = -3.0f;
      outs.push_back({&ms[i].view, got[i].data()});
    }
    MatMulShared(outs, x.data(), n, &pool);
    for (size_t i = 0; i < ms.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << TensorTypeName(types[i]) << " n=" << n;
    }
  }
}

// Every path quantizes activations to the same bytes, so they differ only in how they sum.
TEST(KernelsTest, ActivationQuantizersAgree) {
  const std::vector<float> x = Gaussian(4096, 21);
  std::vector<float> xs = x;
  xs[7] = 0;  // an all-zero block must give d = 0, q = 0
  for (int i = 32; i < 64; ++i) xs[i] = 0;
  for (const Path& path : Paths()) {
    const internal::IsaKernels* k = path.kernels;
    for (Isa isa : AvailableIsas()) {
      if (path.name == IsaName(isa)) k = isa == Isa::kScalar ? internal::ScalarKernels() : nullptr;
    }
    if (path.name == "avx2") k = internal::Avx2Kernels();
    if (path.name == "avx512") k = internal::Avx512Kernels();
    if (path.name == "neon") k = internal::NeonKernels();
    ASSERT_NE(k, nullptr) << path.name;
    std::vector<int8_t> q0(4096), q1(4096);
    std::vector<float> d0(128), d1(128);
    std::vector<int32_t> s0(128), s1(128);
    internal::QuantizeQ8_0Scalar(xs.data(), 4096, q0.data(), d0.data(), s0.data());
    k->quantize_q8_0(xs.data(), 4096, q1.data(), d1.data(), s1.data());
    EXPECT_EQ(q0, q1) << path.name;
    EXPECT_EQ(d0, d1) << path.name;
    EXPECT_EQ(s0, s1) << path.name;
    EXPECT_EQ(d0[1], 0.0f);
    std::vector<int16_t> b0(256), b1(256);
    internal::QuantizeQ8_KScalar(xs.data(), 4096, q0.data(), d0.data(), b0.data());
    k->quantize_q8_k(xs.data(), 4096, q1.data(), d1.data(), b1.data());
    EXPECT_EQ(q0, q1) << path.name;
    EXPECT_EQ(std::vector<float>(d0.begin(), d0.begin() + 16), std::vector<float>(d1.begin(), d1.begin() + 16));
    EXPECT_EQ(b0, b1) << path.name;
  }
}

// The NEON path cannot run here, but it must compile for aarch64, both for baseline ARMv8
// and with the dot-product extension. Clang cross-compiles the kernel files with this
// host's C++ headers (no aarch64 sysroot needed); a tiny shim supplies the two glibc
// headers that are architecture-specific. Skipped where clang is not installed.
TEST(KernelsTest, NeonPathCompilesForAarch64) {
  const std::filesystem::path src = std::filesystem::path(__FILE__).parent_path();
  const std::filesystem::path root = src.parent_path().parent_path();
  if (!std::filesystem::exists(src / "kernels_neon.cc")) GTEST_SKIP() << "sources not found";
  if (std::system("clang++ --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no clang++";
  if (!std::filesystem::exists("/usr/include/x86_64-linux-gnu/c++/12")) {
    GTEST_SKIP() << "no libstdc++ 12 headers to borrow";
  }
  const std::filesystem::path shim =
      std::filesystem::temp_directory_path() / ("cairn_infer_a64_shim_" + std::to_string(getpid()));
  std::filesystem::create_directories(shim / "gnu");
  std::filesystem::create_directories(shim / "bits");
  std::ofstream(shim / "gnu" / "stubs-32.h") << "\n";
  std::ofstream(shim / "bits" / "wordsize.h")
      << "#define __WORDSIZE 64\n#define __WORDSIZE_TIME64_COMPAT32 1\n"
         "#define __SYSCALL_WORDSIZE 64\n";
  // The x86 files compile to their stubs there; with the pool, one translation unit.
  std::ofstream unity(shim / "x86_and_pool.cc");
  for (const char* f : {"kernels_avx2.cc", "kernels_avx2_panel.cc", "kernels_avx512.cc", "kernels_avx512_panel.cc",
                        "thread_pool.cc"}) {
    unity << "#include \"" << (src / f).string() << "\"\n";
  }
  unity.close();
  // -O0 keeps this quick; the intrinsics still become the instructions they name.
  const std::string clang =
      "clang++ --target=aarch64-linux-gnu -std=c++20 -O0 -Wall -Wextra -Werror -nostdinc++ "
      "-isystem /usr/include/c++/12 -isystem /usr/include/x86_64-linux-gnu/c++/12 -isystem " +
      shim.string() + " -isystem /usr/include/x86_64-linux-gnu -I" + root.string() + " ";
  const std::string neon = (src / "kernels_neon.cc").string();
  const std::string base_o = (shim / "base.o").string(), dot_o = (shim / "dot.o").string();
  auto has = [](const std::string& obj, const char* insn) {
    return "(! command -v llvm-objdump >/dev/null || llvm-objdump -d --mattr=+dotprod " + obj + " | grep -q " + insn +
           ")";
  };
  // Three compilers in parallel, then every exit status and the instructions checked.
  const std::string cmd = clang + "-c " + neon + " -o " + base_o + " & a=$!; " + clang +
                          "-march=armv8.2-a+dotprod -c " + neon + " -o " + dot_o + " & b=$!; " + clang +
                          "-fsyntax-only " + (shim / "x86_and_pool.cc").string() + " & c=$!; wait $a && wait $b && wait $c && " +
                          has(base_o, "sadalp") + " && " + has(dot_o, "sdot");
  const int rc = std::system(cmd.c_str());
  std::filesystem::remove_all(shim);
  EXPECT_EQ(rc, 0) << cmd;
}

TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 3, 100, 1001}) {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.ParallelFor(n, [&](int64_t b, int64_t e) {
          ASSERT_LE(0, b);
          ASSERT_LT(b, e);
          ASSERT_LE(e, n);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (auto& h : hits) ASSERT_EQ(h.load(), 1);
      }
    }
  }
}

TEST(ThreadPoolTest, GrainNestingAndIdleSleep) {
  ThreadPool pool(3, /*spin_us=*/50);
  std::atomic<int64_t> sum{0};
  pool.ParallelForGrain(10, 3, [&](int64_t b, int64_t e) {
    EXPECT_TRUE(e - b == 3 || (b == 9 && e == 10));
    // Nested calls run inline.
    pool.ParallelFor(4, [&](int64_t b2, int64_t e2) { sum.fetch_add(e2 - b2); });
  });
  EXPECT_EQ(sum.load(), 16);
  // Workers go to sleep after spinning; a later call must still wake them.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::atomic<int> calls{0};
  pool.ParallelForGrain(64, 1, [&](int64_t, int64_t) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 64);
}

}  // namespace
}  // namespace cairn::infer
