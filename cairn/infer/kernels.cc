#include "cairn/infer/kernels.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cairn/base/log.h"
#include "fmt/format.h"

namespace cairn::infer {

namespace {

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "cairn::infer::MatMul: %s\n", std::string(s.message()).c_str());
  std::abort();
}

// Dequantizes each weight row once and takes its float dot product with every token.
void MatMulReference(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  auto rows_fn = [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = begin; r < end; ++r) {
      const auto* src = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r) * w.row_bytes;
      if (absl::Status s = Dequantize(w.type, src, row.data(), w.cols); !s.ok()) Die(s);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * w.cols;
        float sum = 0;
        for (int64_t i = 0; i < w.cols; ++i) sum += row[static_cast<size_t>(i)] * xt[i];
        y[t * w.rows + r] = sum;
      }
    }
  };
  if (pool == nullptr) {
    rows_fn(0, w.rows);
  } else {
    pool->ParallelFor(w.rows, rows_fn);
  }
}

}  // namespace

absl::Status CheckWeightView(const WeightView& w) {
  if (!IsSupported(w.type)) {
    return absl::InvalidArgumentError(fmt::format("matmul: weight type {} is not supported", TensorTypeName(w.type)));
  }
  if (w.rows < 0 || w.cols <= 0) {
    return absl::InvalidArgumentError(fmt::format("matmul: bad weight shape {} x {}", w.rows, w.cols));
  }
  absl::StatusOr<uint64_t> rb = RowBytes(w.type, w.cols);
  if (!rb.ok()) return rb.status();
  if (w.row_bytes < *rb) {
    return absl::InvalidArgumentError(
        fmt::format("matmul: row_bytes {} is less than a {} row of {} ({} bytes)", w.row_bytes,
                    TensorTypeName(w.type), w.cols, *rb));
  }
  if (w.rows > 0 && w.data == nullptr) return absl::InvalidArgumentError("matmul: weight data is null");
  return absl::OkStatus();
}

TensorType ActivationType(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::kQ4_0:
    case TensorType::kQ8_0:
      return TensorType::kQ8_0;
    case TensorType::kQ4_K:
    case TensorType::kQ6_K:
      return TensorType::kQ8_K;
    default:
      return TensorType::kF32;
  }
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kNeon:
      return "neon";
  }
  return "?";
}

bool IsaAvailable(Isa isa) { return isa == Isa::kScalar; }

std::vector<Isa> AvailableIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (IsaAvailable(isa)) out.push_back(isa);
  }
  return out;
}

Isa ActiveIsa() { return Isa::kScalar; }
std::string_view ActiveIsaDescription() { return "scalar"; }

void MatMulIsa(Isa, const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  if (absl::Status s = CheckWeightView(w); !s.ok()) Die(s);
  if (n_tokens <= 0 || w.rows == 0) return;
  MatMulReference(w, x, n_tokens, y, pool);
}

void MatMul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  MatMulIsa(ActiveIsa(), w, x, n_tokens, y, pool);
}

}  // namespace cairn::infer
