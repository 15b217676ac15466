// cairn/cli/format.h — number formatting shared by the CLI's tables.
#pragma once

#include <cstdint>
#include <string>

namespace cairn::cli {

// 12345678 -> "12,345,678".
std::string Thousands(uint64_t n);
// 1536 -> "1.5 KiB".
std::string HumanBytes(double bytes);
// 123456789 -> "123.5 M" (SI prefixes, for rates and counts).
std::string HumanCount(double n);

}  // namespace cairn::cli
