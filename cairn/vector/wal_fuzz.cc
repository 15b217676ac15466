// Fuzzes the WAL decoders: record scanning (torn vs corrupt) and batch payloads. No
// input may crash, overread or allocate by an unchecked count.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/vector/wal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto scan = cairn::vector::ScanWal(bytes, "fuzz.wal");
  if (scan.ok()) {
    for (const auto& rec : scan->records) (void)cairn::vector::DecodeWalBatch(rec.payload);
  }
  (void)cairn::vector::DecodeWalBatch(bytes);
  return 0;
}
