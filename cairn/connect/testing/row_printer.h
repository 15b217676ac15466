// Test helper: readable GoogleTest output for Rows ({a=1, b="x"}).
#pragma once

#include <ostream>
#include <string>
#include <variant>

#include "cairn/stream/record.h"

namespace cairn::stream {

inline void PrintTo(const Row& row, std::ostream* os) {
  *os << "{";
  bool first = true;
  for (const Field& f : row.fields()) {
    *os << (first ? "" : ", ") << f.name << "=";
    if (std::holds_alternative<std::string>(f.value))
      *os << '"' << std::get<std::string>(f.value) << '"';
    else
      *os << ValueToString(f.value) << (std::holds_alternative<double>(f.value) ? "d" : "");
    first = false;
  }
  *os << "}";
}

}  // namespace cairn::stream
