// Fuzzes the collection snapshot decoder: damaged input is an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cairn/vector/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto snap = cairn::vector::SnapshotFile::Parse(bytes, "fuzz.snap");
  if (snap.ok() && (*snap)->header().count > 0) {
    const auto& h = (*snap)->header();
    (void)(*snap)->id(h.count - 1);
    if (h.vectors_inline) {
      std::vector<float> v(h.dim);
      (*snap)->Vector(h.count - 1, v);
    }
    (void)(*snap)->DecodeAttributes();
  }
  return 0;
}
