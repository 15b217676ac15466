// Fuzzes CuckooFilter::Deserialize: no input may crash, overread or allocate
// wildly; whatever decodes must answer queries, take updates and round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/base/codec.h"
#include "cairn/sketch/cuckoo_filter.h"

namespace {

void Exercise(std::string_view bytes) {
  auto filter = cairn::sketch::CuckooFilter::Deserialize(bytes);
  if (!filter.ok()) return;
  for (uint64_t k = 0; k < 64; ++k) (void)filter->Contains(k);
  (void)filter->EstimatedFalsePositiveRate();
  const std::string again = filter->Serialize();
  if (again != bytes) std::abort();  // the format has one encoding per filter
  auto copy = cairn::sketch::CuckooFilter::Deserialize(again);
  if (!copy.ok() || !(*copy == *filter)) std::abort();
  // Updates keep the filter consistent: size tracks inserts and erases.
  const uint64_t before = filter->size();
  uint64_t added = 0;
  for (uint64_t k = 0; k < 16; ++k) {
    if (filter->Insert(k * 7919).ok()) {
      ++added;
      if (!filter->Contains(k * 7919)) std::abort();
    }
  }
  if (filter->size() != before + added) std::abort();
  (void)filter->Merge(*copy);
  auto after = cairn::sketch::CuckooFilter::Deserialize(filter->Serialize());
  if (!after.ok()) std::abort();
}

}  // namespace

// Each input is tried as a whole blob and as a payload sealed in a valid
// envelope, so mutations also reach the field checks behind the checksum.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Exercise(bytes);
  Exercise(cairn::SealEnvelope(cairn::MakeMagic("CCKO"), 1, bytes));
  return 0;
}
