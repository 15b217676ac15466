// Expressions over Rows, for pipeline files: filters, computed fields, keys.
//
//   temperature > 80 and not (machine == "press-7" or status in ["idle", "off"])
//   (value - 32) * 5 / 9
//   lower(site) + "/" + machine
//
// Grammar (usual precedence, lowest first): `or`, `and`, `not`, comparisons
// (== != < <= > >= in), + -, * / %, unary -, primary. Primaries: numbers,
// "strings" or 'strings', true, false, null, field names (letters, digits, _
// and . ; any other name in `backticks`), lists [a, b] (only after `in`),
// function calls, (parentheses).
// Functions: abs(x), round(x), floor(x), ceil(x), sqrt(x), min(a, b), max(a, b),
// lower(s), upper(s), len(s), contains(s, sub), starts_with(s, prefix),
// ends_with(s, suffix), str(x), num(x), coalesce(a, b, ...), is_null(x).
//
// Semantics: a missing field is null; arithmetic with null is null; comparing
// null with anything but null is false; + on two strings concatenates (with a
// number it converts the number); integers stay integers through + - * and %
// (division gives a double); a string that holds a number compares as a number
// with a number. Truthiness (filters): null and false and 0 and "" are false.
//
// Thread-safety: a compiled Expr is immutable; Eval may run on many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "cairn/base/status.h"
#include "cairn/stream/record.h"

namespace cairn::pipeline {

class Expr {
 public:
  // Parses `text`; the error names the position and what was expected.
  static absl::StatusOr<Expr> Parse(std::string_view text);
  stream::Value Eval(const stream::Row& row) const;
  bool Test(const stream::Row& row) const { return Truthy(Eval(row)); }
  const std::string& text() const { return text_; }
  // The field name when the whole expression is just one field, else "".
  const std::string& field() const;

  static bool Truthy(const stream::Value& v);

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
  std::string text_;
};

}  // namespace cairn::pipeline
