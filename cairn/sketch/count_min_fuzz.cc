// Fuzzes CountMinSketch::Deserialize: no input may crash, overread or allocate
// beyond what it describes; whatever decodes must query, merge and re-encode.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/base/codec.h"
#include "cairn/sketch/count_min.h"

namespace {

void Exercise(std::string_view bytes) {
  using cairn::sketch::CountMinSketch;
  auto sketch = CountMinSketch::Deserialize(bytes);
  if (!sketch.ok()) return;
  (void)sketch->Estimate(uint64_t{1});
  (void)sketch->Estimate(std::string_view("key"));
  (void)sketch->epsilon();
  (void)sketch->MemoryBytes();
  CountMinSketch copy = *sketch;
  if (!copy.Merge(*sketch).ok()) __builtin_trap();
  copy.Add(uint64_t{7}, 3);
  copy.Scale(0.5);
  auto again = CountMinSketch::Deserialize(sketch->Serialize());
  if (!again.ok() || again->counters() != sketch->counters()) __builtin_trap();
  if (!CountMinSketch::Deserialize(copy.Serialize()).ok()) __builtin_trap();
}

}  // namespace

// The input is tried as a whole blob and, so that mutations get past the checksum,
// as a payload sealed into a valid envelope.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Exercise(bytes);
  Exercise(cairn::SealEnvelope(cairn::MakeMagic("CCMS"), 1, bytes));
  return 0;
}
