#include "cairn/vector/distance.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "cairn/base/random.h"
#include "gtest/gtest.h"

namespace cairn::vector {
namespace internal {
const KernelTable* Avx512NoVnniKernels();
}  // namespace internal
namespace {

// Every table this machine can run, plus the AVX-512 variant without VNNI.
std::vector<const KernelTable*> SimdTables() {
  std::vector<const KernelTable*> out;
  for (std::string_view isa : AvailableIsas()) {
    if (isa != "scalar") out.push_back(KernelsFor(isa));
  }
  if (const KernelTable* t = internal::Avx512NoVnniKernels(); t && t != KernelsFor("avx512")) {
    out.push_back(t);
  }
  return out;
}

float Uniform(SplitMix64& rng, float lo, float hi) {
  return lo + static_cast<float>(rng.NextDouble()) * (hi - lo);
}

TEST(DistanceKernels, ScalarMatchesDoublePrecisionReference) {
  const KernelTable& s = ScalarKernels();
  const float a[5] = {1, 2, 3, 4, 5}, b[5] = {5, 4, 3, 2, 1};
  EXPECT_FLOAT_EQ(s.l2sq(a, b, 5), 16 + 4 + 0 + 4 + 16);
  EXPECT_FLOAT_EQ(s.dot(a, b, 5), 5 + 8 + 9 + 8 + 5);
  const int8_t x[3] = {-128, 127, 0}, y[3] = {127, -128, -1};
  EXPECT_EQ(s.l2sq_i8(x, y, 3), 255 * 255 * 2 + 1);
  EXPECT_EQ(s.dot_i8(x, y, 3), -128 * 127 * 2);
  const float q[2] = {1.5f, 0}, w[2] = {2, 3};
  const uint8_t c[2] = {1, 255};
  EXPECT_FLOAT_EQ(s.l2sq_f32_u8(q, c, w, 2), 2 * 0.25f + 3 * 255.f * 255.f);
  EXPECT_FLOAT_EQ(s.dot_f32_u8(q, c, 2), 1.5f);
}

TEST(DistanceKernels, DispatchPicksAnAvailableTable) {
  const KernelTable& k = Kernels();
  EXPECT_EQ(KernelsFor(k.isa), &k) << k.isa;
  EXPECT_EQ(KernelsFor("scalar"), &ScalarKernels());
  EXPECT_EQ(KernelsFor("sse9"), nullptr);
  ASSERT_FALSE(AvailableIsas().empty());
  EXPECT_EQ(AvailableIsas().front(), "scalar");
#if defined(__x86_64__)
  EXPECT_EQ(KernelsFor("neon"), nullptr);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_NE(KernelsFor("avx2"), nullptr);
  }
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    EXPECT_NE(KernelsFor("avx512"), nullptr);
  }
  // Without an override the best table wins.
  if (std::getenv("CAIRN_VECTOR_ISA") == nullptr && KernelsFor("avx512") != nullptr) {
    EXPECT_EQ(k.isa, "avx512");
  }
#endif
#if defined(__aarch64__)
  EXPECT_NE(KernelsFor("neon"), nullptr);
#endif
}

// Run in a child process by EnvironmentForcesAPath (dispatch happens once per
// process): checks that Kernels() honours CAIRN_VECTOR_ISA, or falls back to the
// best table when the request cannot run here.
TEST(DistanceKernels, HonoursEnvironment) {
  const char* env = std::getenv("CAIRN_VECTOR_ISA");
  if (env == nullptr) GTEST_SKIP() << "CAIRN_VECTOR_ISA not set";
  if (KernelsFor(env) != nullptr) {
    EXPECT_EQ(Kernels().isa, env);
  } else {
    for (std::string_view best : {"avx512", "avx2", "neon", "scalar"}) {
      if (KernelsFor(best) != nullptr) {
        EXPECT_EQ(Kernels().isa, best);
        break;
      }
    }
  }
}

TEST(DistanceKernels, EnvironmentForcesAPath) {
  if (std::getenv("CAIRN_VECTOR_ISA") != nullptr) GTEST_SKIP() << "already a child";
  if (!std::filesystem::exists("/proc/self/exe")) GTEST_SKIP() << "no /proc";
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  for (std::string_view isa : {"scalar", "avx2", "avx512", "neon", "bogus"}) {
    const std::string cmd = "CAIRN_VECTOR_ISA=" + std::string(isa) + " '" + self +
                            "' --gtest_filter=DistanceKernels.HonoursEnvironment >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

// Every SIMD table against scalar: dims 1..300 and the common embedding sizes,
// pointers offset by 0..3 elements so no load is aligned.
TEST(DistanceKernels, SimdMatchesScalarOnRandomInputs) {
  const KernelTable& ref = ScalarKernels();
  std::vector<size_t> dims;
  for (size_t d = 1; d <= 300; ++d) dims.push_back(d);
  for (size_t d : {384, 512, 768, 1024, 1536}) dims.push_back(d);
  SplitMix64 rng(7);
  const size_t max_dim = 1536 + 4;
  std::vector<float> fa(max_dim), fb(max_dim), fw(max_dim);
  std::vector<int8_t> ia(max_dim), ib(max_dim);
  std::vector<uint8_t> cu(max_dim);
  for (const KernelTable* t : SimdTables()) {
    SCOPED_TRACE(std::string(t->isa));
    for (size_t dim : dims) {
      const size_t off = dim % 4;
      for (size_t i = 0; i < max_dim; ++i) {
        fa[i] = Uniform(rng, -2, 2);
        fb[i] = Uniform(rng, -2, 2);
        fw[i] = Uniform(rng, 0, 1);
        ia[i] = static_cast<int8_t>(rng.Next());
        ib[i] = static_cast<int8_t>(rng.Next());
        cu[i] = static_cast<uint8_t>(rng.Next());
      }
      // Extremes exercise the int8 paths' worst cases (no saturation allowed).
      if (dim > 2) {
        ia[off] = -128, ib[off] = -128;
        ia[off + 1] = -128, ib[off + 1] = 127;
      }
      const float* a = fa.data() + off;
      const float* b = fb.data() + (3 - off);
      // Sum of |terms| bounds the float rounding error of any summation order.
      double abs_l2 = 0, abs_dot = 0, abs_ql2 = 0, abs_qdot = 0;
      for (size_t i = 0; i < dim; ++i) {
        abs_l2 += double(a[i] - b[i]) * (a[i] - b[i]);
        abs_dot += std::fabs(double(a[i]) * b[i]);
        const double d = 100.0 * a[i] - cu[off + i];
        abs_ql2 += fw[i] * d * d;
        abs_qdot += std::fabs(100.0 * a[i] * cu[off + i]);
      }
      const double tol = 1e-5;
      ASSERT_NEAR(t->l2sq(a, b, dim), ref.l2sq(a, b, dim), tol * abs_l2 + 1e-6) << dim;
      ASSERT_NEAR(t->dot(a, b, dim), ref.dot(a, b, dim), tol * abs_dot + 1e-6) << dim;
      ASSERT_EQ(t->l2sq_i8(ia.data() + off, ib.data() + 1, dim),
                ref.l2sq_i8(ia.data() + off, ib.data() + 1, dim))
          << dim;
      ASSERT_EQ(t->dot_i8(ia.data() + off, ib.data() + 1, dim),
                ref.dot_i8(ia.data() + off, ib.data() + 1, dim))
          << dim;
      std::vector<float> q(a, a + dim);
      for (float& x : q) x *= 100;
      ASSERT_NEAR(t->l2sq_f32_u8(q.data(), cu.data() + off, fw.data(), dim),
                  ref.l2sq_f32_u8(q.data(), cu.data() + off, fw.data(), dim), tol * abs_ql2 + 1e-6)
          << dim;
      ASSERT_NEAR(t->dot_f32_u8(q.data(), cu.data() + off, dim),
                  ref.dot_f32_u8(q.data(), cu.data() + off, dim), tol * abs_qdot + 1e-6)
          << dim;
    }
  }
}

// The four-at-once kernels against four single scalar calls, with repeated
// pointers (a padded block) and unaligned rows.
TEST(DistanceKernels, X4KernelsMatchFourSingleCalls) {
  const KernelTable& ref = ScalarKernels();
  SplitMix64 rng(9);
  std::vector<float> buf(5 * 800 + 8);
  for (float& x : buf) x = Uniform(rng, -1, 1);
  for (std::string_view isa : AvailableIsas()) {
    const KernelTable* t = KernelsFor(isa);
    SCOPED_TRACE(std::string(isa));
    for (size_t dim = 1; dim <= 800; dim += (dim < 70 ? 1 : 37)) {
      const float* b = buf.data() + 1;
      const float* a[4] = {buf.data() + 3 + dim, buf.data() + 2 + 2 * dim, buf.data() + 3 * dim + 5,
                           buf.data() + 3 * dim + 5};
      float l2[4], dot[4];
      t->l2sq_x4(a, b, dim, l2);
      t->dot_x4(a, b, dim, dot);
      for (int j = 0; j < 4; ++j) {
        double abs_dot = 0, l2_ref = 0;
        for (size_t i = 0; i < dim; ++i) {
          abs_dot += std::fabs(double{a[j][i]} * b[i]);
          l2_ref += (double{a[j][i]} - b[i]) * (double{a[j][i]} - b[i]);
        }
        ASSERT_NEAR(l2[j], ref.l2sq(a[j], b, dim), 1e-5 * l2_ref + 1e-6) << dim << " " << j;
        ASSERT_NEAR(dot[j], ref.dot(a[j], b, dim), 1e-5 * abs_dot + 1e-6) << dim << " " << j;
      }
      EXPECT_EQ(l2[2], l2[3]);
    }
  }
}

TEST(DistanceKernels, ZeroDimensionIsZero) {
  const float f = 1;
  const int8_t i = 1;
  const uint8_t u = 1;
  for (std::string_view isa : AvailableIsas()) {
    const KernelTable* t = KernelsFor(isa);
    EXPECT_EQ(t->l2sq(&f, &f, 0), 0) << isa;
    EXPECT_EQ(t->dot(&f, &f, 0), 0) << isa;
    EXPECT_EQ(t->l2sq_i8(&i, &i, 0), 0) << isa;
    EXPECT_EQ(t->dot_i8(&i, &i, 0), 0) << isa;
    EXPECT_EQ(t->l2sq_f32_u8(&f, &u, &f, 0), 0) << isa;
    EXPECT_EQ(t->dot_f32_u8(&f, &u, 0), 0) << isa;
    const float* a[4] = {&f, &f, &f, &f};
    float out[4] = {1, 1, 1, 1};
    t->l2sq_x4(a, &f, 0, out);
    EXPECT_EQ(out[3], 0) << isa;
    t->dot_x4(a, &f, 0, out);
    EXPECT_EQ(out[0], 0) << isa;
  }
}

// Kernels must not read past `dim`: the inputs end exactly at a heap block's end,
// so AddressSanitizer reports any over-read (masked tails must stay masked).
TEST(DistanceKernels, NoReadPastTheEnd) {
  for (std::string_view isa : AvailableIsas()) {
    const KernelTable* t = KernelsFor(isa);
    for (size_t dim : {1, 3, 7, 15, 17, 31, 33, 63, 65, 127, 129}) {
      std::vector<float> a(dim, 1.f), b(dim, 2.f), w(dim, 1.f);
      std::vector<int8_t> x(dim, 3), y(dim, -2);
      std::vector<uint8_t> c(dim, 4);
      EXPECT_FLOAT_EQ(t->l2sq(a.data(), b.data(), dim), float(dim)) << isa;
      EXPECT_FLOAT_EQ(t->dot(a.data(), b.data(), dim), 2.f * dim) << isa;
      EXPECT_EQ(t->l2sq_i8(x.data(), y.data(), dim), 25 * int(dim)) << isa;
      EXPECT_EQ(t->dot_i8(x.data(), y.data(), dim), -6 * int(dim)) << isa;
      EXPECT_FLOAT_EQ(t->l2sq_f32_u8(a.data(), c.data(), w.data(), dim), 9.f * dim) << isa;
      EXPECT_FLOAT_EQ(t->dot_f32_u8(a.data(), c.data(), dim), 4.f * dim) << isa;
      const float* four[4] = {a.data(), a.data(), a.data(), a.data()};
      float out[4];
      t->l2sq_x4(four, b.data(), dim, out);
      EXPECT_FLOAT_EQ(out[0], float(dim)) << isa;
      t->dot_x4(four, b.data(), dim, out);
      EXPECT_FLOAT_EQ(out[3], 2.f * dim) << isa;
    }
  }
}

// The NEON path cannot run here, but it must compile for aarch64. Clang cross-compiles
// the kernel files with this host's C++ headers (no aarch64 sysroot needed); a tiny
// shim supplies the two glibc headers that are architecture-specific. Skipped where
// clang is not installed.
TEST(DistanceKernels, NeonPathCompilesForAarch64) {
  const std::filesystem::path src = std::filesystem::path(__FILE__).parent_path();
  const std::filesystem::path root = src.parent_path().parent_path();
  if (!std::filesystem::exists(src / "distance_neon.cc")) GTEST_SKIP() << "sources not found";
  if (std::system("clang++ --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no clang++";
  if (!std::filesystem::exists("/usr/include/x86_64-linux-gnu/c++/12")) {
    GTEST_SKIP() << "no libstdc++ 12 headers to borrow";
  }
  const std::filesystem::path shim =
      std::filesystem::temp_directory_path() / ("cairn_a64_shim_" + std::to_string(getpid()));
  std::filesystem::create_directories(shim / "gnu");
  std::filesystem::create_directories(shim / "bits");
  std::ofstream(shim / "gnu" / "stubs-32.h") << "\n";
  std::ofstream(shim / "bits" / "wordsize.h")
      << "#define __WORDSIZE 64\n#define __WORDSIZE_TIME64_COMPAT32 1\n"
         "#define __SYSCALL_WORDSIZE 64\n";
  const std::string out = (shim / "neon.o").string();
  const std::string clang =
      "clang++ --target=aarch64-linux-gnu -std=c++20 -O1 -Wall -Wextra -Werror -nostdinc++ "
      "-isystem /usr/include/c++/12 -isystem /usr/include/x86_64-linux-gnu/c++/12 -isystem " +
      shim.string() + " -isystem /usr/include/x86_64-linux-gnu -I" + root.string() + " ";
  // The NEON kernels compile to NEON code; the x86 files compile to their stubs.
  const std::string cmd =
      clang + "-c " + (src / "distance_neon.cc").string() + " -o " + out +
      " && (! command -v llvm-objdump >/dev/null || llvm-objdump -d " + out +
      " | grep -q fmla) && " + clang + "-fsyntax-only " + (src / "distance_avx2.cc").string() +
      " && " + clang + "-fsyntax-only " + (src / "distance_avx512.cc").string();
  const int rc = std::system(cmd.c_str());
  std::filesystem::remove_all(shim);
  EXPECT_EQ(rc, 0) << cmd;
}

}  // namespace
}  // namespace cairn::vector
