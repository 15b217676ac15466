// libFuzzer target: GgufFile::FromBuffer must reject any malformed input with a status,
// never crash, read out of bounds or allocate without bound. What it accepts is walked
// in full (metadata rendered, typed getters called, tensor bytes touched) so that a
// validation gap shows up as a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/infer/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = cairn::infer::GgufFile::FromBuffer(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!file.ok()) return 0;
  const cairn::infer::GgufFile& g = **file;
  size_t sink = 0;
  for (const cairn::infer::GgufKeyValue& kv : g.metadata()) {
    sink += kv.value.ToString().size();
    sink += g.GetI64(kv.key).ok() + g.GetF32(kv.key).ok() + g.GetString(kv.key).ok();
    sink += g.GetI32Array(kv.key).ok() + g.GetF32Array(kv.key).ok() + g.GetStringArray(kv.key).ok();
  }
  for (const cairn::infer::GgufTensor& t : g.tensors()) {
    if (t.size > 0) sink += t.data[0] + t.data[t.size - 1];
    sink += g.FindTensor(t.name) == &t;
  }
  return sink == 0xFFFFFFFF ? 1 : 0;
}
