#include "cairn/vector/index.h"

#include <string>

namespace cairn::vector {

std::string_view MetricName(Metric m) {
  switch (m) {
    case Metric::kL2: return "l2";
    case Metric::kInnerProduct: return "ip";
    case Metric::kCosine: return "cosine";
  }
  return "unknown";
}

absl::StatusOr<Metric> ParseMetric(std::string_view name) {
  if (name == "l2" || name == "L2" || name == "euclidean") return Metric::kL2;
  if (name == "ip" || name == "dot" || name == "inner_product") return Metric::kInnerProduct;
  if (name == "cosine" || name == "cos") return Metric::kCosine;
  return absl::InvalidArgumentError("unknown metric '" + std::string(name) +
                                    "' (expected l2, ip or cosine)");
}

}  // namespace cairn::vector
