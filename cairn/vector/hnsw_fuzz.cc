// Fuzzes the HNSW file decoder: no input may crash, overread or allocate by an
// unchecked count; whatever decodes must be searchable.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cairn/vector/internal/hnsw_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto idx = cairn::vector::HnswDecodeForTesting(bytes);
  if (idx.ok()) {
    std::vector<float> q((*idx)->dim(), 0.5f);
    (void)(*idx)->Search(q, {});
  }
  return 0;
}
