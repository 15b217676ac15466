// cairn/cli/demo_sketches.h — the parts of `cairn demo` shared between its scenes.
#pragma once

#include <cstdint>
#include <string>

namespace cairn::cli {

// `cairn demo sketches`: sketch answers beside exact ones.
struct SketchesDemoOptions {
  std::string data_dir;
  uint64_t events = 10'000'000;
  uint64_t sensors = 1'000'000;
  uint64_t seed = 42;
};
int RunSketchesDemo(const SketchesDemoOptions& o);

// The bundled data directory: `flag`, $CAIRN_DATA_DIR, ./data, or the source
// tree's data/ — the first that holds `probe`; "" when none does.
std::string FindDataDir(const std::string& flag, const std::string& probe);

}  // namespace cairn::cli
