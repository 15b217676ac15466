#include "cairn/infer/constraint.h"

namespace cairn::infer {

absl::StatusOr<std::unique_ptr<TokenConstraint>> MakeJsonConstraint(const Tokenizer&, const nlohmann::json&) {
  return absl::UnimplementedError("constrained JSON output is not available in this build");
}

}  // namespace cairn::infer
