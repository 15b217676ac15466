// Fuzzes HyperLogLog::Deserialize: no input may crash, overread or allocate
// wildly, and whatever decodes must behave as a sketch and round-trip. Each input
// is tried as a whole blob and as a payload sealed in a valid envelope, so the
// field checks get exercised past the checksum.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/base/codec.h"
#include "cairn/sketch/hyperloglog.h"

namespace {

using cairn::sketch::HyperLogLog;

void Exercise(std::string_view bytes) {
  absl::StatusOr<HyperLogLog> sketch = HyperLogLog::Deserialize(bytes);
  if (!sketch.ok()) return;

  const double estimate = sketch->Estimate();
  if (!(estimate >= 0.0) || std::isnan(estimate)) std::abort();
  (void)sketch->MemoryBytes();
  (void)sketch->RelativeStandardError();

  const std::string again = sketch->Serialize();
  absl::StatusOr<HyperLogLog> back = HyperLogLog::Deserialize(again);
  if (!back.ok() || back->Serialize() != again) std::abort();

  // Merging with itself changes nothing; reducing and merging must not crash.
  HyperLogLog copy = *sketch;
  if (!copy.Merge(*back).ok() || copy.Serialize() != again) std::abort();
  absl::StatusOr<HyperLogLog> reduced = sketch->Reduce(HyperLogLog::kMinPrecision);
  if (!reduced.ok()) std::abort();
  (void)reduced->Estimate();
  if (!copy.Merge(*reduced).ok() || copy.precision() != HyperLogLog::kMinPrecision) std::abort();

  for (uint64_t k = 0; k < 64; ++k) sketch->Add(k);
  if (!HyperLogLog::Deserialize(sketch->Serialize()).ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Exercise(bytes);
  Exercise(cairn::SealEnvelope(cairn::MakeMagic("CHLL"), 1, bytes));
  return 0;
}
