// Fuzzes BloomFilter::Deserialize: no input may crash, overread or allocate
// wildly; whatever decodes must answer queries and round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/base/codec.h"
#include "cairn/sketch/bloom_filter.h"

namespace {

void Exercise(std::string_view bytes) {
  auto filter = cairn::sketch::BloomFilter::Deserialize(bytes);
  if (!filter.ok()) return;
  for (uint64_t k = 0; k < 64; ++k) (void)filter->Contains(k);
  (void)filter->Contains(std::string_view("fuzz"));
  (void)filter->EstimatedFalsePositiveRate(1000);
  (void)filter->FillRatio();
  const std::string again = filter->Serialize();
  if (again != bytes) std::abort();  // the format has one encoding per filter
  auto copy = cairn::sketch::BloomFilter::Deserialize(again);
  if (!copy.ok() || !(*copy == *filter)) std::abort();
  if (!copy->Merge(*filter).ok()) std::abort();
  copy->Insert(uint64_t{7});
  if (!copy->Contains(uint64_t{7})) std::abort();
}

}  // namespace

// Each input is tried as a whole blob and as a payload sealed in a valid
// envelope, so mutations also reach the field checks behind the checksum.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Exercise(bytes);
  Exercise(cairn::SealEnvelope(cairn::MakeMagic("CBLM"), 1, bytes));
  return 0;
}
