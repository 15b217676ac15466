// Fuzzes the filter parser and the attribute decoder.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/base/codec.h"
#include "cairn/vector/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto p = cairn::vector::ParseFilter(bytes);
  if (p.ok()) (void)p->Matches({{"a", int64_t{1}}, {"b", std::string("x")}});
  cairn::ByteReader r(bytes);
  (void)cairn::vector::DecodeAttributes(&r);
  return 0;
}
