// Fuzzes the decoders of checkpoint contents: keyed state snapshots (sealed and
// raw), timer queues, and records (Row). None may crash or over-allocate.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "cairn/base/temp_dir.h"
#include "cairn/stream/internal/timers.h"
#include "cairn/stream/state.h"

namespace {

constexpr uint32_t kStateMagic = cairn::MakeMagic("CSTA");

void TryRestore(const std::string& dir, const std::string& bytes) {
  {
    std::ofstream out(dir + "/state.bin", std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  cairn::ManualClock clock;
  auto store = cairn::stream::KeyedStateStore::Create({}, &clock);
  if (!store.ok()) return;
  (*store)->GetValueState<int64_t>("v");
  (*store)->GetListState<std::string>("l");
  (*store)->GetMapState<std::string, double>("m");
  (void)(*store)->Restore(dir);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  cairn::stream::Row row;
  (void)cairn::stream::DecodeFromString(bytes, &row);
  cairn::ByteReader r(bytes);
  cairn::stream::internal::TimerQueue timers;
  (void)timers.Restore(r);

  static const cairn::TempDir root("cairn-state-fuzz");  // removed when the fuzzer exits
  static const std::string dir = root.path();
  TryRestore(dir, bytes);
  // Also sealed, so that mutations reach the table decoders behind the checksum.
  TryRestore(dir, cairn::SealEnvelope(kStateMagic, 1, bytes));
  return 0;
}
