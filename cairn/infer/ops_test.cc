#include "cairn/infer/ops.h"

#include <cmath>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cairn/base/random.h"
#include "cairn/infer/internal/ops_table.h"
#include "cairn/infer/tensor_type.h"

namespace cairn::infer {
namespace {

std::vector<float> Random(size_t n, uint64_t seed, float scale = 1.0f) {
  SplitMix64 rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * (static_cast<float>(rng.Next() >> 40) / static_cast<float>(1 << 24) * 2 - 1);
  return v;
}

TEST(OpsTest, RmsNormMatchesDefinition) {
  const std::vector<float> x = Random(37, 1), w = Random(37, 2);
  std::vector<float> out(37);
  RmsNorm(x.data(), w.data(), 1e-5f, 37, out.data());
  double ss = 0;
  for (float v : x) ss += v * v;
  const double scale = 1 / std::sqrt(ss / 37 + 1e-5);
  for (int i = 0; i < 37; ++i) EXPECT_NEAR(out[i], x[i] * scale * w[i], 1e-6);
  // In place.
  std::vector<float> y = x;
  RmsNorm(y.data(), w.data(), 1e-5f, 37, y.data());
  EXPECT_EQ(y, out);
}

TEST(OpsTest, LayerNormMatchesDefinition) {
  const std::vector<float> x = Random(40, 3, 4.0f), w = Random(40, 4), b = Random(40, 5);
  std::vector<float> out(40);
  LayerNorm(x.data(), w.data(), b.data(), 1e-12f, 40, out.data());
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= 40;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= 40;
  for (int i = 0; i < 40; ++i) EXPECT_NEAR(out[i], (x[i] - mean) / std::sqrt(var + 1e-12) * w[i] + b[i], 1e-5);
}

TEST(OpsTest, RopeRotatesPairsByPositionAngles) {
  const int head_dim = 8, n_rot = 6, heads = 2;
  std::vector<float> cs(n_rot);
  RopeAngles(5, n_rot, 10000.0f, 0.5f, nullptr, cs.data());
  for (int i = 0; i < n_rot / 2; ++i) {
    const double theta = 5 * 0.5 * std::pow(10000.0, -2.0 * i / n_rot);
    EXPECT_NEAR(cs[2 * i], std::cos(theta), 1e-6);
    EXPECT_NEAR(cs[2 * i + 1], std::sin(theta), 1e-6);
  }
  for (bool neox : {false, true}) {
    const std::vector<float> x = Random(head_dim * heads, 6);
    std::vector<float> y = x;
    Rope(y.data(), heads, head_dim, n_rot, neox, cs.data());
    for (int h = 0; h < heads; ++h) {
      const float* a = x.data() + h * head_dim;
      const float* b = y.data() + h * head_dim;
      for (int i = 0; i < n_rot / 2; ++i) {
        const int p = neox ? i : 2 * i, q = neox ? i + n_rot / 2 : 2 * i + 1;
        EXPECT_NEAR(b[p], a[p] * cs[2 * i] - a[q] * cs[2 * i + 1], 1e-6);
        EXPECT_NEAR(b[q], a[p] * cs[2 * i + 1] + a[q] * cs[2 * i], 1e-6);
      }
      // Dimensions past n_rot are untouched.
      for (int d = n_rot; d < head_dim; ++d) EXPECT_EQ(b[d], a[d]);
    }
  }
  // Position 0 is the identity.
  // Frequency factors divide the angles.
  const float factors[3] = {1.0f, 2.0f, 8.0f};
  std::vector<float> cf(n_rot);
  RopeAngles(5, n_rot, 10000.0f, 0.5f, factors, cf.data());
  for (int i = 0; i < n_rot / 2; ++i) {
    const double theta = 5 * 0.5 * std::pow(10000.0, -2.0 * i / n_rot) / factors[i];
    EXPECT_NEAR(cf[2 * i], std::cos(theta), 1e-6);
    EXPECT_NEAR(cf[2 * i + 1], std::sin(theta), 1e-6);
  }
  RopeAngles(0, n_rot, 10000.0f, 1.0f, nullptr, cs.data());
  std::vector<float> z = Random(head_dim, 7), z0 = z;
  Rope(z.data(), 1, head_dim, n_rot, false, cs.data());
  EXPECT_EQ(z, z0);
}

// Every ISA's table against definitions computed in double.
class OpsIsaTest : public ::testing::TestWithParam<int> {
 protected:
  const internal::OpsTable* table() const {
    return GetParam() == 0 ? &internal::ScalarOps() : internal::Avx2Ops();
  }
};

TEST_P(OpsIsaTest, MatchDefinitions) {
  const internal::OpsTable* t = table();
  if (t == nullptr) GTEST_SKIP() << "this CPU lacks the instructions";
  for (int64_t n : {1, 7, 8, 9, 33, 64, 100}) {
    SCOPED_TRACE(n);
    const std::vector<float> a = Random(n, 10 + n, 6.0f), b = Random(n, 20 + n, 6.0f);
    // softmax
    std::vector<float> s = a;
    t->softmax(s.data(), n);
    double max = -1e30, sum = 0;
    for (float v : a) max = std::max<double>(max, v);
    for (float v : a) sum += std::exp(v - max);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(s[i], std::exp(a[i] - max) / sum, 1e-6 + 1e-6 * s[i]);
    // silu * up
    std::vector<float> o(n);
    t->silu_mul(a.data(), b.data(), n, o.data());
    for (int64_t i = 0; i < n; ++i) {
      const double want = a[i] / (1 + std::exp(-static_cast<double>(a[i]))) * b[i];
      EXPECT_NEAR(o[i], want, 1e-5 * (1 + std::fabs(want)));
    }
    // gelu
    std::vector<float> g = a;
    t->gelu(g.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double v = a[i];
      const double want = 0.5 * v * (1 + std::tanh(0.7978845608028654 * v * (1 + 0.044715 * v * v)));
      EXPECT_NEAR(g[i], want, 1e-5 * (1 + std::fabs(want)));
    }
    // dot, axpy
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(a[i]) * b[i];
    EXPECT_NEAR(t->dot(a.data(), b.data(), n), dot, 1e-4);
    std::vector<float> y = b;
    t->axpy(0.5f, a.data(), n, y.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(y[i], b[i] + 0.5f * a[i]);
    // f16
    std::vector<uint16_t> h(n);
    t->to_f16(a.data(), n, h.data());
    double dot16 = 0;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(h[i], Fp32ToFp16(a[i]));
      float back = 0;
      t->from_f16(&h[i], 1, &back);
      EXPECT_EQ(back, Fp16ToFp32(h[i]));
      dot16 += static_cast<double>(Fp16ToFp32(h[i])) * b[i];
    }
    EXPECT_NEAR(t->dot_f16(b.data(), h.data(), n), dot16, 1e-4);
    std::vector<float> wide(n);
    t->from_f16(h.data(), n, wide.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(wide[i], Fp16ToFp32(h[i]));
    y = b;
    t->axpy_f16(2.0f, h.data(), n, y.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(y[i], b[i] + 2.0f * Fp16ToFp32(h[i]));
  }
}

TEST_P(OpsIsaTest, GatheredAttentionRows) {
  const internal::OpsTable* t = table();
  if (t == nullptr) GTEST_SKIP() << "this CPU lacks the instructions";
  for (int64_t hd : {8, 12, 64, 80, 128}) {
    for (int64_t n : {1, 7, 8, 19}) {
      SCOPED_TRACE(fmt::format("hd {} n {}", hd, n));
      const int64_t stride = hd * 3 + 4;  // rows of several heads, plus slack
      const int64_t rows = 25;
      const std::vector<float> base = Random(static_cast<size_t>(rows * stride), 40 + hd + n);
      std::vector<uint16_t> base16(base.size());
      for (size_t i = 0; i < base.size(); ++i) base16[i] = Fp32ToFp16(base[i]);
      const std::vector<float> q = Random(static_cast<size_t>(hd), 50 + n);
      std::vector<float> p = Random(static_cast<size_t>(n), 60 + n);
      std::vector<int32_t> idx(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) idx[j] = static_cast<int32_t>((j * 7 + 3) % rows);
      const int64_t off = hd;  // the second head of each row
      std::vector<float> dot(n), dot16(n), sum(hd), sum16(hd);
      t->gather_dot(q.data(), base.data() + off, idx.data(), n, stride, hd, dot.data());
      t->gather_dot_f16(q.data(), base16.data() + off, idx.data(), n, stride, hd, dot16.data());
      std::fill(sum.begin(), sum.end(), 99.0f);  // overwritten, not accumulated
      t->gather_sum(p.data(), base.data() + off, idx.data(), n, stride, hd, sum.data());
      t->gather_sum_f16(p.data(), base16.data() + off, idx.data(), n, stride, hd, sum16.data());
      for (int64_t j = 0; j < n; ++j) {
        double want = 0, want16 = 0;
        for (int64_t i = 0; i < hd; ++i) {
          want += static_cast<double>(q[i]) * base[idx[j] * stride + off + i];
          want16 += static_cast<double>(q[i]) * Fp16ToFp32(base16[idx[j] * stride + off + i]);
        }
        EXPECT_NEAR(dot[j], want, 1e-4);
        EXPECT_NEAR(dot16[j], want16, 1e-4);
      }
      for (int64_t i = 0; i < hd; ++i) {
        double want = 0, want16 = 0;
        for (int64_t j = 0; j < n; ++j) {
          want += static_cast<double>(p[j]) * base[idx[j] * stride + off + i];
          want16 += static_cast<double>(p[j]) * Fp16ToFp32(base16[idx[j] * stride + off + i]);
        }
        EXPECT_NEAR(sum[i], want, 1e-4);
        EXPECT_NEAR(sum16[i], want16, 1e-4);
      }
    }
  }
}

TEST_P(OpsIsaTest, AttentionTiles) {
  const internal::OpsTable* t = table();
  if (t == nullptr) GTEST_SKIP() << "this CPU lacks the instructions";
  for (int64_t hd : {8, 20, 64, 80}) {
    for (int64_t m : {3, 8, 16, 24, 48}) {
      for (int64_t n : {1, 5, 37}) {
        SCOPED_TRACE(fmt::format("hd {} m {} n {}", hd, m, n));
        const std::vector<float> k = Random(static_cast<size_t>(n * hd), 70 + n, 2.0f);
        const std::vector<float> v = Random(static_cast<size_t>(n * hd), 80 + n);
        const std::vector<float> qt = Random(static_cast<size_t>(hd * m), 90 + m, 0.5f);
        std::vector<float> st(static_cast<size_t>(n * m), 7.0f);
        t->tile_scores(k.data(), n, hd, qt.data(), m, st.data());
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t c = 0; c < m; ++c) {
            double want = 0;
            for (int64_t d = 0; d < hd; ++d) want += static_cast<double>(k[j * hd + d]) * qt[d * m + c];
            ASSERT_NEAR(st[j * m + c], want, 1e-4) << j << " " << c;
          }
        }
        std::vector<float> p = st;
        t->softmax_columns(p.data(), n, m);
        for (int64_t c = 0; c < m; ++c) {
          double max = -1e30, sum = 0;
          for (int64_t j = 0; j < n; ++j) max = std::max<double>(max, st[j * m + c]);
          for (int64_t j = 0; j < n; ++j) sum += std::exp(st[j * m + c] - max);
          for (int64_t j = 0; j < n; ++j) ASSERT_NEAR(p[j * m + c], std::exp(st[j * m + c] - max) / sum, 1e-6);
        }
        std::vector<float> out(static_cast<size_t>(m * hd), 5.0f);
        t->tile_values(p.data(), n, m, v.data(), hd, out.data());
        for (int64_t c = 0; c < m; ++c) {
          for (int64_t i = 0; i < hd; ++i) {
            double want = 0;
            for (int64_t j = 0; j < n; ++j) want += static_cast<double>(p[j * m + c]) * v[j * hd + i];
            ASSERT_NEAR(out[c * hd + i], want, 1e-5) << c << " " << i;
          }
        }
      }
    }
  }
}

TEST_P(OpsIsaTest, ExtremeInputsStayFinite) {
  const internal::OpsTable* t = table();
  if (t == nullptr) GTEST_SKIP() << "this CPU lacks the instructions";
  std::vector<float> x = {-1000, -90, -20, 0, 20, 90, 1000, 5, -5};
  std::vector<float> up(x.size(), 1.0f), o(x.size());
  t->silu_mul(x.data(), up.data(), static_cast<int64_t>(x.size()), o.data());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_TRUE(std::isfinite(o[i])) << x[i];
    EXPECT_NEAR(o[i], x[i] > 50 ? x[i] : x[i] < -50 ? 0.0f : o[i], 1e-3);
  }
  std::vector<float> g = x;
  t->gelu(g.data(), static_cast<int64_t>(g.size()));
  EXPECT_NEAR(g[0], 0.0f, 1e-6);
  EXPECT_NEAR(g[6], 1000.0f, 1e-3);
  std::vector<float> s = x;
  t->softmax(s.data(), static_cast<int64_t>(s.size()));
  EXPECT_NEAR(s[6], 1.0f, 1e-6);
  EXPECT_LT(s[0], 1e-30f);
}

INSTANTIATE_TEST_SUITE_P(Isa, OpsIsaTest, ::testing::Values(0, 1),
                         [](const ::testing::TestParamInfo<int>& p) { return p.param == 0 ? "scalar" : "avx2"; });

}  // namespace
}  // namespace cairn::infer
