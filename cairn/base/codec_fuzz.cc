// Fuzzes the envelope and the primitive reader: no input may crash or overread.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cairn/base/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)cairn::OpenEnvelope(bytes, cairn::MakeMagic("TEST"), 2, "Test");
  cairn::ByteReader r(bytes);
  while (r.ok() && r.remaining() > 0) {
    switch (r.U8() % 4) {
      case 0: r.Varint(); break;
      case 1: r.String(); break;
      case 2: { std::vector<uint32_t> v; r.Array<uint32_t>(r.U16(), &v); break; }
      default: r.F64(); break;
    }
  }
  return 0;
}
