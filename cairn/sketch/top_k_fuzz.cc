// Fuzzes TopK<uint64_t>::Deserialize and TopK<std::string>::Deserialize: no input may
// crash, overread or allocate beyond what it describes; whatever decodes must query,
// keep adding, merge and re-encode.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/base/codec.h"
#include "cairn/sketch/top_k.h"

namespace {

template <typename Key>
void Exercise(std::string_view bytes) {
  using cairn::sketch::TopK;
  auto sketch = TopK<Key>::Deserialize(bytes);
  if (!sketch.ok()) return;
  (void)sketch->Top(10);
  (void)sketch->MinCount();
  (void)sketch->MemoryBytes();
  TopK<Key> copy = *sketch;
  // Half repeated keys, half fresh ones: on a small sketch, enough evictions for the
  // add path to be reconsidered (and the branch-free one taken).
  for (uint64_t i = 0; i < 512; ++i) {
    const uint64_t k = i % 2 == 0 ? i % 13 : 1000 + i;
    if constexpr (std::is_same_v<Key, std::string>) {
      copy.Add(std::to_string(k));
    } else {
      copy.Add(k);
    }
  }
  if (!copy.Merge(*sketch).ok()) __builtin_trap();
  auto again = TopK<Key>::Deserialize(sketch->Serialize());
  if (!again.ok() || again->Serialize() != sketch->Serialize()) __builtin_trap();
  if (!TopK<Key>::Deserialize(copy.Serialize()).ok()) __builtin_trap();
}

}  // namespace

// The input is tried as a whole blob and, so that mutations get past the checksum,
// as a payload sealed into a valid envelope.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string sealed = cairn::SealEnvelope(cairn::MakeMagic("CTPK"), 1, bytes);
  for (std::string_view b : {bytes, std::string_view(sealed)}) {
    Exercise<uint64_t>(b);
    Exercise<std::string>(b);
  }
  return 0;
}
